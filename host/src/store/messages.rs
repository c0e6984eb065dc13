//! Messages: gapless per-conversation `seq`, idempotent sends, paging, edits, soft deletes, mentions.
//!
//! `seq` comes from `conversations.last_seq`, bumped in the same transaction as the insert. Writes are
//! serialised (one writer, IMMEDIATE transactions) and a failed transaction rolls the bump back, so seqs
//! are 1, 2, 3, ... with no gaps and no duplicates. Deletes are soft for the same reason.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::error::{Result, StoreError};
use super::ids::{json_value, metadata_text, new_id};
use super::receipts::status_from_counts;
use super::users::RawUser;
use super::{Outcome, conversations};
use crate::model::{Message, Millis, Origin};

/// Messages per page when the caller gives no limit: a screenful and a bit.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;

/// Most messages per page, so one request cannot make the server build a huge response.
pub const MAX_PAGE_LIMIT: u32 = 200;

/// Longest `client_id` accepted, in bytes: enough for a UUID or ULID with a prefix.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// What sending a message needs (after before-hooks have had their say).
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// The conversation to post in; the caller has checked the sender participates.
    pub conversation_id: String,
    /// The sending user (or plugin bot user).
    pub sender_id: String,
    /// The text.
    pub body: String,
    /// A JSON object, or `null` for `{}`.
    pub metadata: serde_json::Value,
    /// Who produced it.
    pub origin: Origin,
    /// Mentioned user ids (e.g. [`crate::model::mentions_in`]); ids that are not users are dropped.
    pub mentions: Vec<String>,
    /// The sender's idempotency key: a second send with the same key returns the first message.
    pub client_id: Option<String>,
}

/// Which page of a conversation's messages to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePage {
    /// Only messages with a smaller seq.
    pub before: Option<i64>,
    /// Only messages with a larger seq.
    pub after: Option<i64>,
    /// Page size; `None` means [`DEFAULT_PAGE_LIMIT`], capped at [`MAX_PAGE_LIMIT`].
    pub limit: Option<u32>,
    /// Return oldest first instead of the default newest first.
    pub oldest_first: bool,
}

