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
//! Hooks get no participant list (WIT 0.3.0): a plugin that needs the members asks for them
//! (`chat.participants`), and a component built against 0.2.0 or older is given the conversation's
//! participants as they are at call time ([`crate::plugins::hooks`], `plugins::downgrade`). Storing full
//! participant records in every event would cost O(participants) JSON per message for every WebSocket
//! client.

use crate::store::Tx;
use serde::{Deserialize, Serialize};

use crate::live::LiveEvent;
use crate::model::{
    Ban, Conversation, HeldMessage, Message, Millis, Participant, Presence, Reaction, Receipt,
    Role, TypingEvent, TypingState, User,
};
use crate::plugins::bindings::types as wit;
use crate::plugins::{Hook, HookCall};
use crate::store;

mod fields;
mod hook_calls;
mod payload;
pub mod to_wit;

pub use payload::MAX_EVENT_PARTICIPANT_IDS;

use fields::EventField;
pub use hook_calls::{decoded_hook_call, hook_call_of, stored_hook_call};

/// Messages produced by plugin chains this deep fire no after-hooks: a bot answering a bot answering a
/// user is depth 2; past [`MAX_HOOK_DEPTH`] the chain stops, so two bots cannot ping-pong forever.
/// Three allows a bot to answer another bot's answer, which is as far as real integrations go.
pub const MAX_HOOK_DEPTH: u32 = 3;

