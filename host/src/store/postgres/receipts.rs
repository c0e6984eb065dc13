//! Receipts on PostgreSQL (delivered / read per user per message) and the read mark, as
//! [`store::sqlite::receipts`](crate::store::sqlite::receipts) keeps them. Reading many messages at once
//! writes their receipts in one statement.

use super::transaction::Transaction;

use super::messages;
use super::participants::{messages_read, unread_count};
use super::values::user_at;
use crate::model::{Millis, Receipt};
use crate::store::error::{Result, StoreError};
use crate::store::records::{Outcome, ReadOutcome, ReceiptCounts};

pub use crate::store::sqlite::receipts::status_from_counts;

/// Records that `message_id` reached one of `user_id`'s devices. The first delivery time is kept; a
/// repeat returns `changed == false`.
pub async fn mark_delivered(
    tx: &Transaction<'_>,
    message_id: &str,
    user_id: &str,
    now: Millis,
) -> Result<Outcome<Receipt>> {
    messages::get_message(tx, message_id).await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO receipts (message_id, user_id, delivered_at) VALUES ($1, $2, $3)
             ON CONFLICT (message_id, user_id) DO UPDATE SET delivered_at = excluded.delivered_at
             WHERE receipts.delivered_at IS NULL",
        )
        .await?;
    let changed = tx.execute(&stmt, &[&message_id, &user_id, &now]).await?;
    let receipt = receipt(tx, message_id, user_id)
        .await?
        .ok_or_else(|| StoreError::not_found("receipt", message_id))?;
    Ok(Outcome {
        value: receipt,
        changed: changed > 0,
    })
}

/// Marks `conversation_id` read by `user_id` up to `up_to` (`None` = the newest message); see the SQLite
/// backend's `mark_read`. [`StoreError::NotFound`] if the user is not a participant or the message is not
/// in the conversation.
pub async fn mark_read(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_id: &str,
    up_to: Option<&str>,
    now: Millis,
) -> Result<ReadOutcome> {
    let mark = tx
        .prepare_cached(
            "SELECT last_read_seq FROM participants WHERE conversation_id = $1 AND user_id = $2",
        )
        .await?;
    let previous: i64 = tx
        .query_opt(&mark, &[&conversation_id, &user_id])
        .await?
        .ok_or_else(|| StoreError::not_found("participant", user_id))?
        .try_get(0)?;
    let target: i64 = match up_to {
        Some(message_id) => {
            let stmt = tx
                .prepare_cached("SELECT seq FROM messages WHERE id = $1 AND conversation_id = $2")
                .await?;
            tx.query_opt(&stmt, &[&message_id, &conversation_id])
                .await?
                .ok_or_else(|| StoreError::not_found("message", message_id))?
                .try_get(0)?
        }
        None => {
            let stmt = tx
                .prepare_cached("SELECT last_seq FROM conversations WHERE id = $1")
                .await?;
            tx.query_opt(&stmt, &[&conversation_id])
                .await?
                .ok_or_else(|| StoreError::not_found("conversation", conversation_id))?
                .try_get(0)?
        }
    };
    let mut newly_read = Vec::new();
    let mut newly_delivered = Vec::new();
    if target > previous {
        let unread = tx
            .prepare_cached(
                "SELECT id FROM messages
                 WHERE conversation_id = $1 AND seq > $2 AND seq <= $3 AND sender_id != $4 ORDER BY seq",
            )
            .await?;
        newly_read = tx
            .query(&unread, &[&conversation_id, &previous, &target, &user_id])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        if !newly_read.is_empty() {
            let delivered = tx
                .prepare_cached(
                    "SELECT message_id FROM receipts
                     WHERE user_id = $2 AND message_id = ANY($1) AND delivered_at IS NOT NULL",
                )
                .await?;
            let already: std::collections::HashSet<String> = tx
                .query(&delivered, &[&newly_read, &user_id])
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            newly_delivered = newly_read
                .iter()
                .filter(|id| !already.contains(*id))
                .cloned()
                .collect();
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO receipts (message_id, user_id, delivered_at, read_at)
                     SELECT m, $2, $3, $3 FROM unnest($1::text[]) AS m
                     ON CONFLICT (message_id, user_id) DO UPDATE
                     SET read_at = coalesce(receipts.read_at, excluded.read_at),
                         delivered_at = coalesce(receipts.delivered_at, excluded.delivered_at)",
                )
                .await?;
            tx.execute(&upsert, &[&newly_read, &user_id, &now]).await?;
        }
        messages_read(tx, conversation_id, user_id, previous, target).await?;
    }
    let last_read_seq = target.max(previous);
    let last_read = tx
        .prepare_cached("SELECT id FROM messages WHERE conversation_id = $1 AND seq = $2")
        .await?;
    let last_read_message_id = tx
        .query_opt(&last_read, &[&conversation_id, &last_read_seq])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(ReadOutcome {
        last_read_message_id,
        last_read_seq,
        newly_read,
        newly_delivered,
        unread_count: unread_count(tx, conversation_id, user_id).await?,
    })
}

/// One user's receipt for one message, if they have one.
pub async fn receipt(
    tx: &Transaction<'_>,
    message_id: &str,
    user_id: &str,
) -> Result<Option<Receipt>> {
    let stmt = tx
        .prepare_cached(
            "SELECT r.message_id, r.delivered_at, r.read_at, u.id, u.name, u.metadata
             FROM receipts r JOIN users u ON u.id = r.user_id
             WHERE r.message_id = $1 AND r.user_id = $2",
        )
        .await?;
    let Some(r) = tx.query_opt(&stmt, &[&message_id, &user_id]).await? else {
        return Ok(None);
    };
    Ok(Some(Receipt {
        message_id: r.try_get(0)?,
        delivered_at: r.try_get(1)?,
        read_at: r.try_get(2)?,
        user: user_at(&r, 3)?,
    }))
}

/// How far `message_id` has got with the other participants; see the SQLite backend's `receipt_counts`.
/// Takes the message's row lock first, then counts in a new statement: under READ COMMITTED that
/// statement sees every receipt committed by a transaction that held the lock before, so of two nodes
/// storing a message's last two receipts at once, the second to get the lock sees it complete.
pub async fn receipt_counts(tx: &Transaction<'_>, message_id: &str) -> Result<ReceiptCounts> {
    let lock = tx
        .prepare_cached("SELECT 1 FROM messages WHERE id = $1 FOR NO KEY UPDATE")
        .await?;
    tx.query_opt(&lock, &[&message_id]).await?;
    let stmt = tx
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
     FROM messages m WHERE m.id = $1")
        .await?;
    let row = tx
        .query_opt(&stmt, &[&message_id])
        .await?
        .ok_or_else(|| StoreError::not_found("message", message_id))?;
    let count = |i: usize| -> Result<u32> {
        Ok(u32::try_from(row.try_get::<_, i64>(i)?).unwrap_or(u32::MAX))
    };
    Ok(ReceiptCounts {
        others: count(0)?,
        delivered: count(1)?,
        read: count(2)?,
    })
}