/// Stores a message with the next seq, or returns the sender's earlier message with the same `client_id`
/// (`changed == false`; the caller must then not append an event or fire hooks again).
///
/// [`StoreError::Conflict`] if that `client_id` was already used by the sender in another conversation.
pub fn send_message(tx: &Transaction<'_>, new: &NewMessage, now: Millis) -> Result<Outcome<Message>> {
    if let Some(client_id) = &new.client_id {
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN {
            return Err(StoreError::Invalid(format!("client_id must be 1-{MAX_CLIENT_ID_LEN} bytes")));
        }
        if let Some(existing) = find_by_client_id(tx, &new.sender_id, client_id)? {
            if existing.conversation_id != new.conversation_id {
                return Err(StoreError::Conflict(format!(
                    "client_id {client_id:?} was already used in another conversation"
                )));
            }
            return Ok(Outcome { value: existing, changed: false });
        }
    }
    let metadata = metadata_text(&new.metadata)?;
    let seq: i64 = tx
        .query_row(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
            [&new.conversation_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::not_found("conversation", &new.conversation_id))?;
    let id = new_id(tx, "m_")?;
    let (plugin, depth) = match &new.origin {
        Origin::User => (None, None),
        Origin::Plugin { name, depth } => (Some(name.as_str()), Some(*depth)),
    };
    tx.execute(
        "INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, metadata,
                               origin_plugin, origin_depth, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![id, new.conversation_id, seq, new.sender_id, new.client_id, new.body, metadata, plugin, depth, now],
    )?;
    tx.execute("UPDATE conversations SET last_message_id = ?2 WHERE id = ?1", [&new.conversation_id, &id])?;
    store_mentions(tx, &id, &new.mentions)?;
    Ok(Outcome { value: get_message(tx, &id)?, changed: true })
}

/// The sender's message with this `client_id`, if any.
pub fn find_by_client_id(conn: &Connection, sender_id: &str, client_id: &str) -> Result<Option<Message>> {
    let sql = format!("{MESSAGE_SELECT} WHERE m.sender_id = ?1 AND m.client_id = ?2");
    let raw = conn.query_row(&sql, [sender_id, client_id], RawMessage::from_row).optional()?;
    raw.map(RawMessage::into_message).transpose()
}

/// The message with `id`, or [`StoreError::NotFound`].
pub fn get_message(conn: &Connection, id: &str) -> Result<Message> {
    let sql = format!("{MESSAGE_SELECT} WHERE m.id = ?1");
    let raw = conn.query_row(&sql, [id], RawMessage::from_row).optional()?;
    raw.ok_or_else(|| StoreError::not_found("message", id))?.into_message()
}

/// A page of `conversation_id`'s messages by seq.
///
/// With only `after`, the page is the `limit` messages right after it (for catching up without holes);
/// otherwise it is the `limit` newest messages in the range. Either way the result is ordered newest
/// first unless `oldest_first`.
pub fn list_messages(conn: &Connection, conversation_id: &str, page: &MessagePage) -> Result<Vec<Message>> {
    conversations::get_conversation(conn, conversation_id)?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE_LIMIT).clamp(1, MAX_PAGE_LIMIT);
    let ascending = page.after.is_some() && page.before.is_none();
    let sql = format!(
        "{MESSAGE_SELECT} WHERE m.conversation_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq {} LIMIT ?4",
        if ascending { "ASC" } else { "DESC" }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(
            params![conversation_id, page.after.unwrap_or(0), page.before.unwrap_or(i64::MAX), limit],
            RawMessage::from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut messages = rows.into_iter().map(RawMessage::into_message).collect::<Result<Vec<_>>>()?;
    if ascending != page.oldest_first {
        messages.reverse();
    }
    Ok(messages)
}

/// Replaces a message's body (and metadata, if given) and mentions, and sets `edited_at`.
/// [`StoreError::Conflict`] for a deleted message. Who may edit is the caller's decision.
pub fn edit_message(
    tx: &Transaction<'_>,
    id: &str,
    body: &str,
    metadata: Option<&serde_json::Value>,
    mentions: &[String],
    now: Millis,
) -> Result<Message> {
    let before = get_message(tx, id)?;
    if before.deleted {
        return Err(StoreError::Conflict(format!("message {id:?} is deleted")));
    }
    let metadata = match metadata {
        Some(m) => metadata_text(m)?,
        None => metadata_text(&before.metadata)?,
    };
    tx.execute(
        "UPDATE messages SET body = ?2, metadata = ?3, edited_at = ?4 WHERE id = ?1",
        params![id, body, metadata, now],
    )?;
    tx.execute("DELETE FROM mentions WHERE message_id = ?1", [id])?;
    store_mentions(tx, id, mentions)?;
    get_message(tx, id)
}

/// Soft-deletes a message: empties its body, metadata (which may hold attachments) and mentions and sets
/// `deleted`, keeping the row so seqs stay gapless. Deleting twice returns `changed == false`.
pub fn delete_message(tx: &Transaction<'_>, id: &str, now: Millis) -> Result<Outcome<Message>> {
    let before = get_message(tx, id)?;
    if before.deleted {
        return Ok(Outcome { value: before, changed: false });
    }
    tx.execute(
        "UPDATE messages SET body = '', metadata = '{}', deleted = 1, edited_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    tx.execute("DELETE FROM mentions WHERE message_id = ?1", [id])?;
    Ok(Outcome { value: get_message(tx, id)?, changed: true })
}

fn store_mentions(tx: &Transaction<'_>, message_id: &str, mentions: &[String]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO mentions (message_id, user_id) SELECT ?1, id FROM users WHERE id = ?2",
    )?;
    for user in mentions {
        stmt.execute([message_id, user])?;
    }
    Ok(())
}

/// Every column a [`Message`] needs, including mentions and the receipt counts behind its status
/// ([`status_from_counts`]): participants who were present when the message was sent (other than the
/// sender), how many of them have read it, and how many have it delivered.
const MESSAGE_SELECT: &str = "SELECT m.id, m.conversation_id, m.seq, m.body, m.metadata, m.origin_plugin,
        m.origin_depth, m.created_at, m.edited_at, m.deleted, m.client_id, u.id, u.name, u.metadata,
        (SELECT json_group_array(user_id) FROM mentions WHERE message_id = m.id),
        (SELECT count(*) FROM participants p
           WHERE p.conversation_id = m.conversation_id AND p.user_id != m.sender_id AND p.joined_seq < m.seq),
        (SELECT count(*) FROM receipts r JOIN participants p
             ON p.conversation_id = m.conversation_id AND p.user_id = r.user_id
           WHERE r.message_id = m.id AND r.user_id != m.sender_id AND p.joined_seq < m.seq
             AND r.read_at IS NOT NULL),
        (SELECT count(*) FROM receipts r JOIN participants p
             ON p.conversation_id = m.conversation_id AND p.user_id = r.user_id
           WHERE r.message_id = m.id AND r.user_id != m.sender_id AND p.joined_seq < m.seq
             AND r.delivered_at IS NOT NULL)
     FROM messages m JOIN users u ON u.id = m.sender_id";

/// A message row before its JSON columns are parsed.
struct RawMessage {
    id: String,
    conversation_id: String,
    seq: i64,
    body: String,
    metadata: String,
    origin_plugin: Option<String>,
    origin_depth: Option<u32>,
    created_at: Millis,
    edited_at: Option<Millis>,
    deleted: bool,
    client_id: Option<String>,
    sender: RawUser,
    mentions: String,
    counts: (i64, i64, i64),
}

impl RawMessage {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            conversation_id: r.get(1)?,
            seq: r.get(2)?,
            body: r.get(3)?,
            metadata: r.get(4)?,
            origin_plugin: r.get(5)?,
            origin_depth: r.get(6)?,
            created_at: r.get(7)?,
            edited_at: r.get(8)?,
            deleted: r.get(9)?,
            client_id: r.get(10)?,
            sender: RawUser::from_row(r, 11)?,
            mentions: r.get(14)?,
            counts: (r.get(15)?, r.get(16)?, r.get(17)?),
        })
    }

    fn into_message(self) -> Result<Message> {
        let origin = match self.origin_plugin {
            Some(name) => Origin::Plugin { name, depth: self.origin_depth.unwrap_or(1) },
            None => Origin::User,
        };
        let (others, readers, deliverers) = self.counts;
        Ok(Message {
            id: self.id,
            conversation_id: self.conversation_id,
            sender: self.sender.into_user()?,
            body: self.body,
            metadata: json_value(&self.metadata)?,
            seq: self.seq,
            created_at: self.created_at,
            edited_at: self.edited_at,
            deleted: self.deleted,
            origin,
            mentions: serde_json::from_str(&self.mentions)?,
            status: status_from_counts(others, readers, deliverers),
            client_id: self.client_id,
        })
    }
}
