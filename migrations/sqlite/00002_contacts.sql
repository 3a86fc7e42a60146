-- +goose Up
-- A contact is mutual and stored once per direction, so "my contacts" is
-- one primary-key range scan.
CREATE TABLE {{prefix}}contacts (
    uid        INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    peer_uid   INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, peer_uid)
) WITHOUT ROWID;
CREATE INDEX idx_{{prefix}}contacts_peer ON {{prefix}}contacts (peer_uid);

-- A pending request from from_uid to to_uid; accepting or refusing deletes it.
CREATE TABLE {{prefix}}contact_requests (
    from_uid   INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    to_uid     INTEGER NOT NULL REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_uid, to_uid)
) WITHOUT ROWID;
CREATE INDEX idx_{{prefix}}contact_requests_to ON {{prefix}}contact_requests (to_uid, created_at);

-- +goose Down
DROP TABLE {{prefix}}contact_requests;
DROP TABLE {{prefix}}contacts;
