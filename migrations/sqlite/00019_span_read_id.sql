-- +goose Up
-- The member's read mark when the span ended (see the MySQL migration).
ALTER TABLE {{prefix}}group_spans ADD COLUMN read_id INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}group_spans DROP COLUMN read_id;
