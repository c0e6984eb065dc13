//! How a [`Message`] is read from SQL: the one SELECT every message query shares (sender, mentions and
//! receipt counts included) and the row type it fills.

use rusqlite::Row;

use super::receipts::status_from_counts;
use super::users::RawUser;
use crate::model::{Message, Millis, Origin};
use crate::store::error::Result;
use crate::store::ids::json_value;

/// Every column a [`Message`] needs, including mentions and the receipt counts behind its status
/// ([`status_from_counts`]): participants who were present when the message was sent (other than the
/// sender), how many of them have read it, and how many have it delivered. The arguments (a `WHERE`
/// clause and what follows) are appended at compile time, so every message query is a constant string
/// that `prepare_cached` parses once per connection.
macro_rules! message_select {
    ($($rest:literal),*) => {
        concat!(
            "SELECT m.id, m.conversation_id, m.seq, m.body, m.metadata, m.origin_plugin,
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
             AND r.delivered_at IS NOT NULL),
        m.parent_id, m.reply_count, m.last_reply_at
     FROM messages m JOIN users u ON u.id = m.sender_id",
            " ",
            $($rest),*
        )
    };
}
pub(crate) use message_select;

/// A message row before its JSON columns are parsed.
pub(crate) struct RawMessage {
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
    thread: (Option<String>, u32, Option<Millis>),
}

impl RawMessage {
    /// Reads the columns of [`message_select!`].
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
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
            thread: (r.get(18)?, r.get(19)?, r.get(20)?),
        })
    }

    /// Parses the JSON columns and derives origin and status.
    pub(crate) fn into_message(self) -> Result<Message> {
        let origin = match self.origin_plugin {
            Some(name) => Origin::Plugin {
                name,
                depth: self.origin_depth.unwrap_or(1),
            },
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
            parent_id: self.thread.0,
            reply_count: self.thread.1,
            last_reply_at: self.thread.2,
        })
    }
}
