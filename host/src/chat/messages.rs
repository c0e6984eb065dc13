//! Messages: send (with before-hooks, mentions and idempotency), list, edit (with before-hooks), delete.

use crate::events::{ChatEvent, to_wit};
use crate::model::{Conversation, HeldMessage, Message, Origin, User, mentions_in};
use crate::plugins::{Hook, HookCall};
use crate::store::{NewHeld, NewMessage, Read, StoreError, Tx};

use super::before::{Chained, DraftContent, run_chain};
use super::blocks::refuse_blocked;
use super::fields;
use super::inputs::{EditMessage, MessagePage, SendMessage};
use super::{Chat, ChatError, Recorder, member_conversation, member_message, require_member};

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

    /// [`Chat::submit_blocking`] for callers that can only report a sent message: a held one is
    /// [`ChatError::Held`]. What a plugin's bot posts through, from the plugin call's own blocking thread.
    pub fn send_blocking(
        &self,
        actor: &User,
        conversation_id: &str,
        input: SendMessage,
        origin: Origin,
    ) -> Result<Message, ChatError> {
        match self.submit_blocking(actor, conversation_id, input, origin)? {
            Sent::Published(message) => Ok(message),
            Sent::Held(held) => Err(ChatError::Held {
                held: Box::new(held),
            }),
        }
    }

    /// Sends or holds a message (blocking): `POST /v1/conversations/{id}/messages`, which answers 201 or
    /// 202 and calls it through [`Chat::as_user`].
    ///
    /// Authorize (participant) → validate (a reply's parent is a top-level message of the conversation)
    /// → idempotency (`client_id` already used: the stored or held message is returned, no hooks run) →
    /// `before-message-sent` chain → one transaction storing the message with `message.new` (and
    /// `message.mentioned` when it mentions participants), or holding it with `message.held`.
    pub fn submit_blocking(
        &self,
        actor: &User,
        conversation_id: &str,
        input: SendMessage,
        origin: Origin,
    ) -> Result<Sent, ChatError> {
        check_content(&input.body, &input.metadata)?;
        if let Some(client_id) = &input.client_id {
            fields::CLIENT_ID.check(client_id)?;
        }
        if let Some(parent_id) = &input.parent_id {
            fields::PARENT_ID.check(parent_id)?;
        }
        let chain = self.registry.ordered(Hook::BeforeMessageSent);
        if chain.is_empty() {
            // No before-hook to run outside the write lock: check and store in one transaction.
            let content = DraftContent {
                body: input.body.clone(),
                metadata: input.metadata.clone(),
            };
            return self.commit(|tx, rec| {
                let conversation = admit(tx, conversation_id, &actor.id, &input)?;
                if let Some(earlier) = earlier(tx, conversation_id, &actor.id, &input)? {
                    return Ok(earlier);
                }
                let new = new_message(conversation_id, actor, &content, &origin, &input);
                store_sent(tx, rec, conversation, &new)
            });
        }
        // A look before the chain, which the write checks again: the conversation on its own (one round
        // trip on PostgreSQL), then a read only for what most sends do not have.
        let conversation = require_member(self.db.conversation(conversation_id)?, &actor.id)?;
        if admit_reads_more(&conversation, &actor.id, &input) {
            let earlier = self.read(|c| {
                admit_member(c, &conversation, &actor.id, &input)?;
                earlier(c, conversation_id, &actor.id, &input)
            })?;
            if let Some(earlier) = earlier {
                return Ok(earlier);
            }
        }
        let content = DraftContent {
            body: input.body.clone(),
            metadata: input.metadata.clone(),
        };
        let wit_conversation = to_wit::conversation(&conversation);
        let parent_id = input.parent_id.clone();
        let chained = run_chain(
            &chain,
            Hook::BeforeMessageSent,
            conversation_id,
            actor,
            &origin,
            content,
            |mut draft| {
                draft.parent_id = parent_id.clone();
                HookCall::BeforeMessageSent {
                    draft,
                    conversation: wit_conversation.clone(),
                }
            },
        )?;
        let (content, hold) = match chained {
            Chained::Send(content) => (content, None),
            Chained::Hold {
                content,
                plugin,
                reason,
            } => (content, Some((plugin, reason))),
        };
        if let Some((held_by, reason)) = hold {
            let held = NewHeld {
                conversation_id: conversation_id.to_owned(),
                sender_id: actor.id.clone(),
                mentions: mentions_in(&content.body),
                body: content.body,
                metadata: content.metadata,
                origin,
                client_id: input.client_id.clone(),
                parent_id: input.parent_id.clone(),
                reason,
                held_by,
            };
            return self.hold_blocking(&held).map(Sent::Held);
        }
        self.commit(|tx, rec| {
            let conversation = member_conversation(tx, conversation_id, &actor.id)?;
            refuse_blocked(tx, &conversation, &actor.id)?;
            let new = new_message(conversation_id, actor, &content, &origin, &input);
            store_sent(tx, rec, conversation, &new)
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
                    thread: None,
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

/// What sending a message did: sent it, or held it for review.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Stored in the conversation and announced.
    Published(Message),
    /// Held for review by a before-hook ([`crate::chat::held`]).
    Held(HeldMessage),
}

impl Sent {
    /// The conversation it went to.
    pub fn conversation_id(&self) -> &str {
        match self {
            Sent::Published(m) => &m.conversation_id,
            Sent::Held(h) => &h.conversation_id,
        }
    }
}

/// The conversation `actor_id` may send `input` to: a participant, not blocked by the other side of a
/// one-to-one conversation, replying (if at all) to a top-level message of it.
fn admit(
    conn: &dyn Read,
    conversation_id: &str,
    actor_id: &str,
    input: &SendMessage,
) -> Result<Conversation, ChatError> {
    let conversation = member_conversation(conn, conversation_id, actor_id)?;
    admit_member(conn, &conversation, actor_id, input)?;
    Ok(conversation)
}

/// [`admit`]'s checks after membership: not blocked by the other side of a one-to-one conversation, and
/// replying (if at all) to a top-level message of it.
fn admit_member(
    conn: &dyn Read,
    conversation: &Conversation,
    actor_id: &str,
    input: &SendMessage,
) -> Result<(), ChatError> {
    refuse_blocked(conn, conversation, actor_id)?;
    if let Some(parent) = &input.parent_id {
        check_parent(conn, &conversation.id, parent)?;
    }
    Ok(())
}

/// Whether [`admit_member`] or [`earlier`] would read anything for `input`: only for a one-to-one
/// conversation (a block), a reply (its parent) or a send with a `client_id` (a retry). Keep in step
/// with both.
fn admit_reads_more(conversation: &Conversation, actor_id: &str, input: &SendMessage) -> bool {
    conversation.one_to_one_peer(actor_id).is_some()
        || input.parent_id.is_some()
        || input.client_id.is_some()
}

/// The message (or held message) `input`'s `client_id` already made in this conversation: a retry gets
/// it back, and no hook runs again. One made in another conversation is left to the store's conflict.
fn earlier(
    conn: &dyn Read,
    conversation_id: &str,
    actor_id: &str,
    input: &SendMessage,
) -> Result<Option<Sent>, ChatError> {
    let Some(key) = &input.client_id else {
        return Ok(None);
    };
    let earlier = match conn.find_by_client_id(actor_id, key)? {
        Some(message) => Some(Sent::Published(message)),
        None => conn.find_held_by_client_id(actor_id, key)?.map(Sent::Held),
    };
    Ok(earlier.filter(|e| e.conversation_id() == conversation_id))
}

/// The message to store: `content` (as the before-hooks left it) with the rest of `input`.
fn new_message(
    conversation_id: &str,
    actor: &User,
    content: &DraftContent,
    origin: &Origin,
    input: &SendMessage,
) -> NewMessage {
    NewMessage {
        conversation_id: conversation_id.to_owned(),
        sender_id: actor.id.clone(),
        mentions: mentions_in(&content.body),
        body: content.body.clone(),
        metadata: content.metadata.clone(),
        origin: origin.clone(),
        client_id: input.client_id.clone(),
        parent_id: input.parent_id.clone(),
        id: None,
    }
}

/// Stores `new` in `conversation` (read in this transaction) with its events.
fn store_sent(
    tx: &dyn Tx,
    rec: &mut Recorder,
    mut conversation: Conversation,
    new: &NewMessage,
) -> Result<Sent, ChatError> {
    let sent = tx.send_message(new, rec.now)?;
    if sent.changed {
        // The store's send sets the conversation's last message; nothing else of it changes.
        conversation.last_message_id = Some(sent.value.id.clone());
        record_message(tx, rec, &sent.value, conversation)?;
    }
    Ok(Sent::Published(sent.value))
}

/// Appends the events of a message just stored in `tx`: `message.new` (with the updated parent when it
/// is a reply) and, when it mentions participants, `message.mentioned`.
pub(super) fn publish_message(
    tx: &dyn Tx,
    rec: &mut Recorder,
    message: &Message,
) -> Result<(), ChatError> {
    let conversation = tx.get_conversation(&message.conversation_id)?;
    record_message(tx, rec, message, conversation)
}

/// [`publish_message`] with the conversation as it is after the message was stored.
fn record_message(
    tx: &dyn Tx,
    rec: &mut Recorder,
    message: &Message,
    conversation: Conversation,
) -> Result<(), ChatError> {
    let mentioned = message
        .mentions
        .iter()
        .filter(|id| conversation.participant_ids.contains(id))
        .map(|id| tx.get_user(id))
        .collect::<Result<Vec<_>, _>>()?;
    let parent = match &message.parent_id {
        Some(id) => Some(tx.get_message(id)?),
        None => None,
    };
    rec.record(
        tx,
        &ChatEvent::MessageSent {
            message: message.clone(),
            conversation: conversation.clone(),
            parent,
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
    Ok(())
}

/// [`ChatError::Conflict`] (naming `parent_id`) unless `parent_id` is a top-level message of
/// `conversation_id` that is not deleted: threads are one level deep, as in Stream and CometChat. A
/// conflict with the conversation's state (409), not malformed input.
fn check_parent(conn: &dyn Read, conversation_id: &str, parent_id: &str) -> Result<(), ChatError> {
    let refuse = |why: String| Err(ChatError::Conflict(format!("parent_id: {why}")));
    let parent = match conn.get_message(parent_id) {
        Ok(parent) if parent.conversation_id == conversation_id => parent,
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            return refuse(format!("no message {parent_id:?} in this conversation"));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(grandparent) = &parent.parent_id {
        return refuse(format!(
            "message {parent_id:?} is itself a reply; reply to its parent {grandparent:?} instead"
        ));
    }
    if parent.deleted {
        return refuse(format!("message {parent_id:?} is deleted"));
    }
    Ok(())
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
