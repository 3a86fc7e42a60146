-- +goose Up
-- Bumped, on a Galera cluster only, by every transaction that takes the
-- user's row lock: a batch storing a message for them (1:1 or through a
-- group), a contact, block or read change. A write to the row is what
-- makes Galera's certification put two such transactions made on two
-- nodes one after the other (a locking read is not replicated), so that
-- the user's messages commit in id order on every node
-- (docs/scaling.md). ADD COLUMN with a constant default is instant on
-- MariaDB 10.3+.
ALTER TABLE {{prefix}}users ADD COLUMN mailbox_seq BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}users DROP COLUMN mailbox_seq;
