//! The hooks and fields added in WIT 0.3.0 reach a plugin built with the SDK, over real HTTP and
//! WebSocket: the `recorder` fixture records what each hook got. A before-hook gets the participants with
//! their roles from `chat.participants`; a held message fires `after-message-held`, then
//! `after-message-approved` or `after-message-rejected`; the last receipt fires
//! `after-message-delivered-to-all` and `after-message-read-by-all`; a first connection fires
//! `after-user-presence-changed`; a reply carries its `parent-id`.

use reqwest::Method;
use serde_json::{Value, json};

use chathooks_tests::fixture;

use crate::sandbox_support::eventually;
use crate::server_support::{TestServer, must, str_field};

/// The recorder's records of `hook` (its KV values under `<hook>:<event id>`).
fn records(server: &TestServer, hook: &str) -> Vec<Value> {
    let kv = server.running.state.chat.registry().runtime().kv();
    let prefix = format!("{hook}:");
    must(kv.dump("recorder"), "kv dump")
        .into_iter()
        .filter(|(key, _)| key.starts_with(&prefix))
        .filter_map(|(_, value)| serde_json::from_slice(&value).ok())
        .collect()
}

/// Waits for a record of `hook` that `matches`; returns it.
async fn recorded(server: &TestServer, hook: &str, matches: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("the recorder records {hook}"), || {
        let found = records(server, hook).into_iter().find(|r| matches(r));
        async move { found }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hooks_of_wit_0_3_0_reach_a_plugin_with_their_arguments() {
    let server = TestServer::with_plugins(&[fixture("recorder")]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let messages = format!("/v1/conversations/{conv}/messages");

    // A before-hook asks `chat.participants`: the creator is the owner and an admin.
    let hi = server.send(&alice, &conv, "hi").await;
    let hi_id = str_field(&hi, "id");
    let before = server
        .kv("recorder", "before-message-sent:hi")
        .expect("before-message-sent recorded");
    assert_eq!(before["conversation"]["owner_id"], "alice", "{before}");
    assert_eq!(before["conversation"]["participant_count"], 2, "{before}");
    let roles: Vec<(&str, &str)> = before["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["user"].as_str()?, p["role"].as_str()?)))
        .collect();
    assert_eq!(roles, [("alice", "admin"), ("bob", "member")], "{before}");

    // A first connection: bob comes online.
    let ws = server.ws(&bob, None).await;
    let presence = recorded(&server, "after-user-presence-changed", |r| {
        r["user"] == "bob" && r["presence"]["online"] == true
    })
    .await;
    assert_eq!(presence["presence"]["user_id"], "bob", "{presence}");

    // The last receipts: bob is the only other participant.
    server
        .post_ok(&format!("/v1/messages/{hi_id}/delivered"), &bob, json!({}))
        .await;
    recorded(&server, "after-message-delivered-to-all", |r| {
        r["message"]["id"] == hi["id"]
    })
    .await;
    server
        .post_ok(&format!("/v1/conversations/{conv}/read"), &bob, json!({}))
        .await;
    let read = recorded(&server, "after-message-read-by-all", |r| {
        r["message"]["id"] == hi["id"]
    })
    .await;
    assert_eq!(read["conversation"]["id"], json!(conv), "{read}");

    // A reply carries its parent.
    let reply = server
        .post_ok(
            &messages,
            &bob,
            json!({"body": "noon?", "parent_id": hi_id}),
        )
        .await;
    let sent = recorded(&server, "after-message-sent", |r| {
        r["message"]["id"] == reply["id"]
    })
    .await;
    assert_eq!(sent["message"]["parent_id"], json!(hi_id), "{sent}");

    // The recorder holds `hold:<reason>`; an admin approves one and rejects another.
    let held_id = hold(&server, &bob, &messages, "hold:links are reviewed").await;
    let held = recorded(&server, "after-message-held", |r| {
        r["held"]["id"] == held_id
    })
    .await;
    assert_eq!(
        (
            &held["held"]["reason"],
            &held["held"]["held_by"],
            &held["held"]["draft"]["sender"]
        ),
        (
            &json!("links are reviewed"),
            &json!("recorder"),
            &json!("bob")
        ),
        "{held}"
    );
    let (status, published) = server
        .call(
            Method::POST,
            &format!("/v1/held/{held_id}/approve"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{published}");
    let approved = recorded(&server, "after-message-approved", |r| {
        r["message"]["id"] == held_id
    })
    .await;
    assert_eq!(approved["moderator"], "alice", "{approved}");
    recorded(&server, "after-message-sent", |r| {
        r["message"]["id"] == held_id
    })
    .await;

    let second = hold(&server, &bob, &messages, "hold:second thoughts").await;
    server
        .post_ok(
            &format!("/v1/held/{second}/reject"),
            &alice,
            json!({"reason": "not here"}),
        )
        .await;
    let rejected = recorded(&server, "after-message-rejected", |r| {
        r["held"]["id"] == second
    })
    .await;
    assert_eq!(
        (&rejected["moderator"], &rejected["reason"]),
        (&json!("alice"), &json!("not here")),
        "{rejected}"
    );
    assert!(
        records(&server, "after-message-sent")
            .iter()
            .all(|r| r["message"]["id"] != second),
        "a rejected message is never sent"
    );

    // A sender banned after the hold cannot be approved: the moderator is told to reject instead.
    let third = hold(&server, &bob, &messages, "hold:one more").await;
    server
        .post_ok(
            &format!("/v1/conversations/{conv}/bans"),
            &alice,
            json!({"user_id": "bob"}),
        )
        .await;
    let (status, refused) = server
        .call(
            Method::POST,
            &format!("/v1/held/{third}/approve"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no longer in the conversation")),
        "{refused}"
    );
    server
        .post_ok(&format!("/v1/held/{third}/reject"), &alice, json!({}))
        .await;

    ws.close().await;
    server.stop().await;
}

/// Sends `body` as `token`, which the recorder holds: 202 with the held message; returns its id.
async fn hold(server: &TestServer, token: &str, messages: &str, body: &str) -> String {
    let (status, held) = server
        .call(
            Method::POST,
            messages,
            Some(token),
            Some(json!({"body": body})),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{held}");
    str_field(&held, "id")
}
