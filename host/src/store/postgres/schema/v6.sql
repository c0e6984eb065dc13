-- Version 6: presence (see store/sqlite/presence.rs). One row per user and node holding at least one of
-- the user's WebSocket connections; the user is online while any row exists. `last_seen_at` is stamped
-- whenever a user comes online or goes offline.
CREATE TABLE presence (
    user_id  TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    node     TEXT COLLATE "C" NOT NULL,
    since    BIGINT NOT NULL,
    PRIMARY KEY (user_id, node)
);
CREATE INDEX presence_node ON presence(node);
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;
