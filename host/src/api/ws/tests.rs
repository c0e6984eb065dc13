//! The WebSocket session against a real chat kit: replay, resume points, pings, closing.

use super::*;
use crate::chat::testkit::Kit;
use crate::chat::{CreateConversation, SendMessage};
use tokio::sync::mpsc;

/// A socket made of channels: what the server sends, and a handle to send it client frames.
type Wire = (
    mpsc::UnboundedReceiver<Message>,
    mpsc::UnboundedSender<Result<Message, ()>>,
);

fn start(session: Session) -> (Wire, tokio::task::JoinHandle<()>) {
    start_gated(session, watch::channel(true).1)
}

/// Like [`start`], with a client that accepts no frame while `gate` is false (a stalled reader).
fn start_gated(
    session: Session,
    gate: watch::Receiver<bool>,
) -> (Wire, tokio::task::JoinHandle<()>) {
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Message>();
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Result<Message, ()>>();
    let sink =
        futures_util::sink::unfold((out_tx, gate), |(tx, mut gate), msg: Message| async move {
            gate.wait_for(|open| *open).await.map_err(|_| ())?;
            tx.send(msg).map(|()| (tx, gate)).map_err(|_| ())
        });
    let stream =
        futures_util::stream::unfold(
            in_rx,
            |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
        );
    let task = tokio::spawn(run_socket(Box::pin(sink), Box::pin(stream), session));
    ((out_rx, in_tx), task)
}

/// A session, and the shutdown switch that must outlive it (a dropped switch means "shutting down").
fn session(
    kit: &Kit,
    user: &User,
    since: Option<i64>,
    ping: Duration,
) -> (Session, watch::Sender<bool>) {
    let (switch, closing) = watch::channel(false);
    let session = Session {
        chat: kit.chat.clone(),
        events: kit.chat.hub().subscribe_user(&user.id),
        user: user.clone(),
        since,
        reset: None,
        closing,
        ping_interval: ping,
        pong_timeout: ping * 3,
    };
    (session, switch)
}

async fn next(out: &mut mpsc::UnboundedReceiver<Message>) -> Message {
    let frame = tokio::time::timeout(Duration::from_secs(10), out.recv()).await;
    frame.ok().flatten().unwrap_or(Message::Close(None))
}

