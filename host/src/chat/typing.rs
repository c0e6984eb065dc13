//! Typing: live-only events (`typing.start` / `typing.stop`, id 0, never replayed), plus the
//! `typing-started` after-hook.
//!
//! Typing changes are frequent and worthless minutes later, so nothing is stored for WebSocket clients.
//! The hook goes through the outbox like every after-hook (ordered, retried), but only when a running
//! plugin exports `typing-started`: then the change is stored with an empty audience (see
//! [`crate::events`]). With no such plugin a typing change touches no table.

use crate::events::{self, ChatEvent};
use crate::model::{TypingEvent, TypingState, User};
use crate::plugins::Hook;

use super::{Chat, ChatError, member_conversation};

impl Chat {
    /// Publishes `actor`'s typing state in a conversation (participants only).
    pub async fn typing(
        &self,
        actor: &User,
        conversation_id: &str,
        state: TypingState,
    ) -> Result<(), ChatError> {
        let (actor, id) = (actor.clone(), conversation_id.to_owned());
        self.blocking(move |chat| {
            let conversation = chat.read(|c| member_conversation(c, &id, &actor.id))?;
            let now = chat.now_ms();
            let event = ChatEvent::typing(
                TypingEvent {
                    conversation_id: id.clone(),
                    user: actor.clone(),
                    state,
                    at: now,
                },
                conversation,
            );
            if chat.registry.any_implements(Hook::TypingStarted) {
                chat.commit(|tx, rec| {
                    member_conversation(tx, &id, &actor.id)?;
                    Ok(rec.record(tx, &event)?)
                })
            } else {
                chat.hub.publish(events::live_only(&event, now));
                Ok(())
            }
        })
        .await
    }
}
