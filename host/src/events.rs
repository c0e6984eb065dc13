//! The domain events: one [`ChatEvent`] variant per WebSocket event and after-hook, how each is stored in
//! the event log, and how each becomes a [`HookCall`] with the WIT types plugins receive.
//!
//! ## One event, one hook
//! Every variant maps to exactly one after-hook ([`ChatEvent::hook`]), so an event id names one hook
//! call per plugin and a plugin deduplicates retries by `event-id` alone. An operation that fires two hooks
//! writes two events: a sent message that mentions participants writes `message.new`
//! (`after-message-sent`) and `message.mentioned` (`after-user-mentioned`).
//!
//! ## Who sees what ([`Visibility`])
//! - Most events are stored with the conversation's participants as audience: WebSocket clients get them
//!   live and again after a reconnect (`?since=`).
//! - Typing changes are live only (contract: id 0, never replayed). When a loaded plugin implements
//!   `typing-started` the chat layer also stores them with an *empty* audience, so the hook is delivered
//!   through the outbox like every other after-hook (ordered, retried) while `events_since` never returns
//!   them. With no such plugin, typing touches no table.
//! - `message.mentioned` exists only for the hook: stored with an empty audience, never published.
//!
//! ## Payloads
//! The stored payload is the variant's fields as JSON (the [`crate::model`] records, snake_case); it is
//! also what WebSocket clients receive. Every conversation event carries a snapshot of the conversation
//! taken in the event's transaction, so hooks get the conversation as it was (even after it is deleted).
//! Hook `participants` are built when the hook is called ([`hook_participants`]): the snapshot's
//! participant ids and admins, with each user's current name and read state. Storing full participant
//! records in every event would cost O(participants) JSON per message for every WebSocket client.

use crate::store::Tx;
use serde::{Deserialize, Serialize};

use crate::live::LiveEvent;
use crate::model::{
    Conversation, Message, Millis, Origin, Reaction, Receipt, TypingEvent, TypingState, User,
};
use crate::plugins::Hook;
use crate::store;
use crate::store::StoredEvent;

mod hook_calls;
pub mod to_wit;

pub use hook_calls::{hook_for_kind, hook_participants, stored_hook_call};

/// Messages produced by plugin chains this deep fire no after-hooks: a bot answering a bot answering a
/// user is depth 2; past [`MAX_HOOK_DEPTH`] the chain stops, so two bots cannot ping-pong forever.
/// Three allows a bot to answer another bot's answer, which is as far as real integrations go.
pub const MAX_HOOK_DEPTH: u32 = 3;

/// A change in the chat, as written to the event log, published live and delivered to after-hooks.
///
/// The serde tag is the WebSocket event name ([`ChatEvent::kind`]); the fields are the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload")]
pub enum ChatEvent {
    /// `message.new` → `after-message-sent`.
    #[serde(rename = "message.new")]
    MessageSent {
        /// The message as stored (after before-hooks).
        message: Message,
        /// The conversation right after the message was stored.
        conversation: Conversation,
    },
    /// `message.mentioned` (hook only) → `after-user-mentioned`.
    #[serde(rename = "message.mentioned")]
    UsersMentioned {
        /// The message with the mentions.
        message: Message,
        /// The conversation right after the message was stored.
        conversation: Conversation,
        /// The participants the message mentions with `@user_id`, each once.
        mentioned_users: Vec<User>,
    },
    /// `message.updated` → `after-message-updated`.
    #[serde(rename = "message.updated")]
    MessageUpdated {
        /// The message as it is now.
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
    },
    /// `message.deleted` → `after-message-deleted`.
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        /// The message as it is now (deleted, empty body).
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
    },
    /// `typing.start` (state `begin`; live only) → `typing-started`.
    #[serde(rename = "typing.start")]
    TypingStarted {
        /// Who, where and when.
        typing: TypingEvent,
        /// The conversation being typed in.
        conversation: Conversation,
    },
    /// `typing.stop` (state `pause` or `finished`; live only) → `typing-started` (the hook covers every
    /// typing change; the state tells them apart).
    #[serde(rename = "typing.stop")]
    TypingStopped {
        /// Who, where and when.
        typing: TypingEvent,
        /// The conversation being typed in.
        conversation: Conversation,
    },
    /// `message.delivered` → `after-message-delivered`.
    #[serde(rename = "message.delivered")]
    MessageDelivered {
        /// The delivered message (its status updated).
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The user's receipt, with `delivered_at`.
        receipt: Receipt,
    },
    /// `message.read` → `after-message-read`; one event per message newly read.
    #[serde(rename = "message.read")]
    MessageRead {
        /// The read message (its status updated).
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The user's receipt, with `read_at`.
        receipt: Receipt,
    },
    /// `reaction.new` → `after-reaction-added`.
    #[serde(rename = "reaction.new")]
    ReactionAdded {
        /// The message reacted to.
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The new reaction.
        reaction: Reaction,
    },
    /// `reaction.deleted` → `after-reaction-removed`.
    #[serde(rename = "reaction.deleted")]
    ReactionRemoved {
        /// The message the reaction was on.
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The removed reaction.
        reaction: Reaction,
    },
    /// `conversation.created` → `after-conversation-created`.
    #[serde(rename = "conversation.created")]
    ConversationCreated {
        /// The new conversation.
        conversation: Conversation,
    },
    /// `conversation.updated` → `after-conversation-updated`.
    #[serde(rename = "conversation.updated")]
    ConversationUpdated {
        /// The conversation as it is now.
        conversation: Conversation,
    },
    /// `conversation.deleted` → `after-conversation-deleted`.
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted {
        /// The conversation as it was just before deletion.
        conversation: Conversation,
    },
    /// `member.added` → `after-users-added-to-conversation`.
    #[serde(rename = "member.added")]
    MembersAdded {
        /// The conversation with the new members.
        conversation: Conversation,
        /// The users who joined.
        users: Vec<User>,
    },
    /// `member.removed` → `after-users-removed-from-conversation`.
    #[serde(rename = "member.removed")]
    MembersRemoved {
        /// The conversation without them.
        conversation: Conversation,
        /// The users who left or were removed (they are in the audience, so they learn of it).
        users: Vec<User>,
    },
}

