-- +goose Up
-- host_ref ties a chat user to an account of the host site, so a host's
-- signed-in users get chat sessions without a second registration.
ALTER TABLE {{prefix}}users ADD COLUMN host_ref TEXT NULL;
CREATE UNIQUE INDEX uq_{{prefix}}users_host_ref ON {{prefix}}users (host_ref);

-- +goose Down
DROP INDEX uq_{{prefix}}users_host_ref;
ALTER TABLE {{prefix}}users DROP COLUMN host_ref;
