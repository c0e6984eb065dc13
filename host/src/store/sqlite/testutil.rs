//! Helpers for the SQLite backend's own unit tests and for tests elsewhere that need a SQLite database
//! handle (`events/tests.rs`): a fresh database file in a temp dir, users, conversations, sends. The
//! store's behaviour on every backend is tested in `store/tests/`, with a fixture of its own.

use tempfile::TempDir;

use super::Db;
use super::conversations::create_conversation;
use super::messages::send_message;
use super::users::create_user;
use crate::model::{Conversation, Message};
use crate::store::Result;
use crate::store::records::{NewConversation, NewMessage, NewUser};

/// A database in its own temp dir (deleted on drop).
pub(crate) struct TestDb {
    /// The database.
    pub db: Db,
    /// Kept so the directory lives as long as the test.
    _dir: TempDir,
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
        Ok(Self { db, _dir: dir })
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
}
