//! Messages on PostgreSQL: gapless per-conversation `seq`, idempotent sends, paging, edits, soft deletes,
//! mentions, as [`store::sqlite::messages`](crate::store::sqlite::messages) does.
//!
//! `seq` comes from `conversations.last_seq`, bumped by the send's first write. That `UPDATE` also takes
//! the conversation's row lock, held to commit, so two sends to one conversation cannot interleave even
//! without the single-node writer lock ([`PgDb`](super::PgDb)), and a rolled-back send gives its seq
//! back: seqs stay 1, 2, 3, ... (SCALE-OUT.md 2.3).

use super::transaction::Transaction;
use futures_util::future::{join, join3};
use tokio_postgres::Row;

use super::conversations;
use super::participants::{MESSAGE_SENT, message_deleted};
use super::receipts::status_from_counts;
use super::values::{big, no_nul, small, user_at};
use crate::model::{Message, Millis, Origin};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{json_value, metadata_text, new_id};
use crate::store::limits::{DEFAULT_PAGE_LIMIT, MAX_CLIENT_ID_LEN, MAX_PAGE_LIMIT};
use crate::store::records::{MessagePage, NewMessage, Outcome};

/// Every column a [`Message`] needs, mentions and the receipt counts behind its status included (see the
/// SQLite backend's `message_rows.rs`); the argument, a `WHERE` clause and what follows, is appended at
/// compile time so every message query is a constant, prepared once per connection.
macro_rules! message_select {
    ($rest:literal) => {
        concat!(
            "SELECT m.id, m.conversation_id, m.seq, m.body, m.metadata, m.origin_plugin,
        m.origin_depth, m.created_at, m.edited_at, m.deleted, m.client_id, u.id, u.name, u.metadata,
        (SELECT coalesce(array_agg(x.user_id ORDER BY x.user_id), '{}') FROM mentions x
           WHERE x.message_id = m.id),
        (SELECT count(*) FROM participants p
           WHERE p.conversation_id = m.conversation_id AND p.user_id != m.sender_id AND p.joined_seq < m.seq),
        (SELECT count(*) FROM receipts r JOIN participants p
             ON p.conversation_id = m.conversation_id AND p.user_id = r.user_id
           WHERE r.message_id = m.id AND r.user_id != m.sender_id AND p.joined_seq < m.seq
             AND r.read_at IS NOT NULL),
        (SELECT count(*) FROM receipts r JOIN participants p
             ON p.conversation_id = m.conversation_id AND p.user_id = r.user_id
           WHERE r.message_id = m.id AND r.user_id != m.sender_id AND p.joined_seq < m.seq
             AND r.delivered_at IS NOT NULL),
        m.parent_id, m.reply_count, m.last_reply_at
     FROM messages m JOIN users u ON u.id = m.sender_id ",
            $rest
        )
    };
}

/// A [`Message`] from a row of `message_select!`.
fn message_row(r: &Row) -> Result<Message> {
    let origin = match r.try_get::<_, Option<String>>(5)? {
        Some(name) => Origin::Plugin {
            name,
            depth: r.try_get::<_, Option<i64>>(6)?.map_or(1, small),
        },
        None => Origin::User,
    };
    Ok(Message {
        id: r.try_get(0)?,
        conversation_id: r.try_get(1)?,
        seq: r.try_get(2)?,
        body: r.try_get(3)?,
        metadata: json_value(r.try_get(4)?)?,
        origin,
        created_at: r.try_get(7)?,
        edited_at: r.try_get(8)?,
        deleted: r.try_get(9)?,
        client_id: r.try_get(10)?,
        sender: user_at(r, 11)?,
        mentions: r.try_get(14)?,
        status: status_from_counts(r.try_get(15)?, r.try_get(16)?, r.try_get(17)?),
        parent_id: r.try_get(18)?,
        reply_count: u32::try_from(r.try_get::<_, i32>(19)?).unwrap_or(0),
        last_reply_at: r.try_get(20)?,
    })
}

