-- +goose Up
-- End-to-end encryption for 1:1 messages (API.md §15). enc marks a
-- message whose body is the sender's `enc` JSON (ciphertext and wrapped
-- keys the server cannot read), not text.
ALTER TABLE {{prefix}}messages ADD COLUMN enc INTEGER NOT NULL DEFAULT 0;

-- One row a device of a user: its X25519 public key (32 raw bytes,
-- base64) and when it was last published with a new value.
CREATE TABLE {{prefix}}device_keys (
    uid        INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    device_id  TEXT    NOT NULL,
    pub_key    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (uid, device_id)
);

-- +goose Down
DROP TABLE {{prefix}}device_keys;
ALTER TABLE {{prefix}}messages DROP COLUMN enc;
