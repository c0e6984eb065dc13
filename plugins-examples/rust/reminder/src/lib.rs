//! # reminder
//!
//! `/remind 10m stretch your legs` sets a timer (the `scheduler` power); when it fires, the bot posts
//! `⏰ Reminder for @alice: stretch your legs` into the conversation. Delays are a number and a unit:
//! `s`, `m`, `h` or `d` (`90s`, `10m`, `2h`, `1d`), up to 30 days. The bot acknowledges each reminder
//! when it is set. Timers are stored by the server, so a reminder survives a restart.
//!
//! The timer is named after the message (`remind:<message id>`), so a retried event sets the same timer
//! again instead of a second one; the acknowledgement is posted once (remembered in KV).
//!
//! Manifest (`reminder.toml`): `[grants]` `scheduler`, `chat_post` and `chat_join`.
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/reminder.wasm`. Try it:
//! `chathooks test reminder.wasm rust/reminder/cases.json`.

use std::time::Duration;

use chathooks_sdk::prelude::*;
use chathooks_sdk::serde::{Deserialize, Serialize};

/// Longest delay accepted.
const MAX_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long an acknowledged message id is remembered: longer than any retry takes.
const ACK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The plugin.
struct Reminder;

/// What a timer carries until it fires.
#[derive(Serialize, Deserialize)]
#[serde(crate = "chathooks_sdk::serde")]
struct Due {
    /// Where to post.
    conversation_id: String,
    /// Who asked (mentioned in the reminder).
    user_id: String,
    /// The text to remind of.
    text: String,
}

/// `10m` → 600 s. `None` if it is not a number and a unit.
fn parse_delay(spec: &str) -> Option<Duration> {
    let unit = spec.chars().last()?;
    let number: u64 = spec[..spec.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => number,
        'm' => number.checked_mul(60)?,
        'h' => number.checked_mul(3600)?,
        'd' => number.checked_mul(24 * 3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds)).filter(|d| !d.is_zero() && *d <= MAX_DELAY)
}

/// Posts `text` into `conversation_id`, joining it first.
fn say(conversation_id: &str, text: &str) -> Result<(), String> {
    chat::join(conversation_id)?;
    chat::post(conversation_id, text)?;
    Ok(())
}

#[chathooks_sdk::plugin]
impl Plugin for Reminder {
    fn after_message_sent(
        _ctx: EventContext,
        message: Message,
        conversation: Conversation,
    ) -> Result<(), String> {
        if message.sender.id == chat::bot_id() {
            return Ok(());
        }
        let Some(args) = message.body.trim().strip_prefix("/remind") else {
            return Ok(());
        };
        let args = args.trim();
        let (spec, text) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let (delay, text) = match parse_delay(spec) {
            Some(delay) if !text.trim().is_empty() => (delay, text.trim()),
            _ => {
                return say(
                    &conversation.id,
                    "⏰ Use /remind <delay> <text>, the delay as 90s, 10m, 2h or 1d (up to 30d)",
                );
            }
        };
        let due = Due {
            conversation_id: conversation.id.clone(),
            user_id: message.sender.id.clone(),
            text: text.to_owned(),
        };
        let payload = chathooks_sdk::serde_json::to_string(&due).map_err(|e| e.to_string())?;
        scheduler::once(&format!("remind:{}", message.id), delay, &payload)?;
        let acked = format!("acked:{}", message.id);
        if kv::get(&acked)?.is_none() {
            say(
                &conversation.id,
                &format!("⏰ OK, I'll remind you in {spec}"),
            )?;
            kv::set(&acked, b"1", Some(ACK_TTL))?;
        }
        chathooks_sdk::info!("reminder {} set for {spec}", message.id);
        Ok(())
    }

    fn on_timer(name: String, payload: String) -> Result<(), String> {
        let due: Due = chathooks_sdk::serde_json::from_str(&payload)
            .map_err(|e| format!("timer {name}: bad payload: {e}"))?;
        say(
            &due.conversation_id,
            &format!("⏰ Reminder for @{}: {}", due.user_id, due.text),
        )?;
        chathooks_sdk::info!("reminded {} ({name})", due.user_id);
        Ok(())
    }
}
