//! Act in conversations as the plugin's bot user (WIT interface `chathooks:plugin/chat`).
//!
//! Each call but [`participants`] needs a grant in the plugin's manifest (`chat_post`, `chat_join`,
//! `chat_read` under `[grants]`); without it the call returns [`ChatError::Denied`]. The bot user is `bot.<plugin name>`,
//! created by the server on first use. Its messages go through the same operation as a user's: other
//! plugins' before-hooks and after-hooks see them, with `origin` set to the plugin and a `depth`; the
//! server stops calling after-hooks at depth 3, so bots answering bots stop by themselves. Posts and joins
//! are rate-limited per plugin: past the limit a call returns [`ChatError::RateLimited`] with the
//! milliseconds until one would be allowed ([`ChatError::retry_after`]).
//!
//! ```no_run
//! use chathooks_sdk::chat;
//!
//! # fn demo(conversation_id: &str) -> Result<(), String> {
//! chat::join(conversation_id)?;                  // needs `chat_join`; does nothing if already in it
//! let hello = chat::post(conversation_id, "Hello from a bot")?; // needs `chat_post`
//! chat::post_reply(&hello.id, "and welcome")?;                  // in its thread
//! let admins = chat::participants(conversation_id)? // needs no grant
//!     .into_iter()
//!     .filter(|p| p.is_admin())
//!     .count();
//! chathooks_sdk::info!("{admins} admins in {conversation_id}");
//! # Ok(()) }
//! ```

use crate::__bindings::chathooks::plugin::chat as raw;
use crate::types::{Conversation, Message, Participant};

/// Why a chat call failed (the WIT variant `chat.error`).
pub use raw::Error as ChatError;

/// The bot user's id, `bot.<plugin name>`: compare a message's sender with it to ignore your own posts.
pub fn bot_id() -> String {
    raw::bot_id()
}

/// Posts `body` into `conversation_id` as the bot (grant `chat_post`; the bot must be a participant).
/// Returns the message as stored.
pub fn post(conversation_id: &str, body: &str) -> Result<Message, ChatError> {
    raw::post_message(conversation_id, body, None)
}

/// Posts `body` with `metadata` (a JSON object).
pub fn post_with_metadata(
    conversation_id: &str,
    body: &str,
    metadata: &serde_json::Value,
) -> Result<Message, ChatError> {
    raw::post_message(conversation_id, body, Some(&metadata.to_string()))
}

/// Posts `body` as the bot in the thread of `parent_id`, a top-level message of a conversation the bot is
/// in (grant `chat_post`). Returns the reply as stored, with its `parent_id`.
pub fn post_reply(parent_id: &str, body: &str) -> Result<Message, ChatError> {
    raw::post_reply(parent_id, body, None)
}

/// Adds the bot to `conversation_id` (grant `chat_join`); nothing happens if it is already there.
pub fn join(conversation_id: &str) -> Result<(), ChatError> {
    raw::join_conversation(conversation_id)
}

/// The conversation as it is now (grant `chat_read`).
pub fn conversation(conversation_id: &str) -> Result<Conversation, ChatError> {
    raw::get_conversation(conversation_id)
}

/// The newest `limit` messages (at most 100), newest first (grant `chat_read`).
pub fn recent_messages(conversation_id: &str, limit: u32) -> Result<Vec<Message>, ChatError> {
    raw::recent_messages(conversation_id, limit)
}

/// Everyone in `conversation_id` now, with their [`Role`](crate::types::Role)s and read state, in the
/// order they joined. Needs no grant: hooks up to WIT 0.2.0 received this list as an argument; since 0.3.0
/// a hook that needs it asks. [`ChatError::NotFound`] if there is no such conversation.
pub fn participants(conversation_id: &str) -> Result<Vec<Participant>, ChatError> {
    raw::participants(conversation_id)
}

impl ChatError {
    /// If the call was refused by the plugin's rate limit of posts and joins (`[limits]` `posts_per_second`
    /// and `posts_burst` in its manifest): how long until a call would be allowed. Nothing was done;
    /// wait (a timer) or give up rather than retry in a loop, which only uses up the call's time budget.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ChatError::RateLimited(ms) => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// A one-line explanation of a [`ChatError`].
pub fn describe(error: &ChatError) -> String {
    match error {
        ChatError::Denied(why) => format!("chat: denied: {why}"),
        ChatError::NotFound(why) => format!("chat: not found: {why}"),
        ChatError::Rejected(why) => format!("chat: rejected: {why}"),
        ChatError::TooDeep(depth) => {
            format!("chat: loop guard: a post at depth {depth} is refused")
        }
        ChatError::Failed(why) => format!("chat: failed: {why}"),
        ChatError::RateLimited(ms) => format!("chat: rate limited: retry in {ms} ms"),
    }
}

impl From<ChatError> for String {
    fn from(error: ChatError) -> Self {
        describe(&error)
    }
}
