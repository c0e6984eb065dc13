//! Receipts (delivered / read per user per message), unread counts and per-message status.
//!
//! Reading is a high-water mark: `participants.last_read_seq`. Reading up to a message writes read
//! receipts for every earlier unread message from others (never more than the unread count) and moves the
//! mark; it never moves back. Message status is computed from the receipt rows when read; unread counts
//! are a column kept up to date by every write that changes them (`unread`), because
//! counting them was O(unread messages) on every send.

use rusqlite::{Connection, OptionalExtension, params};

use super::users::RawUser;
use super::writer::Writing;
use super::{messages, unread};
use crate::model::{MessageStatus, Millis, Receipt};
use crate::store::error::{Result, StoreError};
use crate::store::ids::count_u32;
use crate::store::records::Outcome;
use crate::store::records::{ReadOutcome, ReceiptCounts};

/// Records that `message_id` reached one of `user_id`'s devices. The first delivery time is kept;
/// a repeat returns `changed == false`.
pub fn mark_delivered(
    tx: &Writing<'_>,
    message_id: &str,
    user_id: &str,
    now: Millis,
) -> Result<Outcome<Receipt>> {
    messages::get_message(tx, message_id)?;
    let changed = tx
        .prepare_cached(
            "INSERT INTO receipts (message_id, user_id, delivered_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (message_id, user_id) DO UPDATE SET delivered_at = excluded.delivered_at
             WHERE delivered_at IS NULL",
        )?
        .execute(params![message_id, user_id, now])?;
    let receipt = receipt(tx, message_id, user_id)?
        .ok_or_else(|| StoreError::not_found("receipt", message_id))?;
    Ok(Outcome {
        value: receipt,
        changed: changed > 0,
    })
}

