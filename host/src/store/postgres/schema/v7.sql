-- Version 7: threads and the moderation queue (see store/sqlite/held.rs).
--
-- A message may reply to another of its conversation (`parent_id`; threads are one level deep); the
-- parent keeps its reply count and the time of its newest reply, updated with each reply.
ALTER TABLE messages ADD COLUMN parent_id TEXT COLLATE "C" REFERENCES messages(id) ON DELETE CASCADE;
ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_reply_at BIGINT;
CREATE INDEX messages_thread ON messages(parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX messages_threads ON messages(conversation_id, last_reply_at) WHERE reply_count > 0;

-- Messages a before-hook held for review: kept apart from `messages` (no seq, no unread count, no
-- receipts) until a moderator approves one (it is then sent with the same id) or rejects it.
CREATE TABLE held_messages (
    id               TEXT COLLATE "C" PRIMARY KEY,
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    sender_id        TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    client_id        TEXT COLLATE "C",
    body             TEXT NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '{}',
    mentions         TEXT[] NOT NULL DEFAULT '{}',
    origin_plugin    TEXT COLLATE "C",
    origin_depth     BIGINT,
    parent_id        TEXT COLLATE "C",
    reason           TEXT NOT NULL,
    held_by          TEXT COLLATE "C" NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by       TEXT COLLATE "C",
    decided_at       BIGINT,
    decision_reason  TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX held_messages_queue ON held_messages(conversation_id, state, created_at);
CREATE UNIQUE INDEX held_messages_client_id ON held_messages(sender_id, client_id)
    WHERE client_id IS NOT NULL;
