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

/// The line shared by the conversation after-hooks: hooks get the participant count, not the participants
/// (a hook that needs them asks `chat::participants`).
fn conversation_line(hook: &str, ctx: &EventContext, conversation: &Conversation) -> String {
    format!(
        "{hook} {} conversation={} participants={} owner={}",
        delivery(ctx),
        conversation.id,
        conversation.participant_count,
        conversation.owner_id.as_deref().unwrap_or("-")
    )
}

/// The line of the two block hooks: who blocked whom.
fn block_line(hook: &str, ctx: &EventContext, blocker: &User, blocked: &User) -> String {
    format!(
        "{hook} {} blocker={} blocked={}",
        delivery(ctx),
        blocker.id,
        blocked.id
    )
}

/// The line of the two ban hooks: which user, in which conversation, by whom.
fn ban_line(hook: &str, ctx: &EventContext, ban: &Ban, by: &str) -> String {
    format!(
        "{hook} {} conversation={} user={} by={by}",
        delivery(ctx),
        ban.conversation_id,
        ban.user.id
    )
}

/// A role as the WIT writes it.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Moderator => "moderator",
        Role::Member => "member",
    }
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
    fn before_message_sent(draft: Draft, _: Conversation) -> Decision {
        log::info(&format!(
            "before-message-sent conversation={} sender={}",
            draft.conversation_id, draft.sender.id
        ));
        Decision::Allow
    }

    fn before_message_updated(current: Message, draft: Draft, _: Conversation) -> Decision {
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
    ) -> Result<(), String> {
        log::info(&message_line("after-message-sent", &ctx, &message));
        Ok(())
    }

    fn after_message_updated(
        ctx: EventContext,
        message: Message,
        _: Conversation,
    ) -> Result<(), String> {
        log::info(&message_line("after-message-updated", &ctx, &message));
        Ok(())
    }

    fn after_message_deleted(
        ctx: EventContext,
        message: Message,
        _: Conversation,
    ) -> Result<(), String> {
        log::info(&message_line("after-message-deleted", &ctx, &message));
        Ok(())
    }

    fn typing_started(
        ctx: EventContext,
        conversation: Conversation,
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
    ) -> Result<(), String> {
        log::info(&conversation_line(
            "after-conversation-created",
            &ctx,
            &conversation,
        ));
        Ok(())
    }

    fn after_conversation_updated(
        ctx: EventContext,
        conversation: Conversation,
    ) -> Result<(), String> {
        log::info(&conversation_line(
            "after-conversation-updated",
            &ctx,
            &conversation,
        ));
        Ok(())
    }

    fn after_conversation_deleted(
        ctx: EventContext,
        conversation: Conversation,
    ) -> Result<(), String> {
        log::info(&conversation_line(
            "after-conversation-deleted",
            &ctx,
            &conversation,
        ));
        Ok(())
    }

    fn after_users_added_to_conversation(
        ctx: EventContext,
        conversation: Conversation,
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

    fn after_user_presence_changed(
        ctx: EventContext,
        user: User,
        presence: Presence,
    ) -> Result<(), String> {
        let state = if presence.online { "online" } else { "offline" };
        log::info(&format!(
            "after-user-presence-changed {} user={} {state}",
            delivery(&ctx),
            user.id
        ));
        Ok(())
    }

    fn after_user_blocked(ctx: EventContext, blocker: User, blocked: User) -> Result<(), String> {
        log::info(&block_line("after-user-blocked", &ctx, &blocker, &blocked));
        Ok(())
    }

    fn after_user_unblocked(ctx: EventContext, blocker: User, blocked: User) -> Result<(), String> {
        log::info(&block_line(
            "after-user-unblocked",
            &ctx,
            &blocker,
            &blocked,
        ));
        Ok(())
    }

    fn after_participant_role_changed(
        ctx: EventContext,
        conversation: Conversation,
        participant: Participant,
        old_role: Role,
        changed_by: User,
    ) -> Result<(), String> {
        log::info(&format!(
            "after-participant-role-changed {} conversation={} user={} role={}->{} by={}",
            delivery(&ctx),
            conversation.id,
            participant.id(),
            role_name(old_role),
            role_name(participant.role),
            changed_by.id
        ));
        Ok(())
    }

    fn after_member_banned(ctx: EventContext, _: Conversation, ban: Ban) -> Result<(), String> {
        log::info(&ban_line("after-member-banned", &ctx, &ban, &ban.banned_by));
        Ok(())
    }

    fn after_member_unbanned(
        ctx: EventContext,
        _: Conversation,
        ban: Ban,
        unbanned_by: User,
    ) -> Result<(), String> {
        log::info(&ban_line(
            "after-member-unbanned",
            &ctx,
            &ban,
            &unbanned_by.id,
        ));
        Ok(())
    }

    fn after_owner_transferred(
        ctx: EventContext,
        conversation: Conversation,
        old_owner: Option<User>,
        new_owner: User,
    ) -> Result<(), String> {
        log::info(&format!(
            "after-owner-transferred {} conversation={} from={} to={}",
            delivery(&ctx),
            conversation.id,
            old_owner.as_ref().map_or("-", |u| u.id.as_str()),
            new_owner.id
        ));
        Ok(())
    }

    fn after_message_held(
        ctx: EventContext,
        held: HeldMessage,
        conversation: Conversation,
    ) -> Result<(), String> {
        log::info(&format!(
            "after-message-held {} conversation={} message={} sender={} by={}",
            delivery(&ctx),
            conversation.id,
            held.id,
            held.draft.sender.id,
            held.held_by
        ));
        Ok(())
    }

    fn after_message_approved(
        ctx: EventContext,
        message: Message,
        _: Conversation,
        moderator: User,
    ) -> Result<(), String> {
        let line = user_on_message("after-message-approved", &ctx, &message, &moderator);
        log::info(&line);
        Ok(())
    }

    fn after_message_rejected(
        ctx: EventContext,
        held: HeldMessage,
        conversation: Conversation,
        moderator: User,
        _: Option<String>,
    ) -> Result<(), String> {
        log::info(&format!(
            "after-message-rejected {} conversation={} message={} user={}",
            delivery(&ctx),
            conversation.id,
            held.id,
            moderator.id
        ));
        Ok(())
    }

    fn after_message_delivered_to_all(
        ctx: EventContext,
        message: Message,
        _: Conversation,
    ) -> Result<(), String> {
        log::info(&message_line(
            "after-message-delivered-to-all",
            &ctx,
            &message,
        ));
        Ok(())
    }

    fn after_message_read_by_all(
        ctx: EventContext,
        message: Message,
        _: Conversation,
    ) -> Result<(), String> {
        log::info(&message_line("after-message-read-by-all", &ctx, &message));
        Ok(())
    }
}
