-- +goose Up
CREATE TABLE {{prefix}}api_clients (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id     TEXT    NOT NULL,
    client_secret TEXT    NOT NULL,
    name          TEXT    NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX uq_{{prefix}}api_clients_client_id ON {{prefix}}api_clients (client_id);

CREATE TABLE {{prefix}}users (
    uid         INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    passwd_hash TEXT    NOT NULL,
    head_img    TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- uids start at 10000001, eight digits as in the seeds.
INSERT INTO sqlite_sequence (name, seq) VALUES ('{{prefix}}users', 10000000);

CREATE TABLE {{prefix}}user_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uid         INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL,
    expire_time INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX uq_{{prefix}}user_tokens_hash ON {{prefix}}user_tokens (token_hash);
CREATE INDEX idx_{{prefix}}user_tokens_uid ON {{prefix}}user_tokens (uid);
CREATE INDEX idx_{{prefix}}user_tokens_expire ON {{prefix}}user_tokens (expire_time);

-- +goose Down
DROP TABLE {{prefix}}user_tokens;
DROP TABLE {{prefix}}users;
DROP TABLE {{prefix}}api_clients;
