-- +goose Up
-- Messages, read by their recipient in id order (Recv scans to_uid, id)
-- and purged by age (created_at).
--
-- client_msg_id is the sender's idempotency key: the unique key makes a
-- retried Send store nothing, even when the tries race. It is VARBINARY so
-- keys match byte for byte on both databases: a VARCHAR in a PAD SPACE
-- collation would take "abc" and "abc " for the same key and drop a
-- message. 256 bytes hold the 64 characters the API allows. NULLs never
-- collide, so messages without a key are unconstrained.
--
-- Only to_uid has a foreign key. Send locks the recipient's user row, which
-- the to_uid check needs anyway; a check on from_uid would take a shared
-- lock on the sender's row as well, and two users messaging each other at
-- once would deadlock. A deleted user's inbox goes with them; what they
-- sent stays with its recipients until retention purges it.
CREATE TABLE {{prefix}}messages (
    id            BIGINT         NOT NULL AUTO_INCREMENT,
    from_uid      BIGINT         NOT NULL,
    to_uid        BIGINT         NOT NULL,
    body          TEXT           NOT NULL,
    created_at    BIGINT         NOT NULL,
    client_msg_id VARBINARY(256) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_{{prefix}}messages_client (from_uid, client_msg_id),
    KEY idx_{{prefix}}messages_to (to_uid, id),
    KEY idx_{{prefix}}messages_created (created_at),
    CONSTRAINT fk_{{prefix}}messages_to FOREIGN KEY (to_uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The server-side Recv cursor of each session (API.md §5, Recv without
-- last_id): the id of the last message handed to that device.
ALTER TABLE {{prefix}}user_tokens ADD COLUMN recv_cursor BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}user_tokens DROP COLUMN recv_cursor;
DROP TABLE {{prefix}}messages;
