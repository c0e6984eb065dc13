//! "Delivered to all" and "read by all" over real HTTP and WebSocket: the receipt that completes a
//! message among the other participants appends `message.delivered_to_all` / `message.read_by_all`,
//! exactly once, and reading counts as delivering.

use std::time::Duration;

use serde_json::{Value, json};

use crate::server_support::{TestServer, WsClient, str_field};

/// Every event kind `ws` receives until (and including) the first `message.new` whose body is `body`.
async fn kinds_until_message(ws: &mut WsClient, body: &str) -> Vec<String> {
    let mut kinds = Vec::new();
    loop {
        let event = ws.next_event().await;
        let kind = str_field(&event, "kind");
        let done = kind == "message.new" && event["payload"]["message"]["body"] == body;
        kinds.push(kind);
        if done {
            return kinds;
        }
    }
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_receipt_completes_a_message_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let conv = server.conversation(&alice, &["bob", "carol"]).await;
    let mut a = server.ws(&alice, None).await;
    let first = server.send(&alice, &conv, "one").await;
    let id = str_field(&first, "id");
    let delivered = format!("/v1/messages/{id}/delivered");
    let read = format!("/v1/conversations/{conv}/read");

    // Bob's receipt leaves Carol missing; Carol's completes it; a repeat changes nothing.
    server.post_ok(&delivered, &bob, json!({})).await;
    server.post_ok(&delivered, &carol, json!({})).await;
    server.post_ok(&delivered, &carol, json!({})).await;
    server.post_ok(&read, &bob, json!({"message_id": id})).await;
    server
        .post_ok(&read, &carol, json!({"message_id": id}))
        .await;
    server
        .post_ok(&read, &carol, json!({"message_id": id}))
        .await;
    server.send(&alice, &conv, "marker").await;
    let kinds = kinds_until_message(&mut a, "marker").await;
    assert_eq!(count(&kinds, "message.delivered_to_all"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "message.read_by_all"), 1, "{kinds:?}");
    let done_at = |kind: &str| kinds.iter().position(|k| k == kind);
    assert!(
        done_at("message.delivered_to_all") < done_at("message.read_by_all"),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_without_a_delivery_receipt_completes_both() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let mut a = server.ws(&alice, None).await;
    let sent = server.send(&alice, &conv, "hello").await;
    server
        .post_ok(
            &format!("/v1/conversations/{conv}/read"),
            &bob,
            json!({"message_id": str_field(&sent, "id")}),
        )
        .await;
    let event = a.next_of_kind("message.delivered_to_all").await;
    assert_eq!(event["payload"]["message"]["id"], sent["id"]);
    let event: Value = a.next_of_kind("message.read_by_all").await;
    assert_eq!(event["payload"]["message"]["status"], "all_read");
    assert_eq!(event["payload"]["conversation"]["id"], json!(conv));
    // Nothing more about that message arrives.
    assert!(a.next_within(Duration::from_millis(200)).await.is_none());
}
