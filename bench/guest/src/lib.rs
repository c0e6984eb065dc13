//! # bench-hooks
//!
//! The dispatch benchmark's plugin. Its before-hooks mask blocked words and its `after-message-sent` bumps a
//! KV counter per conversation: the same work, from the same source file (`bench/src/logic.rs`), as the
//! native floor, the Extism guest and the webhook the benchmark compares it with. It also exports every
//! other hook (doing nothing), so the end-to-end benchmark can run plugins "subscribed to every hook".

#[path = "../../src/logic.rs"]
mod logic;

use chathooks_sdk::prelude::*;

/// The plugin. Stateless; its only state is the KV counter.
struct BenchHooks;

fn decide(body: &str) -> Decision {
    match logic::mask(body) {
        Some(masked) => Decision::modify_body(masked),
        None => Decision::allow(),
    }
}

#[chathooks_sdk::plugin]
impl Plugin for BenchHooks {
    fn before_message_sent(draft: Draft, _: Conversation) -> Decision {
        decide(&draft.body)
    }

    fn before_message_updated(_: Message, draft: Draft, _: Conversation) -> Decision {
        decide(&draft.body)
    }

    fn after_message_sent(
        _: EventContext,
        message: Message,
        _: Conversation,
    ) -> Result<(), String> {
        kv::increment(&logic::counter_key(&message.conversation_id), 1)
            .map(|_| ())
            .map_err(|e| kv::describe(&e))
    }

    fn after_message_updated(_: EventContext, _: Message, _: Conversation) -> Result<(), String> {
        Ok(())
    }

    fn after_message_deleted(_: EventContext, _: Message, _: Conversation) -> Result<(), String> {
        Ok(())
    }

    fn typing_started(_: EventContext, _: Conversation, _: Vec<TypingEvent>) -> Result<(), String> {
        Ok(())
    }

    fn after_conversation_created(_: EventContext, _: Conversation) -> Result<(), String> {
        Ok(())
    }

    fn after_conversation_updated(_: EventContext, _: Conversation) -> Result<(), String> {
        Ok(())
    }

    fn after_conversation_deleted(_: EventContext, _: Conversation) -> Result<(), String> {
        Ok(())
    }

    fn after_users_added_to_conversation(
        _: EventContext,
        _: Conversation,
        _: Vec<User>,
    ) -> Result<(), String> {
        Ok(())
    }

    fn after_users_removed_from_conversation(
        _: EventContext,
        _: Conversation,
        _: Vec<User>,
    ) -> Result<(), String> {
        Ok(())
    }

    fn after_message_delivered(
        _: EventContext,
        _: Message,
        _: Conversation,
        _: Receipt,
    ) -> Result<(), String> {
        Ok(())
    }

    fn after_message_read(
        _: EventContext,
        _: Message,
        _: Conversation,
        _: Receipt,
    ) -> Result<(), String> {
        Ok(())
    }

    fn after_reaction_added(
        _: EventContext,
        _: Message,
        _: Conversation,
        _: Reaction,
    ) -> Result<(), String> {
        Ok(())
    }

    fn after_reaction_removed(
        _: EventContext,
        _: Message,
        _: Conversation,
        _: Reaction,
    ) -> Result<(), String> {
        Ok(())
    }

    fn after_user_mentioned(
        _: EventContext,
        _: Message,
        _: Conversation,
        _: Vec<User>,
    ) -> Result<(), String> {
        Ok(())
    }
}
