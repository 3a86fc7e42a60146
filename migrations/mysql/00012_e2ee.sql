-- +goose Up
-- End-to-end encryption for 1:1 messages (API.md §15). enc marks a
-- message whose body is the sender's `enc` JSON (ciphertext and wrapped
-- keys the server cannot read), not text. ADD COLUMN with a constant
-- default is instant on MariaDB 10.3+ (no table copy).
ALTER TABLE {{prefix}}messages ADD COLUMN enc TINYINT NOT NULL DEFAULT 0;

-- One row a device of a user: its X25519 public key (32 raw bytes,
-- base64) and when it was last published with a new value.
CREATE TABLE {{prefix}}device_keys (
    uid        BIGINT      NOT NULL,
    device_id  VARCHAR(64) NOT NULL,
    pub_key    VARCHAR(64) NOT NULL,
    updated_at BIGINT      NOT NULL,
    PRIMARY KEY (uid, device_id),
    CONSTRAINT fk_{{prefix}}device_keys_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE {{prefix}}device_keys;
ALTER TABLE {{prefix}}messages DROP COLUMN enc;
