-- +goose Up
-- Avatars in the database, so that every instance of a site serves every
-- avatar (API.md §11) without a shared disk.
CREATE TABLE {{prefix}}avatars (
    name         TEXT    NOT NULL PRIMARY KEY,
    content_type TEXT    NOT NULL,
    data         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
);

-- +goose Down
DROP TABLE {{prefix}}avatars;
