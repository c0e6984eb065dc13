//! Hooks through the API with real compiled plugins: before-hooks reject (422, nothing stored) and modify
//! (the modified body is stored and broadcast); after-hooks receive what happened.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::server_support::{ADMIN_KEY, TestServer, str_field};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profanity_filter_rejects_and_modifies_through_the_api() {
    let server = TestServer::with_plugins(&[chathooks_tests::example("profanity_filter")]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let mut b = server.ws(&bob, None).await;
    let messages = format!("/v1/conversations/{conv}/messages");

    let (status, answer) = server
        .call(
            Method::POST,
            &messages,
            Some(&alice),
            Some(json!({"body": "damn!"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{answer}");
    assert_eq!(answer["error"]["code"], "rejected_by_plugin");
    let reason = str_field(&answer["error"], "message");
    assert!(
        reason.contains("profanity_filter")
            && reason.contains("message contains only blocked words"),
        "{reason}"
    );
    assert_eq!(
        server.get_ok(&messages, &alice).await,
        json!([]),
        "nothing stored"
    );

    let sent = server.send(&alice, &conv, "What the heck").await;
    assert_eq!(sent["body"], "What the ****");
    // The rejected message was never broadcast: bob's first message event is the modified one.
    let event = b.next_of_kind("message.new").await;
    assert_eq!(event["payload"]["message"]["body"], "What the ****");
    let listed = server.get_ok(&messages, &bob).await;
    assert_eq!(listed[0]["body"], "What the ****");

    let mid = str_field(&sent, "id");
    let (status, edited) = server
        .call(
            Method::PATCH,
            &format!("/v1/messages/{mid}"),
            Some(&alice),
            Some(json!({"body": "oh heck, fine"})),
        )
        .await;
    assert!(status.is_success(), "{edited}");
    assert_eq!(edited["body"], "oh ****, fine");
    let event = b.next_of_kind("message.updated").await;
    assert_eq!(event["payload"]["message"]["body"], "oh ****, fine");
    let (status, answer) = server
        .call(
            Method::PATCH,
            &format!("/v1/messages/{mid}"),
            Some(&alice),
            Some(json!({"body": "crap"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"]["code"].clone()),
        (422, json!("rejected_by_plugin"))
    );
    assert_eq!(
        server.get_ok(&messages, &bob).await[0]["body"],
        "oh ****, fine"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hooks_receive_what_the_api_did() {
    let server = TestServer::with_plugins(&[chathooks_tests::fixture("recorder")]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut a = server.ws(&alice, None).await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let created = a.next_of_kind("conversation.created").await;
    let record = server
        .wait_kv(
            "recorder",
            &format!("after-conversation-created:{}", created["id"]),
        )
        .await;
    assert_eq!(record["conversation"]["id"], conv.as_str());

    let sent = server.send(&bob, &conv, "hello @alice").await;
    let before = server
        .wait_kv("recorder", "before-message-sent:hello @alice")
        .await;
    assert_eq!(before["draft"]["sender"], "bob");
    let event = a.next_of_kind("message.new").await;
    let record = server
        .wait_kv("recorder", &format!("after-message-sent:{}", event["id"]))
        .await;
    assert_eq!(record["message"]["id"], sent["id"]);
    assert_eq!(record["message"]["body"], "hello @alice");
    assert_eq!(record["context"]["event_id"], event["id"]);
    assert_eq!(record["context"]["attempt"], 1);

    let reactions = format!("/v1/messages/{}/reactions", str_field(&sent, "id"));
    server
        .post_ok(&reactions, &alice, json!({"emoji": "🎉"}))
        .await;
    let event = a.next_of_kind("reaction.new").await;
    let record = server
        .wait_kv("recorder", &format!("after-reaction-added:{}", event["id"]))
        .await;
    assert_eq!(
        (
            record["reaction"]["emoji"].clone(),
            record["reaction"]["user"].clone()
        ),
        (json!("🎉"), json!("alice"))
    );

    let (status, plugins) = server
        .call(Method::GET, "/v1/admin/plugins", Some(ADMIN_KEY), None)
        .await;
    assert!(status.is_success());
    let recorder = &plugins[0];
    assert_eq!(recorder["name"], "recorder");
    assert_eq!(recorder["state"], "active");
    assert!(
        recorder["calls"].as_u64().is_some_and(|n| n >= 4),
        "{recorder}"
    );
    assert!(
        recorder["hooks"]
            .as_array()
            .is_some_and(|h| h.contains(&json!("after-message-sent")))
    );
    let (status, letters) = server
        .call(Method::GET, "/v1/admin/dead-letters", Some(ADMIN_KEY), None)
        .await;
    assert_eq!((status.as_u16(), letters), (200, json!([])));
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.stop().await;
}
