//! `GET /v1/ws` over a real WebSocket: who sees which events, resuming with `?since=`, auth, ping, and
//! closing on shutdown; routing by audience: membership changes take effect at the event that makes
//! them, live and on replay, each connection of a user gets every event once, and a conversation of many
//! connected members reaches each of them once and nobody else.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::server_support::{TestServer, WsClient, must, str_field};

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
    server.send(&carol, &own, "marker").await;
    next_is_message(&mut c, "marker").await;
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

/// A client whose saved event id is ahead of the server's log (the server's database was restored from an
/// older backup) is told so, and still gets every event committed after it connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_ahead_of_the_log_is_reported_and_loses_no_new_event() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    server.send(&alice, &conv, "before").await;
    let latest = must(
        server.running.state.db().read(|c| c.latest_event_id()),
        "latest event id",
    );

    let mut b = server.ws(&bob, Some(999_999_999_999)).await;
    let reset = b.next_event().await;
    assert_eq!(
        (reset["kind"].clone(), reset["id"].clone()),
        (json!("resume.reset"), json!(0)),
        "{reset}"
    );
    assert_eq!(reset["payload"]["since"], 999_999_999_999_i64);
    assert_eq!(reset["payload"]["latest_id"], latest);
    server.send(&alice, &conv, "after").await;
    let live = b.next_event().await;
    assert_eq!(
        (
            live["kind"].clone(),
            live["payload"]["message"]["body"].clone()
        ),
        (json!("message.new"), json!("after")),
        "the first event after the notice is the new message: {live}"
    );
    assert!(live["id"].as_i64().is_some_and(|id| id > latest));
    b.close().await;

    // Resuming from `latest_id`, as the notice says, replays exactly what came after it.
    let mut b = server.ws(&bob, Some(latest)).await;
    let replayed = b.next_event().await;
    assert_eq!(
        replayed["payload"]["message"]["body"], "after",
        "{replayed}"
    );
    server.send(&alice, &conv, "marker").await;
    next_is_message(&mut b, "marker").await;
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

