-- +goose Up
-- Replies, edits, deletes and reactions (API.md §13); see the MySQL file
-- for what each column is for. The index on ref_id is partial: a
-- message that is not an update entry (ref_id 0) writes no entry there.
ALTER TABLE {{prefix}}messages ADD COLUMN kind      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}messages ADD COLUMN ref_id    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}messages ADD COLUMN reply_to  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}messages ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}messages ADD COLUMN deleted   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}messages ADD COLUMN reactions TEXT    NULL;
CREATE INDEX idx_{{prefix}}messages_ref ON {{prefix}}messages (ref_id) WHERE ref_id <> 0;

-- +goose Down
DELETE FROM {{prefix}}messages WHERE kind >= 2;
DROP INDEX idx_{{prefix}}messages_ref;
ALTER TABLE {{prefix}}messages DROP COLUMN reactions;
ALTER TABLE {{prefix}}messages DROP COLUMN deleted;
ALTER TABLE {{prefix}}messages DROP COLUMN edited_at;
ALTER TABLE {{prefix}}messages DROP COLUMN reply_to;
ALTER TABLE {{prefix}}messages DROP COLUMN ref_id;
ALTER TABLE {{prefix}}messages DROP COLUMN kind;
