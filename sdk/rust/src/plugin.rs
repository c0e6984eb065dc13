//! The [`Plugin`] trait: one function per hook of `chathooks:plugin@0.2.0`.

use crate::types::{
    Conversation, Decision, Draft, EventContext, Message, Participant, Reaction, Receipt,
    TypingEvent, User,
};

/// A chathooks plugin: implement the hooks you need inside an `impl Plugin for YourType` block marked
/// `#[chathooks_sdk::plugin]`.
///
/// Every function is an associated function (no `self`): a plugin keeps no state in memory between events,
/// because the server may throw an instance away and start a fresh one at any time. Keep state in [`kv`].
///
/// Every function has a default body, so an impl block lists only the hooks it implements, and the
/// [`plugin`](crate::plugin) attribute exports exactly those. The defaults are never called by the server.
///
/// - **Before-hooks** (`before_message_sent`, `before_message_updated`) run inline with the sender's request
///   and return a [`Decision`]: allow, modify (body and metadata) or reject with a reason. They have a small
///   time budget.
/// - **After-hooks** (every other function) run after the change is stored, at least once, in order per
///   conversation. Return `Err(reason)` to have the event retried later. A retried event keeps its
///   [`EventContext::event_id`]; remember ids you have handled (in [`kv`]) if acting twice would be wrong.
///
/// [`kv`]: crate::kv
pub trait Plugin {
    /// Decide what happens to a message about to be sent (allow, modify or reject).
    ///
    /// - `draft`: the message as it stands now (after earlier before-hooks).
    /// - `conversation`: the conversation it is being sent to.
    /// - `participants`: everyone in the conversation, the sender included.
    fn before_message_sent(
        draft: Draft,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Decision {
        let _ = (draft, conversation, participants);
        Decision::Allow
    }

    /// Decide what happens to an edit about to be stored (allow, modify or reject).
    ///
    /// - `current`: the message as it is stored now.
    /// - `draft`: the message as it will be stored after the edit.
    /// - `conversation`: the conversation the message belongs to.
    /// - `participants`: everyone in the conversation.
    fn before_message_updated(
        current: Message,
        draft: Draft,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Decision {
        let _ = (current, draft, conversation, participants);
        Decision::Allow
    }

    /// Called after a message was stored and shown to the conversation's participants.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the message as stored (after any before-hook changes).
    /// - `conversation`: the conversation it was sent to.
    /// - `participants`: everyone in the conversation, the sender included.
    fn after_message_sent(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, participants);
        Ok(())
    }

    /// Called after a message's body or metadata was edited.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the message as it is now.
    /// - `conversation`: the conversation it belongs to.
    /// - `participants`: everyone in the conversation.
    fn after_message_updated(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, participants);
        Ok(())
    }

    /// Called after a message was deleted. Deletion is soft: the message keeps its id and seq, with
    /// `deleted` set and an empty body.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the message as it is now (deleted).
    /// - `conversation`: the conversation it belonged to.
    /// - `participants`: everyone in the conversation.
    fn after_message_deleted(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, participants);
        Ok(())
    }

    /// Called when users start, pause or finish typing in a conversation.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `conversation`: the conversation being typed in.
    /// - `participants`: everyone in the conversation.
    /// - `events`: the typing changes, oldest first.
    fn typing_started(
        context: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
        events: Vec<TypingEvent>,
    ) -> Result<(), String> {
        let _ = (context, conversation, participants, events);
        Ok(())
    }

    /// Called after a conversation was created.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `conversation`: the new conversation.
    /// - `participants`: its first participants.
    fn after_conversation_created(
        context: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let _ = (context, conversation, participants);
        Ok(())
    }

    /// Called after a conversation's title or metadata changed.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `conversation`: the conversation as it is now.
    /// - `participants`: everyone in the conversation.
    fn after_conversation_updated(
        context: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let _ = (context, conversation, participants);
        Ok(())
    }

    /// Called after a conversation was deleted, with its last state.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `conversation`: the conversation as it was just before deletion.
    /// - `participants`: who was in it.
    fn after_conversation_deleted(
        context: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let _ = (context, conversation, participants);
        Ok(())
    }

    /// Called after one or more users joined a conversation.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `conversation`: the conversation as it is now.
    /// - `participants`: everyone in the conversation, the new users included.
    /// - `new_users`: the users who were just added.
    fn after_users_added_to_conversation(
        context: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
        new_users: Vec<User>,
    ) -> Result<(), String> {
        let _ = (context, conversation, participants, new_users);
        Ok(())
    }

    /// Called after one or more users left or were removed from a conversation.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `conversation`: the conversation as it is now.
    /// - `participants`: everyone still in the conversation.
    /// - `old_users`: the users who were just removed.
    fn after_users_removed_from_conversation(
        context: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
        old_users: Vec<User>,
    ) -> Result<(), String> {
        let _ = (context, conversation, participants, old_users);
        Ok(())
    }

    /// Called after a message reached one of a user's devices for the first time.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the delivered message.
    /// - `conversation`: the conversation it belongs to.
    /// - `receipt`: the user's receipt for the message, now with `delivered_at`.
    fn after_message_delivered(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        receipt: Receipt,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, receipt);
        Ok(())
    }

    /// Called after a user read a message for the first time.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the read message.
    /// - `conversation`: the conversation it belongs to.
    /// - `receipt`: the user's receipt for the message, now with `read_at`.
    fn after_message_read(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        receipt: Receipt,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, receipt);
        Ok(())
    }

    /// Called after a user reacted to a message.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the message reacted to.
    /// - `conversation`: the conversation it belongs to.
    /// - `reaction`: the new reaction.
    fn after_reaction_added(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        reaction: Reaction,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, reaction);
        Ok(())
    }

    /// Called after a user took a reaction back.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the message the reaction was on.
    /// - `conversation`: the conversation it belongs to.
    /// - `reaction`: the reaction that was removed.
    fn after_reaction_removed(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        reaction: Reaction,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, reaction);
        Ok(())
    }

    /// Called after a message mentioned users with `@user-id`; fired once per message, with every
    /// mentioned participant.
    ///
    /// - `context`: the event's id, delivery attempt and time, for deduplication.
    /// - `message`: the message with the mentions.
    /// - `conversation`: the conversation it belongs to.
    /// - `mentioned_users`: the participants the message mentions, each once.
    fn after_user_mentioned(
        context: EventContext,
        message: Message,
        conversation: Conversation,
        mentioned_users: Vec<User>,
    ) -> Result<(), String> {
        let _ = (context, message, conversation, mentioned_users);
        Ok(())
    }

    /// Called when one of the plugin's timers is due (see [`scheduler`](crate::scheduler)).
    ///
    /// - `name`: the timer's name, as set.
    /// - `payload`: the text given when it was set.
    ///
    /// Return `Err(reason)` to have a one-shot timer retried later (a few times, with backoff).
    fn on_timer(name: String, payload: String) -> Result<(), String> {
        let _ = (name, payload);
        Ok(())
    }
}
