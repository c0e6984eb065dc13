//! Events handed over by their commits ([`super::arrivals`]) against a real SQLite file and the real
//! compiled recorder plugin: the outbox decides what is owed, and what was handed over arrives as the
//! outbox holds it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;

use super::DispatchHandle;
use super::arrivals::{Arrival, Arrived, Handed, NewEvent, pending_events};
use super::tests::{create, recorder_calls, send, start};
use crate::chat::Chat;
use crate::chat::testkit::{Kit, eventually, fast_config, fixture};
use crate::live::{Hub, LiveEvent};

/// A handed-over event `id` whose payload says `marker`.
fn arrival(id: i64, marker: &str) -> Arrival {
    Arrival {
        id,
        event: Arc::new(LiveEvent {
            id,
            kind: "message.new".into(),
            conversation_id: None,
            audience: Vec::new(),
            payload: json!({ "marker": marker }),
            created_at: 1,
        }),
        replayable: true,
    }
}

#[tokio::test]
async fn a_round_takes_the_events_handed_over_only_when_the_outbox_holds_no_other() {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit.chat.create_conversation(&a, create(&[])).await.unwrap();
    // Earlier events (the conversation's) leave the outbox first.
    let before = kit.db.read(|c| c.latest_event_id()).unwrap();
    kit.db
        .write(|tx| tx.leave_outbox(&(1..=before).collect::<Vec<_>>()))
        .unwrap();
    let one = send(&kit.chat, &a, &conv.id, "one").await;
    let two = send(&kit.chat, &a, &conv.id, "two").await;

    // Both handed over (one kept from an earlier round, one just handed): taken from memory (the
    // markers), not read back.
    let mut arrived = Arrived::default();
    arrived.add(vec![arrival(one, "handed")]);
    let handed = Handed::default();
    handed.hand(vec![
        arrival(two, "handed"),
        arrival(two + 50, "not in the outbox"),
    ]);
    let (events, in_order) = pending_events(&kit.db, &handed, &mut arrived, 0, 10, &[]).unwrap();
    assert!(in_order);
    assert_eq!(
        events.iter().map(NewEvent::id).collect::<Vec<_>>(),
        [one, two]
    );
    assert!(
        events
            .iter()
            .all(|e| e.stored().payload["marker"] == "handed")
    );
    assert_eq!(
        arrived.len(),
        1,
        "what was read is forgotten, the rest kept"
    );

    // One of them not handed over: both read whole from the outbox.
    let mut arrived = Arrived::default();
    arrived.add(vec![arrival(two, "handed")]);
    let (events, _) =
        pending_events(&kit.db, &Handed::default(), &mut arrived, 0, 10, &[]).unwrap();
    assert_eq!(
        events.iter().map(NewEvent::id).collect::<Vec<_>>(),
        [one, two]
    );
    assert_eq!(events[0].stored().payload["message"]["body"], "one");
    assert_eq!(events[1].stored().payload["message"]["body"], "two");
    assert!(arrived.is_empty());

    // Held events and those up to `after` are left out either way.
    let mut arrived = Arrived::default();
    arrived.add(vec![arrival(one, "handed"), arrival(two, "handed")]);
    let (events, _) =
        pending_events(&kit.db, &Handed::default(), &mut arrived, one, 10, &[two]).unwrap();
    assert!(events.is_empty());
}

#[tokio::test]
async fn the_loop_delivers_what_the_outbox_holds_whether_or_not_it_was_handed_over() {
    let kit = Kit::new(&[fixture("recorder")]);
    let (handle, stop, task) = start(&kit, fast_config());
    let chat = Chat::new(
        kit.db.clone(),
        kit.registry.clone(),
        Hub::new(),
        handle.clone(),
    );
    // A service whose commits hand nothing over, as another path or process that writes events.
    let silent = Chat::new(
        kit.db.clone(),
        kit.registry.clone(),
        Hub::new(),
        DispatchHandle::detached(),
    );
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = chat.create_conversation(&a, create(&[])).await.unwrap();
    let handed = send(&chat, &a, &conv.id, "handed").await;
    let unhanded = send(&silent, &a, &conv.id, "not handed").await;
    handle.new_events();
    // Handed over but never committed: no plugin may get it.
    handle.new_events_handed(vec![arrival(unhanded + 100, "never stored")]);
    let after = send(&chat, &a, &conv.id, "after").await;
    eventually("the recorder got the three messages", || {
        recorder_calls(&kit).len() >= 3
    })
    .await;
    assert_eq!(recorder_calls(&kit), [handed, unhanded, after]);
    for (id, body) in [
        (handed, "handed"),
        (unhanded, "not handed"),
        (after, "after"),
    ] {
        let record = kit
            .record(&format!("after-message-sent:{id}"))
            .expect("recorded");
        assert_eq!(record["message"]["body"], json!(body));
        assert_eq!(record["context"]["event_id"], json!(id));
        assert_eq!(record["message"]["conversation_id"], json!(conv.id));
    }
    let _ = stop.send(());
    task.await.unwrap();
}
