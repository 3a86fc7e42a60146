-- +goose Up
-- The earlier spans of a user's membership of a group; see the MySQL
-- file for what they are for.
CREATE TABLE {{prefix}}group_spans (
    gid      INTEGER NOT NULL REFERENCES {{prefix}}groups (gid) ON DELETE CASCADE,
    uid      INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    from_id  INTEGER NOT NULL,
    until_id INTEGER NOT NULL,
    PRIMARY KEY (gid, uid, from_id)
) WITHOUT ROWID;
CREATE INDEX idx_{{prefix}}group_spans_uid ON {{prefix}}group_spans (uid, until_id);

-- +goose Down
DROP TABLE {{prefix}}group_spans;
