-- +goose Up
-- Groups (API.md §12); see the MySQL file for what each part is for.
CREATE TABLE {{prefix}}groups (
    gid         INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    head_img    TEXT    NOT NULL DEFAULT '',
    members_num INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL DEFAULT 0,
    last_id     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- gids start at 20000001, so a gid never equals a uid.
INSERT INTO sqlite_sequence (name, seq) VALUES ('{{prefix}}groups', 20000000);

CREATE TABLE {{prefix}}group_members (
    gid      INTEGER NOT NULL REFERENCES {{prefix}}groups (gid) ON DELETE CASCADE,
    uid      INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    role     TEXT    NOT NULL,
    since    INTEGER NOT NULL,
    from_id  INTEGER NOT NULL,
    until_id INTEGER NOT NULL DEFAULT 0,
    read_id  INTEGER NOT NULL DEFAULT 0,
    read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (gid, uid)
) WITHOUT ROWID;
CREATE INDEX idx_{{prefix}}group_members_uid ON {{prefix}}group_members (uid, gid);

-- to_uid becomes nullable (a group message has no recipient), which
-- SQLite's ALTER cannot do: the table is rebuilt, ids, the AUTOINCREMENT
-- high-water mark and every index kept.
CREATE TABLE {{prefix}}messages_next (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    from_uid      INTEGER NOT NULL,
    to_uid        INTEGER NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    body          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    client_msg_id TEXT    NULL,
    pair_lo       INTEGER NOT NULL DEFAULT 0,
    pair_hi       INTEGER NOT NULL DEFAULT 0,
    gid           INTEGER NOT NULL DEFAULT 0,
    gseq          INTEGER NOT NULL DEFAULT 0
);
INSERT INTO {{prefix}}messages_next (id, from_uid, to_uid, body, created_at, client_msg_id, pair_lo, pair_hi)
    SELECT id, from_uid, to_uid, body, created_at, client_msg_id, pair_lo, pair_hi FROM {{prefix}}messages;
DELETE FROM sqlite_sequence WHERE name = '{{prefix}}messages_next';
INSERT INTO sqlite_sequence (name, seq)
    SELECT '{{prefix}}messages_next', seq FROM sqlite_sequence WHERE name = '{{prefix}}messages';
DROP TABLE {{prefix}}messages;
ALTER TABLE {{prefix}}messages_next RENAME TO {{prefix}}messages;
CREATE UNIQUE INDEX uq_{{prefix}}messages_client ON {{prefix}}messages (from_uid, client_msg_id);
CREATE INDEX idx_{{prefix}}messages_to ON {{prefix}}messages (to_uid, id);
CREATE INDEX idx_{{prefix}}messages_created ON {{prefix}}messages (created_at);
CREATE INDEX idx_{{prefix}}messages_pair ON {{prefix}}messages (pair_lo, pair_hi, id);
-- Only group messages: 1:1 Sends write no entry here.
CREATE INDEX idx_{{prefix}}messages_gid ON {{prefix}}messages (gid, id) WHERE gid <> 0;

-- +goose Down
DELETE FROM {{prefix}}messages WHERE gid <> 0;
DROP INDEX idx_{{prefix}}messages_gid;
ALTER TABLE {{prefix}}messages DROP COLUMN gseq;
ALTER TABLE {{prefix}}messages DROP COLUMN gid;
DROP TABLE {{prefix}}group_members;
DROP TABLE {{prefix}}groups;
