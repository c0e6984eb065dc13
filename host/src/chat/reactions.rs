//! Emoji reactions: add and remove, participants only.

use crate::events::ChatEvent;
use crate::model::{Reaction, User};

use super::{Chat, ChatError, fields, member_message};

impl Chat {
    /// Adds `actor`'s `emoji` reaction to a message; the first time, with `reaction.new`. Returns the
    /// reaction.
    pub async fn add_reaction(
        &self,
        actor: &User,
        message_id: &str,
        emoji: &str,
    ) -> Result<Reaction, ChatError> {
        fields::EMOJI.check(emoji)?;
        let (actor, id, emoji) = (actor.id.clone(), message_id.to_owned(), emoji.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let (message, conversation) = member_message(tx, &id, &actor)?;
                let added = tx.add_reaction(&id, &actor, &emoji, rec.now)?;
                if added.changed {
                    rec.record(
                        tx,
                        &ChatEvent::ReactionAdded {
                            message,
                            conversation,
                            reaction: added.value.clone(),
                        },
                    )?;
                }
                Ok(added.value)
            })
        })
        .await
    }

    /// Removes `actor`'s `emoji` reaction with `reaction.deleted`; [`ChatError::NotFound`] if there was
    /// none.
    pub async fn remove_reaction(
        &self,
        actor: &User,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), ChatError> {
        let (actor, id, emoji) = (actor.id.clone(), message_id.to_owned(), emoji.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let (message, conversation) = member_message(tx, &id, &actor)?;
                let removed = tx
                    .remove_reaction(&id, &actor, &emoji)?
                    .ok_or_else(|| ChatError::not_found("reaction", emoji.as_str()))?;
                rec.record(
                    tx,
                    &ChatEvent::ReactionRemoved {
                        message,
                        conversation,
                        reaction: removed,
                    },
                )?;
                Ok(())
            })
        })
        .await
    }
}