/// Where an event goes besides the after-hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Published live and stored with its audience, so a reconnecting client gets it again.
    Replayable,
    /// Published live, never replayed (typing).
    LiveOnly,
    /// Only for after-hooks (`message.mentioned`).
    HooksOnly,
}

/// Why a stored event could not be turned into a hook call.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The payload does not decode as the kind's fields (a newer server's event, or a hand-edited row).
    #[error("event {id} of kind {kind:?} has an unreadable payload: {source}")]
    Payload {
        /// The event id.
        id: i64,
        /// The stored kind.
        kind: String,
        /// What serde found.
        source: serde_json::Error,
    },
    /// Reading the participants failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl ChatEvent {
    /// The WebSocket event name (and the stored `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MessageSent { .. } => "message.new",
            Self::UsersMentioned { .. } => "message.mentioned",
            Self::MessageUpdated { .. } => "message.updated",
            Self::MessageDeleted { .. } => "message.deleted",
            Self::TypingStarted { .. } => "typing.start",
            Self::TypingStopped { .. } => "typing.stop",
            Self::MessageDelivered { .. } => "message.delivered",
            Self::MessageRead { .. } => "message.read",
            Self::ReactionAdded { .. } => "reaction.new",
            Self::ReactionRemoved { .. } => "reaction.deleted",
            Self::ConversationCreated { .. } => "conversation.created",
            Self::ConversationUpdated { .. } => "conversation.updated",
            Self::ConversationDeleted { .. } => "conversation.deleted",
            Self::MembersAdded { .. } => "member.added",
            Self::MembersRemoved { .. } => "member.removed",
        }
    }

    /// The after-hook this event is delivered to.
    pub fn hook(&self) -> Hook {
        match self {
            Self::MessageSent { .. } => Hook::AfterMessageSent,
            Self::UsersMentioned { .. } => Hook::AfterUserMentioned,
            Self::MessageUpdated { .. } => Hook::AfterMessageUpdated,
            Self::MessageDeleted { .. } => Hook::AfterMessageDeleted,
            Self::TypingStarted { .. } | Self::TypingStopped { .. } => Hook::TypingStarted,
            Self::MessageDelivered { .. } => Hook::AfterMessageDelivered,
            Self::MessageRead { .. } => Hook::AfterMessageRead,
            Self::ReactionAdded { .. } => Hook::AfterReactionAdded,
            Self::ReactionRemoved { .. } => Hook::AfterReactionRemoved,
            Self::ConversationCreated { .. } => Hook::AfterConversationCreated,
            Self::ConversationUpdated { .. } => Hook::AfterConversationUpdated,
            Self::ConversationDeleted { .. } => Hook::AfterConversationDeleted,
            Self::MembersAdded { .. } => Hook::AfterUsersAddedToConversation,
            Self::MembersRemoved { .. } => Hook::AfterUsersRemovedFromConversation,
        }
    }

    /// Where the event goes besides the hooks.
    pub fn visibility(&self) -> Visibility {
        match self {
            Self::TypingStarted { .. } | Self::TypingStopped { .. } => Visibility::LiveOnly,
            Self::UsersMentioned { .. } => Visibility::HooksOnly,
            _ => Visibility::Replayable,
        }
    }

    /// The typing event for a typing change: `typing.start` for `begin`, `typing.stop` otherwise.
    pub fn typing(typing: TypingEvent, conversation: Conversation) -> Self {
        match typing.state {
            TypingState::Begin => Self::TypingStarted {
                typing,
                conversation,
            },
            TypingState::Pause | TypingState::Finished => Self::TypingStopped {
                typing,
                conversation,
            },
        }
    }

    /// The conversation snapshot every event carries.
    pub fn conversation(&self) -> &Conversation {
        match self {
            Self::MessageSent { conversation, .. }
            | Self::UsersMentioned { conversation, .. }
            | Self::MessageUpdated { conversation, .. }
            | Self::MessageDeleted { conversation, .. }
            | Self::TypingStarted { conversation, .. }
            | Self::TypingStopped { conversation, .. }
            | Self::MessageDelivered { conversation, .. }
            | Self::MessageRead { conversation, .. }
            | Self::ReactionAdded { conversation, .. }
            | Self::ReactionRemoved { conversation, .. }
            | Self::ConversationCreated { conversation }
            | Self::ConversationUpdated { conversation }
            | Self::ConversationDeleted { conversation }
            | Self::MembersAdded { conversation, .. }
            | Self::MembersRemoved { conversation, .. } => conversation,
        }
    }

    /// The users who may see the event: the conversation's participants (as of the event), plus removed
    /// members for `member.removed`.
    pub fn audience(&self) -> Vec<String> {
        let mut audience = self.conversation().participant_ids.clone();
        if let Self::MembersRemoved { users, .. } = self {
            audience.extend(users.iter().map(|u| u.id.clone()));
        }
        audience
    }

    /// How many plugin steps led to the event's message (0 for users and for events without a message).
    pub fn plugin_depth(&self) -> u32 {
        let message = match self {
            Self::MessageSent { message, .. }
            | Self::UsersMentioned { message, .. }
            | Self::MessageUpdated { message, .. }
            | Self::MessageDeleted { message, .. } => message,
            _ => return 0,
        };
        match &message.origin {
            Origin::User => 0,
            Origin::Plugin { depth, .. } => *depth,
        }
    }

    /// The payload as stored and sent to WebSocket clients: the variant's fields.
    pub fn payload(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => {
                tagged.remove("payload").unwrap_or(serde_json::Value::Null)
            }
            // Serializing records of strings, numbers and JSON values cannot fail.
            _ => serde_json::Value::Null,
        }
    }

    /// Decodes a stored event.
    pub fn from_stored(event: &StoredEvent) -> Result<Self, EventError> {
        let tagged = serde_json::json!({ "kind": event.kind, "payload": event.payload });
        serde_json::from_value(tagged).map_err(|source| EventError::Payload {
            id: event.id,
            kind: event.kind.clone(),
            source,
        })
    }
}

