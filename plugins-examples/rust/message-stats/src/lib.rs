//! # message-stats
//!
//! Counts sent messages in the plugin's KV store:
//!
//! - `conversation:<conversation-id>`: messages sent to that conversation;
//! - `user:<user-id>`: messages sent by that user (plugin bots included).
//!
//! After-hooks are delivered *at least once*: an event whose first delivery failed or timed out comes again
//! with the same `event_id` and a higher `attempt`. To count each message once, the plugin claims
//! `seen:<event-id>` with an atomic compare-and-swap before counting; a delivery that finds the claim taken
//! does nothing. When counting fails the claim is released and the hook returns `Err`, so the retry counts
//! (if the conversation counter was already incremented then, it is incremented again: KV has no
//! multi-key transactions, and a rare over-count is the price of never losing a message).
//! Once counted, the claim is rewritten with a time to live so old claims leave the store.
//!
//! It shows [`kv::increment`], [`kv::compare_and_swap`] and deduplication by event id.
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/message_stats.wasm`. Try it:
//! `chathooks test message_stats.wasm rust/message-stats/cases.json`.

use std::time::Duration;

use chathooks_sdk::prelude::*;

/// How long a `seen:<event-id>` claim is kept: far longer than the server keeps retrying an event.
const SEEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The value of a claim. Stored as `1`, which is also valid JSON.
const CLAIMED: &[u8] = b"1";

/// The plugin. All its state is in KV.
struct MessageStats;

/// Adds one message to the counters of its conversation and its sender; returns the new totals.
fn count(message: &Message) -> Result<(i64, i64), KvError> {
    let in_conversation = kv::increment(&format!("conversation:{}", message.conversation_id), 1)?;
    let by_sender = kv::increment(&format!("user:{}", message.sender.id), 1)?;
    Ok((in_conversation, by_sender))
}

#[chathooks_sdk::plugin]
impl Plugin for MessageStats {
    fn after_message_sent(
        ctx: EventContext,
        message: Message,
        _: Conversation,
    ) -> Result<(), String> {
        let seen = format!("seen:{}", ctx.event_id);
        if !kv::compare_and_swap(&seen, None, Some(CLAIMED))? {
            chathooks_sdk::info!(
                "event {} (attempt {}) already counted, skipping",
                ctx.event_id,
                ctx.attempt
            );
            return Ok(());
        }
        match count(&message) {
            Ok((in_conversation, by_sender)) => {
                chathooks_sdk::info!(
                    "counted message {}: conversation {} has {in_conversation}, user {} has {by_sender}",
                    message.id,
                    message.conversation_id,
                    message.sender.id
                );
                // Counted: keep the claim, but only for a while. Failing here is no reason to retry
                // (the claim stays, without a time to live), so it is only logged.
                if let Err(error) = kv::set(&seen, CLAIMED, Some(SEEN_TTL)) {
                    chathooks_sdk::warn!("cannot set the TTL of {seen}: {}", kv::describe(&error));
                }
                Ok(())
            }
            Err(error) => {
                // Not counted: release the claim so that the retry counts the message.
                if let Err(release) = kv::delete(&seen) {
                    chathooks_sdk::warn!("cannot release {seen}: {}", kv::describe(&release));
                }
                Err(kv::describe(&error))
            }
        }
    }
}
