-- +goose Up
-- Files and images sent in messages (API.md §13); see the MySQL
-- migration for what each table is.
CREATE TABLE {{prefix}}files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uid        INTEGER NOT NULL,
    blob_key   TEXT    NOT NULL,
    thumb_key  TEXT    NOT NULL DEFAULT '',
    name       TEXT    NOT NULL,
    mime       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    thumb_size INTEGER NOT NULL DEFAULT 0,
    state      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX idx_{{prefix}}files_uid ON {{prefix}}files (uid);
CREATE INDEX idx_{{prefix}}files_state ON {{prefix}}files (state, created_at);

CREATE TABLE {{prefix}}file_chunks (
    blob_key TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    data     BLOB    NOT NULL,
    PRIMARY KEY (blob_key, seq)
);

CREATE TABLE {{prefix}}secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

ALTER TABLE {{prefix}}messages ADD COLUMN file_id INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}messages DROP COLUMN file_id;
DROP TABLE {{prefix}}secrets;
DROP TABLE {{prefix}}file_chunks;
DROP TABLE {{prefix}}files;
