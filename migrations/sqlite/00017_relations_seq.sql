-- +goose Up
-- Bumped by every change to the user's contacts or blocks (see the MySQL
-- migration); SQLite's batch checks them every time, and keeps the
-- column so that both schemas match the model.
ALTER TABLE {{prefix}}users ADD COLUMN relations_seq INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}users DROP COLUMN relations_seq;
