//! Messages: send (with before-hooks, mentions and idempotency), list, edit (with before-hooks), delete.

use crate::events::{ChatEvent, to_wit};
use crate::model::{Message, Origin, User, mentions_in};
use crate::plugins::{Hook, HookCall};

use super::before::{Chained, DraftContent, run_chain};
use super::fields;
use super::inputs::{EditMessage, MessagePage, SendMessage};
use super::{Chat, ChatError, member_conversation, member_message};

/// Longest message body, in characters (what JSON Schema's `maxLength` counts, so the OpenAPI document can
/// say it). Chat messages are short; 32 Ki characters hold a long pasted log excerpt, and every character
/// is stored, sent to every participant and handed to every plugin. A request's size is bounded further by
/// the server's body limit (64 KiB by default).
pub const MAX_BODY_CHARS: usize = 32 * 1024;

/// Largest message metadata, as JSON text. Metadata carries references (attachment URLs, ids), not
/// files; 16 KiB is plenty for that and keeps events small.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// [`ChatError::Invalid`] unless `body` and `metadata` are acceptable message content: a body within
/// [`MAX_BODY_CHARS`], metadata a JSON object (or null) within [`MAX_METADATA_BYTES`], and not both empty
/// ([`has_content`]).
pub fn check_content(body: &str, metadata: &serde_json::Value) -> Result<(), ChatError> {
    fields::BODY.check(body)?;
    fields::METADATA.check(metadata)?;
    if !has_content(body, metadata) {
        return Err(ChatError::invalid(
            "body",
            "a message needs a body that is not blank, or metadata that is not empty",
        ));
    }
    Ok(())
}

/// Whether a message has something to show: a body that is not blank, or metadata with a key.
pub fn has_content(body: &str, metadata: &serde_json::Value) -> bool {
    !fields::is_blank(body) || metadata.as_object().is_some_and(|m| !m.is_empty())
}

/// Metadata a plugin returned as JSON text, if it is a JSON object.
pub fn metadata_from_text(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .filter(serde_json::Value::is_object)
}

impl Chat {
    /// Sends a message as `actor` (a user, origin [`Origin::User`]).
    pub async fn send_message(
        &self,
        actor: &User,
        conversation_id: &str,
        input: SendMessage,
    ) -> Result<Message, ChatError> {
        self.send_message_as(actor, conversation_id, input, Origin::User)
            .await
    }

    /// Sends a message with an explicit origin: plugins post through this with
    /// [`Origin::Plugin`] so the loop guard sees their depth.
    ///
    /// Authorize (participant) → validate → idempotency (`client_id` already used: the stored message is
    /// returned, no hooks run) → `before-message-sent` chain → one transaction storing the message with
    /// `message.new` and, when it mentions participants, `message.mentioned`.
    pub async fn send_message_as(
        &self,
        actor: &User,
        conversation_id: &str,
        input: SendMessage,
        origin: Origin,
    ) -> Result<Message, ChatError> {
        let (actor, conversation_id) = (actor.clone(), conversation_id.to_owned());
        self.blocking(move |chat| chat.send_blocking(&actor, &conversation_id, input, origin))
            .await
    }

    /// [`Chat::send_message_as`] on the calling thread (blocking): what a plugin's bot posts through, from
    /// the plugin call's own blocking thread.
    pub fn send_blocking(
        &self,
        actor: &User,
        conversation_id: &str,
        input: SendMessage,
        origin: Origin,
    ) -> Result<Message, ChatError> {
        check_content(&input.body, &input.metadata)?;
        if let Some(client_id) = &input.client_id {
            fields::CLIENT_ID.check(client_id)?;
        }
        let chain = self.registry.ordered(Hook::BeforeMessageSent);
        let (conversation, earlier) = self.read(|c| {
            let conversation = member_conversation(c, conversation_id, &actor.id)?;
            let earlier = match &input.client_id {
                Some(key) => c.find_by_client_id(&actor.id, key)?,
                None => None,
            };
            Ok((conversation, earlier))
        })?;
        if let Some(earlier) = earlier.filter(|m| m.conversation_id == conversation_id) {
            return Ok(earlier);
        }
        let content = DraftContent {
            body: input.body,
            metadata: input.metadata,
        };
        let content = if chain.is_empty() {
            Chained::Send(content)
        } else {
            let wit_conversation = to_wit::conversation(&conversation);
            run_chain(
                &chain,
                Hook::BeforeMessageSent,
                conversation_id,
                actor,
                &origin,
                content,
                |draft| HookCall::BeforeMessageSent {
                    draft,
                    conversation: wit_conversation.clone(),
                },
            )?
        };
        let content = match content {
            Chained::Send(content) => content,
            // TODO(moderation): store the held draft once the store has the queue.
            Chained::Hold { plugin, reason, .. } => {
                return Err(ChatError::Rejected { plugin, reason });
            }
        };
        self.commit(|tx, rec| {
            member_conversation(tx, conversation_id, &actor.id)?;
            let new = crate::store::NewMessage {
                conversation_id: conversation_id.to_owned(),
                sender_id: actor.id.clone(),
                mentions: mentions_in(&content.body),
                body: content.body.clone(),
                metadata: content.metadata.clone(),
                origin: origin.clone(),
                client_id: input.client_id.clone(),
            };
            let sent = tx.send_message(&new, rec.now)?;
            if !sent.changed {
                return Ok(sent.value);
            }
            let message = sent.value;
            let conversation = tx.get_conversation(conversation_id)?;
            let mentioned = message
                .mentions
                .iter()
                .filter(|id| conversation.participant_ids.contains(id))
                .map(|id| tx.get_user(id))
                .collect::<Result<Vec<_>, _>>()?;
            rec.record(
                tx,
                &ChatEvent::MessageSent {
                    message: message.clone(),
                    conversation: conversation.clone(),
                },
            )?;
            if !mentioned.is_empty() {
                rec.record(
                    tx,
                    &ChatEvent::UsersMentioned {
                        message: message.clone(),
                        conversation,
                        mentioned_users: mentioned,
                    },
                )?;
            }
            Ok(message)
        })
    }

