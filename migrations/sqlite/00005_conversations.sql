-- +goose Up
-- Conversations (API.md §9): history, read state, unread counts, blocking.
-- See the MySQL file for what each part is for.
ALTER TABLE {{prefix}}messages ADD COLUMN pair_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}messages ADD COLUMN pair_hi INTEGER NOT NULL DEFAULT 0;
UPDATE {{prefix}}messages SET pair_lo = min(from_uid, to_uid), pair_hi = max(from_uid, to_uid);
CREATE INDEX idx_{{prefix}}messages_pair ON {{prefix}}messages (pair_lo, pair_hi, id);

CREATE TABLE {{prefix}}conversations (
    uid      INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    peer_uid INTEGER NOT NULL,
    last_id  INTEGER NOT NULL DEFAULT 0,
    read_id  INTEGER NOT NULL DEFAULT 0,
    unread   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (uid, peer_uid)
);
INSERT INTO {{prefix}}conversations (uid, peer_uid, last_id, read_id, unread)
    SELECT to_uid, from_uid, MAX(id), 0, COUNT(*) FROM {{prefix}}messages GROUP BY to_uid, from_uid;

CREATE TABLE {{prefix}}blocks (
    uid         INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    blocked_uid INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (uid, blocked_uid)
);
CREATE INDEX idx_{{prefix}}blocks_blocked ON {{prefix}}blocks (blocked_uid);

-- +goose Down
DROP TABLE {{prefix}}blocks;
DROP TABLE {{prefix}}conversations;
DROP INDEX idx_{{prefix}}messages_pair;
ALTER TABLE {{prefix}}messages DROP COLUMN pair_hi;
ALTER TABLE {{prefix}}messages DROP COLUMN pair_lo;
