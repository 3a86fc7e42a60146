-- +goose Up
-- Messages, read by their recipient in id order (Recv scans to_uid, id)
-- and purged by age (created_at).
--
-- AUTOINCREMENT matters here: without it SQLite hands out max(id)+1, so
-- once retention purged the newest rows an id could come round again, and
-- a client whose cursor is past it would never see the new message.
--
-- client_msg_id is the sender's idempotency key; the unique index makes a
-- retried Send store nothing. NULLs never collide. Only to_uid has a
-- foreign key, as in the MySQL schema (see there for why).
CREATE TABLE {{prefix}}messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    from_uid      INTEGER NOT NULL,
    to_uid        INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    body          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    client_msg_id TEXT    NULL
);
CREATE UNIQUE INDEX uq_{{prefix}}messages_client ON {{prefix}}messages (from_uid, client_msg_id);
CREATE INDEX idx_{{prefix}}messages_to ON {{prefix}}messages (to_uid, id);
CREATE INDEX idx_{{prefix}}messages_created ON {{prefix}}messages (created_at);

-- The server-side Recv cursor of each session (API.md §5, Recv without
-- last_id): the id of the last message handed to that device.
ALTER TABLE {{prefix}}user_tokens ADD COLUMN recv_cursor INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}user_tokens DROP COLUMN recv_cursor;
DROP TABLE {{prefix}}messages;
