-- +goose Up
-- Who uploaded each avatar the module stores: a replaced avatar is deleted
-- only through this record, never because a head_img URL names it, since
-- /user/info/update lets anyone set head_img to anyone's URL. One row a
-- user, naming the avatar it uploaded last. Avatars uploaded before this
-- migration have no owner and are never deleted.
CREATE TABLE {{prefix}}avatar_owners (
    uid  BIGINT      NOT NULL,
    name VARCHAR(40) NOT NULL,
    PRIMARY KEY (uid),
    UNIQUE KEY uk_{{prefix}}avatar_owners_name (name),
    CONSTRAINT fk_{{prefix}}avatar_owners_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE {{prefix}}avatar_owners;