    /// A page of a conversation's messages (participants only), newest first unless only `after` is
    /// given (then oldest first, for catching up).
    pub async fn list_messages(
        &self,
        actor: &User,
        conversation_id: &str,
        page: MessagePage,
    ) -> Result<Vec<Message>, ChatError> {
        if let Some(limit) = page.limit {
            fields::MESSAGES_LIMIT.check(limit.into())?;
        }
        let (user, id) = (actor.id.clone(), conversation_id.to_owned());
        self.blocking(move |chat| {
            chat.read(|c| {
                member_conversation(c, &id, &user)?;
                let page = crate::store::MessagePage {
                    before: page.before,
                    after: page.after,
                    limit: page.limit,
                    oldest_first: false,
                };
                Ok(c.list_messages(&id, &page)?)
            })
        })
        .await
    }

    /// Edits a message (its sender only): `before-message-updated` chain, then one transaction storing
    /// the edit with `message.updated`. Absent fields keep their value.
    pub async fn edit_message(
        &self,
        actor: &User,
        message_id: &str,
        input: EditMessage,
    ) -> Result<Message, ChatError> {
        let (actor, id) = (actor.clone(), message_id.to_owned());
        self.blocking(move |chat| chat.edit_blocking(&actor, &id, input))
            .await
    }

    fn edit_blocking(
        &self,
        actor: &User,
        message_id: &str,
        input: EditMessage,
    ) -> Result<Message, ChatError> {
        if input.body.is_none() && input.metadata.is_none() {
            return Err(ChatError::invalid(
                "body",
                "give a new body, new metadata or both",
            ));
        }
        if let Some(body) = &input.body {
            fields::BODY.check(body)?;
        }
        if let Some(metadata) = &input.metadata {
            fields::METADATA.check(metadata)?;
        }
        let chain = self.registry.ordered(Hook::BeforeMessageUpdated);
        let (current, conversation) = self.read(|c| {
            let (message, conversation) = member_message(c, message_id, &actor.id)?;
            check_editable(&message, actor)?;
            Ok((message, conversation))
        })?;
        let content = DraftContent {
            body: input.body.unwrap_or_else(|| current.body.clone()),
            metadata: input.metadata.unwrap_or_else(|| current.metadata.clone()),
        };
        // Whether the edit leaves anything depends on what the message holds: a conflict with its state,
        // not a malformed request.
        if !has_content(&content.body, &content.metadata) {
            return Err(ChatError::Conflict(format!(
                "the edit would leave message {message_id:?} with neither a body nor metadata"
            )));
        }
        let content = if chain.is_empty() {
            Chained::Send(content)
        } else {
            let (wit_current, wit_conversation) = (
                to_wit::message(&current),
                to_wit::conversation(&conversation),
            );
            run_chain(
                &chain,
                Hook::BeforeMessageUpdated,
                &current.conversation_id,
                actor,
                &current.origin,
                content,
                |draft| HookCall::BeforeMessageUpdated {
                    current: wit_current.clone(),
                    draft,
                    conversation: wit_conversation.clone(),
                },
            )?
        };
        // An edit is not queued for review: `hold` refuses it as `reject` does.
        let content = match content {
            Chained::Send(content) => content,
            Chained::Hold { plugin, reason, .. } => {
                return Err(ChatError::Rejected { plugin, reason });
            }
        };
        self.commit(|tx, rec| {
            let (message, _) = member_message(tx, message_id, &actor.id)?;
            check_editable(&message, actor)?;
            let edited = tx.edit_message(
                message_id,
                &content.body,
                Some(&content.metadata),
                &mentions_in(&content.body),
                rec.now,
            )?;
            let conversation = tx.get_conversation(&edited.conversation_id)?;
            rec.record(
                tx,
                &ChatEvent::MessageUpdated {
                    message: edited.clone(),
                    conversation,
                },
            )?;
            Ok(edited)
        })
    }

    /// Soft-deletes a message (its sender or a conversation admin) with `message.deleted`. Deleting a
    /// deleted message returns it unchanged, with no event.
    pub async fn delete_message(
        &self,
        actor: &User,
        message_id: &str,
    ) -> Result<Message, ChatError> {
        let (actor, id) = (actor.clone(), message_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let (message, conversation) = member_message(tx, &id, &actor.id)?;
                if message.sender.id != actor.id && !conversation.admin_ids.contains(&actor.id) {
                    return Err(ChatError::Forbidden(
                        "only the sender or an admin may delete a message".into(),
                    ));
                }
                let deleted = tx.delete_message(&id, rec.now)?;
                if deleted.changed {
                    rec.record(
                        tx,
                        &ChatEvent::MessageDeleted {
                            message: deleted.value.clone(),
                            conversation,
                        },
                    )?;
                }
                Ok(deleted.value)
            })
        })
        .await
    }
}

/// Only the sender edits, and never a deleted message.
fn check_editable(message: &Message, actor: &User) -> Result<(), ChatError> {
    if message.sender.id != actor.id {
        return Err(ChatError::Forbidden(
            "only the sender may edit a message".into(),
        ));
    }
    if message.deleted {
        return Err(ChatError::Conflict(format!(
            "message {:?} is deleted",
            message.id
        )));
    }
    Ok(())
}
