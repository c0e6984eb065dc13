//! What an event reads off its fields, whatever their type ([`EventField`]): the table in
//! [`super`] asks every field of an event for the conversation it is about and its message's loop-guard
//! depth.

use crate::model::{
    Ban, Conversation, HeldMessage, Message, Origin, Participant, Presence, Reaction, Receipt,
    Role, TypingEvent, User,
};

/// What [`ChatEvent`] reads off its fields, whatever their type: the conversation an event is about
/// and the loop-guard depth of its message. Every field type implements it (the compiler says so when a
/// new one does not); only [`Conversation`] and [`Message`] answer.
///
/// [`ChatEvent`]: super::ChatEvent
pub(super) trait EventField {
    /// The conversation, if this field is one.
    fn conversation(&self) -> Option<&Conversation> {
        None
    }
    /// The loop-guard depth, if this field is a message.
    fn depth(&self) -> Option<u32> {
        None
    }
}

impl EventField for Conversation {
    fn conversation(&self) -> Option<&Conversation> {
        Some(self)
    }
}

impl EventField for Message {
    fn depth(&self) -> Option<u32> {
        Some(match &self.origin {
            Origin::User => 0,
            Origin::Plugin { depth, .. } => *depth,
        })
    }
}

impl EventField for User {}
impl EventField for Vec<User> {}
impl EventField for Receipt {}
impl EventField for Reaction {}
impl EventField for TypingEvent {}
impl EventField for Presence {}
impl EventField for HeldMessage {}
impl EventField for Option<Message> {}
impl EventField for Participant {}
impl EventField for Role {}
impl EventField for Ban {}
impl EventField for Option<User> {}
