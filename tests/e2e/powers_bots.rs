//! Bots over real HTTP and WebSocket: replies arrive live, two bots stop at the loop guard's depth, a
//! custom event reaches the conversation's participants only.

use std::time::Duration;

use chathooks_tests::{example, fixture, temp_dir};
use serde_json::{Value, json};

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::sandbox_support::settled;
use crate::server_support::{ADMIN_KEY, PATIENCE, str_field};

const BOT_GRANTS: &str = "[grants]\nchat_post = true\nchat_join = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_replies_arrive_over_websocket() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[
            PluginFile {
                wasm: example("command_bot"),
                name: "command_bot",
                manifest: Some(BOT_GRANTS.to_owned()),
            },
            PluginFile {
                wasm: example("welcome_bot"),
                name: "welcome_bot",
                manifest: Some(format!(
                    "[config]\ngreeting = \"Hi {{name}}, this is {{conversation}}\"\n{BOT_GRANTS}"
                )),
            },
        ],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let created = server
        .post_ok(
            "/v1/conversations",
            &alice,
            json!({"title": "Games", "participant_ids": []}),
        )
        .await;
    let conv = str_field(&created, "id");
    let mut alice_ws = server.ws(&alice, None).await;
    let mut bob_ws = server.ws(&bob, None).await;

    // A command: the bot's answer reaches the sender live.
    server.send(&alice, &conv, "/roll 3d6").await;
    let reply = next_message_from(&mut alice_ws, "bot.command_bot").await;
    let body = reply["payload"]["message"]["body"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(body.starts_with("🎲 3d6: "), "{reply}");
    assert_eq!(
        reply["payload"]["message"]["origin"],
        json!({"kind": "plugin", "name": "command_bot", "depth": 1})
    );

    // Adding bob: the welcome bot greets him, and he sees it live.
    server
        .post_ok(
            &format!("/v1/conversations/{conv}/participants"),
            &alice,
            json!({"user_ids": ["bob"]}),
        )
        .await;
    let welcome = next_message_from(&mut bob_ws, "bot.welcome_bot").await;
    assert_eq!(
        welcome["payload"]["message"]["body"],
        json!("Hi BOB, this is Games")
    );
    // The bot users exist, named after their plugins, marked as bots.
    let (_, users) = server
        .call(
            reqwest::Method::GET,
            &format!("/v1/conversations/{conv}"),
            Some(&bob),
            None,
        )
        .await;
    let ids = users["participant_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        ids.contains(&json!("bot.welcome_bot")) && ids.contains(&json!("bot.command_bot")),
        "{users}"
    );
    let _ = ADMIN_KEY;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_ping_pong_until_the_depth_limit() {
    let dir = temp_dir();
    let echo = fixture("echo_bot");
    plugins_folder(
        dir.path(),
        &[
            PluginFile {
                wasm: echo.clone(),
                name: "ping",
                manifest: Some(BOT_GRANTS.to_owned()),
            },
            PluginFile {
                wasm: echo,
                name: "pong",
                manifest: Some(BOT_GRANTS.to_owned()),
            },
        ],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    server.send(&alice, &conv, "hi").await;

    // hi (depth 0) → two echoes (1) → two echoes of echoes (2) → two more (3); depth 3 fires no hooks.
    let path = format!("/v1/conversations/{conv}/messages?limit=100");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let messages = loop {
        let page = server.get_ok(&path, &alice).await;
        let messages = page.as_array().cloned().unwrap_or_default();
        if messages.len() >= 7 || tokio::time::Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Once every event so far is delivered, a runaway loop would have posted again.
    settled(&server).await;
    let again = server.get_ok(&path, &alice).await;
    let count = again.as_array().map_or(0, Vec::len);
    assert_eq!(messages.len(), 7, "{again}");
    assert_eq!(count, 7, "the bots kept talking: {again}");
    let depths: Vec<u64> = again
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["origin"]["depth"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(depths.iter().max(), Some(&3), "{again}");
    assert_eq!(depths.iter().filter(|d| **d == 3).count(), 2, "{again}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_event_reaches_participants_only() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("command_bot"),
            name: "command_bot",
            manifest: Some(format!("{BOT_GRANTS}events = true\n")),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let mut alice_ws = server.ws(&alice, None).await;
    let mut bob_ws = server.ws(&bob, None).await;
    let mut carol_ws = server.ws(&carol, None).await;

    server
        .send(&alice, &conv, "/poll Lunch? | pizza | sushi")
        .await;
    next_message_from(&mut alice_ws, "bot.command_bot").await;
    server.send(&bob, &conv, "/vote 2").await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let event = ws.next_of_kind("plugin.command_bot.poll.updated").await;
        assert_eq!(event["conversation_id"], json!(conv));
        assert_eq!(event["id"], json!(0));
        assert_eq!(event["payload"]["voters"], json!(1));
        assert_eq!(
            event["payload"]["options"][1],
            json!({"option": "sushi", "votes": 1})
        );
    }
    // carol is not in the conversation: the next thing she sees is a message in her own conversation.
    let other = server.conversation(&alice, &["carol"]).await;
    server.send(&alice, &other, "sentinel").await;
    loop {
        let event = carol_ws.next_event().await;
        let kind = event["kind"].as_str().unwrap_or_default().to_owned();
        assert!(!kind.starts_with("plugin."), "carol got {event}");
        assert_ne!(event["conversation_id"], json!(conv), "carol got {event}");
        if kind == "message.new" {
            assert_eq!(event["payload"]["message"]["body"], json!("sentinel"));
            break;
        }
    }
    server.stop().await;
}

/// The next `message.new` sent by `sender`.
async fn next_message_from(ws: &mut crate::server_support::WsClient, sender: &str) -> Value {
    loop {
        let event = ws.next_of_kind("message.new").await;
        if event["payload"]["message"]["sender"]["id"] == sender {
            return event;
        }
    }
}
