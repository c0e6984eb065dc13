//! Unread counters: `participants.unread_count`, kept equal to "messages in the conversation after the
//! participant's `last_read_seq`, not sent by them, not deleted" by every write that changes one side of
//! that formula.
//!
//! Counting those messages whenever a participant was read cost O(unread messages) per participant, on
//! every send (the before-hook's participants) and every after-hook delivery: a send into a conversation
//! with 7,700 unread messages took 3x as long as into a fresh one. Keeping the count in the row makes
//! reading it an index lookup; the writes below are O(participants) per message (like the event's audience
//! rows) and O(messages newly read) per read.
//!
//! | change | counter |
//! | --- | --- |
//! | a message is sent | +1 for every participant but the sender ([`message_sent`]) |
//! | an unread message is soft-deleted | -1 for every participant but the sender who had not read it ([`message_deleted`]) |
//! | a participant reads up to seq n | minus the messages from others, not deleted, newly read ([`messages_read`]) |
//! | a participant joins (or rejoins) | starts at 0: their `last_read_seq` is the conversation's newest seq |
//! | an edit, a reaction, a receipt | unchanged |
//!
//! Migration 3 fills the column from the formula for existing databases.

use rusqlite::{Connection, params};

use super::writer::Writing;
use crate::store::error::Result;

/// Counts a new message (seq above every participant's `last_read_seq`) as unread for everyone in the
/// conversation but its sender.
pub(crate) fn message_sent(tx: &Writing<'_>, conversation_id: &str, sender_id: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE participants SET unread_count = unread_count + 1 WHERE conversation_id = ?1 AND user_id != ?2",
    )?
    .execute([conversation_id, sender_id])?;
    Ok(())
}

/// Uncounts a message that has just been soft-deleted (it was not deleted before) for the participants
/// other than its sender who had not read it yet. Members who joined after it was sent have a
/// `last_read_seq` at or above its seq, so it was never counted for them.
pub(crate) fn message_deleted(
    tx: &Writing<'_>,
    conversation_id: &str,
    sender_id: &str,
    seq: i64,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE participants SET unread_count = unread_count - 1
         WHERE conversation_id = ?1 AND user_id != ?2 AND last_read_seq < ?3",
    )?
    .execute(params![conversation_id, sender_id, seq])?;
    Ok(())
}

/// Moves `user_id`'s read mark from `previous` up to `target` (> `previous`) and uncounts what that reads:
/// the messages from others, not deleted, in between. Costs the messages newly read, which the caller
/// writes receipts for anyway.
pub(crate) fn messages_read(
    tx: &Writing<'_>,
    conversation_id: &str,
    user_id: &str,
    previous: i64,
    target: i64,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE participants SET last_read_seq = ?4, unread_count = unread_count - (
             SELECT count(*) FROM messages m WHERE m.conversation_id = ?1 AND m.seq > ?3 AND m.seq <= ?4
               AND m.sender_id != ?2 AND m.deleted = 0)
         WHERE conversation_id = ?1 AND user_id = ?2",
    )?
    .execute(params![conversation_id, user_id, previous, target])?;
    Ok(())
}

/// `user_id`'s unread count in `conversation_id` (0 for a non-participant).
pub(crate) fn unread_count(conn: &Connection, conversation_id: &str, user_id: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached(
        "SELECT unread_count FROM participants WHERE conversation_id = ?1 AND user_id = ?2",
    )?;
    let mut rows = stmt.query([conversation_id, user_id])?;
    Ok(match rows.next()? {
        Some(row) => row.get(0)?,
        None => 0,
    })
}
