//! Presence over real HTTP and WebSocket: a user is online while connected, a reconnect within the grace
//! period changes nothing, the last connection closing turns them offline once the grace period (on a
//! manual clock) has passed, and only users sharing a conversation hear of it.

use std::sync::Arc;
use std::time::Duration;

use chathooks::clock::ManualClock;
use chathooks::presence::GRACE;
use serde_json::Value;

use crate::server_support::{TestServer, WsClient};

/// The next `user.presence.changed` about `user` that `ws` gets, after advancing `clock` by the grace period each time
/// nothing came (the server notices a closed socket a moment after the client closes it, and only then
/// starts timing its grace period).
async fn presence_change(ws: &mut WsClient, clock: &ManualClock, user: &str) -> Value {
    for _ in 0..50 {
        if let Some(event) = ws.next_frame_within(Duration::from_millis(100)).await {
            if event["kind"] == "user.presence.changed" && event["payload"]["user"]["id"] == user {
                return event;
            }
            continue;
        }
        clock.advance(GRACE);
    }
    panic!("no user.presence.changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_see_a_user_come_and_go_after_the_grace_period() {
    let clock = ManualClock::new();
    let server_clock = clock.clone();
    let server = TestServer::with_config(&[], move |config| {
        config.clock = Arc::new(server_clock);
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;
    server.conversation(&alice, &["bob"]).await;
    let outsiders = server.conversation(&carol, &["dave"]).await;
    let mut b = server.ws(&bob, None).await;
    let mut c = server.ws(&carol, None).await;

    let a = server.ws(&alice, None).await;
    let event = presence_change(&mut b, &clock, "alice").await;
    assert_eq!(event["payload"]["user"]["id"], "alice");
    assert_eq!(event["payload"]["presence"]["online"], true);
    let now = server.get_ok("/v1/users/alice/presence", &bob).await;
    assert_eq!(now["online"], true);

    // A second connection, and a reconnect within the grace period, change nothing.
    let a2 = server.ws(&alice, None).await;
    a.close().await;
    a2.close().await;
    let a3 = server.ws(&alice, None).await;
    a3.close().await;
    let event = presence_change(&mut b, &clock, "alice").await;
    assert_eq!(event["payload"]["user"]["id"], "alice");
    assert_eq!(event["payload"]["presence"]["online"], false);
    assert!(event["payload"]["presence"]["last_seen_at"].is_i64());
    // No flicker: nothing more about Alice (a reconnect within the grace period sent no offline/online).
    while let Some(event) = b.next_frame_within(Duration::from_millis(200)).await {
        assert_ne!(event["payload"]["user"]["id"], "alice", "{event}");
    }
    let many = server
        .get_ok("/v1/presence?user_ids=alice,bob,nobody", &carol)
        .await;
    let online: Vec<(String, bool)> = many["presence"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|p| {
                    (
                        p["user_id"].as_str().unwrap_or("").to_owned(),
                        p["online"] == true,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        online,
        [("alice".to_owned(), false), ("bob".to_owned(), true)]
    );

    // Carol shares no conversation with Alice: she hears of herself and Dave's message, not of Alice.
    server.send(&dave, &outsiders, "marker").await;
    loop {
        let Some(event) = c.next_frame_within(Duration::from_secs(10)).await else {
            panic!("carol got no message.new");
        };
        assert_ne!(event["payload"]["user"]["id"], "alice", "{event}");
        if event["kind"] == "message.new" {
            break;
        }
    }
}