/// Marks `conversation_id` read by `user_id` up to `up_to` (a message id; `None` = the newest message):
/// every message from others after the user's previous mark, up to and including that one, gets a read
/// receipt (which implies delivered). A mark at or before the current one changes nothing.
///
/// [`StoreError::NotFound`] if the user is not a participant or the message is not in the conversation.
pub fn mark_read(
    tx: &Writing<'_>,
    conversation_id: &str,
    user_id: &str,
    up_to: Option<&str>,
    now: Millis,
) -> Result<ReadOutcome> {
    let previous: i64 = tx
        .prepare_cached(
            "SELECT last_read_seq FROM participants WHERE conversation_id = ?1 AND user_id = ?2",
        )?
        .query_row([conversation_id, user_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::not_found("participant", user_id))?;
    let target: i64 = match up_to {
        Some(message_id) => tx
            .prepare_cached("SELECT seq FROM messages WHERE id = ?1 AND conversation_id = ?2")?
            .query_row([message_id, conversation_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::not_found("message", message_id))?,
        None => tx
            .prepare_cached("SELECT last_seq FROM conversations WHERE id = ?1")?
            .query_row([conversation_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::not_found("conversation", conversation_id))?,
    };
    let mut newly_read = Vec::new();
    let mut newly_delivered = Vec::new();
    if target > previous {
        let mut stmt = tx.prepare_cached(
            "SELECT id FROM messages WHERE conversation_id = ?1 AND seq > ?2 AND seq <= ?3 AND sender_id != ?4
             ORDER BY seq",
        )?;
        newly_read = stmt
            .query_map(params![conversation_id, previous, target, user_id], |r| {
                r.get::<_, String>(0)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut delivered =
            tx.prepare_cached("SELECT 1 FROM receipts WHERE message_id = ?1 AND user_id = ?2 AND delivered_at IS NOT NULL")?;
        for id in &newly_read {
            if !delivered.exists(params![id, user_id])? {
                newly_delivered.push(id.clone());
            }
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO receipts (message_id, user_id, delivered_at, read_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (message_id, user_id) DO UPDATE
             SET read_at = coalesce(read_at, excluded.read_at), delivered_at = coalesce(delivered_at, excluded.delivered_at)",
        )?;
        for id in &newly_read {
            upsert.execute(params![id, user_id, now])?;
        }
        unread::messages_read(tx, conversation_id, user_id, previous, target)?;
    }
    let last_read_seq = target.max(previous);
    let last_read_message_id = tx
        .prepare_cached("SELECT id FROM messages WHERE conversation_id = ?1 AND seq = ?2")?
        .query_row(params![conversation_id, last_read_seq], |r| r.get(0))
        .optional()?;
    Ok(ReadOutcome {
        last_read_message_id,
        last_read_seq,
        newly_read,
        newly_delivered,
        unread_count: unread_count(tx, conversation_id, user_id)?,
    })
}

/// Messages in `conversation_id` from others, not deleted, after `user_id`'s read mark (0 for a
/// non-participant), as the store keeps the count (`unread`).
pub fn unread_count(conn: &Connection, conversation_id: &str, user_id: &str) -> Result<u32> {
    Ok(count_u32(unread::unread_count(
        conn,
        conversation_id,
        user_id,
    )?))
}

/// One user's receipt for one message, if they have one.
pub fn receipt(conn: &Connection, message_id: &str, user_id: &str) -> Result<Option<Receipt>> {
    let mut found = receipts_where(
        conn,
        "r.message_id = ?1 AND r.user_id = ?2",
        &[message_id, user_id],
    )?;
    Ok(found.pop())
}

/// How far `message_id` has got with the other participants ([`ReceiptCounts`]); the same counts
/// `message_select!` derives a message's status from.
pub fn receipt_counts(conn: &Connection, message_id: &str) -> Result<ReceiptCounts> {
    let counts: Option<(i64, i64, i64)> = conn
        .prepare_cached("SELECT
        (SELECT count(*) FROM participants p
           WHERE p.conversation_id = m.conversation_id AND p.user_id != m.sender_id AND p.joined_seq < m.seq),
        (SELECT count(*) FROM receipts r JOIN participants p
             ON p.conversation_id = m.conversation_id AND p.user_id = r.user_id
           WHERE r.message_id = m.id AND r.user_id != m.sender_id AND p.joined_seq < m.seq
             AND r.delivered_at IS NOT NULL),
        (SELECT count(*) FROM receipts r JOIN participants p
             ON p.conversation_id = m.conversation_id AND p.user_id = r.user_id
           WHERE r.message_id = m.id AND r.user_id != m.sender_id AND p.joined_seq < m.seq
             AND r.read_at IS NOT NULL)
     FROM messages m WHERE m.id = ?1")?
        .query_row([message_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (others, delivered, read) =
        counts.ok_or_else(|| StoreError::not_found("message", message_id))?;
    Ok(ReceiptCounts {
        others: count_u32(others),
        delivered: count_u32(delivered),
        read: count_u32(read),
    })
}

/// Every receipt for `message_id`, by user id.
pub fn receipts_for_message(conn: &Connection, message_id: &str) -> Result<Vec<Receipt>> {
    receipts_where(conn, "r.message_id = ?1", &[message_id])
}

fn receipts_where(conn: &Connection, filter: &str, args: &[&str]) -> Result<Vec<Receipt>> {
    let sql = format!(
        "SELECT r.message_id, r.delivered_at, r.read_at, u.id, u.name, u.metadata
         FROM receipts r JOIN users u ON u.id = r.user_id WHERE {filter} ORDER BY r.user_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                RawUser::from_row(r, 3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(message_id, delivered_at, read_at, user)| {
            Ok(Receipt {
                message_id,
                user: user.into_user()?,
                delivered_at,
                read_at,
            })
        })
        .collect()
}

/// The status summary of one message (also in every [`crate::model::Message`] the store returns).
pub fn message_status(conn: &Connection, message_id: &str) -> Result<MessageStatus> {
    Ok(messages::get_message(conn, message_id)?.status)
}

/// Summarises receipt counts over the participants who were present when the message was sent, other
/// than its sender: `others` of them, `readers` have read it, `deliverers` have it delivered.
pub fn status_from_counts(others: i64, readers: i64, deliverers: i64) -> MessageStatus {
    if others > 0 && readers >= others {
        MessageStatus::AllRead
    } else if readers > 0 {
        MessageStatus::SomeRead
    } else if deliverers > 0 {
        MessageStatus::Delivered
    } else {
        MessageStatus::Sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::testutil::TestDb;

    /// `receipts_for_message` and `message_status` are SQLite's own, not on the seam (which reads one
    /// receipt at a time and the status in the message); receipts themselves are tested on every backend in
    /// `store/tests/`.
    #[test]
    fn receipts_for_message_lists_them_by_user() -> Result<()> {
        let t = TestDb::with_users(&["a", "b", "c", "d"])?;
        let conv = t.conversation(&["a", "b", "c", "d"])?;
        let m = t.send(&conv.id, "a", "hello")?;
        t.db.write(|tx| mark_delivered(tx, &m.id, "c", 1))?;
        t.db.write(|tx| mark_read(tx, &conv.id, "b", None, 2))?;
        let listed: Vec<_> =
            t.db.read(|c| receipts_for_message(c, &m.id))?
                .into_iter()
                .map(|r| (r.user.id, r.delivered_at, r.read_at))
                .collect();
        assert_eq!(
            listed,
            [
                ("b".to_owned(), Some(2), Some(2)),
                ("c".to_owned(), Some(1), None)
            ]
        );
        assert_eq!(
            t.db.read(|c| message_status(c, &m.id))?,
            MessageStatus::SomeRead
        );
        Ok(())
    }
}
