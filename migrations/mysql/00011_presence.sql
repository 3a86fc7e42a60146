-- +goose Up
-- Presence (API.md §13): when each user was last seen online (unix
-- seconds, 0 = never since this migration), and whether they show their
-- presence at all (1, the default) or hide it, which also hides everyone
-- else's from them.
ALTER TABLE {{prefix}}users
    ADD COLUMN last_seen     BIGINT     NOT NULL DEFAULT 0,
    ADD COLUMN show_presence TINYINT(1) NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE {{prefix}}users
    DROP COLUMN show_presence,
    DROP COLUMN last_seen;
