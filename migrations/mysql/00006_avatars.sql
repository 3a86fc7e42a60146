-- +goose Up
-- Avatars in the database, so that every instance of a site serves every
-- avatar (API.md §11) without a shared disk. Images are re-encoded and
-- bounded by the module before they are stored; MEDIUMBLOB holds 16 MiB.
CREATE TABLE {{prefix}}avatars (
    name         VARCHAR(40)  NOT NULL,
    content_type VARCHAR(32)  NOT NULL,
    data         MEDIUMBLOB   NOT NULL,
    created_at   BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE {{prefix}}avatars;
