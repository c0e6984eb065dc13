//! Receipts: delivered (per message) and read (a high-water mark per conversation).
//!
//! Reading fires one `message.read` event, and so one `after-message-read` call, per message newly
//! read, so each hook call carries that message's receipt (the WIT hook takes one message). Reading up
//! to where one already read fires nothing.
//!
//! ## All delivered, all read
//! The receipt that completes a message (every participant present when it was sent, other than its
//! sender, has it delivered, or has read it) also appends `message.delivered_to_all` or
//! `message.read_by_all`, in the same transaction. Receipts only ever move forward and writes to one
//! message are serialized, so exactly one receipt completes each: the event fires once per message. Reading
//! counts as delivering (a read receipt sets `delivered_at` if it was not set). A member who leaves stops
//! counting; if that alone completes a message, no event fires (nobody received or read anything).

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
                    let message = tx.get_message(&id)?;
                    rec.record(
                        tx,
                        &ChatEvent::MessageDelivered {
                            message: message.clone(),
                            conversation: conversation.clone(),
                            receipt: outcome.value.clone(),
                        },
                    )?;
                    if tx.receipt_counts(&id)?.delivered_to_all() {
                        rec.record(
                            tx,
                            &ChatEvent::MessageDeliveredToAll {
                                message,
                                conversation,
                            },
                        )?;
                    }
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
                    // This read set `delivered_at` too when the message had not been delivered.
                    let newly_delivered = outcome.newly_delivered.contains(read);
                    let message = tx.get_message(read)?;
                    rec.record(
                        tx,
                        &ChatEvent::MessageRead {
                            message: message.clone(),
                            conversation: conversation.clone(),
                            receipt,
                        },
                    )?;
                    let counts = tx.receipt_counts(read)?;
                    if newly_delivered && counts.delivered_to_all() {
                        rec.record(
                            tx,
                            &ChatEvent::MessageDeliveredToAll {
                                message: message.clone(),
                                conversation: conversation.clone(),
                            },
                        )?;
                    }
                    if counts.read_by_all() {
                        rec.record(
                            tx,
                            &ChatEvent::MessageReadByAll {
                                message,
                                conversation: conversation.clone(),
                            },
                        )?;
                    }
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
