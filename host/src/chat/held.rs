//! The moderation queue: messages a before-hook held for review (`decision.hold`).
//!
//! A held message is stored apart from the conversation ([`crate::store::Tx::hold_message`]): its sender
//! gets it back (HTTP 202), the sender and the conversation's moderators and admins get `message.held`,
//! nobody else sees anything, and `after-message-sent` does not run. A moderator (or admin) then
//! - approves it: it is sent as its sender sent it, keeping its id (`message.new`, mentions, every
//!   after-hook, as for any message; the before-hooks do not run again, the moderator's word is final),
//!   followed by `message.approved`; or
//! - rejects it, with an optional reason: `message.rejected` tells the sender why; nothing is published.
//!
//! A decision is final: deciding again is a conflict (409). The queue is listed per conversation:
//! moderators see every sender's held messages, anyone else only their own.

use serde::{Deserialize, Serialize};

use crate::events::ChatEvent;
use crate::model::{HeldMessage, HoldState, Message, User};
use crate::store::{NewHeld, NewMessage};

use super::blocks::refuse_blocked;
use super::messages::publish_message;
use super::{Chat, ChatError, member_conversation};

/// Most held messages one listing returns.
pub const MAX_HELD_PAGE: u32 = 200;

/// `POST /v1/held/{id}/reject`: why, if the moderator wants the sender to know.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectHeld {
    /// Shown to the sender with `message.rejected`.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Chat {
    /// Holds a message a before-hook held, with `message.held`. Blocking.
    pub(super) fn hold_blocking(&self, new: &NewHeld) -> Result<HeldMessage, ChatError> {
        self.commit(|tx, rec| {
            let conversation = member_conversation(tx, &new.conversation_id, &new.sender_id)?;
            let held = tx.hold_message(new, rec.now)?;
            if held.changed {
                rec.record(
                    tx,
                    &ChatEvent::MessageHeld {
                        held: held.value.clone(),
                        conversation,
                    },
                )?;
            }
            Ok(held.value)
        })
    }

    /// The held messages of a conversation in `state` (all states if `None`), oldest first: every
    /// sender's for its moderators and admins, the caller's own for anyone else in it.
    pub async fn held_messages(
        &self,
        actor: &User,
        conversation_id: &str,
        state: Option<HoldState>,
    ) -> Result<Vec<HeldMessage>, ChatError> {
        let (user, id) = (actor.id.clone(), conversation_id.to_owned());
        self.blocking(move |chat| {
            chat.read(|c| {
                let conversation = member_conversation(c, &id, &user)?;
                let only = (!conversation.may_moderate(&user)).then_some(user.as_str());
                Ok(c.held_messages(&id, only, state, MAX_HELD_PAGE)?)
            })
        })
        .await
    }

    /// Approves a pending held message (moderators and admins): it is sent, keeping its id, with its
    /// events and hooks, then `message.approved`. Returns the message.
    pub async fn approve_held(&self, actor: &User, held_id: &str) -> Result<Message, ChatError> {
        let (actor, id) = (actor.clone(), held_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let held = moderated(tx, &id, &actor.id)?;
                still_may_send(tx, &held)?;
                let held =
                    tx.decide_held(&held.id, HoldState::Approved, &actor.id, None, rec.now)?;
                let new = NewMessage {
                    id: Some(held.id.clone()),
                    conversation_id: held.conversation_id.clone(),
                    sender_id: held.sender.id.clone(),
                    body: held.body.clone(),
                    metadata: held.metadata.clone(),
                    origin: held.origin.clone(),
                    mentions: held.mentions.clone(),
                    client_id: held.client_id.clone(),
                    parent_id: held.parent_id.clone(),
                };
                let message = tx.send_message(&new, rec.now)?.value;
                publish_message(tx, rec, &message)?;
                let conversation = tx.get_conversation(&held.conversation_id)?;
                rec.record(
                    tx,
                    &ChatEvent::MessageApproved {
                        message: message.clone(),
                        conversation,
                        moderator: actor.clone(),
                    },
                )?;
                Ok(message)
            })
        })
        .await
    }

    /// Rejects a pending held message (moderators and admins), with `message.rejected` telling its
    /// sender why. Returns the held message, now rejected.
    pub async fn reject_held(
        &self,
        actor: &User,
        held_id: &str,
        input: RejectHeld,
    ) -> Result<HeldMessage, ChatError> {
        if let Some(reason) = &input.reason {
            super::fields::REASON.check(reason)?;
        }
        let (actor, id) = (actor.clone(), held_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let held = moderated(tx, &id, &actor.id)?;
                let held = tx.decide_held(
                    &held.id,
                    HoldState::Rejected,
                    &actor.id,
                    input.reason.as_deref(),
                    rec.now,
                )?;
                let conversation = tx.get_conversation(&held.conversation_id)?;
                rec.record(
                    tx,
                    &ChatEvent::MessageRejected {
                        held: held.clone(),
                        conversation,
                        moderator: actor.clone(),
                    },
                )?;
                Ok(held)
            })
        })
        .await
    }
}

/// [`ChatError::Conflict`] unless the sender of `held` may still send it: still in the conversation (not
/// gone or banned since) and not blocked by the other member of a one-to-one conversation since. The
/// moderator then rejects it instead.
fn still_may_send(tx: &dyn crate::store::Tx, held: &HeldMessage) -> Result<(), ChatError> {
    let sender = held.sender.id.as_str();
    let conversation = member_conversation(tx, &held.conversation_id, sender).map_err(|_| {
        ChatError::Conflict(format!(
            "the sender {sender:?} is no longer in the conversation; reject the held message instead"
        ))
    })?;
    refuse_blocked(tx, &conversation, sender).map_err(|_| {
        ChatError::Conflict(format!(
            "the other member blocked {sender:?} since the message was held; reject it instead"
        ))
    })
}

/// The pending held message `id`, if `user` may decide on it: 404 unless they are in its conversation,
/// 403 unless they moderate it, 409 once it is decided.
fn moderated(tx: &dyn crate::store::Tx, id: &str, user: &str) -> Result<HeldMessage, ChatError> {
    let held = tx.get_held(id)?;
    let conversation = member_conversation(tx, &held.conversation_id, user)
        .map_err(|_| ChatError::not_found("held message", id))?;
    if !conversation.may_moderate(user) {
        return Err(ChatError::Forbidden(
            "only the conversation's moderators and admins review held messages".into(),
        ));
    }
    if held.state != HoldState::Pending {
        return Err(ChatError::Conflict(format!(
            "held message {id:?} was already {}",
            held.state.as_str()
        )));
    }
    Ok(held)
}
