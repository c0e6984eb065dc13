-- Version 12: unread counts from counters per conversation and per reader (see store/sqlite/unread.rs,
-- and store/sqlite/migrations.rs, version 11): a message updated every other participant's row.
--
-- unread = conversations.live_messages - participants.read_live - participants.own_unread, where
-- `live_messages` counts the conversation's messages not deleted, `read_live` those at or below the
-- participant's `last_read_seq`, and `own_unread` the participant's own above it, not deleted. The backfill
-- counts each from the messages. Version 11's half-empty pages still keep the updates that remain (a
-- sender's own count, a reader's marks) on their page.
ALTER TABLE conversations ADD COLUMN live_messages BIGINT NOT NULL DEFAULT 0;
ALTER TABLE participants ADD COLUMN read_live BIGINT NOT NULL DEFAULT 0;
ALTER TABLE participants ADD COLUMN own_unread BIGINT NOT NULL DEFAULT 0;
UPDATE conversations c SET live_messages = (
    SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND NOT m.deleted
);
UPDATE participants p SET
    read_live = (
        SELECT count(*) FROM messages m
        WHERE m.conversation_id = p.conversation_id AND m.seq <= p.last_read_seq AND NOT m.deleted),
    own_unread = (
        SELECT count(*) FROM messages m
        WHERE m.conversation_id = p.conversation_id AND m.seq > p.last_read_seq
          AND m.sender_id = p.user_id AND NOT m.deleted);
ALTER TABLE participants DROP COLUMN unread_count;
