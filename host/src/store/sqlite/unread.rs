//! Unread counts: "messages in the conversation after the participant's `last_read_seq`, not sent by them,
//! not deleted", derived from three counters so that a send or a read updates one or two rows, whatever
//! the number of participants:
//!
//! `unread = conversations.live_messages - participants.read_live - participants.own_unread`
//!
//! - `live_messages`: the conversation's messages not deleted;
//! - `read_live`: those at or below the participant's `last_read_seq`;
//! - `own_unread`: the participant's own messages above it, not deleted.
//!
//! Counting the unread messages whenever a participant was read cost O(unread messages) per participant on
//! every send (problem 1 of BENCHMARKS.md), and a count per participant cost an `UPDATE` of every other
//! participant's row per message (999 rows for a message to 1,000 members; problem 15). Now:
//!
//! | change | counters |
//! | --- | --- |
//! | a message is sent | `live_messages` +1 (with the conversation's `last_seq`), the sender's `own_unread` +1 ([`message_sent`]) |
//! | a message is soft-deleted | `live_messages` -1, `read_live` -1 for those who had read it, the sender's `own_unread` -1 if they had not ([`message_deleted`]) |
//! | a participant reads up to seq n | `read_live` + the messages newly read, `own_unread` - their own among them ([`messages_read`]) |
//! | a participant joins (or rejoins) | `last_read_seq` is the newest seq and `read_live` is `live_messages`: 0 unread |
//! | an edit, a reaction, a receipt | unchanged |
//!
//! Only a delete is O(participants), and deletes are rare. Migration 11 fills the counters from the
//! messages of existing databases.

use rusqlite::{Connection, params};

use super::writer::Writing;
use crate::store::error::Result;

/// A participant's unread count from their row `p` (an SQL expression, for `concat!`).
macro_rules! unread_expr {
    () => {
        "(SELECT c.live_messages FROM conversations c WHERE c.id = p.conversation_id) - p.read_live - p.own_unread"
    };
}
pub(crate) use unread_expr;

/// Counts a new message as unread for everyone in the conversation but its sender. The caller has
/// already counted it in `live_messages` (the same `UPDATE` that gave it its seq); this counts it as the
/// sender's own, above their read mark.
pub(crate) fn message_sent(tx: &Writing<'_>, conversation_id: &str, sender_id: &str) -> Result<()> {
    let mut count = tx.prepare_cached(
        "UPDATE participants SET own_unread = own_unread + 1 WHERE conversation_id = ?1 AND user_id = ?2",
    )?;
    tx.counters(|| count.execute([conversation_id, sender_id]))?;
    Ok(())
}

/// Uncounts a message that has just been soft-deleted (it was not deleted before): it leaves
/// `live_messages`, and the read marks and the sender's own count that held it. For participants other
/// than its sender who had not read it, that is one unread message less; for everyone else no change.
pub(crate) fn message_deleted(
    tx: &Writing<'_>,
    conversation_id: &str,
    sender_id: &str,
    seq: i64,
) -> Result<()> {
    tx.prepare_cached("UPDATE conversations SET live_messages = live_messages - 1 WHERE id = ?1")?
        .execute([conversation_id])?;
    tx.prepare_cached(
        "UPDATE participants SET read_live = read_live - 1
         WHERE conversation_id = ?1 AND last_read_seq >= ?2",
    )?
    .execute(params![conversation_id, seq])?;
    tx.prepare_cached(
        "UPDATE participants SET own_unread = own_unread - 1
         WHERE conversation_id = ?1 AND user_id = ?2 AND last_read_seq < ?3",
    )?
    .execute(params![conversation_id, sender_id, seq])?;
    Ok(())
}

/// Moves `user_id`'s read mark from `previous` up to `target` (> `previous`) and counts what that reads:
/// the messages not deleted in between join `read_live`, and the user's own among them leave
/// `own_unread`. Costs the messages newly read, which the caller writes receipts for anyway.
pub(crate) fn messages_read(
    tx: &Writing<'_>,
    conversation_id: &str,
    user_id: &str,
    previous: i64,
    target: i64,
) -> Result<()> {
    let mut read = tx.prepare_cached(
        "UPDATE participants SET last_read_seq = ?4,
             read_live = read_live + (
                 SELECT count(*) FROM messages m WHERE m.conversation_id = ?1 AND m.seq > ?3
                   AND m.seq <= ?4 AND m.deleted = 0),
             own_unread = own_unread - (
                 SELECT count(*) FROM messages m WHERE m.conversation_id = ?1 AND m.seq > ?3
                   AND m.seq <= ?4 AND m.sender_id = ?2 AND m.deleted = 0)
         WHERE conversation_id = ?1 AND user_id = ?2",
    )?;
    tx.counters(|| read.execute(params![conversation_id, user_id, previous, target]))?;
    Ok(())
}

/// `user_id`'s unread count in `conversation_id` (0 for a non-participant).
pub(crate) fn unread_count(conn: &Connection, conversation_id: &str, user_id: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        unread_expr!(),
        " FROM participants p WHERE p.conversation_id = ?1 AND p.user_id = ?2"
    ))?;
    let mut rows = stmt.query([conversation_id, user_id])?;
    Ok(match rows.next()? {
        Some(row) => row.get(0)?,
        None => 0,
    })
}
