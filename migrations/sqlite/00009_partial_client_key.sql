-- +goose Up
-- The unique index on (from_uid, client_msg_id) holds only the keys
-- clients send. Messages sent without one carry none (NULL): their entry
-- in the index would be one more page written per message, and two NULLs
-- never collided anyway. Keys the server stored before this migration
-- (they start with \x01) stay, unused: clearing them would rewrite the
-- whole table in one transaction.
DROP INDEX uq_{{prefix}}messages_client;
CREATE UNIQUE INDEX uq_{{prefix}}messages_client ON {{prefix}}messages (from_uid, client_msg_id)
    WHERE client_msg_id IS NOT NULL;

-- +goose Down
DROP INDEX uq_{{prefix}}messages_client;
CREATE UNIQUE INDEX uq_{{prefix}}messages_client ON {{prefix}}messages (from_uid, client_msg_id);
