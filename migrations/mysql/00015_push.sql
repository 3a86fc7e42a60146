-- +goose Up
-- Web Push (API.md §14). The server's VAPID key pair (RFC 8292), made
-- on first start: one row, id 1, so that two instances starting at once
-- both insert and the second's insert is ignored (docs/security.md says
-- who can read the private key).
CREATE TABLE {{prefix}}vapid_keys (
    id          INT          NOT NULL,
    private_key VARCHAR(64)  NOT NULL,
    public_key  VARCHAR(100) NOT NULL,
    created_at  BIGINT       NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row a browser's PushSubscription. endpoint_hash (SHA-256 of the
-- endpoint, hex) is the unique key: an endpoint may be longer than an
-- index allows. A subscription that moves to another user (the browser
-- logged in as someone else) changes its uid.
CREATE TABLE {{prefix}}push_subscriptions (
    id            BIGINT        NOT NULL AUTO_INCREMENT,
    uid           BIGINT        NOT NULL,
    endpoint_hash CHAR(64)      NOT NULL,
    endpoint      VARCHAR(1024) NOT NULL,
    p256dh        VARCHAR(100)  NOT NULL,
    auth          VARCHAR(64)   NOT NULL,
    created_at    BIGINT        NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_{{prefix}}push_subscriptions_endpoint (endpoint_hash),
    KEY idx_{{prefix}}push_subscriptions_uid (uid, id),
    CONSTRAINT fk_{{prefix}}push_subscriptions_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE {{prefix}}push_subscriptions;
DROP TABLE {{prefix}}vapid_keys;