/// The bodies of the `message.new` events among `events`.
fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "message.new")
        .map(|e| {
            e["payload"]["message"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Asserts that the next event on `ws` is the `message.new` of `body`, a message the test sent after what
/// it checked: events reach a connection in order, so nothing else was on its way to it.
async fn next_is_message(ws: &mut WsClient, body: &str) {
    let event = ws.next_event().await;
    assert_eq!(
        (
            event["kind"].clone(),
            event["payload"]["message"]["body"].clone()
        ),
        (json!("message.new"), json!(body)),
        "{event}"
    );
}

/// Events until (and with) the `message.new` whose body is `body`.
async fn events_until(ws: &mut WsClient, body: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = ws.next_event().await;
        let done = event["kind"] == "message.new" && event["payload"]["message"]["body"] == body;
        events.push(event);
        if done {
            return events;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_added_and_removed_start_and_stop_at_their_event() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let dave = server.user("dave").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let mut a = server.ws(&alice, None).await;
    let mut b = server.ws(&bob, None).await;
    let mut d = server.ws(&dave, None).await;

    server.send(&alice, &conv, "before dave").await;
    let participants = format!("/v1/conversations/{conv}/participants");
    server
        .post_ok(&participants, &alice, json!({"user_ids": ["dave"]}))
        .await;
    server.send(&alice, &conv, "with dave").await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{participants}/bob"),
            Some(&alice),
            None,
        )
        .await;
    assert!(status.is_success());
    server.send(&alice, &conv, "without bob").await;

    // Dave's first event is his own addition; then the conversation, until the end.
    let seen = events_until(&mut d, "without bob").await;
    assert_eq!(seen[0]["kind"], "member.added", "{seen:?}");
    assert_eq!(bodies(&seen), ["with dave", "without bob"]);
    let all = events_until(&mut a, "without bob").await;
    assert_eq!(bodies(&all), ["before dave", "with dave", "without bob"]);

    // Bob sees his removal and nothing of the conversation after it: the next event he gets is from
    // another conversation, created after "without bob".
    let seen = events_until(&mut b, "with dave").await;
    assert_eq!(bodies(&seen), ["before dave", "with dave"]);
    let removed = b.next_event().await;
    assert_eq!(removed["kind"], "member.removed", "{removed}");
    let other = server.conversation(&alice, &["bob"]).await;
    let next = b.next_event().await;
    assert_eq!(
        (next["kind"].clone(), next["conversation_id"].clone()),
        (json!("conversation.created"), json!(other))
    );

    // A replay follows the same audience: dave from 0 gets nothing from before he joined.
    let mut replay = server.ws(&dave, Some(0)).await;
    let replayed = events_until(&mut replay, "without bob").await;
    assert_eq!(replayed[0]["kind"], "member.added", "{replayed:?}");
    assert_eq!(bodies(&replayed), ["with dave", "without bob"]);
    let mut replay = server.ws(&bob, Some(0)).await;
    let replayed = events_until(&mut replay, "with dave").await;
    assert_eq!(bodies(&replayed), ["before dave", "with dave"]);
    let rest = replay.next_event().await;
    assert_eq!(rest["kind"], "member.removed", "{rest}");
    let rest = replay.next_event().await;
    assert_eq!(rest["conversation_id"], json!(other), "{rest}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_of_a_user_gets_each_event_once_and_resumes_with_since() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let mut phone = server.ws(&bob, None).await;
    let laptop = server.ws(&bob, None).await;
    server.send(&alice, &conv, "one").await;
    let seen = events_until(&mut phone, "one").await;
    let seen_id = seen
        .last()
        .and_then(|e| e["id"].as_i64())
        .unwrap_or_default();
    assert_eq!(bodies(&seen), ["one"]);
    laptop.close().await;

    // The phone keeps receiving after the laptop left; the laptop comes back with `since`.
    server.send(&alice, &conv, "two").await;
    let two = events_until(&mut phone, "two").await;
    assert_eq!(bodies(&two), ["two"]);
    let mut laptop = server.ws(&bob, Some(seen_id)).await;
    server.send(&alice, &conv, "three").await;
    let resumed = events_until(&mut laptop, "three").await;
    assert_eq!(bodies(&resumed), ["two", "three"]);
    let ids: Vec<i64> = resumed.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "no duplicates: {ids:?}"
    );
    assert_eq!(bodies(&events_until(&mut phone, "three").await), ["three"]);
    server.send(&alice, &conv, "four").await;
    for ws in [&mut phone, &mut laptop] {
        next_is_message(ws, "four").await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_many_connected_members_reaches_each_once_and_nobody_else() {
    const MEMBERS: usize = 60;
    let server = TestServer::start().await;
    let mut tokens = Vec::new();
    for n in 0..MEMBERS {
        tokens.push(server.user(&format!("member{n}")).await);
    }
    let outsider = server.user("outsider").await;
    let others: Vec<String> = (1..MEMBERS).map(|n| format!("member{n}")).collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    let conv = server.conversation(&tokens[0], &others).await;
    let mut sockets = Vec::new();
    for token in &tokens {
        sockets.push(server.ws(token, None).await);
    }
    let mut watcher = server.ws(&outsider, None).await;
    server.send(&tokens[0], &conv, "to all").await;
    for ws in &mut sockets {
        let event = ws.next_event().await;
        assert_eq!(event["payload"]["message"]["body"], "to all", "{event}");
    }
    server.send(&tokens[0], &conv, "after").await;
    for ws in &mut sockets {
        next_is_message(ws, "after").await;
    }
    let own = server.conversation(&outsider, &["member1"]).await;
    let first = watcher.next_event().await;
    assert_eq!(first["conversation_id"], json!(own), "{first}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_large_conversation_leave_its_participant_ids_out() {
    let server = TestServer::start().await;
    let mut tokens = Vec::new();
    for n in 0..101 {
        tokens.push(server.user(&format!("m{n:03}")).await);
    }
    let ids: Vec<String> = (1..101).map(|n| format!("m{n:03}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    // 100 participants: the list is in every event. 101: it is left out, the count stays.
    let small = server.conversation(&tokens[0], &ids[..99]).await;
    let large = server.conversation(&tokens[0], &ids).await;
    let mut ws = server.ws(&tokens[1], None).await;
    server.send(&tokens[0], &small, "small").await;
    server.send(&tokens[0], &large, "large").await;
    let mut seen = events_until(&mut ws, "large").await;
    let mut replayed = events_until(&mut server.ws(&tokens[1], Some(0)).await, "large").await;
    for events in [&mut seen, &mut replayed] {
        events.retain(|e| e["kind"] == "message.new");
        let [small_event, large_event] = events.as_slice() else {
            panic!("two messages: {events:?}");
        };
        let in_small = &small_event["payload"]["conversation"];
        assert_eq!(
            in_small["participant_ids"].as_array().map(Vec::len),
            Some(100)
        );
        assert_eq!(in_small.get("participant_ids_omitted"), None, "{in_small}");
        let in_large = &large_event["payload"]["conversation"];
        assert_eq!(in_large["participant_ids"], json!([]), "{in_large}");
        assert_eq!(in_large["participant_ids_omitted"], true);
        assert_eq!(in_large["participant_count"], 101);
    }
    // The REST answer still lists everyone.
    let full = server
        .get_ok(&format!("/v1/conversations/{large}"), &tokens[5])
        .await;
    assert_eq!(full["participant_ids"].as_array().map(Vec::len), Some(101));
    server.stop().await;
}