async fn next_event(out: &mut mpsc::UnboundedReceiver<Message>) -> serde_json::Value {
    loop {
        match next(out).await {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str()).unwrap_or_default();
            }
            Message::Ping(_) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_then_streams_visible_events_pings_and_ends_on_close() {
    let kit = Kit::new(&[]);
    let users = kit.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let create = |ids: &[&str]| CreateConversation {
        participant_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..CreateConversation::default()
    };
    let conv = kit.chat.create_conversation(alice, create(&["bob"])).await;
    let conv = conv.map(|c| c.id).unwrap_or_default();
    let send = |body: &str| SendMessage {
        body: body.to_owned(),
        ..SendMessage::default()
    };
    assert!(
        kit.chat
            .send_message(alice, &conv, send("before"))
            .await
            .is_ok()
    );

    let (bob_session, _switch) = session(&kit, bob, Some(0), Duration::from_millis(50));
    let ((mut out, client), task) = start(bob_session);
    let replayed = [next_event(&mut out).await, next_event(&mut out).await];
    assert_eq!(replayed[0]["kind"], "conversation.created");
    assert_eq!(replayed[1]["payload"]["message"]["body"], "before");
    assert!(
        kit.chat
            .create_conversation(carol, create(&["alice"]))
            .await
            .is_ok()
    );
    assert!(
        kit.chat
            .send_message(alice, &conv, send("live"))
            .await
            .is_ok()
    );
    let live = next_event(&mut out).await;
    assert_eq!(
        live["payload"]["message"]["body"], "live",
        "carol's conversation is skipped"
    );
    assert!(live["id"].as_i64() > replayed[1]["id"].as_i64());
    let frame = next(&mut out).await;
    assert!(
        matches!(frame, Message::Ping(_)),
        "expected a ping, got {frame:?}"
    );
    assert!(client.send(Ok(Message::Close(None))).is_ok());
    assert!(
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_ok()
    );
}

#[test]
fn a_since_beyond_the_newest_event_resumes_from_the_newest_with_a_reset() {
    assert_eq!(resume_point(42, 42), (Some(42), None));
    assert_eq!(resume_point(-5, 42), (Some(0), None));
    let reset = ResumeReset {
        since: 43,
        latest_id: 42,
    };
    assert_eq!(resume_point(43, 42), (Some(42), Some(reset)));
    assert_eq!(reset.notice().kind, RESUME_RESET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed() {
    let kit = Kit::new(&[]);
    let users = kit.users(&["alice"]).await;
    let (alice_session, _switch) = session(&kit, &users[0], None, Duration::from_millis(20));
    let ((mut out, _client), task) = start(alice_session);
    let closed = loop {
        match next(&mut out).await {
            Message::Ping(_) => continue,
            other => break other,
        }
    };
    assert!(matches!(closed, Message::Close(Some(frame)) if frame.code == close_code::POLICY));
    assert!(
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_stops_reading_its_client_too() {
    let kit = Kit::new(&[]);
    let users = kit.users(&["alice"]).await;
    let (alice_session, _switch) = session(&kit, &users[0], None, Duration::from_secs(600));
    let ((_out, client), task) = start(alice_session);
    assert!(client.send(Ok(Message::Pong(Default::default()))).is_ok());
    // The server drops the connection's task (a shutdown's last step, say): the watcher reading the
    // client goes with it and lets go of the socket.
    task.abort();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), client.closed())
            .await
            .is_ok(),
        "the client's frames are still being read"
    );
}

/// The next `message.new` event's body and id.
async fn next_message(out: &mut mpsc::UnboundedReceiver<Message>) -> (String, i64) {
    loop {
        let event = next_event(out).await;
        if event["kind"] == "message.new" {
            let body = event["payload"]["message"]["body"].as_str();
            return (
                body.unwrap_or_default().to_owned(),
                event["id"].as_i64().unwrap_or(0),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_catches_up_from_the_database_without_holding_up_others() {
    let kit = Kit::new(&[]);
    let users = kit.users(&["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let create = CreateConversation {
        participant_ids: vec![bob.id.clone()],
        ..CreateConversation::default()
    };
    let conv = kit.chat.create_conversation(alice, create).await;
    let conv = conv.map(|c| c.id).unwrap_or_default();
    let quiet = Duration::from_secs(600);
    let (open, gate) = watch::channel(false);
    let (bob_session, _bob_switch) = session(&kit, bob, None, quiet);
    let ((mut bob_out, _bob_client), _bob_task) = start_gated(bob_session, gate);
    let (alice_session, _alice_switch) = session(&kit, alice, None, quiet);
    let ((mut alice_out, _alice_client), _alice_task) = start(alice_session);

    // More messages than a user's channel holds, while bob's client reads nothing.
    let total = crate::live::USER_CHANNEL_CAPACITY + 20;
    for n in 0..total {
        let send = SendMessage {
            body: n.to_string(),
            ..SendMessage::default()
        };
        assert!(kit.chat.send_message(alice, &conv, send).await.is_ok());
    }
    for n in 0..total {
        assert_eq!(next_message(&mut alice_out).await.0, n.to_string());
    }
    assert!(open.send(true).is_ok());
    let mut last = 0;
    for n in 0..total {
        let (body, id) = next_message(&mut bob_out).await;
        assert_eq!(body, n.to_string(), "every message once, in order");
        assert!(id > last);
        last = id;
    }
    // Nothing more: the next frame is a message sent after all of them.
    let marker = SendMessage {
        body: "marker".into(),
        ..SendMessage::default()
    };
    assert!(kit.chat.send_message(alice, &conv, marker).await.is_ok());
    let next = next_event(&mut bob_out).await;
    assert_eq!(
        (
            next["kind"].as_str(),
            next["payload"]["message"]["body"].as_str()
        ),
        (Some("message.new"), Some("marker")),
        "nothing more: {next}"
    );
}
