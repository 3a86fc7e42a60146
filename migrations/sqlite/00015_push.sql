-- +goose Up
-- Web Push (API.md §14). The server's VAPID key pair (RFC 8292), made
-- on first start: one row, id 1, so that two instances starting at once
-- both insert and the second's insert is ignored.
CREATE TABLE {{prefix}}vapid_keys (
    id          INTEGER NOT NULL PRIMARY KEY,
    private_key TEXT    NOT NULL,
    public_key  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- One row a browser's PushSubscription, unique by the SHA-256 of its
-- endpoint (hex).
CREATE TABLE {{prefix}}push_subscriptions (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    uid           INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    endpoint_hash TEXT    NOT NULL,
    endpoint      TEXT    NOT NULL,
    p256dh        TEXT    NOT NULL,
    auth          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX uk_{{prefix}}push_subscriptions_endpoint ON {{prefix}}push_subscriptions (endpoint_hash);
CREATE INDEX idx_{{prefix}}push_subscriptions_uid ON {{prefix}}push_subscriptions (uid, id);

-- +goose Down
DROP TABLE {{prefix}}push_subscriptions;
DROP TABLE {{prefix}}vapid_keys;
