-- +goose Up
-- Bumped on a Galera cluster only (see the MySQL migration); SQLite
-- keeps the column so that both schemas match the model.
ALTER TABLE {{prefix}}users ADD COLUMN mailbox_seq INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}users DROP COLUMN mailbox_seq;
