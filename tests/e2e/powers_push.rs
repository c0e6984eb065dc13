//! Push through `push-notify`: the recipient's live connection gets `notification.new`, and the
//! configured gateway gets the notification with the recipient's device tokens and a valid signature.
//! The server runs on a manual clock, so the gateway's retry comes when the test moves it.

use std::sync::Arc;

use chathooks::clock::ManualClock;
use chathooks::powers::hmac::signature;
use chathooks::powers::push::FIRST_PUSH_BACKOFF;
use chathooks_tests::{example, temp_dir};
use serde_json::json;

use crate::powers_support::{PluginFile, Recorder, plugins_folder, server_on};
use crate::sandbox_support::eventually_advancing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_reaches_a_live_client_and_the_gateway_signed() {
    let gateway = Recorder::start().await;
    // The gateway fails once: the server retries.
    gateway.answer(503);
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("push_notify"),
            name: "push_notify",
            manifest: Some("[grants]\npush = true\n".to_owned()),
        }],
    );
    let url = gateway.url("/push");
    let clock = ManualClock::new();
    let server_clock = clock.clone();
    let server = server_on(dir.path(), move |config| {
        config.push_gateway_url = Some(url);
        config.push_gateway_secret = Some("gateway-secret".to_owned());
        config.clock = Arc::new(server_clock);
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let device = server
        .post_ok(
            "/v1/me/devices",
            &bob,
            json!({"platform": "ios", "token": "apns-token-1"}),
        )
        .await;
    assert_eq!(device["token"], json!("apns-token-1"));
    let listed = server.get_ok("/v1/me/devices", &bob).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let created = server
        .post_ok(
            "/v1/conversations",
            &alice,
            json!({"title": "Team", "participant_ids": ["bob"]}),
        )
        .await;
    let conv = created["id"].as_str().unwrap_or_default().to_owned();
    let mut bob_ws = server.ws(&bob, None).await;
    let mut alice_ws = server.ws(&alice, None).await;
    server.send(&alice, &conv, "lunch?").await;

    let event = bob_ws.next_of_kind("notification.new").await;
    let notification = &event["payload"]["notification"];
    assert_eq!(notification["title"], json!("Team"));
    assert_eq!(notification["body"], json!("ALICE: lunch?"));
    assert_eq!(notification["user_ids"], json!(["bob"]));
    assert_eq!(notification["data"]["conversation_id"], json!(conv));
    assert_eq!(event["conversation_id"], json!(conv));

    let first = gateway.wait_for(1).await;
    gateway.answer(200);
    // The retry waits for its backoff on the server's clock.
    let all = eventually_advancing(&clock, FIRST_PUSH_BACKOFF, "the gateway retry", || {
        let got = gateway.received();
        async move { (got.len() >= 2).then_some(got) }
    })
    .await;
    let delivery = &all[1];
    assert_eq!(first[0].body, delivery.body, "a retry sends the same body");
    assert_eq!(delivery.uri, "/push");
    assert_eq!(delivery.header("x-chathooks-attempt"), "2");
    assert_eq!(
        delivery.header("x-chathooks-signature"),
        signature("gateway-secret", &delivery.body)
    );
    assert_ne!(
        delivery.header("x-chathooks-signature"),
        signature("another-secret", &delivery.body)
    );
    let body = delivery.json();
    assert_eq!(body["notification"]["id"], notification["id"]);
    assert_eq!(body["notification"]["body"], json!("ALICE: lunch?"));
    assert_eq!(
        body["devices"],
        json!([{"user_id": "bob", "platform": "ios", "token": "apns-token-1", "created_at": device["created_at"]}])
    );
    // The sender gets no notification of their own message: none reaches her before her next message,
    // which is published after the notification went out.
    server.send(&alice, &conv, "marker").await;
    loop {
        let event = alice_ws.next_event().await;
        assert_ne!(event["kind"], "notification.new", "{event}");
        if event["kind"] == "message.new" && event["payload"]["message"]["body"] == "marker" {
            break;
        }
    }
    server.stop().await;
}
