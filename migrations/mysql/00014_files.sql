-- +goose Up
-- Files and images sent in messages (API.md §13).
--
-- A file row is an upload of one user: its name and type as shown to
-- clients, its size, and the keys of its contents (and of its thumbnail,
-- '' for none) in the file store (Config.Files: by default the chunks
-- table below). state is 0 for an upload no message has taken yet, 1
-- once a message has, 2 once that message is gone (purged or deleted)
-- and the contents are to be deleted; the sweep finds states 2, and 0
-- older than a day, along (state, created_at). uid's index serves the
-- quota's sum.
CREATE TABLE {{prefix}}files (
    id         BIGINT       NOT NULL AUTO_INCREMENT,
    uid        BIGINT       NOT NULL,
    blob_key   VARCHAR(64)  NOT NULL,
    thumb_key  VARCHAR(64)  NOT NULL DEFAULT '',
    name       VARCHAR(255) NOT NULL,
    mime       VARCHAR(127) NOT NULL,
    size       BIGINT       NOT NULL,
    thumb_size BIGINT       NOT NULL DEFAULT 0,
    state      TINYINT      NOT NULL DEFAULT 0,
    created_at BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY idx_{{prefix}}files_uid (uid),
    KEY idx_{{prefix}}files_state (state, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The database file store (filestore.DB): a blob as numbered chunks of at
-- most 256 KiB, so that neither a write nor a read ever holds a whole
-- file, and every instance on the database serves every file.
CREATE TABLE {{prefix}}file_chunks (
    blob_key VARCHAR(64) NOT NULL,
    seq      INT         NOT NULL,
    data     MEDIUMBLOB  NOT NULL,
    PRIMARY KEY (blob_key, seq)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- Keys every instance must share, such as the one file URLs are signed
-- with: made once by the first instance, read by the others.
CREATE TABLE {{prefix}}secrets (
    name  VARCHAR(32)  NOT NULL,
    value VARCHAR(128) NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- The file a message carries, 0 for none. ADD COLUMN with a constant
-- default is instant on MariaDB 10.3+.
ALTER TABLE {{prefix}}messages ADD COLUMN file_id BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}messages DROP COLUMN file_id;
DROP TABLE {{prefix}}secrets;
DROP TABLE {{prefix}}file_chunks;
DROP TABLE {{prefix}}files;