/// Stores a message with the next seq, or returns the sender's earlier message with the same `client_id`
/// (`changed == false`). [`StoreError::Conflict`] if that `client_id` was already used by the sender in
/// another conversation.
pub async fn send_message(
    tx: &Transaction<'_>,
    new: &NewMessage,
    now: Millis,
) -> Result<Outcome<Message>> {
    if let Some(client_id) = &new.client_id {
        if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID_LEN {
            return Err(StoreError::Invalid(format!(
                "client_id must be 1-{MAX_CLIENT_ID_LEN} characters"
            )));
        }
        no_nul("client_id", client_id)?;
        // The conversation's row lock first (SCALE-OUT.md 2.3): a duplicate sent at the same moment
        // through another node waits here for the first to commit, then finds it below.
        let lock = tx
            .prepare_cached("SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE")
            .await?;
        tx.query_opt(&lock, &[&new.conversation_id]).await?;
        if let Some(existing) = find_by_client_id(tx, &new.sender_id, client_id).await? {
            if existing.conversation_id != new.conversation_id {
                return Err(StoreError::Conflict(format!(
                    "client_id {client_id:?} was already used in another conversation"
                )));
            }
            return Ok(Outcome {
                value: existing,
                changed: false,
            });
        }
    }
    no_nul("body", &new.body)?;
    let metadata = metadata_text(&new.metadata)?;
    let id = match &new.id {
        Some(id) => id.clone(),
        None => new_id("m_")?,
    };
    let (plugin, depth) = match &new.origin {
        Origin::User => (None, None),
        Origin::Plugin { name, depth } => (Some(name.as_str()), Some(i64::from(*depth))),
    };
    // The writes and the read back in one round trip. Every statement is prepared first: one still to
    // prepare would wait for its answer while a later one went ahead. Then they are sent together, and
    // the connection runs them in order, so the insert takes the seq the bump just made.
    let bump = tx.prepare_cached(BUMP_SEQ).await?;
    let insert = tx.prepare_cached(INSERT_MESSAGE).await?;
    let reply = match &new.parent_id {
        Some(_) => Some(tx.prepare_cached(COUNT_REPLY).await?),
        None => None,
    };
    let sent = tx.prepare_cached(MESSAGE_SENT).await?;
    let mention = if new.mentions.is_empty() {
        None
    } else {
        Some(tx.prepare_cached(STORE_MENTIONS).await?)
    };
    let read_back = tx
        .prepare_cached(message_select!("WHERE m.id = $1"))
        .await?;
    let ((bumped, inserted, replied), (counted, mentioned, stored)) = join(
        join3(
            tx.query_opt(&bump, &[&new.conversation_id, &id]),
            tx.execute(
                &insert,
                &[
                    &id,
                    &new.conversation_id,
                    &new.sender_id,
                    &new.client_id,
                    &new.body,
                    &metadata,
                    &plugin,
                    &depth,
                    &now,
                    &new.parent_id,
                ],
            ),
            async {
                match (&reply, &new.parent_id) {
                    (Some(stmt), Some(parent)) => tx.execute(stmt, &[parent, &now]).await,
                    _ => Ok(0),
                }
            },
        ),
        join3(
            tx.execute(&sent, &[&new.conversation_id, &new.sender_id]),
            async {
                match &mention {
                    Some(stmt) => tx.execute(stmt, &[&id, &new.mentions]).await,
                    None => Ok(0),
                }
            },
            tx.query_opt(&read_back, &[&id]),
        ),
    )
    .await;
    // The first statement that failed is the error, as if they had been sent one by one.
    if bumped?.is_none() {
        return Err(StoreError::not_found("conversation", &new.conversation_id));
    }
    inserted?;
    replied?;
    counted?;
    mentioned?;
    let stored = stored?.ok_or_else(|| StoreError::not_found("message", &id))?;
    Ok(Outcome {
        value: message_row(&stored)?,
        changed: true,
    })
}

/// Bumps `$1`'s seq, naming `$2` its newest message.
const BUMP_SEQ: &str = "UPDATE conversations SET last_seq = last_seq + 1, last_message_id = $2,
                          live_messages = live_messages + 1
     WHERE id = $1 RETURNING last_seq";

/// Inserts a message with the seq [`BUMP_SEQ`] just made in this transaction.
const INSERT_MESSAGE: &str =
    "INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body,
                          metadata, origin_plugin, origin_depth, created_at, parent_id)
     VALUES ($1, $2, (SELECT last_seq FROM conversations WHERE id = $2), $3, $4, $5, $6, $7, $8, $9,
             $10)";

/// Counts a reply on its parent `$1`, replied to at `$2`.
const COUNT_REPLY: &str = "UPDATE messages SET reply_count = reply_count + 1,
                          last_reply_at = greatest(coalesce(last_reply_at, 0), $2)
     WHERE id = $1";

/// Records the mentions (`$2`) of message `$1` of users that exist (others are dropped).
const STORE_MENTIONS: &str = "INSERT INTO mentions (message_id, user_id)
     SELECT $1, u.id FROM users u WHERE u.id = ANY($2::text[]) ON CONFLICT DO NOTHING";

/// The sender's message with this `client_id`, if any.
pub async fn find_by_client_id(
    tx: &Transaction<'_>,
    sender_id: &str,
    client_id: &str,
) -> Result<Option<Message>> {
    let stmt = tx
        .prepare_cached(message_select!(
            "WHERE m.sender_id = $1 AND m.client_id = $2"
        ))
        .await?;
    tx.query_opt(&stmt, &[&sender_id, &client_id])
        .await?
        .map(|r| message_row(&r))
        .transpose()
}

/// The message with `id`, or [`StoreError::NotFound`].
pub async fn get_message(tx: &Transaction<'_>, id: &str) -> Result<Message> {
    let stmt = tx
        .prepare_cached(message_select!("WHERE m.id = $1"))
        .await?;
    let row = tx.query_opt(&stmt, &[&id]).await?;
    message_row(&row.ok_or_else(|| StoreError::not_found("message", id))?)
}

