-- +goose Up
-- A count of the batches that stored something for the user (1:1 or
-- through a group), bumped by each of them on a Galera cluster: a write
-- to the recipient's row is what makes Galera's certification put two
-- Sends to one user, made on two nodes, one after the other (a locking
-- read is not replicated), so that the user's messages commit in id
-- order on every node (docs/scaling.md). ADD COLUMN with a constant
-- default is instant on MariaDB 10.3+.
ALTER TABLE {{prefix}}users ADD COLUMN mailbox_seq BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}users DROP COLUMN mailbox_seq;
