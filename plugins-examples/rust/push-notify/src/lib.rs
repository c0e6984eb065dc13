//! # push-notify
//!
//! The push-notification example of Skygear Chat's event hooks, as a chathooks plugin. After a message is
//! sent it builds one notification for every participant except the sender:
//!
//! - `title`: the conversation's title, or the sender's name when the conversation has none (direct chats);
//! - `body`: `"<sender name>: <message body>"` (long bodies are cut at 120 characters with `…`), or
//!   `"<sender name> sent you a file"` when the body is empty (an attachment in the metadata);
//! - `badge`: the recipient's unread count in this conversation, as `chat::participants` reports it
//!   (hooks receive no participant list since WIT 0.3.0; that call needs no grant).
//!
//! Each notification is sent with the `push` power (the server shows it to the recipient's live
//! connections as `notification.new` and posts it to its push gateway for the recipient's devices), with
//! `data` `{"conversation_id", "message_id"}` so the app can open the conversation. It is then recorded in
//! KV under `push:<event-id>:<user-id>`, as JSON `{"title": ..., "body": ..., "badge": ...}` (kept for a
//! day), and logged. A retried event (after a failure half-way) skips the recipients already recorded, so
//! nobody is pushed twice.
//!
//! Without the `push` grant the plugin still records and logs what it would push (and warns once per
//! event), which is how its cases run without a server.
//!
//! Manifest (`push_notify.toml`): `[grants]` `push = true`.
//!
//! It shows a serde-derived struct stored with [`kv::set_json`] through the SDK's re-exported serde.
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/push_notify.wasm`. Try it:
//! `chathooks test push_notify.wasm rust/push-notify/cases.json`.

use std::time::Duration;

use chathooks_sdk::prelude::*;
use chathooks_sdk::serde::Serialize;

/// Longest message body quoted in a notification, in characters; phones cut longer text anyway.
const MAX_BODY_CHARS: usize = 120;

/// How long a recorded notification stays in KV.
const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// The plugin. Stateless: each notification is computed from the event alone.
struct PushNotify;

/// What would be pushed to one device owner.
#[derive(Serialize)]
#[serde(crate = "chathooks_sdk::serde")]
struct Notification {
    /// The notification's title.
    title: String,
    /// Its text.
    body: String,
    /// The number on the app icon: the recipient's unread messages in this conversation.
    badge: u32,
}

/// The name to show for `user`: its display name, or its id when it has none.
fn display_name(user: &User) -> &str {
    if user.name.trim().is_empty() {
        &user.id
    } else {
        &user.name
    }
}

/// `text` cut to [`MAX_BODY_CHARS`] characters, with `…` when something was cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_BODY_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The title and body shared by every recipient of `message`.
fn title_and_body(message: &Message, conversation: &Conversation) -> (String, String) {
    let sender = display_name(&message.sender);
    let title = match conversation.title.as_deref().map(str::trim) {
        Some(title) if !title.is_empty() => title.to_owned(),
        _ => sender.to_owned(),
    };
    let body = if message.body.is_empty() {
        format!("{sender} sent you a file")
    } else {
        format!("{sender}: {}", shorten(&message.body))
    };
    (title, body)
}

#[chathooks_sdk::plugin]
impl Plugin for PushNotify {
    fn after_message_sent(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
    ) -> Result<(), String> {
        // Hooks get no participant list: ask for it (no grant needed).
        let participants = chat::participants(&conversation.id).map_err(String::from)?;
        let (title, body) = title_and_body(&message, &conversation);
        let data = chathooks_sdk::serde_json::json!({
            "conversation_id": conversation.id,
            "message_id": message.id,
        });
        let mut pushed = 0;
        let mut warned = false;
        for recipient in participants
            .iter()
            .filter(|p| p.user.id != message.sender.id)
        {
            let notification = Notification {
                title: title.clone(),
                body: body.clone(),
                badge: recipient.unread_count,
            };
            let key = format!("push:{}:{}", ctx.event_id, recipient.user.id);
            if kv::get(&key)?.is_some() {
                // Pushed by an earlier attempt at this event.
                pushed += 1;
                continue;
            }
            let sent = push::send(
                &push::Notification::new(
                    [recipient.user.id.as_str()],
                    &notification.title,
                    &notification.body,
                )
                .badge(notification.badge)
                .data(&data),
            );
            match sent {
                Ok(()) => {}
                Err(push::PushError::Denied(why)) => {
                    if !warned {
                        chathooks_sdk::warn!("not pushing, only recording: {why}");
                        warned = true;
                    }
                }
                Err(other) => return Err(push::describe(&other)),
            }
            kv::set_json(&key, &notification, Some(RECORD_TTL))?;
            chathooks_sdk::info!(
                "push to {}: [{}] {} (badge {})",
                recipient.user.id,
                notification.title,
                notification.body,
                notification.badge
            );
            pushed += 1;
        }
        chathooks_sdk::info!("message {}: {pushed} notification(s)", message.id);
        Ok(())
    }
}
