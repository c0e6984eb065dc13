//! Receipts: delivered (per message) and read (a high-water mark per conversation).
//!
//! Reading fires one `message.read` event, and so one `after-message-read` call, per message newly
//! read, so each hook call carries that message's receipt (the WIT hook takes one message). Reading up
//! to where one already read fires nothing.

use crate::events::ChatEvent;
use crate::model::{Receipt, User};

use super::inputs::ReadState;
use super::{Chat, ChatError, member_conversation, member_message};

impl Chat {
    /// Records that a message reached one of `actor`'s devices (participants only); the first time,
    /// with `message.delivered`. Returns the receipt.
    pub async fn mark_delivered(
        &self,
        actor: &User,
        message_id: &str,
    ) -> Result<Receipt, ChatError> {
        let (actor, id) = (actor.id.clone(), message_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let (_, conversation) = member_message(tx, &id, &actor)?;
                let outcome = tx.mark_delivered(&id, &actor, rec.now)?;
                if outcome.changed {
                    rec.record(
                        tx,
                        &ChatEvent::MessageDelivered {
                            message: tx.get_message(&id)?,
                            conversation,
                            receipt: outcome.value.clone(),
                        },
                    )?;
                }
                Ok(outcome.value)
            })
        })
        .await
    }

    /// Marks a conversation read by `actor` up to `message_id` (absent: everything), with one
    /// `message.read` per message newly read. Returns the read state.
    pub async fn mark_read(
        &self,
        actor: &User,
        conversation_id: &str,
        message_id: Option<String>,
    ) -> Result<ReadState, ChatError> {
        let (actor, id) = (actor.id.clone(), conversation_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = member_conversation(tx, &id, &actor)?;
                let outcome = tx.mark_read(&id, &actor, message_id.as_deref(), rec.now)?;
                for read in &outcome.newly_read {
                    let receipt = tx
                        .receipt(read, &actor)?
                        .ok_or_else(|| ChatError::not_found("receipt", read.as_str()))?;
                    rec.record(
                        tx,
                        &ChatEvent::MessageRead {
                            message: tx.get_message(read)?,
                            conversation: conversation.clone(),
                            receipt,
                        },
                    )?;
                }
                Ok(ReadState {
                    conversation_id: id.clone(),
                    last_read_message_id: outcome.last_read_message_id,
                    unread_count: outcome.unread_count,
                })
            })
        })
        .await
    }
}