/// A page of `conversation_id`'s messages by seq; see the SQLite backend's `list_messages` for which
/// page a combination of bounds selects.
pub async fn list_messages(
    tx: &Transaction<'_>,
    conversation_id: &str,
    page: &MessagePage,
) -> Result<Vec<Message>> {
    conversations::get_conversation(tx, conversation_id).await?;
    let limit = page
        .limit
        .unwrap_or(DEFAULT_PAGE_LIMIT)
        .clamp(1, MAX_PAGE_LIMIT);
    let ascending = page.after.is_some() && page.before.is_none();
    let sql = match (&page.thread, ascending) {
        (None, true) => message_select!(
            "WHERE m.conversation_id = $1 AND m.parent_id IS NULL AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq ASC LIMIT $4"
        ),
        (None, false) => message_select!(
            "WHERE m.conversation_id = $1 AND m.parent_id IS NULL AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq DESC LIMIT $4"
        ),
        (Some(_), true) => message_select!(
            "WHERE m.parent_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq ASC LIMIT $4"
        ),
        (Some(_), false) => message_select!(
            "WHERE m.parent_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq DESC LIMIT $4"
        ),
    };
    let stmt = tx.prepare_cached(sql).await?;
    let after = page.after.unwrap_or(0);
    let before = page.before.unwrap_or(i64::MAX);
    let scope = page.thread.as_deref().unwrap_or(conversation_id);
    let rows = tx
        .query(&stmt, &[&scope, &after, &before, &big(limit)])
        .await?;
    let mut messages = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
    if ascending != page.oldest_first {
        messages.reverse();
    }
    Ok(messages)
}

/// The messages of `conversation_id` that have replies, most recently replied to first; see the SQLite
/// backend's `threads`.
pub async fn threads(
    tx: &Transaction<'_>,
    conversation_id: &str,
    limit: u32,
) -> Result<Vec<Message>> {
    conversations::get_conversation(tx, conversation_id).await?;
    let stmt = tx
        .prepare_cached(message_select!(
            "WHERE m.conversation_id = $1 AND m.reply_count > 0
             ORDER BY m.last_reply_at DESC, m.seq DESC LIMIT $2"
        ))
        .await?;
    let rows = tx
        .query(
            &stmt,
            &[&conversation_id, &big(limit.clamp(1, MAX_PAGE_LIMIT))],
        )
        .await?;
    rows.iter().map(message_row).collect()
}

/// Replaces a message's body (and metadata, if given) and mentions, and sets `edited_at`.
/// [`StoreError::Conflict`] for a deleted message.
pub async fn edit_message(
    tx: &Transaction<'_>,
    id: &str,
    body: &str,
    metadata: Option<&serde_json::Value>,
    mentions: &[String],
    now: Millis,
) -> Result<Message> {
    let before = get_message(tx, id).await?;
    if before.deleted {
        return Err(StoreError::Conflict(format!("message {id:?} is deleted")));
    }
    no_nul("body", body)?;
    let metadata = metadata_text(metadata.unwrap_or(&before.metadata))?;
    let update = tx
        .prepare_cached(
            "UPDATE messages SET body = $2, metadata = $3, edited_at = $4 WHERE id = $1",
        )
        .await?;
    tx.execute(&update, &[&id, &body, &metadata, &now]).await?;
    clear_mentions(tx, id).await?;
    store_mentions(tx, id, mentions).await?;
    get_message(tx, id).await
}

/// Soft-deletes a message (body, metadata and mentions emptied, the row kept so seqs stay gapless);
/// deleting twice returns `changed == false`.
pub async fn delete_message(
    tx: &Transaction<'_>,
    id: &str,
    now: Millis,
) -> Result<Outcome<Message>> {
    let before = get_message(tx, id).await?;
    if before.deleted {
        return Ok(Outcome {
            value: before,
            changed: false,
        });
    }
    let update = tx
        .prepare_cached(
            "UPDATE messages SET body = '', metadata = '{}', deleted = true, edited_at = $2 WHERE id = $1",
        )
        .await?;
    tx.execute(&update, &[&id, &now]).await?;
    clear_mentions(tx, id).await?;
    message_deleted(tx, &before.conversation_id, &before.sender.id, before.seq).await?;
    Ok(Outcome {
        value: get_message(tx, id).await?,
        changed: true,
    })
}

async fn clear_mentions(tx: &Transaction<'_>, message_id: &str) -> Result<()> {
    let stmt = tx
        .prepare_cached("DELETE FROM mentions WHERE message_id = $1")
        .await?;
    tx.execute(&stmt, &[&message_id]).await?;
    Ok(())
}

/// Records the mentions of users that exist (others are dropped), in one statement.
async fn store_mentions(tx: &Transaction<'_>, message_id: &str, mentions: &[String]) -> Result<()> {
    if mentions.is_empty() {
        return Ok(());
    }
    let stmt = tx.prepare_cached(STORE_MENTIONS).await?;
    tx.execute(&stmt, &[&message_id, &mentions]).await?;
    Ok(())
}
