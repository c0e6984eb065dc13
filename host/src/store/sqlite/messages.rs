//! Messages: gapless per-conversation `seq`, idempotent sends, paging, edits, soft deletes, mentions.
//!
//! `seq` comes from `conversations.last_seq`, bumped in the same transaction as the insert. Writes are
//! serialised (one writer, IMMEDIATE transactions) and a failed transaction rolls the bump back, so seqs
//! are 1, 2, 3, ... with no gaps and no duplicates. Deletes are soft for the same reason.

use rusqlite::{Connection, OptionalExtension, params};

use super::message_rows::{RawMessage, message_select};
use super::writer::Writing;
use super::{conversations, unread};
use crate::model::{Message, Millis, Origin};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{metadata_text, new_id};
use crate::store::limits::{DEFAULT_PAGE_LIMIT, MAX_CLIENT_ID_LEN, MAX_PAGE_LIMIT};
use crate::store::records::Outcome;
use crate::store::records::{MessagePage, NewMessage};

/// Stores a message with the next seq, or returns the sender's earlier message with the same `client_id`
/// (`changed == false`; the caller must then not append an event or fire hooks again).
///
/// [`StoreError::Conflict`] if that `client_id` was already used by the sender in another conversation.
pub fn send_message(tx: &Writing<'_>, new: &NewMessage, now: Millis) -> Result<Outcome<Message>> {
    if let Some(client_id) = &new.client_id {
        if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID_LEN {
            return Err(StoreError::Invalid(format!(
                "client_id must be 1-{MAX_CLIENT_ID_LEN} characters"
            )));
        }
        if let Some(existing) = find_by_client_id(tx, &new.sender_id, client_id)? {
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
    let metadata = metadata_text(&new.metadata)?;
    let id = match &new.id {
        Some(id) => id.clone(),
        None => new_id("m_")?,
    };
    let mut count = tx.prepare_cached(
        "UPDATE conversations SET last_seq = last_seq + 1, last_message_id = ?2,
                                  live_messages = live_messages + 1
         WHERE id = ?1 RETURNING last_seq",
    )?;
    let seq: i64 = tx
        .counters(|| {
            count
                .query_row([&new.conversation_id, &id], |r| r.get(0))
                .optional()
        })?
        .ok_or_else(|| StoreError::not_found("conversation", &new.conversation_id))?;
    tx.last_message(&new.conversation_id, &id);
    let (plugin, depth) = match &new.origin {
        Origin::User => (None, None),
        Origin::Plugin { name, depth } => (Some(name.as_str()), Some(*depth)),
    };
    tx.prepare_cached(
        "INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, metadata,
                               origin_plugin, origin_depth, created_at, parent_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id,
        new.conversation_id,
        seq,
        new.sender_id,
        new.client_id,
        new.body,
        metadata,
        plugin,
        depth,
        now,
        new.parent_id
    ])?;
    if let Some(parent) = &new.parent_id {
        tx.prepare_cached(
            "UPDATE messages SET reply_count = reply_count + 1,
                                 last_reply_at = max(coalesce(last_reply_at, 0), ?2)
             WHERE id = ?1",
        )?
        .execute(params![parent, now])?;
    }
    unread::message_sent(tx, &new.conversation_id, &new.sender_id)?;
    store_mentions(tx, &id, &new.mentions)?;
    Ok(Outcome {
        value: get_message(tx, &id)?,
        changed: true,
    })
}

/// The sender's message with this `client_id`, if any.
pub fn find_by_client_id(
    conn: &Connection,
    sender_id: &str,
    client_id: &str,
) -> Result<Option<Message>> {
    let raw = conn
        .prepare_cached(message_select!(
            "WHERE m.sender_id = ?1 AND m.client_id = ?2"
        ))?
        .query_row([sender_id, client_id], RawMessage::from_row)
        .optional()?;
    raw.map(RawMessage::into_message).transpose()
}

/// The message with `id`, or [`StoreError::NotFound`].
pub fn get_message(conn: &Connection, id: &str) -> Result<Message> {
    let raw = conn
        .prepare_cached(message_select!("WHERE m.id = ?1"))?
        .query_row([id], RawMessage::from_row)
        .optional()?;
    raw.ok_or_else(|| StoreError::not_found("message", id))?
        .into_message()
}

/// A page of `conversation_id`'s messages by seq.
///
/// With only `after`, the page is the `limit` messages right after it (for catching up without holes);
/// otherwise it is the `limit` newest messages in the range. Either way the result is ordered newest
/// first unless `oldest_first`.
pub fn list_messages(
    conn: &Connection,
    conversation_id: &str,
    page: &MessagePage,
) -> Result<Vec<Message>> {
    conversations::get_conversation(conn, conversation_id)?;
    let limit = page
        .limit
        .unwrap_or(DEFAULT_PAGE_LIMIT)
        .clamp(1, MAX_PAGE_LIMIT);
    let ascending = page.after.is_some() && page.before.is_none();
    let sql = match (&page.thread, ascending) {
        (None, true) => message_select!(
            "WHERE m.conversation_id = ?1 AND m.parent_id IS NULL AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq ASC LIMIT ?4"
        ),
        (None, false) => message_select!(
            "WHERE m.conversation_id = ?1 AND m.parent_id IS NULL AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq DESC LIMIT ?4"
        ),
        (Some(_), true) => message_select!(
            "WHERE m.parent_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq ASC LIMIT ?4"
        ),
        (Some(_), false) => message_select!(
            "WHERE m.parent_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq DESC LIMIT ?4"
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let scope = page.thread.as_deref().unwrap_or(conversation_id);
    let rows = stmt
        .query_map(
            params![
                scope,
                page.after.unwrap_or(0),
                page.before.unwrap_or(i64::MAX),
                limit
            ],
            RawMessage::from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut messages = rows
        .into_iter()
        .map(RawMessage::into_message)
        .collect::<Result<Vec<_>>>()?;
    if ascending != page.oldest_first {
        messages.reverse();
    }
    Ok(messages)
}

/// The messages of `conversation_id` that have replies, the most recently replied to first, at most
/// `limit` (capped at [`MAX_PAGE_LIMIT`]).
pub fn threads(conn: &Connection, conversation_id: &str, limit: u32) -> Result<Vec<Message>> {
    conversations::get_conversation(conn, conversation_id)?;
    let rows = conn
        .prepare_cached(message_select!(
            "WHERE m.conversation_id = ?1 AND m.reply_count > 0
             ORDER BY m.last_reply_at DESC, m.seq DESC LIMIT ?2"
        ))?
        .query_map(
            params![conversation_id, limit.clamp(1, MAX_PAGE_LIMIT)],
            RawMessage::from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(RawMessage::into_message).collect()
}

/// Replaces a message's body (and metadata, if given) and mentions, and sets `edited_at`.
/// [`StoreError::Conflict`] for a deleted message. Who may edit is the caller's decision.
pub fn edit_message(
    tx: &Writing<'_>,
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
    tx.prepare_cached(
        "UPDATE messages SET body = ?2, metadata = ?3, edited_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, body, metadata, now])?;
    tx.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?
        .execute([id])?;
    store_mentions(tx, id, mentions)?;
    get_message(tx, id)
}

/// Soft-deletes a message: empties its body, metadata (which may hold attachments) and mentions and sets
/// `deleted`, keeping the row so seqs stay gapless; it no longer counts as unread. Deleting twice returns
/// `changed == false`.
pub fn delete_message(tx: &Writing<'_>, id: &str, now: Millis) -> Result<Outcome<Message>> {
    let before = get_message(tx, id)?;
    if before.deleted {
        return Ok(Outcome {
            value: before,
            changed: false,
        });
    }
    tx.prepare_cached(
        "UPDATE messages SET body = '', metadata = '{}', deleted = 1, edited_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    tx.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?
        .execute([id])?;
    unread::message_deleted(tx, &before.conversation_id, &before.sender.id, before.seq)?;
    Ok(Outcome {
        value: get_message(tx, id)?,
        changed: true,
    })
}

fn store_mentions(tx: &Writing<'_>, message_id: &str, mentions: &[String]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO mentions (message_id, user_id) SELECT ?1, id FROM users WHERE id = ?2",
    )?;
    for user in mentions {
        stmt.execute([message_id, user])?;
    }
    Ok(())
}