/// Generates [`ChatEvent`] and what is derived from each entry of the table below: the WebSocket name
/// ([`ChatEvent::kind`]), the after-hook ([`ChatEvent::hook`], [`hook_for_kind`]), the visibility, the
/// conversation and loop-guard depth it carries, and the hook call it becomes ([`ChatEvent::hook_call`]).
///
/// An entry is `Variant "kind" Visibility => HookVariant { fields } call { args }`: the fields are the
/// stored payload (what WebSocket clients receive); each hook argument after `context` is a field of the
/// same name turned into its WIT type ([`to_wit::ToWit`]), or `arg = expression` over the fields.
macro_rules! chat_events {
    ( $(
        $(#[$doc:meta])*
        $variant:ident $kind:literal $visibility:ident => $hook:ident {
            $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)?
        } call { $( $arg:ident $( = $src:expr )? ),* $(,)? }
    )* ) => {
        /// A change in the chat, as written to the event log, published live and delivered to after-hooks.
        ///
        /// The serde tag is the WebSocket event name ([`ChatEvent::kind`]); the fields are the payload.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "payload")]
        pub enum ChatEvent {
            $(
                $(#[$doc])*
                #[serde(rename = $kind)]
                $variant { $( $(#[$fdoc])* $field: $fty, )* },
            )*
        }

        /// Every stored event kind with the after-hook it is delivered to.
        const KINDS: &[(&str, Hook)] = &[ $( ($kind, Hook::$hook), )* ];

        impl ChatEvent {
            /// The WebSocket event name (and the stored `kind`).
            pub fn kind(&self) -> &'static str {
                match self { $( Self::$variant { .. } => $kind, )* }
            }

            /// The after-hook this event is delivered to.
            pub fn hook(&self) -> Hook {
                match self { $( Self::$variant { .. } => Hook::$hook, )* }
            }

            /// Where the event goes besides the hooks.
            pub fn visibility(&self) -> Visibility {
                match self { $( Self::$variant { .. } => Visibility::$visibility, )* }
            }

            /// The conversation snapshot the event carries, if it is about a conversation (presence and
            /// blocking are about users).
            pub fn conversation(&self) -> Option<&Conversation> {
                match self {
                    $( Self::$variant { $( $field, )* } => None $( .or_else(|| EventField::conversation($field)) )*, )*
                }
            }

            /// How many plugin steps led to the event's message (0 for users and for events without a
            /// message): the loop guard's depth.
            pub fn plugin_depth(&self) -> u32 {
                match self {
                    $( Self::$variant { $( $field, )* } => None $( .or_else(|| EventField::depth($field)) )*, )*
                }
                .unwrap_or(0)
            }

            /// The hook call for this event, with the [`wit::EventContext`] of one delivery attempt.
            #[allow(unused_variables)]
            pub fn hook_call(&self, context: wit::EventContext) -> HookCall {
                match self {
                    $( Self::$variant { $( $field, )* } => HookCall::$hook {
                        context,
                        $( $arg: to_wit::ToWit::to_wit(hook_arg!($arg $(, $src)?)), )*
                    }, )*
                }
            }
        }
    };
}

/// One argument of a hook call in [`chat_events`]: the field of the same name, or the expression given.
macro_rules! hook_arg {
    ($arg:ident) => {
        $arg
    };
    ($arg:ident, $src:expr) => {
        $src
    };
}

chat_events! {
    /// `message.new` → `after-message-sent`.
    MessageSent "message.new" Replayable => AfterMessageSent {
        /// The message as stored (after before-hooks).
        message: Message,
        /// The conversation right after the message was stored.
        conversation: Conversation,
        /// For a reply: its parent with the reply count and last reply time this reply gave it, so
        /// clients update the thread's summary without a fetch. Hooks get `message.parent-id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<Message>,
    } call { message, conversation }

    /// `message.mentioned` (hook only) → `after-user-mentioned`.
    UsersMentioned "message.mentioned" HooksOnly => AfterUserMentioned {
        /// The message with the mentions.
        message: Message,
        /// The conversation right after the message was stored.
        conversation: Conversation,
        /// The participants the message mentions with `@user_id`, each once.
        mentioned_users: Vec<User>,
    } call { message, conversation, mentioned_users }

    /// `message.updated` → `after-message-updated`.
    MessageUpdated "message.updated" Replayable => AfterMessageUpdated {
        /// The message as it is now.
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
    } call { message, conversation }

    /// `message.deleted` → `after-message-deleted`.
    MessageDeleted "message.deleted" Replayable => AfterMessageDeleted {
        /// The message as it is now (deleted, empty body).
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
    } call { message, conversation }

    /// `typing.start` (state `begin`; live only) → `typing-started`.
    TypingStarted "typing.start" LiveOnly => TypingStarted {
        /// Who, where and when.
        typing: TypingEvent,
        /// The conversation being typed in.
        conversation: Conversation,
    } call { conversation, events = std::slice::from_ref(typing) }

    /// `typing.stop` (state `pause` or `finished`; live only) → `typing-started` (the hook covers every
    /// typing change; the state tells them apart).
    TypingStopped "typing.stop" LiveOnly => TypingStarted {
        /// Who, where and when.
        typing: TypingEvent,
        /// The conversation being typed in.
        conversation: Conversation,
    } call { conversation, events = std::slice::from_ref(typing) }

    /// `message.delivered` → `after-message-delivered`.
    MessageDelivered "message.delivered" Replayable => AfterMessageDelivered {
        /// The delivered message (its status updated).
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The user's receipt, with `delivered_at`.
        receipt: Receipt,
    } call { message, conversation, receipt }

    /// `message.read` → `after-message-read`; one event per message newly read.
    MessageRead "message.read" Replayable => AfterMessageRead {
        /// The read message (its status updated).
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The user's receipt, with `read_at`.
        receipt: Receipt,
    } call { message, conversation, receipt }

    /// `reaction.new` → `after-reaction-added`.
    ReactionAdded "reaction.new" Replayable => AfterReactionAdded {
        /// The message reacted to.
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The new reaction.
        reaction: Reaction,
    } call { message, conversation, reaction }

    /// `reaction.deleted` → `after-reaction-removed`.
    ReactionRemoved "reaction.deleted" Replayable => AfterReactionRemoved {
        /// The message the reaction was on.
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
        /// The removed reaction.
        reaction: Reaction,
    } call { message, conversation, reaction }

    /// `conversation.created` → `after-conversation-created`.
    ConversationCreated "conversation.created" Replayable => AfterConversationCreated {
        /// The new conversation.
        conversation: Conversation,
    } call { conversation }

    /// `conversation.updated` → `after-conversation-updated`.
    ConversationUpdated "conversation.updated" Replayable => AfterConversationUpdated {
        /// The conversation as it is now.
        conversation: Conversation,
    } call { conversation }

    /// `conversation.deleted` → `after-conversation-deleted`.
    ConversationDeleted "conversation.deleted" Replayable => AfterConversationDeleted {
        /// The conversation as it was just before deletion.
        conversation: Conversation,
    } call { conversation }

    /// `member.added` → `after-users-added-to-conversation`.
    MembersAdded "member.added" Replayable => AfterUsersAddedToConversation {
        /// The conversation with the new members.
        conversation: Conversation,
        /// The users who joined.
        users: Vec<User>,
    } call { conversation, new_users = users }

    /// `member.removed` → `after-users-removed-from-conversation`.
    MembersRemoved "member.removed" Replayable => AfterUsersRemovedFromConversation {
        /// The conversation without them.
        conversation: Conversation,
        /// The users who left or were removed (they are in the audience, so they learn of it).
        users: Vec<User>,
    } call { conversation, old_users = users }

    /// `message.delivered_to_all` → `after-message-delivered-to-all`: the receipt that completed it was the
    /// last one missing among the participants present when the message was sent. Once per message.
    MessageDeliveredToAll "message.delivered_to_all" Replayable => AfterMessageDeliveredToAll {
        /// The message, delivered to every other participant.
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
    } call { message, conversation }

    /// `message.read_by_all` → `after-message-read-by-all`: like `message.delivered_to_all`, for reading.
    MessageReadByAll "message.read_by_all" Replayable => AfterMessageReadByAll {
        /// The message, read by every other participant (its status `all_read`).
        message: Message,
        /// The conversation it belongs to.
        conversation: Conversation,
    } call { message, conversation }

    /// `message.held` → `after-message-held`: a before-hook held a message for review. For its sender and
    /// the conversation's moderators and admins only.
    MessageHeld "message.held" Replayable => AfterMessageHeld {
        /// The held message.
        held: HeldMessage,
        /// The conversation it was sent to.
        conversation: Conversation,
    } call { held, conversation }

    /// `message.approved` → `after-message-approved`: a moderator approved a held message, which was
    /// just sent (its `message.new` precedes this). For its sender and the moderators and admins.
    MessageApproved "message.approved" Replayable => AfterMessageApproved {
        /// The message as published.
        message: Message,
        /// The conversation.
        conversation: Conversation,
        /// Who approved it.
        moderator: User,
    } call { message, conversation, moderator }

    /// `message.rejected` → `after-message-rejected`: a moderator rejected a held message. For its sender
    /// (who learns why) and the moderators and admins.
    MessageRejected "message.rejected" Replayable => AfterMessageRejected {
        /// The held message, now rejected (its `decision_reason` is the moderator's reason).
        held: HeldMessage,
        /// The conversation.
        conversation: Conversation,
        /// Who rejected it.
        moderator: User,
    } call { held, conversation, moderator, reason = &held.decision_reason }

    /// `user.presence.changed` (live only) → `after-user-presence-changed`: a user came online (their
    /// first connection on any node) or went offline (their last one closed and stayed closed for
    /// [`crate::presence::GRACE`]). For the user and everyone who shares a conversation with them. Live
    /// only, like typing: stored (with an empty audience) only for the hook, when a plugin implements it;
    /// a reconnecting client reads presence over the REST API instead of replaying every flip of every
    /// contact.
    UserPresenceChanged "user.presence.changed" LiveOnly => AfterUserPresenceChanged {
        /// The user.
        user: User,
        /// Online or not, and when last seen.
        presence: Presence,
    } call { user, presence }

    // Roles, bans and blocks (`chat/roles.rs`, `chat/bans.rs`, `chat/blocks.rs`).

    /// `member.role_changed` → `after-participant-role-changed`: an admin changed a participant's role
    /// (or ownership moved to a participant who was not an admin yet).
    ParticipantRoleChanged "member.role_changed" Replayable => AfterParticipantRoleChanged {
        /// The conversation with the new role in its `admin_ids` / `moderator_ids`.
        conversation: Conversation,
        /// The participant with their new role.
        participant: Participant,
        /// The role they had before.
        old_role: Role,
        /// The admin who changed it.
        changed_by: User,
    } call { conversation, participant, old_role, changed_by }

    /// `member.banned` → `after-member-banned`: a moderator or admin banned a user. When the user was a
    /// member, `member.removed` precedes it in the same transaction (so member lists update as for any
    /// removal). For the participants and the banned user.
    MemberBanned "member.banned" Replayable => AfterMemberBanned {
        /// The conversation, without the banned user.
        conversation: Conversation,
        /// Who, by whom, why and when.
        ban: Ban,
    } call { conversation, ban }

    /// `member.unbanned` → `after-member-unbanned`: a moderator or admin lifted a ban (the user is not
    /// added back). For the participants and the unbanned user.
    MemberUnbanned "member.unbanned" Replayable => AfterMemberUnbanned {
        /// The conversation.
        conversation: Conversation,
        /// The ban that was lifted.
        ban: Ban,
        /// Who lifted it.
        unbanned_by: User,
    } call { conversation, ban, unbanned_by }

    /// `conversation.owner_transferred` → `after-owner-transferred`: ownership moved to another
    /// participant (now an admin; `member.role_changed` precedes this when they were not one).
    OwnerTransferred "conversation.owner_transferred" Replayable => AfterOwnerTransferred {
        /// The conversation with its new `owner_id`.
        conversation: Conversation,
        /// The previous owner, if there was one.
        old_owner: Option<User>,
        /// The new owner.
        new_owner: User,
    } call { conversation, old_owner, new_owner }

    /// `user.blocked` → `after-user-blocked`: a user blocked another. For the blocker only (the blocked
    /// user is not told).
    UserBlocked "user.blocked" Replayable => AfterUserBlocked {
        /// The user who blocked.
        blocker: User,
        /// The user they blocked.
        blocked: User,
    } call { blocker, blocked }

    /// `user.unblocked` → `after-user-unblocked`: a user lifted their block. For the blocker only.
    UserUnblocked "user.unblocked" Replayable => AfterUserUnblocked {
        /// The user who unblocked.
        blocker: User,
        /// The user they unblocked.
        blocked: User,
    } call { blocker, blocked }
}

/// `sender` and the conversation's moderators and admins: who sees the moderation queue's events.
fn moderators_and(conversation: &Conversation, sender: &str) -> Vec<String> {
    let mut audience = vec![sender.to_owned()];
    for id in conversation.moderators() {
        if !audience.iter().any(|a| a == id) {
            audience.push(id.to_owned());
        }
    }
    audience
}

/// The after-hook a stored event kind is delivered to, if the kind is known.
pub fn hook_for_kind(kind: &str) -> Option<Hook> {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, hook)| *hook)
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
}

impl ChatEvent {
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

    /// The users who may see the event: the conversation's participants (as of the event), plus removed
    /// members for `member.removed` and the banned (or unbanned) user for `member.banned` and
    /// `member.unbanned`; the user themself for a presence change (the operation adds their contacts, see
    /// [`append_event_for`]); the blocker alone for `user.blocked` and `user.unblocked`; only the sender
    /// and the moderators and admins for the moderation queue's events.
    pub fn audience(&self) -> Vec<String> {
        let mut audience = self
            .conversation()
            .map(|c| c.participant_ids.clone())
            .unwrap_or_default();
        match self {
            Self::MembersRemoved { users, .. } => {
                audience.extend(users.iter().map(|u| u.id.clone()));
            }
            Self::MemberBanned { ban, .. } | Self::MemberUnbanned { ban, .. }
                if !audience.contains(&ban.user.id) =>
            {
                audience.push(ban.user.id.clone());
            }
            Self::UserBlocked { blocker, .. } | Self::UserUnblocked { blocker, .. } => {
                audience.push(blocker.id.clone());
            }
            Self::UserPresenceChanged { user, .. } => audience.push(user.id.clone()),
            Self::MessageHeld { held, conversation }
            | Self::MessageRejected {
                held, conversation, ..
            } => return moderators_and(conversation, &held.sender.id),
            Self::MessageApproved {
                message,
                conversation,
                ..
            } => return moderators_and(conversation, &message.sender.id),
            _ => {}
        }
        audience
    }
}

/// Appends `event` to the log (and the outbox) inside the caller's transaction and returns it as a
/// [`LiveEvent`] to publish after the commit. Live-only and hook-only events are stored with an empty
/// audience, so they reach the after-hooks but never `events_since`; the returned live event keeps the
/// real audience (and id 0 for live-only events, which clients must not resume from).
pub fn append_event(tx: &dyn Tx, event: &ChatEvent, now: Millis) -> store::Result<LiveEvent> {
    Ok(append_event_for(tx, event, &[], now, true)?.1)
}

/// Like [`append_event`], with `also` added to the event's audience, and queued for the after-hooks only
/// if `queued` (the caller knows whether a running plugin exports the event's hook: see
/// [`crate::chat::Recorder`]). Returns the event's id in the log with its live form.
pub fn append_event_for(
    tx: &dyn Tx,
    event: &ChatEvent,
    also: &[String],
    now: Millis,
    queued: bool,
) -> store::Result<(i64, LiveEvent)> {
    let audience = audience_with(event, also);
    let stored_audience: &[String] = match event.visibility() {
        Visibility::Replayable => &audience,
        Visibility::LiveOnly | Visibility::HooksOnly => &[],
    };
    let payload = event.payload();
    let conversation_id = event.conversation().map(|c| c.id.as_str());
    let id = if queued {
        tx.append_event(
            event.kind(),
            conversation_id,
            stored_audience,
            &payload,
            now,
        )?
    } else {
        tx.append_event_unqueued(
            event.kind(),
            conversation_id,
            stored_audience,
            &payload,
            now,
        )?
    };
    let live = LiveEvent {
        id: if event.visibility() == Visibility::Replayable {
            id
        } else {
            0
        },
        kind: event.kind().to_owned(),
        conversation_id: conversation_id.map(str::to_owned),
        audience,
        payload,
        created_at: now,
    };
    Ok((id, live))
}

/// The event's audience with `also` added, each user once.
fn audience_with(event: &ChatEvent, also: &[String]) -> Vec<String> {
    let mut audience = event.audience();
    for id in also {
        if !audience.contains(id) {
            audience.push(id.clone());
        }
    }
    audience
}

/// The live-only form of `event` (id 0), for typing changes that are not stored.
pub fn live_only(event: &ChatEvent, now: Millis) -> LiveEvent {
    live_only_for(event, &[], now)
}

/// Like [`live_only`], with `also` added to the event's audience (a presence change's contacts).
pub fn live_only_for(event: &ChatEvent, also: &[String], now: Millis) -> LiveEvent {
    let audience = audience_with(event, also);
    LiveEvent {
        id: 0,
        kind: event.kind().to_owned(),
        conversation_id: event.conversation().map(|c| c.id.clone()),
        audience,
        payload: event.payload(),
        created_at: now,
    }
}

#[cfg(test)]
mod tests;
