-- +goose Up
-- handle is a user's chosen name for being found and logging in (API.md
-- §14), stored lower-cased so the unique index makes it unique whatever
-- the case; NULL for users without one (NULLs never collide). The index
-- also serves /Contacts/search's prefix match (LIKE 'q%'). A binary
-- collation orders handles as SQLite's does (by code point: '.' before
-- '_'), so a search ranks them alike on both databases.
-- discoverable = 0 keeps a user out of search.
ALTER TABLE {{prefix}}users
    ADD COLUMN handle VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN discoverable TINYINT(1) NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX uq_{{prefix}}users_handle ON {{prefix}}users (handle);

-- +goose Down
DROP INDEX uq_{{prefix}}users_handle ON {{prefix}}users;
ALTER TABLE {{prefix}}users DROP COLUMN discoverable, DROP COLUMN handle;
