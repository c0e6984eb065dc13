-- Version 8: roles, owners, bans and blocks (see store/sqlite/migrations.rs, version 7).
--
-- Each participant gets a `role`; `role` is the truth and `is_admin` stays, written with it, for queries
-- that predate roles. Existing admins become `admin`. Each conversation gets an `owner_id` (its creator
-- from now on); an existing conversation's owner is its oldest admin.
ALTER TABLE participants ADD COLUMN role TEXT COLLATE "C" NOT NULL DEFAULT 'member'
    CHECK (role IN ('admin', 'moderator', 'member'));
UPDATE participants SET role = 'admin' WHERE is_admin;
ALTER TABLE conversations ADD COLUMN owner_id TEXT COLLATE "C" REFERENCES users(id);
UPDATE conversations SET owner_id = (
    SELECT p.user_id FROM participants p
    WHERE p.conversation_id = conversations.id AND p.is_admin
    ORDER BY p.joined_at, p.user_id LIMIT 1
);

-- A ban keeps a user out of one conversation until a moderator or admin lifts it.
CREATE TABLE bans (
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id          TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    banned_by        TEXT COLLATE "C" NOT NULL,
    reason           TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

-- A block is between two users: the blocked user cannot message the blocker one to one.
CREATE TABLE blocks (
    blocker_id  TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    blocked_id  TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
