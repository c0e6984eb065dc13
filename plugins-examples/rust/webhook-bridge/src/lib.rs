//! # webhook-bridge
//!
//! Forwards chat events to a webhook URL as JSON in the shape of CometChat's webhook triggers, so a team
//! with existing CometChat webhook consumers can point them at chathooks:
//!
//! | chathooks hook | `trigger` |
//! | --- | --- |
//! | after-message-sent | `message_sent` |
//! | after-message-updated | `message_edited` |
//! | after-message-deleted | `message_deleted` |
//! | after-reaction-added / removed | `message_reaction_added` / `message_reaction_removed` |
//! | after-user-mentioned | `user_mentioned` |
//! | after-message-delivered / read | `message_delivery_receipt` / `message_read_receipt` |
//! | after-users-added / removed | `group_member_added` / `group_member_kicked` |
//! | after-conversation-created / updated / deleted | `group_created` / `group_updated` / `group_deleted` |
//!
//! Each request is `POST <url>` with `Content-Type: application/json`, the body
//! `{"trigger": ..., "data": {...}, "appId": ..., "region": ..., "webhook": ...}`, and the headers
//! `X-Chathooks-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>` and
//! `X-Chathooks-Event-Id: <event id>` (the same on a retry, for the receiver to deduplicate). A conversation
//! is a CometChat group (its id is the `guid`); times are Unix seconds. An answer other than 2xx, or no
//! answer, makes the event retried (delivery is at least once).
//!
//! Manifest (`webhook_bridge.toml`):
//!
//! ```toml
//! [config]
//! url = "http://127.0.0.1:9000/cometchat"   # required; https:// for a real endpoint
//! secret = "change me"                        # the HMAC key (empty: signed with an empty key)
//! app_id = "chathooks"                        # `appId` in every payload
//! region = "eu"                               # `region`
//! webhook = "webhook-bridge"                  # `webhook`
//!
//! [grants]
//! http_hosts = ["127.0.0.1:9000"]             # the URL's host:port
//! ```
//!
//! A real consumer is HTTPS: `url = "https://hooks.example.com/cometchat"` with
//! `http_hosts = ["hooks.example.com:443"]` (443 is the `https` default port). Its certificate must chain
//! to a public root, or to a CA the server operator trusts with `chathooks serve --http-ca <pem file>`;
//! otherwise each event fails with `http: failed: the certificate of hooks.example.com:443 was refused:
//! ...` and is retried.
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/webhook_bridge.wasm`. Try it:
//! `chathooks test webhook_bridge.wasm rust/webhook-bridge/cases.json`.

mod shape;

use chathooks_sdk::prelude::*;
use chathooks_sdk::serde_json::{Value, json};

/// The plugin.
struct WebhookBridge;

/// Posts `data` as trigger `trigger` for event `ctx`; `Err` (retry) unless the webhook answers 2xx.
fn forward(ctx: &EventContext, trigger: &str, data: Value) -> Result<(), String> {
    let url: String =
        config::get("url").ok_or("webhook-bridge: set `url` under [config] in the manifest")?;
    let secret = config::get_or("secret", String::new());
    let body = json!({
        "trigger": trigger,
        "data": data,
        "appId": config::get_or("app_id", "chathooks".to_owned()),
        "region": config::get_or("region", "eu".to_owned()),
        "webhook": config::get_or("webhook", "webhook-bridge".to_owned()),
    })
    .to_string()
    .into_bytes();
    let signature = chathooks_sdk::hmac::signature_header(&secret, &body);
    let event_id = ctx.event_id.to_string();
    let response = http::post_bytes(
        &url,
        "application/json",
        body,
        &[
            ("x-chathooks-signature", &signature),
            ("x-chathooks-event-id", &event_id),
            ("x-chathooks-trigger", trigger),
        ],
    )?;
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "webhook answered {} to {trigger} (event {event_id}): {}",
            response.status,
            response.text()
        ));
    }
    chathooks_sdk::info!(
        "forwarded {trigger} (event {event_id}): {}",
        response.status
    );
    Ok(())
}

#[chathooks_sdk::plugin]
impl Plugin for WebhookBridge {
    fn after_message_sent(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
    ) -> Result<(), String> {
        forward(
            &ctx,
            "message_sent",
            json!({ "message": shape::message(&message, &conversation) }),
        )
    }

    fn after_message_updated(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
    ) -> Result<(), String> {
        let data = shape::action(&message, &conversation, "edited");
        forward(&ctx, "message_edited", json!({ "message": data }))
    }

    fn after_message_deleted(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
    ) -> Result<(), String> {
        let data = shape::action(&message, &conversation, "deleted");
        forward(&ctx, "message_deleted", json!({ "message": data }))
    }

    fn after_reaction_added(
        ctx: EventContext,
        message: Message,
        _conversation: Conversation,
        reaction: Reaction,
    ) -> Result<(), String> {
        forward(
            &ctx,
            "message_reaction_added",
            json!({ "reaction": shape::reaction(&message, &reaction) }),
        )
    }

    fn after_reaction_removed(
        ctx: EventContext,
        message: Message,
        _conversation: Conversation,
        reaction: Reaction,
    ) -> Result<(), String> {
        forward(
            &ctx,
            "message_reaction_removed",
            json!({ "reaction": shape::reaction(&message, &reaction) }),
        )
    }

    fn after_user_mentioned(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
        mentioned_users: Vec<User>,
    ) -> Result<(), String> {
        let mut data = shape::message(&message, &conversation);
        data["data"]["mentions"] = shape::users_by_uid(&mentioned_users);
        forward(&ctx, "user_mentioned", json!({ "message": data }))
    }

    fn after_message_delivered(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
        receipt: Receipt,
    ) -> Result<(), String> {
        let data = shape::receipt(&message, &conversation, &receipt, "delivered");
        forward(&ctx, "message_delivery_receipt", data)
    }

    fn after_message_read(
        ctx: EventContext,
        message: Message,
        conversation: Conversation,
        receipt: Receipt,
    ) -> Result<(), String> {
        forward(
            &ctx,
            "message_read_receipt",
            shape::receipt(&message, &conversation, &receipt, "read"),
        )
    }

    fn after_users_added_to_conversation(
        ctx: EventContext,
        conversation: Conversation,
        new_users: Vec<User>,
    ) -> Result<(), String> {
        let data = json!({ "group": shape::group(&conversation), "members": shape::users_by_uid(&new_users) });
        forward(&ctx, "group_member_added", data)
    }

    fn after_users_removed_from_conversation(
        ctx: EventContext,
        conversation: Conversation,
        old_users: Vec<User>,
    ) -> Result<(), String> {
        let data = json!({ "group": shape::group(&conversation), "members": shape::users_by_uid(&old_users) });
        forward(&ctx, "group_member_kicked", data)
    }

    fn after_conversation_created(
        ctx: EventContext,
        conversation: Conversation,
    ) -> Result<(), String> {
        forward(
            &ctx,
            "group_created",
            json!({ "group": shape::group(&conversation) }),
        )
    }

    fn after_conversation_updated(
        ctx: EventContext,
        conversation: Conversation,
    ) -> Result<(), String> {
        forward(
            &ctx,
            "group_updated",
            json!({ "group": shape::group(&conversation) }),
        )
    }

    fn after_conversation_deleted(
        ctx: EventContext,
        conversation: Conversation,
    ) -> Result<(), String> {
        forward(
            &ctx,
            "group_deleted",
            json!({ "group": shape::group(&conversation) }),
        )
    }
}
