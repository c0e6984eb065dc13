//! The benchmark event as WIT values ([`HookCall`]s), converted from the JSON payload so that every
//! variant gets the same data.

use crate::payload;
use chathooks::plugins::HookCall;
use chathooks::plugins::bindings::types::{
    Conversation, Draft, EventContext, Message, Origin, User,
};

fn user(u: &payload::User) -> User {
    User {
        id: u.id.clone(),
        name: u.name.clone(),
        metadata: u.metadata.clone(),
    }
}

fn conversation(c: &payload::Conversation) -> Conversation {
    Conversation {
        id: c.id.clone(),
        title: c.title.clone(),
        owner_id: c.admin_ids.first().cloned(),
        participant_count: c.participant_count,
        distinct_by_participants: c.distinct_by_participants,
        metadata: c.metadata.clone(),
        last_message_id: c.last_message_id.clone(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// The draft and conversation of `before-message-sent` (0.3.0 hooks take no participant list; the
/// JSON payload of the other variants still carries it, as webhooks of the reference systems do).
pub fn before_parts(b: &payload::BeforeMessageSent) -> (Draft, Conversation) {
    let draft = Draft {
        conversation_id: b.draft.conversation_id.clone(),
        sender: user(&b.draft.sender),
        body: b.draft.body.clone(),
        metadata: b.draft.metadata.clone(),
        origin: Origin::User,
        parent_id: None,
    };
    (draft, conversation(&b.conversation))
}

/// The context, message and conversation of `after-message-sent`.
pub fn after_parts(a: &payload::AfterMessageSent) -> (EventContext, Message, Conversation) {
    let m = &a.message;
    let message = Message {
        id: m.id.clone(),
        conversation_id: m.conversation_id.clone(),
        sender: user(&m.sender),
        body: m.body.clone(),
        metadata: m.metadata.clone(),
        seq: m.seq,
        created_at: m.created_at,
        edited_at: m.edited_at,
        deleted: m.deleted,
        origin: Origin::User,
        parent_id: None,
        reply_count: 0,
        last_reply_at: None,
    };
    let context = EventContext {
        event_id: a.event_id,
        attempt: a.attempt,
        at: a.at,
    };
    (context, message, conversation(&a.conversation))
}

/// `before-message-sent` as a [`HookCall`].
pub fn before_call(b: &payload::BeforeMessageSent) -> HookCall {
    let (draft, conversation) = before_parts(b);
    HookCall::BeforeMessageSent {
        draft,
        conversation,
    }
}

/// `after-message-sent` as a [`HookCall`].
pub fn after_call(a: &payload::AfterMessageSent) -> HookCall {
    let (context, message, conversation) = after_parts(a);
    HookCall::AfterMessageSent {
        context,
        message,
        conversation,
    }
}

/// Sets the event id of an `after-*` call (each event gets its own, as from the outbox).
pub fn set_event_id(call: &mut HookCall, event_id: u64) {
    if let HookCall::AfterMessageSent { context, .. } = call {
        context.event_id = event_id;
    }
}
