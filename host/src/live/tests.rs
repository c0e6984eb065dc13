//! The hub's routing: who receives what, once, serialized once, in order; lag; unsubscribing.

use std::sync::Arc;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::*;

fn event(id: i64, audience: &[&str]) -> LiveEvent {
    LiveEvent {
        id,
        kind: "message.new".into(),
        conversation_id: Some("c".into()),
        audience: audience.iter().map(|s| (*s).to_owned()).collect(),
        payload: serde_json::json!({"n": id}),
        created_at: 1,
    }
}

fn ids(events: &mut UserEvents) -> Vec<i64> {
    std::iter::from_fn(|| events.try_recv().ok().map(|f| f.id)).collect()
}

#[tokio::test]
async fn observers_of_every_event_receive_in_publish_order() {
    let hub = Hub::new();
    hub.publish(event(1, &["a"]));
    let mut rx = hub.subscribe();
    hub.clone().publish(event(2, &["a", "b"]));
    hub.publish(event(3, &["c"]));
    let second = rx.recv().await.ok();
    let third = rx.recv().await.ok();
    assert_eq!(second.as_ref().map(|e| e.id), Some(2));
    assert!(second.is_some_and(|e| e.is_visible_to("b") && !e.is_visible_to("c")));
    assert_eq!(third.map(|e| e.id), Some(3));
    assert_eq!(hub.subscriber_count(), 1);
}

#[tokio::test]
async fn each_user_receives_only_its_audiences_events_once_and_in_order() {
    let hub = Hub::new();
    let mut a = hub.subscribe_user("a");
    let mut b = hub.subscribe_user("b");
    let mut c = hub.subscribe_user("c");
    hub.publish(event(1, &["a", "b"]));
    hub.publish(event(2, &["b", "nobody", "b"]));
    hub.publish(event(3, &["c", "a"]));
    hub.publish(event(0, &["a"]));
    assert_eq!(ids(&mut a), vec![1, 3, 0]);
    assert_eq!(
        ids(&mut b),
        vec![1, 2],
        "a duplicate in the audience is sent once"
    );
    assert_eq!(ids(&mut c), vec![3]);
    assert_eq!(a.user_id(), "a");
}

#[tokio::test]
async fn an_event_is_serialized_once_and_its_bytes_shared() {
    let hub = Hub::new();
    let mut a = hub.subscribe_user("a");
    let mut b = hub.subscribe_user("b");
    let sent = event(7, &["a", "b"]);
    hub.publish(sent.clone());
    let (Ok(for_a), Ok(for_b)) = (a.try_recv(), b.try_recv()) else {
        panic!("both should have the event");
    };
    assert!(Arc::ptr_eq(&for_a, &for_b));
    assert_eq!(for_a.id, 7);
    let json: serde_json::Value = serde_json::from_str(for_a.text.as_str()).unwrap_or_default();
    assert_eq!(
        json,
        serde_json::json!({"id": 7, "kind": "message.new", "conversation_id": "c",
                           "payload": {"n": 7}, "created_at": 1}),
        "the audience is not on the wire"
    );
    assert_eq!(sent.to_frame().ok().as_ref(), Some(&*for_a));
}

#[tokio::test]
async fn connections_of_one_user_share_a_channel_until_the_last_leaves() {
    let hub = Hub::new();
    let mut first = hub.subscribe_user("a");
    let mut second = hub.subscribe_user("a");
    assert_eq!((hub.connected_users(), hub.subscriber_count()), (1, 2));
    hub.publish(event(1, &["a"]));
    drop(first.try_recv());
    drop(first);
    hub.publish(event(2, &["a"]));
    assert_eq!(ids(&mut second), vec![1, 2]);
    assert_eq!((hub.connected_users(), hub.subscriber_count()), (1, 1));
    drop(second);
    assert_eq!((hub.connected_users(), hub.subscriber_count()), (0, 0));
    hub.publish(event(3, &["a"]));
    let mut again = hub.subscribe_user("a");
    hub.publish(event(4, &["a"]));
    assert_eq!(
        ids(&mut again),
        vec![4],
        "a new subscription starts from now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_lags_alone() {
    let hub = Hub::new();
    let mut stuck = hub.subscribe_user("a");
    let mut reader = hub.subscribe_user("b");
    let total = i64::try_from(USER_CHANNEL_CAPACITY).unwrap_or(i64::MAX) + 10;
    let mut read = Vec::new();
    for id in 1..=total {
        hub.publish(event(id, &["a", "b"]));
        read.extend(ids(&mut reader));
    }
    assert_eq!(
        read,
        (1..=total).collect::<Vec<_>>(),
        "the reader misses nothing"
    );
    assert_eq!(stuck.recv().await.err(), Some(RecvError::Lagged(10)));
    assert_eq!(
        stuck.recv().await.ok().map(|f| f.id),
        Some(11),
        "then the oldest kept"
    );
    assert!(matches!(reader.try_recv(), Err(TryRecvError::Empty)));
}
