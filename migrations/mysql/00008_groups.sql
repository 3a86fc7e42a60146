-- +goose Up
-- Groups (API.md §12). A group message is stored once, in messages, with
-- its gid and no recipient (to_uid NULL); each member reads it through a
-- membership row, not through a copy of their own. See
-- docs/architecture.md ("Groups") for why.
--
-- seq counts the group's messages and last_id is the newest one's id:
-- a member's unread count is seq minus the seq they have read (read_seq),
-- one row read per group, never a count of messages.
CREATE TABLE {{prefix}}groups (
    gid         BIGINT       NOT NULL AUTO_INCREMENT,
    name        VARCHAR(64)  NOT NULL,
    head_img    VARCHAR(512) NOT NULL DEFAULT '',
    members_num INT          NOT NULL DEFAULT 0,
    seq         BIGINT       NOT NULL DEFAULT 0,
    last_id     BIGINT       NOT NULL DEFAULT 0,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL,
    PRIMARY KEY (gid)
) ENGINE=InnoDB AUTO_INCREMENT=20000001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per (group, user) who is or was a member. A member sees the
-- group's messages with from_id < id, and, once gone (until_id > 0), those
-- up to until_id through Recv only, so a message sent while they were in
-- reaches them once even if they were removed before they polled. since
-- orders members by how long they have been in (ownership hand-over).
-- The (uid, gid) key is what Recv and Unread read: one range per user.
CREATE TABLE {{prefix}}group_members (
    gid      BIGINT     NOT NULL,
    uid      BIGINT     NOT NULL,
    role     VARCHAR(8) NOT NULL,
    since    BIGINT     NOT NULL,
    from_id  BIGINT     NOT NULL,
    until_id BIGINT     NOT NULL DEFAULT 0,
    read_id  BIGINT     NOT NULL DEFAULT 0,
    read_seq BIGINT     NOT NULL DEFAULT 0,
    PRIMARY KEY (gid, uid),
    KEY idx_{{prefix}}group_members_uid (uid, gid),
    CONSTRAINT fk_{{prefix}}group_members_gid FOREIGN KEY (gid) REFERENCES {{prefix}}groups (gid) ON DELETE CASCADE,
    CONSTRAINT fk_{{prefix}}group_members_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- A group message has gid and its place in the group (gseq), and no
-- recipient. (gid, id) is the group's history and every member's Recv.
ALTER TABLE {{prefix}}messages
    MODIFY to_uid BIGINT NULL,
    ADD COLUMN gid  BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN gseq BIGINT NOT NULL DEFAULT 0,
    ADD KEY idx_{{prefix}}messages_gid (gid, id);

-- +goose Down
DELETE FROM {{prefix}}messages WHERE gid <> 0;
ALTER TABLE {{prefix}}messages
    DROP KEY idx_{{prefix}}messages_gid,
    DROP COLUMN gseq,
    DROP COLUMN gid,
    MODIFY to_uid BIGINT NOT NULL;
DROP TABLE {{prefix}}group_members;
DROP TABLE {{prefix}}groups;
