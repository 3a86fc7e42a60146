-- +goose Up
-- Presence (API.md §13); see the MySQL file for what each column is for.
ALTER TABLE {{prefix}}users ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}users ADD COLUMN show_presence INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE {{prefix}}users DROP COLUMN show_presence;
ALTER TABLE {{prefix}}users DROP COLUMN last_seen;
