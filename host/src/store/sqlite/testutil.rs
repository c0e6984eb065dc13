//! Helpers for the store's unit tests: a fresh database file in a temp dir, users, conversations, sends.

use tempfile::TempDir;

use super::Db;
use super::conversations::create_conversation;
use super::events::append_event;
use super::messages::send_message;
use super::outbox::{fan_out, next_deliveries, pending_events};
use super::users::create_user;
use crate::model::{Conversation, Message, Millis};
use crate::store::Result;
use crate::store::records::{NewConversation, NewMessage, NewUser};

/// A database in its own temp dir (deleted on drop).
pub(crate) struct TestDb {
    /// The database.
    pub db: Db,
    /// Kept so the directory lives as long as the test; also lets tests reopen the file.
    pub dir: TempDir,
}

/// `&["a", "b"]` as owned ids.
pub(crate) fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl TestDb {
    /// A fresh database with users named by `users`.
    pub(crate) fn with_users(users: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path().join("chat.db"))?;
        db.write(|tx| {
            for id in users {
                let user = NewUser {
                    id: (*id).to_owned(),
                    name: id.to_uppercase(),
                    metadata: serde_json::json!({}),
                };
                create_user(tx, &user, 0)?;
            }
            Ok(())
        })?;
        Ok(Self { db, dir })
    }

    /// Reopens the same file (the old handle is dropped first), as a restarted server would.
    pub(crate) fn reopen(self) -> Result<Self> {
        let Self { db, dir } = self;
        drop(db);
        let db = Db::open(dir.path().join("chat.db"))?;
        Ok(Self { db, dir })
    }

    /// A non-distinct conversation of `members`, the first one admin.
    pub(crate) fn conversation(&self, members: &[&str]) -> Result<Conversation> {
        let new = NewConversation {
            participant_ids: ids(members),
            admin_ids: ids(&members[..1.min(members.len())]),
            ..Default::default()
        };
        Ok(self.db.write(|tx| create_conversation(tx, &new, 1))?.value)
    }

    /// Sends `body` from `sender` to `conversation_id`.
    pub(crate) fn send(&self, conversation_id: &str, sender: &str, body: &str) -> Result<Message> {
        let new = NewMessage {
            conversation_id: conversation_id.to_owned(),
            sender_id: sender.to_owned(),
            body: body.to_owned(),
            ..Default::default()
        };
        Ok(self.db.write(|tx| send_message(tx, &new, 2))?.value)
    }

    /// Appends a `message.new` event for user `a` in `conversation`.
    pub(crate) fn event(&self, conversation: Option<&str>) -> Result<i64> {
        let payload = serde_json::json!({});
        self.db
            .write(|tx| append_event(tx, "message.new", conversation, &ids(&["a"]), &payload, 1))
    }

    /// Fans every outbox event out to `plugins`, as the dispatcher would.
    pub(crate) fn fan_out_all(&self, plugins: &[String]) -> Result<()> {
        for e in self.db.read(|c| pending_events(c, 100))? {
            self.db.write(|tx| fan_out(tx, e.id, plugins, 0))?;
        }
        Ok(())
    }

    /// The (event, plugin) pairs [`next_deliveries`] offers at `now`.
    pub(crate) fn due(&self, now: Millis, plugins: &[String]) -> Result<Vec<(i64, String)>> {
        let due = self.db.read(|c| next_deliveries(c, now, plugins, 100))?;
        Ok(due.into_iter().map(|d| (d.event.id, d.plugin)).collect())
    }
}
