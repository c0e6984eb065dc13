//! Admin operations: users and their tokens, and the dead-letter list with replay.

use serde::Serialize;

use crate::model::{Millis, User};
use crate::store::{dead_letters, ids::now_ms, users as user_store};

use super::inputs::{CreatedUser, NewUser};
use super::{Chat, ChatError};

/// A delivery that used up its attempts, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadLetterInfo {
    /// The dead letter's id: what `replay` takes.
    pub id: i64,
    /// The event that was not delivered.
    pub event_id: i64,
    /// Its kind, e.g. `message.new`.
    pub kind: String,
    /// Its conversation, if any.
    pub conversation_id: Option<String>,
    /// The plugin it was not delivered to.
    pub plugin: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last one failed.
    pub last_error: String,
    /// When it was dead-lettered.
    pub created_at: Millis,
}

impl From<dead_letters::DeadLetter> for DeadLetterInfo {
    fn from(d: dead_letters::DeadLetter) -> Self {
        DeadLetterInfo {
            id: d.id,
            event_id: d.event.id,
            kind: d.event.kind,
            conversation_id: d.event.conversation_id,
            plugin: d.plugin,
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at,
        }
    }
}

impl Chat {
    /// Creates a user and their first token.
    pub async fn create_user(&self, input: NewUser) -> Result<CreatedUser, ChatError> {
        self.blocking(move |chat| {
            if !user_store::valid_user_id(&input.id) {
                return Err(ChatError::invalid(
                    "id",
                    format!(
                        "must be 1-{} ASCII letters, digits, '_', '-' or '.'",
                        user_store::MAX_USER_ID_LEN
                    ),
                ));
            }
            if input.name.trim().is_empty() {
                return Err(ChatError::invalid("name", "name must not be empty"));
            }
            let new = user_store::NewUser {
                id: input.id,
                name: input.name,
                metadata: input.metadata,
            };
            chat.commit(|tx, rec| {
                let user = user_store::create_user(tx, &new, rec.now)?;
                let token = user_store::issue_token(tx, &user.id, rec.now)?;
                Ok(CreatedUser { user, token })
            })
        })
        .await
    }

    /// Issues another token for `user_id` (earlier ones stay valid).
    pub async fn issue_token(&self, user_id: &str) -> Result<String, ChatError> {
        let id = user_id.to_owned();
        self.blocking(move |chat| {
            chat.commit(|tx, rec| Ok(user_store::issue_token(tx, &id, rec.now)?))
        })
        .await
    }

    /// The user a bearer token belongs to, if any.
    pub async fn user_for_token(&self, token: &str) -> Result<Option<User>, ChatError> {
        let token = token.to_owned();
        self.blocking(move |chat| Ok(chat.db.read(|c| user_store::user_for_token(c, &token))?))
            .await
    }

    /// The user `id`.
    pub async fn get_user(&self, id: &str) -> Result<User, ChatError> {
        let id = id.to_owned();
        self.blocking(move |chat| Ok(chat.db.read(|c| user_store::get_user(c, &id))?))
            .await
    }

    /// Dead letters with an id greater than `after`, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeadLetterInfo>, ChatError> {
        self.blocking(move |chat| {
            let letters = chat
                .db
                .read(|c| dead_letters::dead_letters(c, after, limit))?;
            Ok(letters.into_iter().map(DeadLetterInfo::from).collect())
        })
        .await
    }

    /// Queues dead letter `id` for delivery again (attempt numbers continue) and wakes the dispatcher.
    /// Returns the dead letter as it was.
    pub async fn replay_dead_letter(&self, id: i64) -> Result<DeadLetterInfo, ChatError> {
        self.blocking(move |chat| {
            let letter = chat
                .db
                .write(|tx| dead_letters::replay_dead_letter(tx, id, now_ms()))?;
            chat.dispatch.wake();
            Ok(letter.into())
        })
        .await
    }
}
