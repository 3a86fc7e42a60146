-- +goose Up
-- The member's read mark when the span ended: History's read_by counts a
-- member added back as a reader of an earlier span's message only if
-- they had read it then (their mark in group_members starts again at
-- the group's newest message). Spans kept before this read as unread.
-- ADD COLUMN with a constant default is instant on MariaDB 10.3+.
ALTER TABLE {{prefix}}group_spans ADD COLUMN read_id BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE {{prefix}}group_spans DROP COLUMN read_id;
