-- +goose Up
-- Who uploaded each avatar the module stores: a replaced avatar is deleted
-- only through this record, never because a head_img URL names it, since
-- /user/info/update lets anyone set head_img to anyone's URL. One row a
-- user, naming the avatar it uploaded last. Avatars uploaded before this
-- migration have no owner and are never deleted.
CREATE TABLE {{prefix}}avatar_owners (
    uid  INTEGER NOT NULL PRIMARY KEY REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    name TEXT    NOT NULL UNIQUE
);

-- +goose Down
DROP TABLE {{prefix}}avatar_owners;
