//! `GET /v1/ws` over a real WebSocket: who sees which events, resuming with `?since=`, auth, ping, and
//! closing on shutdown.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::server_support::{TestServer, must, str_field};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_see_each_others_events_and_an_outsider_sees_none() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    server.user("dave").await;
    let mut a = server.ws(&alice, None).await;
    let mut b = server.ws(&bob, None).await;
    let mut c = server.ws(&carol, None).await;

    let conv = server.conversation(&alice, &["bob"]).await;
    for ws in [&mut a, &mut b] {
        let event = ws.next_event().await;
        assert_eq!(event["kind"], "conversation.created", "{event}");
        assert_eq!(event["conversation_id"], conv.as_str());
        assert!(event["id"].as_i64().is_some_and(|id| id > 0));
    }

    let sent = server.send(&bob, &conv, "hi @alice").await;
    let mid = str_field(&sent, "id");
    for ws in [&mut a, &mut b] {
        let event = ws.next_of_kind("message.new").await;
        assert_eq!(event["payload"]["message"]["id"], mid.as_str());
        assert_eq!(event["payload"]["message"]["body"], "hi @alice");
        assert_eq!(event["payload"]["message"]["sender"]["id"], "bob");
        assert_eq!(event["payload"]["message"]["mentions"], json!(["alice"]));
    }

    let typing = format!("/v1/conversations/{conv}/typing");
    server
        .post_ok(&typing, &alice, json!({"state": "begin"}))
        .await;
    let event = b.next_of_kind("typing.start").await;
    assert_eq!(
        (
            event["id"].clone(),
            event["payload"]["typing"]["user"]["id"].clone()
        ),
        (json!(0), json!("alice"))
    );
    server
        .post_ok(&typing, &alice, json!({"state": "finished"}))
        .await;
    b.next_of_kind("typing.stop").await;

    let reactions = format!("/v1/messages/{mid}/reactions");
    server
        .post_ok(&reactions, &alice, json!({"emoji": "👍"}))
        .await;
    let event = b.next_of_kind("reaction.new").await;
    assert_eq!(event["payload"]["reaction"]["emoji"], "👍");
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{reactions}/%F0%9F%91%8D"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 204);
    b.next_of_kind("reaction.deleted").await;

    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/v1/messages/{mid}"),
            Some(&bob),
            Some(json!({"body": "hi again"})),
        )
        .await;
    assert!(status.is_success());
    let event = a.next_of_kind("message.updated").await;
    assert_eq!(event["payload"]["message"]["body"], "hi again");
    server
        .post_ok(
            &format!("/v1/conversations/{conv}/read"),
            &alice,
            json!({"message_id": mid}),
        )
        .await;
    let event = b.next_of_kind("message.read").await;
    assert_eq!(event["payload"]["receipt"]["user"]["id"], "alice");
    server
        .post_ok(
            &format!("/v1/conversations/{conv}/participants"),
            &alice,
            json!({"user_ids": ["dave"]}),
        )
        .await;
    b.next_of_kind("member.added").await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/messages/{mid}"),
            Some(&bob),
            None,
        )
        .await;
    assert!(status.is_success());
    a.next_of_kind("message.deleted").await;
    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/v1/conversations/{conv}"),
            Some(&alice),
            Some(json!({"title": "t"})),
        )
        .await;
    assert!(status.is_success());
    b.next_of_kind("conversation.updated").await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/participants/bob"),
            Some(&bob),
            None,
        )
        .await;
    assert!(status.is_success());
    b.next_of_kind("member.removed").await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{conv}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 204);
    a.next_of_kind("conversation.deleted").await;

    // Events arrive in order, so if carol's first event is about her own new conversation, she saw
    // nothing of alice and bob's.
    let own = server.conversation(&carol, &["dave"]).await;
    let first = c.next_event().await;
    assert_eq!(
        (first["kind"].clone(), first["conversation_id"].clone()),
        (json!("conversation.created"), json!(own))
    );
    assert!(c.next_within(Duration::from_millis(200)).await.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_since_gets_what_it_missed_then_live_events() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let mut b = server.ws(&bob, None).await;
    server.send(&alice, &conv, "one").await;
    let seen = b.next_of_kind("message.new").await;
    let seen_id = seen["id"].as_i64().unwrap_or_default();
    b.close().await;

    let two = str_field(&server.send(&alice, &conv, "two").await, "id");
    server.send(&alice, &conv, "three").await;
    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/v1/messages/{two}"),
            Some(&alice),
            Some(json!({"body": "two!"})),
        )
        .await;
    assert!(status.is_success());

    let mut b = server.ws(&bob, Some(seen_id)).await;
    let mut missed = Vec::new();
    let mut last = seen_id;
    for _ in 0..3 {
        let event = b.next_event().await;
        let id = event["id"].as_i64().unwrap_or_default();
        assert!(
            id > last,
            "events come in id order without duplicates: {id} after {last}"
        );
        last = id;
        missed.push((
            event["kind"].clone(),
            event["payload"]["message"]["body"].clone(),
        ));
    }
    assert_eq!(
        missed,
        vec![
            (json!("message.new"), json!("two")),
            (json!("message.new"), json!("three")),
            (json!("message.updated"), json!("two!")),
        ]
    );
    server.send(&alice, &conv, "four").await;
    let live = b.next_event().await;
    assert_eq!(live["payload"]["message"]["body"], "four");
    assert!(live["id"].as_i64().is_some_and(|id| id > last));

    // From the beginning, with the token in the query string.
    let url = format!("ws://{}/v1/ws?since=0&token={bob}", server.addr);
    let (mut stream, _) = must(
        tokio_tungstenite::connect_async(url).await,
        "ws with ?token=",
    );
    use futures_util::StreamExt;
    let frame = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    let text = match frame {
        Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => text.to_string(),
        other => panic!("no replay: {other:?}"),
    };
    let first: serde_json::Value = must(serde_json::from_str(&text), "json");
    assert_eq!(first["kind"], "conversation.created");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_needs_a_token_answers_pings_and_closes_on_shutdown() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for url in [
        format!("ws://{}/v1/ws", server.addr),
        format!("ws://{}/v1/ws?token=cht_wrong", server.addr),
    ] {
        let request = must(url.into_client_request(), "request");
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401);
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
    let mut ws = server.ws(&alice, None).await;
    ws.ping().await;
    // A graceful stop does not wait for the client to leave: the server closes the socket.
    let stop = tokio::spawn(server.stop());
    assert!(
        ws.next_within(Duration::from_secs(10)).await.is_none(),
        "closed"
    );
    must(
        tokio::time::timeout(Duration::from_secs(10), stop).await,
        "stop in time",
    )
    .ok();
}
