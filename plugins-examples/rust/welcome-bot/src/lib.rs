//! # welcome-bot
//!
//! Posts a welcome message, as its bot user, when users are added to a conversation. The text comes from
//! the manifest's setting (or `[config]` value) `greeting`, with `{name}` replaced by the new user's name and
//! `{conversation}` by the conversation's title (default: `Welcome, {name}! 👋`). One message welcomes
//! everyone added at once. Bots (users whose metadata says `"bot": true`, the welcome bot itself
//! included, which joins the conversation first) are not welcomed.
//!
//! A retried event must not welcome twice: the event id is claimed in KV before posting, and released
//! again if the post fails, so the retry can post. A post refused by the plugin's rate limit (many users
//! added to many conversations at once) is such a failure: the server retries the event later, by which
//! time the limit has room again ([`chat::ChatError::retry_after`] says how long that takes).
//!
//! Manifest (`welcome_bot.toml` beside `welcome_bot.wasm`):
//!
//! ```toml
//! version = "0.1.0"
//!
//! [settings.greeting]   # an admin may change it over the API
//! type = "string"
//! default = "Welcome to {conversation}, {name}!"
//!
//! [grants]
//! chat_post = true   # post as bot.welcome_bot
//! chat_join = true   # join the conversation first
//! ```
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/welcome_bot.wasm`. Try it:
//! `chathooks test welcome_bot.wasm rust/welcome-bot/cases.json`.

use std::time::Duration;

use chathooks_sdk::prelude::*;

/// The greeting when the manifest sets none.
const DEFAULT_GREETING: &str = "Welcome, {name}! 👋";

/// How long the "already welcomed" mark of an event is kept: longer than any retry takes.
const CLAIM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The plugin.
struct WelcomeBot;

/// Whether `user` is a bot (the server marks bot users with `"bot": true` in their metadata).
fn is_bot(user: &User) -> bool {
    user.id == chat::bot_id()
        || user
            .metadata_value()
            .is_ok_and(|m| m.get("bot").and_then(|b| b.as_bool()) == Some(true))
}

/// The names of `users`, joined as "Alice", "Alice and Bob", "Alice, Bob and Carol".
fn names(users: &[&User]) -> String {
    let names: Vec<&str> = users
        .iter()
        .map(|u| {
            if u.name.trim().is_empty() {
                u.id.as_str()
            } else {
                u.name.as_str()
            }
        })
        .collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[chathooks_sdk::plugin]
impl Plugin for WelcomeBot {
    fn after_users_added_to_conversation(
        ctx: EventContext,
        conversation: Conversation,
        new_users: Vec<User>,
    ) -> Result<(), String> {
        let people: Vec<&User> = new_users.iter().filter(|u| !is_bot(u)).collect();
        if people.is_empty() {
            return Ok(());
        }
        let claim = format!("welcomed:{}", ctx.event_id);
        if !kv::compare_and_swap(&claim, None, Some(b"1"))? {
            chathooks_sdk::debug!("event {} already welcomed", ctx.event_id);
            return Ok(());
        }
        let greeting = config::get_or("greeting", DEFAULT_GREETING.to_owned());
        let title = conversation
            .title
            .clone()
            .unwrap_or_else(|| "the conversation".to_owned());
        let text = greeting
            .replace("{name}", &names(&people))
            .replace("{conversation}", &title);
        let posted =
            chat::join(&conversation.id).and_then(|()| chat::post(&conversation.id, &text));
        match posted {
            Ok(message) => {
                kv::set(&claim, b"1", Some(CLAIM_TTL))?;
                chathooks_sdk::info!(
                    "welcomed {} in {} ({})",
                    names(&people),
                    conversation.id,
                    message.id
                );
                Ok(())
            }
            Err(error) => {
                kv::delete(&claim)?;
                if let Some(wait) = error.retry_after() {
                    chathooks_sdk::warn!(
                        "welcome in {} postponed: over the rate of posts for another {} ms",
                        conversation.id,
                        wait.as_millis()
                    );
                }
                Err(chat::describe(&error))
            }
        }
    }
}
