-- +goose Up
-- Replies, edits, deletes and reactions (API.md §13).
--
-- kind: 0 text, 1 file, 2 edit, 3 delete, 4 reaction. Kinds 2–4 are
-- update entries: rows of the same id sequence that carry a change of the
-- message ref_id to the users who read that message, through their Recv
-- cursor like any message. History leaves them out (kind < 2).
--
-- A message keeps its current state in its own row, so History stays one
-- indexed read: edited_at (0 = never edited), deleted (its body is then
-- erased: ''), and reactions, the §13 JSON [{"emoji","uids":[…]}] (NULL
-- = none), rewritten under the row's lock by each React.
--
-- reply_to is the id of the message a message answers, 0 for none.
--
-- idx_ref finds a message's update entries (a new edit replaces the
-- last one, Delete erases them, the retention purge takes them with
-- their message). MySQL has no partial index: every row has an entry,
-- appended at the end of the ref_id = 0 range.
--
-- ADD COLUMN with constant defaults is instant on MariaDB 10.3+.
ALTER TABLE {{prefix}}messages
    ADD COLUMN kind      TINYINT NOT NULL DEFAULT 0,
    ADD COLUMN ref_id    BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN reply_to  BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN edited_at BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN deleted   TINYINT NOT NULL DEFAULT 0,
    ADD COLUMN reactions TEXT    NULL,
    ADD KEY idx_{{prefix}}messages_ref (ref_id);

-- +goose Down
DELETE FROM {{prefix}}messages WHERE kind >= 2;
ALTER TABLE {{prefix}}messages
    DROP KEY idx_{{prefix}}messages_ref,
    DROP COLUMN reactions,
    DROP COLUMN deleted,
    DROP COLUMN edited_at,
    DROP COLUMN reply_to,
    DROP COLUMN ref_id,
    DROP COLUMN kind;
