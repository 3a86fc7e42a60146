-- +goose Up
CREATE TABLE {{prefix}}api_clients (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    client_id     VARCHAR(20)  NOT NULL,
    client_secret VARCHAR(128) NOT NULL,
    name          VARCHAR(64)  NOT NULL DEFAULT '',
    disabled      TINYINT(1)   NOT NULL DEFAULT 0,
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_{{prefix}}api_clients_client_id (client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE {{prefix}}users (
    uid         BIGINT       NOT NULL AUTO_INCREMENT,
    name        VARCHAR(32)  NOT NULL,
    passwd_hash VARCHAR(100) NOT NULL,
    head_img    VARCHAR(512) NOT NULL DEFAULT '',
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL,
    PRIMARY KEY (uid)
) ENGINE=InnoDB AUTO_INCREMENT=10000001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE {{prefix}}user_tokens (
    id          BIGINT   NOT NULL AUTO_INCREMENT,
    uid         BIGINT   NOT NULL,
    token_hash  CHAR(64) NOT NULL,
    expire_time BIGINT   NOT NULL,
    created_at  BIGINT   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_{{prefix}}user_tokens_hash (token_hash),
    KEY idx_{{prefix}}user_tokens_uid (uid),
    KEY idx_{{prefix}}user_tokens_expire (expire_time),
    CONSTRAINT fk_{{prefix}}user_tokens_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE {{prefix}}user_tokens;
DROP TABLE {{prefix}}users;
DROP TABLE {{prefix}}api_clients;
