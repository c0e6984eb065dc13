//! Threads over real HTTP and WebSocket: a reply names its parent, arrives live with the parent's new
//! reply count, stays out of the conversation's list and is listed in its thread; replying to a reply or
//! to another conversation's message is refused (409) with the field named.

use reqwest::Method;
use serde_json::{Value, json};

use crate::server_support::{TestServer, str_field};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_lives_in_its_thread_and_updates_its_parent() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let other = server.conversation(&bob, &["alice"]).await;
    let mut b = server.ws(&bob, None).await;
    let parent = server.send(&alice, &conv, "lunch?").await;
    let parent_id = str_field(&parent, "id");
    let send = format!("/v1/conversations/{conv}/messages");

    let reply = server
        .post_ok(
            &send,
            &alice,
            json!({"body": "noon?", "parent_id": parent_id}),
        )
        .await;
    assert_eq!(reply["parent_id"], json!(parent_id));
    let live = loop {
        let event = b.next_of_kind("message.new").await;
        if event["payload"]["message"]["id"] == reply["id"] {
            break event;
        }
    };
    assert_eq!(live["payload"]["parent"]["id"], json!(parent_id));
    assert_eq!(live["payload"]["parent"]["reply_count"], 1);
    assert!(live["payload"]["parent"]["last_reply_at"].is_i64());
    server
        .post_ok(&send, &bob, json!({"body": "sure", "parent_id": parent_id}))
        .await;
    server.send(&bob, &conv, "top level").await;

    let top = server.get_ok(&format!("{send}?limit=10"), &bob).await;
    let bodies = bodies_of(&top);
    assert_eq!(bodies, ["top level", "lunch?"]);
    let replies = server
        .get_ok(&format!("/v1/messages/{parent_id}/replies"), &bob)
        .await;
    let bodies = bodies_of(&replies);
    assert_eq!(
        bodies,
        ["sure", "noon?"],
        "newest first, like a conversation's page"
    );
    let threads = server
        .get_ok(&format!("/v1/conversations/{conv}/threads"), &alice)
        .await;
    assert_eq!(threads[0]["id"], json!(parent_id));
    assert_eq!(threads[0]["reply_count"], 2);

    // One level deep, and only within the conversation.
    let reply_id = str_field(&reply, "id");
    for (path, body) in [
        (
            send.clone(),
            json!({"body": "deeper", "parent_id": reply_id}),
        ),
        (
            format!("/v1/conversations/{other}/messages"),
            json!({"body": "elsewhere", "parent_id": parent_id}),
        ),
    ] {
        let (status, answer) = server
            .call(Method::POST, &path, Some(&alice), Some(body))
            .await;
        assert_eq!(status.as_u16(), 409, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("parent_id")),
            "{answer}"
        );
    }
}

/// Deleting a message leaves a tombstone (its id, `deleted`, an empty body), so its thread stays: the
/// replies others wrote are still listed under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_parent_keeps_its_thread() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let parent = server.send(&alice, &conv, "lunch?").await;
    let parent_id = str_field(&parent, "id");
    let send = format!("/v1/conversations/{conv}/messages");
    server
        .post_ok(&send, &bob, json!({"body": "noon", "parent_id": parent_id}))
        .await;

    let (status, deleted) = server
        .call(
            Method::DELETE,
            &format!("/v1/messages/{parent_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{deleted}");
    assert_eq!(deleted["deleted"], json!(true));
    assert_eq!(deleted["body"], json!(""));

    let replies = server
        .get_ok(&format!("/v1/messages/{parent_id}/replies"), &alice)
        .await;
    let bodies = bodies_of(&replies);
    assert_eq!(bodies, ["noon"]);
    let top = server.get_ok(&format!("{send}?limit=10"), &bob).await;
    assert_eq!(top[0]["id"], json!(parent_id));
    assert_eq!(top[0]["deleted"], json!(true));
}

/// The bodies of a page of messages, in its order.
fn bodies_of(page: &Value) -> Vec<&str> {
    page.as_array()
        .map(|ms| ms.iter().filter_map(|m| m["body"].as_str()).collect())
        .unwrap_or_default()
}
