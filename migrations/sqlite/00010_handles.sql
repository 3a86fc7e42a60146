-- +goose Up
-- handle is a user's chosen name for being found and logging in (API.md
-- §14), stored lower-cased so the unique index makes it unique whatever
-- the case; NULL for users without one (NULLs never collide). NOCASE is
-- what lets SQLite serve /Contacts/search's prefix match (a LIKE, which
-- is case-insensitive) from the index.
-- discoverable = 0 keeps a user out of search.
ALTER TABLE {{prefix}}users ADD COLUMN handle TEXT COLLATE NOCASE NULL;
ALTER TABLE {{prefix}}users ADD COLUMN discoverable INTEGER NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX uq_{{prefix}}users_handle ON {{prefix}}users (handle);

-- +goose Down
DROP INDEX uq_{{prefix}}users_handle;
ALTER TABLE {{prefix}}users DROP COLUMN discoverable;
ALTER TABLE {{prefix}}users DROP COLUMN handle;
