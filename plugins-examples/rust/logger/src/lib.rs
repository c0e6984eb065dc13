//! # logger
//!
//! Logs one `info` line per event, for every hook the server has, naming the hook and the ids that matter:
//!
//! ```text
//! after-message-sent event=7 attempt=1 conversation=c1 message=m1 seq=3 sender=alice
//! ```
//!
//! It shows the whole [`Plugin`] trait in one place (each hook's parameters), and that before-hooks return a
//! [`Decision`] while after-hooks return `Result<(), String>`. It allows every message unchanged.
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/logger.wasm`. Try it: `chathooks test logger.wasm rust/logger/cases.json`.

use chathooks_sdk::prelude::*;

/// The plugin. It has no state: every hook only writes a log line.
struct Logger;

/// `event=<id> attempt=<n>`: the delivery of an after-hook event.
fn delivery(ctx: &EventContext) -> String {
    format!("event={} attempt={}", ctx.event_id, ctx.attempt)
}

/// Comma-separated user ids, or `-` when there are none.
fn ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let joined = ids.collect::<Vec<_>>().join(",");
    if joined.is_empty() {
        "-".to_owned()
    } else {
        joined
    }
}

/// The line shared by the three message after-hooks.
fn message_line(hook: &str, ctx: &EventContext, message: &Message) -> String {
    format!(
        "{hook} {} conversation={} message={} seq={} sender={}",
        delivery(ctx),
        message.conversation_id,
        message.id,
        message.seq,
        message.sender.id
    )
}

/// The line shared by the conversation after-hooks.
fn conversation_line(
    hook: &str,
    ctx: &EventContext,
    conversation: &Conversation,
    participants: &[Participant],
) -> String {
    format!(
        "{hook} {} conversation={} participants={}",
        delivery(ctx),
        conversation.id,
        ids(participants.iter().map(Participant::id))
    )
}

/// The line shared by the receipt and reaction after-hooks: which user did something to which message.
fn user_on_message(hook: &str, ctx: &EventContext, message: &Message, user: &User) -> String {
    format!(
        "{hook} {} conversation={} message={} user={}",
        delivery(ctx),
        message.conversation_id,
        message.id,
        user.id
    )
}

#[chathooks_sdk::plugin]
impl Plugin for Logger {
    fn before_message_sent(draft: Draft, _: Conversation, _: Vec<Participant>) -> Decision {
        log::info(&format!(
            "before-message-sent conversation={} sender={}",
            draft.conversation_id, draft.sender.id
        ));
        Decision::Allow
    }

    fn before_message_updated(
        current: Message,
        draft: Draft,
        _: Conversation,
        _: Vec<Participant>,
    ) -> Decision {
        log::info(&format!(
            "before-message-updated conversation={} message={} sender={}",
            draft.conversation_id, current.id, draft.sender.id
        ));
        Decision::Allow
    }

    fn after_message_sent(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        _: Vec<Participant>,
    ) -> Result<(), String> {
        log::info(&message_line("after-message-sent", &ctx, &message));
        Ok(())
    }

    fn after_message_updated(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        _: Vec<Participant>,
    ) -> Result<(), String> {
        log::info(&message_line("after-message-updated", &ctx, &message));
        Ok(())
    }

    fn after_message_deleted(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        _: Vec<Participant>,
    ) -> Result<(), String> {
        log::info(&message_line("after-message-deleted", &ctx, &message));
        Ok(())
    }

    fn typing_started(
        ctx: EventContext,
        conversation: Conversation,
        _: Vec<Participant>,
        events: Vec<TypingEvent>,
    ) -> Result<(), String> {
        let changes: Vec<String> = events
            .iter()
            .map(|event| {
                let state = match event.state {
                    TypingState::Begin => "begin",
                    TypingState::Pause => "pause",
                    TypingState::Finished => "finished",
                };
                format!("{}:{state}", event.user.id)
            })
            .collect();
        log::info(&format!(
            "typing-started {} conversation={} typing={}",
            delivery(&ctx),
            conversation.id,
            ids(changes.iter().map(String::as_str))
        ));
        Ok(())
    }

    fn after_conversation_created(
        ctx: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let line = conversation_line(
            "after-conversation-created",
            &ctx,
            &conversation,
            &participants,
        );
        log::info(&line);
        Ok(())
    }

    fn after_conversation_updated(
        ctx: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let line = conversation_line(
            "after-conversation-updated",
            &ctx,
            &conversation,
            &participants,
        );
        log::info(&line);
        Ok(())
    }

    fn after_conversation_deleted(
        ctx: EventContext,
        conversation: Conversation,
        participants: Vec<Participant>,
    ) -> Result<(), String> {
        let line = conversation_line(
            "after-conversation-deleted",
            &ctx,
            &conversation,
            &participants,
        );
        log::info(&line);
        Ok(())
    }

    fn after_users_added_to_conversation(
        ctx: EventContext,
        conversation: Conversation,
        _: Vec<Participant>,
        new_users: Vec<User>,
    ) -> Result<(), String> {
        log::info(&format!(
            "after-users-added-to-conversation {} conversation={} users={}",
            delivery(&ctx),
            conversation.id,
            ids(new_users.iter().map(|u| u.id.as_str()))
        ));
        Ok(())
    }

    fn after_users_removed_from_conversation(
        ctx: EventContext,
        conversation: Conversation,
        _: Vec<Participant>,
        old_users: Vec<User>,
    ) -> Result<(), String> {
        log::info(&format!(
            "after-users-removed-from-conversation {} conversation={} users={}",
            delivery(&ctx),
            conversation.id,
            ids(old_users.iter().map(|u| u.id.as_str()))
        ));
        Ok(())
    }

    fn after_message_delivered(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        receipt: Receipt,
    ) -> Result<(), String> {
        log::info(&user_on_message(
            "after-message-delivered",
            &ctx,
            &message,
            &receipt.user,
        ));
        Ok(())
    }

    fn after_message_read(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        receipt: Receipt,
    ) -> Result<(), String> {
        log::info(&user_on_message(
            "after-message-read",
            &ctx,
            &message,
            &receipt.user,
        ));
        Ok(())
    }

    fn after_reaction_added(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        reaction: Reaction,
    ) -> Result<(), String> {
        let line = user_on_message("after-reaction-added", &ctx, &message, &reaction.user);
        log::info(&format!("{line} emoji={}", reaction.emoji));
        Ok(())
    }

    fn after_reaction_removed(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        reaction: Reaction,
    ) -> Result<(), String> {
        let line = user_on_message("after-reaction-removed", &ctx, &message, &reaction.user);
        log::info(&format!("{line} emoji={}", reaction.emoji));
        Ok(())
    }

    fn after_user_mentioned(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        mentioned_users: Vec<User>,
    ) -> Result<(), String> {
        log::info(&format!(
            "after-user-mentioned {} conversation={} message={} users={}",
            delivery(&ctx),
            message.conversation_id,
            message.id,
            ids(mentioned_users.iter().map(|u| u.id.as_str()))
        ));
        Ok(())
    }
}
