//! The example plugins through the harness, as a plugin author's own `#[test]`s would use it.

use chathooks_harness::Harness;
use chathooks_tests::example;
use serde_json::json;

fn participants(ids: &[&str]) -> serde_json::Value {
    json!(
        ids.iter()
            .map(|id| json!({ "user": { "id": id, "name": id.to_uppercase() } }))
            .collect::<Vec<_>>()
    )
}

#[test]
fn profanity_filter_masks_and_rejects() {
    let h = Harness::load(example("profanity_filter")).expect("load");
    let masked = h
        .decide(
            "before-message-sent",
            json!({ "draft": { "body": "well darn it" }, "conversation": { "id": "c1" } }),
        )
        .expect("decide");
    assert_eq!(masked, json!({ "modify": { "body": "well **** it" } }));
    let rejected = h
        .decide(
            "before-message-sent",
            json!({ "draft": { "body": "darn heck" }, "conversation": { "id": "c1" } }),
        )
        .expect("decide");
    assert!(rejected.get("reject").is_some(), "{rejected}");
    let clean = h
        .decide(
            "before-message-sent",
            json!({ "draft": { "body": "hello" }, "conversation": { "id": "c1" } }),
        )
        .expect("decide");
    assert_eq!(clean, json!("allow"));
}

#[test]
fn message_stats_counts_each_event_once() {
    let h = Harness::load(example("message_stats")).expect("load");
    let event = |id: u64, user: &str| {
        json!({
            "context": { "event_id": id },
            "message": { "id": format!("m{id}"), "conversation_id": "c1", "sender": { "id": user }, "body": "hi" },
            "conversation": { "id": "c1" },
        })
    };
    h.fire("after-message-sent", event(1, "alice"))
        .expect("first");
    h.fire("after-message-sent", event(2, "bob"))
        .expect("second");
    h.fire("after-message-sent", event(2, "bob"))
        .expect("retry of the second");
    assert_eq!(h.kv_get("conversation:c1").expect("kv"), Some(json!(2)));
    assert_eq!(h.kv_get("user:alice").expect("kv"), Some(json!(1)));
    assert_eq!(h.kv_get("user:bob").expect("kv"), Some(json!(1)));
}

#[test]
fn push_notify_records_a_notification_per_other_participant() {
    let h = Harness::load(example("push_notify")).expect("load");
    h.fire(
        "after-message-sent",
        json!({
            "context": { "event_id": 9 },
            "message": { "id": "m1", "conversation_id": "c1", "sender": { "id": "alice", "name": "Alice" }, "body": "lunch?" },
            "conversation": { "id": "c1", "title": "Team", "participant_count": 3 },
            "participants": participants(&["alice", "bob", "carol"]),
        }),
    )
    .expect("fire");
    let kv = h.kv().expect("kv");
    let pushes: Vec<_> = kv
        .iter()
        .filter(|(k, _)| k.starts_with("push:9:"))
        .collect();
    assert_eq!(pushes.len(), 2, "bob and carol, not alice: {kv:?}");
    assert!(!kv.contains_key("push:9:alice"));
    let bob = &kv["push:9:bob"];
    assert_eq!(bob["title"], json!("Team"));
    assert_eq!(bob["body"], json!("Alice: lunch?"));
}

#[test]
fn logger_logs_every_event() {
    let h = Harness::load(example("logger")).expect("load");
    h.fire(
        "after-message-sent",
        json!({ "message": { "id": "m1" }, "conversation": { "id": "c1" } }),
    )
    .expect("fire");
    let logs = h.take_logs();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("after-message-sent")),
        "{logs:?}"
    );
}
