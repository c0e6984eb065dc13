//! From a stored event to the hook call a plugin receives: decoding, the `participants` argument and the
//! event context.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;

use crate::store::Read;

use super::{ChatEvent, EventError, to_wit};
use crate::model::{Conversation, Participant};
use crate::plugins::bindings::types as wit;
use crate::plugins::{Hook, HookCall};
use crate::store::StoredEvent;
use crate::store::{self};

impl ChatEvent {
    /// The hook call for this event, with the [`wit::EventContext`] of one delivery attempt and the
    /// participants as [`hook_participants`] builds them.
    pub fn hook_call(
        &self,
        context: wit::EventContext,
        participants: Vec<wit::Participant>,
    ) -> HookCall {
        match self.hook_call_with(context, || Ok::<_, Infallible>(participants)) {
            Ok(call) => call,
            Err(never) => match never {},
        }
    }

    /// Like [`ChatEvent::hook_call`], calling `participants` only for the hooks that take a
    /// `participants` argument: building it reads every participant's row, which receipts, reactions and
    /// mentions do not need.
    pub fn hook_call_with<E>(
        &self,
        context: wit::EventContext,
        participants: impl FnOnce() -> Result<Vec<wit::Participant>, E>,
    ) -> Result<HookCall, E> {
        let c = to_wit::conversation(self.conversation());
        Ok(match self {
            Self::MessageSent { message, .. } => HookCall::AfterMessageSent {
                context,
                message: to_wit::message(message),
                conversation: c,
                participants: participants()?,
            },
            Self::UsersMentioned {
                message,
                mentioned_users,
                ..
            } => HookCall::AfterUserMentioned {
                context,
                message: to_wit::message(message),
                conversation: c,
                mentioned_users: mentioned_users.iter().map(to_wit::user).collect(),
            },
            Self::MessageUpdated { message, .. } => HookCall::AfterMessageUpdated {
                context,
                message: to_wit::message(message),
                conversation: c,
                participants: participants()?,
            },
            Self::MessageDeleted { message, .. } => HookCall::AfterMessageDeleted {
                context,
                message: to_wit::message(message),
                conversation: c,
                participants: participants()?,
            },
            Self::TypingStarted { typing, .. } | Self::TypingStopped { typing, .. } => {
                HookCall::TypingStarted {
                    context,
                    conversation: c,
                    participants: participants()?,
                    events: vec![to_wit::typing_event(typing)],
                }
            }
            Self::MessageDelivered {
                message, receipt, ..
            } => HookCall::AfterMessageDelivered {
                context,
                message: to_wit::message(message),
                conversation: c,
                receipt: to_wit::receipt(receipt),
            },
            Self::MessageRead {
                message, receipt, ..
            } => HookCall::AfterMessageRead {
                context,
                message: to_wit::message(message),
                conversation: c,
                receipt: to_wit::receipt(receipt),
            },
            Self::ReactionAdded {
                message, reaction, ..
            } => HookCall::AfterReactionAdded {
                context,
                message: to_wit::message(message),
                conversation: c,
                reaction: to_wit::reaction(reaction),
            },
            Self::ReactionRemoved {
                message, reaction, ..
            } => HookCall::AfterReactionRemoved {
                context,
                message: to_wit::message(message),
                conversation: c,
                reaction: to_wit::reaction(reaction),
            },
            Self::ConversationCreated { .. } => HookCall::AfterConversationCreated {
                context,
                conversation: c,
                participants: participants()?,
            },
            Self::ConversationUpdated { .. } => HookCall::AfterConversationUpdated {
                context,
                conversation: c,
                participants: participants()?,
            },
            Self::ConversationDeleted { .. } => HookCall::AfterConversationDeleted {
                context,
                conversation: c,
                participants: participants()?,
            },
            Self::MembersAdded { users, .. } => HookCall::AfterUsersAddedToConversation {
                context,
                conversation: c,
                participants: participants()?,
                new_users: users.iter().map(to_wit::user).collect(),
            },
            Self::MembersRemoved { users, .. } => HookCall::AfterUsersRemovedFromConversation {
                context,
                conversation: c,
                participants: participants()?,
                old_users: users.iter().map(to_wit::user).collect(),
            },
        })
    }
}

/// The `participants` argument of a hook: the snapshot's participant ids in order, admins as in the
/// snapshot, each with the user's current record and read state (no unread messages once they left).
///
/// Current members are matched by id through a map and admins through a set: with 1,000 participants a
/// linear search per member was a million comparisons per hook call.
pub fn hook_participants(
    conn: &dyn Read,
    conversation: &Conversation,
) -> store::Result<Vec<wit::Participant>> {
    let current = conn.participants(&conversation.id)?;
    let by_id: HashMap<&str, &Participant> =
        current.iter().map(|p| (p.user.id.as_str(), p)).collect();
    let admins: HashSet<&str> = conversation.admin_ids.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(conversation.participant_ids.len());
    for id in &conversation.participant_ids {
        let is_admin = admins.contains(id.as_str());
        let mut participant = match by_id.get(id.as_str()) {
            Some(p) => to_wit::participant(p),
            None => match conn.find_user(id)? {
                Some(user) => to_wit::participant(&Participant {
                    user,
                    is_admin,
                    unread_count: 0,
                    last_read_message_id: None,
                }),
                None => continue,
            },
        };
        participant.is_admin = is_admin;
        out.push(participant);
    }
    Ok(out)
}

/// The hook call for delivery `attempt` of a stored event: decodes it, reads the participants if the
/// hook takes them and fills in the event context.
pub fn stored_hook_call(
    conn: &dyn Read,
    event: &StoredEvent,
    attempt: u32,
) -> Result<HookCall, EventError> {
    let decoded = ChatEvent::from_stored(event)?;
    let context = wit::EventContext {
        event_id: u64::try_from(event.id).unwrap_or(0),
        attempt,
        at: to_wit::timestamp(event.created_at),
    };
    Ok(decoded.hook_call_with(context, || hook_participants(conn, decoded.conversation()))?)
}

/// The after-hook a stored event kind is delivered to, if the kind is known.
pub fn hook_for_kind(kind: &str) -> Option<Hook> {
    Some(match kind {
        "message.new" => Hook::AfterMessageSent,
        "message.mentioned" => Hook::AfterUserMentioned,
        "message.updated" => Hook::AfterMessageUpdated,
        "message.deleted" => Hook::AfterMessageDeleted,
        "typing.start" | "typing.stop" => Hook::TypingStarted,
        "message.delivered" => Hook::AfterMessageDelivered,
        "message.read" => Hook::AfterMessageRead,
        "reaction.new" => Hook::AfterReactionAdded,
        "reaction.deleted" => Hook::AfterReactionRemoved,
        "conversation.created" => Hook::AfterConversationCreated,
        "conversation.updated" => Hook::AfterConversationUpdated,
        "conversation.deleted" => Hook::AfterConversationDeleted,
        "member.added" => Hook::AfterUsersAddedToConversation,
        "member.removed" => Hook::AfterUsersRemovedFromConversation,
        _ => return None,
    })
}
