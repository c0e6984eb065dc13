//! Messages: gapless per-conversation `seq`, idempotent sends, paging, edits, soft deletes, mentions.
//!
//! `seq` comes from `conversations.last_seq`, bumped in the same transaction as the insert. Writes are
//! serialised (one writer, IMMEDIATE transactions) and a failed transaction rolls the bump back, so seqs
//! are 1, 2, 3, ... with no gaps and no duplicates. Deletes are soft for the same reason.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::message_rows::{RawMessage, message_select};
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
pub fn send_message(
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
    let seq: i64 = tx
        .prepare_cached(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?
        .query_row([&new.conversation_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::not_found("conversation", &new.conversation_id))?;
    let id = new_id("m_")?;
    let (plugin, depth) = match &new.origin {
        Origin::User => (None, None),
        Origin::Plugin { name, depth } => (Some(name.as_str()), Some(*depth)),
    };
    tx.prepare_cached(
        "INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, metadata,
                               origin_plugin, origin_depth, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
        now
    ])?;
    tx.prepare_cached("UPDATE conversations SET last_message_id = ?2 WHERE id = ?1")?
        .execute([&new.conversation_id, &id])?;
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
    let mut stmt = conn.prepare_cached(if ascending {
        message_select!("WHERE m.conversation_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq ASC LIMIT ?4")
    } else {
        message_select!("WHERE m.conversation_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq DESC LIMIT ?4")
    })?;
    let rows = stmt
        .query_map(
            params![
                conversation_id,
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
pub fn delete_message(tx: &Transaction<'_>, id: &str, now: Millis) -> Result<Outcome<Message>> {
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

fn store_mentions(tx: &Transaction<'_>, message_id: &str, mentions: &[String]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO mentions (message_id, user_id) SELECT ?1, id FROM users WHERE id = ?2",
    )?;
    for user in mentions {
        stmt.execute([message_id, user])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::testutil::{TestDb, ids};

    fn new(conversation_id: &str, sender: &str, body: &str, client_id: Option<&str>) -> NewMessage {
        NewMessage {
            conversation_id: conversation_id.to_owned(),
            sender_id: sender.to_owned(),
            body: body.to_owned(),
            client_id: client_id.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn seq_has_no_gaps_across_rollbacks_and_threads() -> Result<()> {
        let t = TestDb::with_users(&["a", "b"])?;
        let conv = t.conversation(&["a", "b"])?;
        t.send(&conv.id, "a", "one")?;
        let rolled_back: Result<()> = t.db.write(|tx| {
            send_message(tx, &new(&conv.id, "a", "lost", None), 1)?;
            Err(StoreError::Conflict("abort".into()))
        });
        assert!(rolled_back.is_err());
        std::thread::scope(|s| {
            for sender in ["a", "b"] {
                let (db, conv) = (&t.db, &conv.id);
                s.spawn(move || {
                    for i in 0..25 {
                        let sent = db.write(|tx| {
                            send_message(tx, &new(conv, sender, &format!("{i}"), None), 3)
                        });
                        assert!(sent.is_ok());
                    }
                });
            }
        });
        let all = t.db.read(|c| {
            list_messages(
                c,
                &conv.id,
                &MessagePage {
                    limit: Some(200),
                    ..Default::default()
                },
            )
        })?;
        let seqs: Vec<i64> = all.iter().rev().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=51).collect::<Vec<_>>());
        assert!(all.iter().all(|m| m.body != "lost"));
        let conversation =
            t.db.read(|c| conversations::get_conversation(c, &conv.id))?;
        assert_eq!(
            conversation.last_message_id.as_deref(),
            Some(all[0].id.as_str())
        );
        Ok(())
    }

    #[test]
    fn send_is_idempotent_by_sender_and_client_id() -> Result<()> {
        let t = TestDb::with_users(&["a", "b"])?;
        let conv = t.conversation(&["a", "b"])?;
        let other = t.conversation(&["a", "b"])?;
        let first =
            t.db.write(|tx| send_message(tx, &new(&conv.id, "a", "hi", Some("k1")), 1))?;
        assert!(first.changed);
        let again =
            t.db.write(|tx| send_message(tx, &new(&conv.id, "a", "hi again", Some("k1")), 2))?;
        assert!(!again.changed);
        assert_eq!(
            (again.value.id.as_str(), again.value.body.as_str()),
            (first.value.id.as_str(), "hi")
        );
        assert_eq!(again.value.client_id.as_deref(), Some("k1"));
        // Another sender may use the same key; the same sender may not reuse it elsewhere.
        assert!(
            t.db.write(|tx| send_message(tx, &new(&conv.id, "b", "yo", Some("k1")), 3))?
                .changed
        );
        let elsewhere =
            t.db.write(|tx| send_message(tx, &new(&other.id, "a", "x", Some("k1")), 4));
        assert!(matches!(elsewhere, Err(StoreError::Conflict(_))));
        assert_eq!(
            t.db.read(|c| conversations::get_conversation(c, &conv.id))?
                .last_message_id,
            Some(
                t.db.read(|c| find_by_client_id(c, "b", "k1"))?
                    .map(|m| m.id)
                    .unwrap_or_default()
            )
        );
        let missing =
            t.db.write(|tx| send_message(tx, &new("c_nope", "a", "x", None), 5));
        assert!(matches!(
            missing,
            Err(StoreError::NotFound {
                what: "conversation",
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn pages_by_seq_newest_first_by_default() -> Result<()> {
        let t = TestDb::with_users(&["a"])?;
        let conv = t.conversation(&["a"])?;
        for i in 1..=10 {
            t.send(&conv.id, "a", &i.to_string())?;
        }
        let seqs = |page: MessagePage| -> Result<Vec<i64>> {
            Ok(t.db
                .read(|c| list_messages(c, &conv.id, &page))?
                .iter()
                .map(|m| m.seq)
                .collect())
        };
        assert_eq!(
            seqs(MessagePage {
                limit: Some(3),
                ..Default::default()
            })?,
            vec![10, 9, 8]
        );
        assert_eq!(
            seqs(MessagePage {
                before: Some(8),
                limit: Some(3),
                ..Default::default()
            })?,
            vec![7, 6, 5]
        );
        assert_eq!(
            seqs(MessagePage {
                after: Some(2),
                limit: Some(3),
                ..Default::default()
            })?,
            vec![5, 4, 3]
        );
        let oldest_first = MessagePage {
            after: Some(2),
            limit: Some(3),
            oldest_first: true,
            ..Default::default()
        };
        assert_eq!(seqs(oldest_first)?, vec![3, 4, 5]);
        assert_eq!(
            seqs(MessagePage {
                after: Some(3),
                before: Some(6),
                ..Default::default()
            })?,
            vec![5, 4]
        );
        Ok(())
    }

    #[test]
    fn edit_soft_delete_and_mentions() -> Result<()> {
        let t = TestDb::with_users(&["a", "b", "c"])?;
        let conv = t.conversation(&["a", "b", "c"])?;
        let mut msg = new(&conv.id, "a", "hey @b and @ghost", None);
        msg.mentions = ids(&["b", "ghost"]);
        msg.metadata = serde_json::json!({"attachment": "x"});
        msg.origin = Origin::Plugin {
            name: "bot".into(),
            depth: 2,
        };
        let sent = t.db.write(|tx| send_message(tx, &msg, 1))?.value;
        assert_eq!(sent.mentions, ids(&["b"]));
        assert_eq!(
            sent.origin,
            Origin::Plugin {
                name: "bot".into(),
                depth: 2
            }
        );

        let edited =
            t.db.write(|tx| edit_message(tx, &sent.id, "now @c", None, &ids(&["c"]), 5))?;
        assert_eq!(
            (edited.body.as_str(), edited.edited_at),
            ("now @c", Some(5))
        );
        assert_eq!(edited.mentions, ids(&["c"]));
        assert_eq!(edited.metadata, serde_json::json!({"attachment": "x"}));

        let deleted = t.db.write(|tx| delete_message(tx, &sent.id, 6))?;
        assert!(deleted.changed && deleted.value.deleted);
        assert_eq!(
            (deleted.value.body.as_str(), &deleted.value.metadata),
            ("", &serde_json::json!({}))
        );
        assert!(deleted.value.mentions.is_empty());
        assert!(!t.db.write(|tx| delete_message(tx, &sent.id, 7))?.changed);
        let edit_deleted =
            t.db.write(|tx| edit_message(tx, &sent.id, "x", None, &[], 8));
        assert!(matches!(edit_deleted, Err(StoreError::Conflict(_))));
        assert_eq!(t.db.read(|c| get_message(c, &sent.id))?.seq, 1);
        Ok(())
    }
}
