-- +goose Up
-- The earlier spans of a user's membership of a group. A user who left
-- or was removed and is added again starts a new span in group_members
-- (from_id the newest message id then, until_id 0); the span that ended
-- moves here, so that they still get what was sent while they were in
-- before: in Recv if their cursor had not reached it, in the group's
-- History, and its edits, deletes and reactions (API.md §12: a member
-- sees what was sent while they were a member). A span holds the
-- messages with from_id < id <= until_id; an empty one (until_id <=
-- from_id) is not kept. The primary key serves History and updates (by
-- group and user), the uid index Recv (a user's spans past a cursor).
CREATE TABLE {{prefix}}group_spans (
    gid      BIGINT NOT NULL,
    uid      BIGINT NOT NULL,
    from_id  BIGINT NOT NULL,
    until_id BIGINT NOT NULL,
    PRIMARY KEY (gid, uid, from_id),
    KEY idx_{{prefix}}group_spans_uid (uid, until_id),
    CONSTRAINT fk_{{prefix}}group_spans_gid FOREIGN KEY (gid) REFERENCES {{prefix}}groups (gid) ON DELETE CASCADE,
    CONSTRAINT fk_{{prefix}}group_spans_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE {{prefix}}group_spans;
