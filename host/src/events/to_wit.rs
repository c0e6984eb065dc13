//! Model records → WIT records. Mechanical: the model mirrors the WIT field for field; timestamps become
//! unsigned and metadata becomes JSON text.

use crate::model::{
    Ban, Conversation, HeldMessage, Message, Millis, Origin, Participant, Presence, Reaction,
    Receipt, Role, TypingEvent, TypingState, User,
};
use crate::plugins::bindings::types as wit;

/// A WIT timestamp; times before 1970 (never produced by the server) read as 0.
pub fn timestamp(ms: Millis) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

/// Metadata as JSON text; `null` becomes `{}` (metadata is always an object for plugins).
pub fn json(value: &serde_json::Value) -> String {
    if value.is_null() {
        return "{}".to_owned();
    }
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// A user.
pub fn user(u: &User) -> wit::User {
    wit::User {
        id: u.id.clone(),
        name: u.name.clone(),
        metadata: json(&u.metadata),
    }
}

/// A conversation.
pub fn conversation(c: &Conversation) -> wit::Conversation {
    wit::Conversation {
        id: c.id.clone(),
        title: c.title.clone(),
        owner_id: c.owner_id.clone(),
        participant_count: c.participant_count,
        distinct_by_participants: c.distinct_by_participants,
        metadata: json(&c.metadata),
        last_message_id: c.last_message_id.clone(),
        created_at: timestamp(c.created_at),
        updated_at: timestamp(c.updated_at),
    }
}

/// A participant.
pub fn participant(p: &Participant) -> wit::Participant {
    wit::Participant {
        user: user(&p.user),
        role: role(p.role),
        unread_count: p.unread_count,
        last_read_message_id: p.last_read_message_id.clone(),
    }
}

/// A participant's role.
pub fn role(r: Role) -> wit::Role {
    match r {
        Role::Admin => wit::Role::Admin,
        Role::Moderator => wit::Role::Moderator,
        Role::Member => wit::Role::Member,
    }
}

/// A ban.
pub fn ban(b: &Ban) -> wit::Ban {
    wit::Ban {
        conversation_id: b.conversation_id.clone(),
        user: user(&b.user),
        banned_by: b.banned_by.clone(),
        reason: b.reason.clone(),
        at: timestamp(b.created_at),
    }
}

/// A message origin.
pub fn origin(o: &Origin) -> wit::Origin {
    match o {
        Origin::User => wit::Origin::User,
        Origin::Plugin { name, depth } => wit::Origin::Plugin(wit::PluginOrigin {
            name: name.clone(),
            depth: *depth,
        }),
    }
}

/// A message.
pub fn message(m: &Message) -> wit::Message {
    wit::Message {
        id: m.id.clone(),
        conversation_id: m.conversation_id.clone(),
        sender: user(&m.sender),
        body: m.body.clone(),
        metadata: json(&m.metadata),
        seq: u64::try_from(m.seq).unwrap_or(0),
        created_at: timestamp(m.created_at),
        edited_at: m.edited_at.map(timestamp),
        deleted: m.deleted,
        origin: origin(&m.origin),
        parent_id: m.parent_id.clone(),
        reply_count: m.reply_count,
        last_reply_at: m.last_reply_at.map(timestamp),
    }
}

/// A receipt.
pub fn receipt(r: &Receipt) -> wit::Receipt {
    wit::Receipt {
        message_id: r.message_id.clone(),
        user: user(&r.user),
        delivered_at: r.delivered_at.map(timestamp),
        read_at: r.read_at.map(timestamp),
    }
}

/// A reaction.
pub fn reaction(r: &Reaction) -> wit::Reaction {
    wit::Reaction {
        message_id: r.message_id.clone(),
        user: user(&r.user),
        emoji: r.emoji.clone(),
        created_at: timestamp(r.created_at),
    }
}

/// A typing change (the conversation is a separate hook argument).
pub fn typing_event(t: &TypingEvent) -> wit::TypingEvent {
    wit::TypingEvent {
        user: user(&t.user),
        state: match t.state {
            TypingState::Begin => wit::TypingState::Begin,
            TypingState::Pause => wit::TypingState::Pause,
            TypingState::Finished => wit::TypingState::Finished,
        },
        at: timestamp(t.at),
    }
}

/// A draft: a message about to be stored, as before-hooks see it.
pub fn draft(
    conversation_id: &str,
    sender: &User,
    body: &str,
    metadata: &serde_json::Value,
    origin: &Origin,
) -> wit::Draft {
    wit::Draft {
        conversation_id: conversation_id.to_owned(),
        sender: user(sender),
        body: body.to_owned(),
        metadata: json(metadata),
        origin: self::origin(origin),
        parent_id: None,
    }
}

/// A presence.
pub fn presence(p: &Presence) -> wit::Presence {
    wit::Presence {
        user_id: p.user_id.clone(),
        online: p.online,
        last_seen_at: p.last_seen_at.map(timestamp),
    }
}

/// A held message: its draft as it would be stored, why and by whom it was held.
pub fn held_message(h: &HeldMessage) -> wit::HeldMessage {
    let mut held_draft = draft(
        &h.conversation_id,
        &h.sender,
        &h.body,
        &h.metadata,
        &h.origin,
    );
    held_draft.parent_id = h.parent_id.clone();
    wit::HeldMessage {
        id: h.id.clone(),
        draft: held_draft,
        reason: h.reason.clone(),
        held_by: h.held_by.clone(),
        held_at: timestamp(h.created_at),
    }
}

/// A model record (or list of them) as the WIT value a hook receives: what the event table
/// (`crate::events`) calls on each field an event hands to its hook.
pub trait ToWit {
    /// The WIT type.
    type Wit;
    /// The WIT value.
    fn to_wit(&self) -> Self::Wit;
}

/// Implements [`ToWit`] with one of the functions above.
macro_rules! to_wit_with {
    ($( $model:ty => $wit:ty, $f:path; )*) => {
        $( impl ToWit for $model {
            type Wit = $wit;
            fn to_wit(&self) -> $wit {
                $f(self)
            }
        } )*
    };
}

to_wit_with! {
    User => wit::User, user;
    Conversation => wit::Conversation, conversation;
    Participant => wit::Participant, participant;
    Message => wit::Message, message;
    Receipt => wit::Receipt, receipt;
    Reaction => wit::Reaction, reaction;
    TypingEvent => wit::TypingEvent, typing_event;
    Presence => wit::Presence, presence;
    HeldMessage => wit::HeldMessage, held_message;
    Ban => wit::Ban, ban;
}

impl ToWit for Role {
    type Wit = wit::Role;
    fn to_wit(&self) -> wit::Role {
        role(*self)
    }
}

impl<T: ToWit> ToWit for [T] {
    type Wit = Vec<T::Wit>;
    fn to_wit(&self) -> Self::Wit {
        self.iter().map(T::to_wit).collect()
    }
}

impl<T: ToWit> ToWit for Vec<T> {
    type Wit = Vec<T::Wit>;
    fn to_wit(&self) -> Self::Wit {
        self.as_slice().to_wit()
    }
}

impl<T: ToWit> ToWit for Option<T> {
    type Wit = Option<T::Wit>;
    fn to_wit(&self) -> Self::Wit {
        self.as_ref().map(T::to_wit)
    }
}

impl ToWit for String {
    type Wit = String;
    fn to_wit(&self) -> String {
        self.clone()
    }
}
