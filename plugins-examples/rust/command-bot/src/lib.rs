//! # command-bot
//!
//! Answers chat commands, as its bot user, in the conversation they were sent to:
//!
//! - `/roll 2d6` rolls dice (`NdM`: 1-100 dice of 2-1000 sides; `/roll` alone is `1d6`) and posts each die
//!   and the total. The dice are seeded by the message id, so a retried event posts the same roll.
//! - `/poll Lunch? | pizza | sushi` starts a poll in the conversation (replacing any earlier one);
//!   `/vote 2` votes for option 2 (one vote per user; voting again moves it) and sends the new tally to
//!   the conversation's live clients as a custom event `plugin.command_bot.poll.updated` (no message, so
//!   the chat is not flooded); `/poll` alone posts the current tally.
//! - `/help` lists the commands.
//!
//! Messages from the bot itself are ignored. A retried event answers only once: the event id is
//! remembered in KV after the answer is posted.
//!
//! Manifest (`command_bot.toml`): `[grants]` `chat_post`, `chat_join` (the bot joins the conversation
//! before its first answer there) and `events` (poll tallies). `[config]` `max_dice` caps how many dice
//! one roll may throw (default 100).
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/command_bot.wasm`. Try it:
//! `chathooks test command_bot.wasm rust/command-bot/cases.json`.

mod dice;
mod poll;

use std::time::Duration;

use chathooks_sdk::prelude::*;

/// How long an answered event id is remembered: longer than any retry takes.
const ANSWERED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The plugin.
struct CommandBot;

/// What a command asks the bot to do.
enum Answer {
    /// Post this text.
    Post(String),
    /// Send this custom event (type, data) to the conversation's live clients.
    Event(&'static str, chathooks_sdk::serde_json::Value),
    /// Nothing (not a command).
    Nothing,
}

/// The answer to `message`, if it is a command.
fn answer(message: &Message, conversation: &Conversation) -> Result<Answer, String> {
    let body = message.body.trim();
    let Some(rest) = body.strip_prefix('/') else {
        return Ok(Answer::Nothing);
    };
    let (command, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let args = args.trim();
    Ok(match command {
        "roll" => Answer::Post(dice::roll(args, &message.id)),
        "poll" if args.is_empty() => Answer::Post(poll::tally_text(&conversation.id)?),
        "poll" => Answer::Post(poll::start(&conversation.id, args)?),
        "vote" => match poll::vote(&conversation.id, &message.sender.id, args)? {
            Ok(tally) => Answer::Event("poll.updated", tally),
            Err(why) => Answer::Post(why),
        },
        "help" => Answer::Post(
            "Commands: /roll 2d6 · /poll Question? | option | option · /vote 1 · /poll (tally) · /help"
                .to_owned(),
        ),
        _ => Answer::Nothing,
    })
}

#[chathooks_sdk::plugin]
impl Plugin for CommandBot {
    fn after_message_sent(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
    ) -> Result<(), String> {
        if message.sender.id == chat::bot_id() {
            return Ok(());
        }
        let answered = format!("answered:{}", ctx.event_id);
        if kv::get(&answered)?.is_some() {
            return Ok(());
        }
        match answer(&message, &conversation)? {
            Answer::Nothing => return Ok(()),
            Answer::Post(text) => {
                chat::join(&conversation.id)?;
                let reply = chat::post(&conversation.id, &text)?;
                chathooks_sdk::info!("answered {} with {}", message.id, reply.id);
            }
            Answer::Event(kind, data) => {
                events::to_conversation(&conversation.id, kind, &data)?;
                chathooks_sdk::info!("sent {kind} for {}", message.id);
            }
        }
        kv::set(&answered, b"1", Some(ANSWERED_TTL))?;
        Ok(())
    }
}
