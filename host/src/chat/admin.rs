//! Admin operations on deliveries: the dead-letter list with replay. (Users and tokens: [`super::users`].)

use serde::Serialize;

use crate::model::Millis;

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

impl From<crate::store::DeadLetter> for DeadLetterInfo {
    fn from(d: crate::store::DeadLetter) -> Self {
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
    /// Dead letters with an id greater than `after`, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeadLetterInfo>, ChatError> {
        self.blocking(move |chat| {
            let letters = chat.db.read(|c| c.dead_letters(after, limit))?;
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
                .write(|tx| tx.replay_dead_letter(id, chat.now_ms()))?;
            chat.dispatch.wake();
            Ok(letter.into())
        })
        .await
    }
}
