-- +goose Up
-- On SQLite this version makes the client_msg_id unique index partial
-- (only the keys clients send). MySQL/MariaDB have no partial index: a
-- row without a key has its entry (a NULL) either way, so the schema
-- stays, and messages sent without a client_msg_id keep a key of the
-- server's own there (models.MessageWriter says why). The version exists
-- so that both dialects number their schemas alike.
SELECT 1;

-- +goose Down
SELECT 1;