/// Appends `event` to the log (and the outbox) inside the caller's transaction and returns it as a
/// [`LiveEvent`] to publish after the commit. Live-only and hook-only events are stored with an empty
/// audience, so they reach the after-hooks but never `events_since`; the returned live event keeps the
/// real audience (and id 0 for live-only events, which clients must not resume from).
pub fn append_event(tx: &dyn Tx, event: &ChatEvent, now: Millis) -> store::Result<LiveEvent> {
    let audience = event.audience();
    let stored_audience: &[String] = match event.visibility() {
        Visibility::Replayable => &audience,
        Visibility::LiveOnly | Visibility::HooksOnly => &[],
    };
    let payload = event.payload();
    let conversation_id = event.conversation().id.as_str();
    let id = tx.append_event(
        event.kind(),
        Some(conversation_id),
        stored_audience,
        &payload,
        now,
    )?;
    Ok(LiveEvent {
        id: if event.visibility() == Visibility::Replayable {
            id
        } else {
            0
        },
        kind: event.kind().to_owned(),
        conversation_id: Some(conversation_id.to_owned()),
        audience,
        payload,
        created_at: now,
    })
}

/// The live-only form of `event` (id 0), for typing changes that are not stored.
pub fn live_only(event: &ChatEvent, now: Millis) -> LiveEvent {
    LiveEvent {
        id: 0,
        kind: event.kind().to_owned(),
        conversation_id: Some(event.conversation().id.clone()),
        audience: event.audience(),
        payload: event.payload(),
        created_at: now,
    }
}

#[cfg(test)]
mod tests;
