-- +goose Up
-- A contact is mutual and stored once per direction, so "my contacts" is
-- one primary-key range scan.
CREATE TABLE {{prefix}}contacts (
    uid        BIGINT NOT NULL,
    peer_uid   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (uid, peer_uid),
    KEY idx_{{prefix}}contacts_peer (peer_uid),
    CONSTRAINT fk_{{prefix}}contacts_uid FOREIGN KEY (uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    CONSTRAINT fk_{{prefix}}contacts_peer FOREIGN KEY (peer_uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- A pending request from from_uid to to_uid; accepting or refusing deletes it.
CREATE TABLE {{prefix}}contact_requests (
    from_uid   BIGINT NOT NULL,
    to_uid     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (from_uid, to_uid),
    KEY idx_{{prefix}}contact_requests_to (to_uid, created_at),
    CONSTRAINT fk_{{prefix}}contact_requests_from FOREIGN KEY (from_uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE,
    CONSTRAINT fk_{{prefix}}contact_requests_to FOREIGN KEY (to_uid) REFERENCES {{prefix}}users (uid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- +goose Down
DROP TABLE {{prefix}}contact_requests;
DROP TABLE {{prefix}}contacts;
