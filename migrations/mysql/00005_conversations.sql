-- +goose Up
-- Conversations (API.md §9): history, read state, unread counts, blocking.
--
-- pair_lo/pair_hi are the two uids of a message, smaller first, so one
-- index range holds a conversation in both directions and History pages
-- through it by id (keyset on before_id), whatever the size of either
-- mailbox. Rows stored before this migration get theirs here.
ALTER TABLE {{prefix}}messages
    ADD COLUMN pair_lo BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN pair_hi BIGINT NOT NULL DEFAULT 0;
UPDATE {{prefix}}messages SET pair_lo = LEAST(from_uid, to_uid), pair_hi = GREATEST(from_uid, to_uid);
CREATE INDEX idx_{{prefix}}messages_pair ON {{prefix}}messages (pair_lo, pair_hi, id);

-- One row per (recipient uid, sender peer_uid): the newest message from
-- peer to uid (last_id), how far uid has read them (read_id: every
-- message from peer with id <= read_id is read) and how many past read_id
-- are left (unread). Send keeps it in the transaction that stores the
-- message, under the recipient's row lock, so /Message/Unread reads at
-- most one row per sender instead of counting messages. peer_uid has no
-- foreign key for the reason messages.from_uid has none.
CREATE TABLE {{prefix}}conversations (
    uid      BIGINT NOT NULL,
    peer_uid BIGINT NOT NULL,
    last_id  BIGINT NOT NULL DEFAULT 0,
    read_id  BIGINT NOT NULL DEFAULT 0,
    unread   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (uid, peer_uid),
    CONSTRAINT fk_{{prefix}}conversations_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Nothing was ever marked read before this version: every stored message
-- counts as unread.
INSERT INTO {{prefix}}conversations (uid, peer_uid, last_id, read_id, unread)
    SELECT to_uid, from_uid, MAX(id), 0, COUNT(*) FROM {{prefix}}messages GROUP BY to_uid, from_uid;

-- uid blocks blocked_uid. The reverse index answers "who blocks me".
CREATE TABLE {{prefix}}blocks (
    uid         BIGINT NOT NULL,
    blocked_uid BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (uid, blocked_uid),
    KEY idx_{{prefix}}blocks_blocked (blocked_uid),
    CONSTRAINT fk_{{prefix}}blocks_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    CONSTRAINT fk_{{prefix}}blocks_blocked FOREIGN KEY (blocked_uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE {{prefix}}blocks;
DROP TABLE {{prefix}}conversations;
DROP INDEX idx_{{prefix}}messages_pair ON {{prefix}}messages;
ALTER TABLE {{prefix}}messages DROP COLUMN pair_hi, DROP COLUMN pair_lo;
