-- +goose Up
-- Bumped by every transaction that makes or ends one of the user's
-- contacts or blocks (each locks the user's row first). A message batch
-- reads it under the same lock: a (sender, recipient) pair checked
-- before, under the recipient's relations_seq read now, is still a
-- contact or still blocked as it was, so the batch need not read the
-- contacts and blocks again (see models.relationsCache). ADD COLUMN with
-- a constant default is instant on MariaDB 10.3+.
ALTER TABLE {{prefix}}users ADD COLUMN relations_seq BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}users DROP COLUMN relations_seq;
