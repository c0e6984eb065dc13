//! Who may do what, validation, idempotency, receipts and live events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::{create, event_kinds, send};
use crate::chat::testkit::Kit;
use crate::chat::*;
use crate::model::TypingState;

#[tokio::test]
async fn who_may_do_what() {
    let kit = Kit::new(&[]);
    let [a, b, c] = <[_; 3]>::try_from(kit.users(&["a", "b", "c"]).await).unwrap();
    let chat = &kit.chat;
    let conv = chat.create_conversation(&a, create(&["b"])).await.unwrap();
    let m = chat.send_message(&a, &conv.id, send("hi")).await.unwrap();
    let mb = chat.send_message(&b, &conv.id, send("yo")).await.unwrap();
    let not_found = |r: Result<_, ChatError>| matches!(r, Err(ChatError::NotFound { .. }));
    let forbidden = |r: Result<_, ChatError>| matches!(r, Err(ChatError::Forbidden(_)));

    // A non-participant learns nothing.
    assert!(not_found(
        chat.get_conversation(&c, &conv.id).await.map(drop)
    ));
    assert!(not_found(
        chat.send_message(&c, &conv.id, send("x")).await.map(drop)
    ));
    assert!(not_found(
        chat.list_messages(&c, &conv.id, MessagePage::default())
            .await
            .map(drop)
    ));
    assert!(not_found(chat.mark_delivered(&c, &m.id).await.map(drop)));
    assert!(not_found(chat.add_reaction(&c, &m.id, "x").await.map(drop)));
    assert!(not_found(
        chat.typing(&c, &conv.id, TypingState::Begin).await
    ));
    assert!(not_found(chat.delete_conversation(&c, &conv.id).await));
    assert!(chat.list_conversations(&c).await.unwrap().is_empty());
    assert!(chat.events_since(&c, 0, 100).await.unwrap().is_empty());
    assert!(not_found(
        chat.get_conversation(&a, "c_missing").await.map(drop)
    ));
    // A user id that names nobody is an unacceptable input (422 naming the item), not a missing
    // conversation.
    let unknown = chat.create_conversation(&a, create(&["b", "zed"])).await;
    assert!(
        matches!(unknown, Err(ChatError::Invalid { field, message }) if field == "participant_ids[1]" && message.contains("zed"))
    );

    // A participant who is not an admin or the sender is refused.
    let patch = UpdateConversation {
        title: Some(None),
        metadata: None,
    };
    assert!(forbidden(
        chat.update_conversation(&b, &conv.id, patch.clone())
            .await
            .map(drop)
    ));
    assert!(forbidden(chat.delete_conversation(&b, &conv.id).await));
    assert!(forbidden(
        chat.add_participants(&b, &conv.id, vec!["c".into()])
            .await
            .map(drop)
    ));
    assert!(forbidden(
        chat.remove_participant(&b, &conv.id, "a").await.map(drop)
    ));
    assert!(forbidden(
        chat.edit_message(
            &b,
            &m.id,
            EditMessage {
                body: Some("x".into()),
                metadata: None
            }
        )
        .await
        .map(drop)
    ));
    assert!(forbidden(chat.delete_message(&b, &m.id).await.map(drop)));
    assert!(forbidden(
        chat.edit_message(
            &a,
            &mb.id,
            EditMessage {
                body: Some("x".into()),
                metadata: None
            }
        )
        .await
        .map(drop)
    ));

    // Admins may; senders may; anyone may leave.
    assert!(chat.delete_message(&a, &mb.id).await.unwrap().deleted);
    assert!(matches!(
        chat.edit_message(
            &b,
            &mb.id,
            EditMessage {
                body: Some("x".into()),
                metadata: None
            }
        )
        .await,
        Err(ChatError::Conflict(_))
    ));
    assert_eq!(
        chat.update_conversation(&a, &conv.id, patch)
            .await
            .unwrap()
            .title,
        None
    );
    chat.remove_participant(&b, &conv.id, "b").await.unwrap();
    assert!(not_found(
        chat.get_conversation(&b, &conv.id).await.map(drop)
    ));
    assert_eq!(chat.list_conversations(&a).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sends_are_validated_and_idempotent() {
    let kit = Kit::new(&[]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit.chat.create_conversation(&a, create(&[])).await.unwrap();
    let keyed = SendMessage {
        body: "once".into(),
        client_id: Some("k1".into()),
        ..Default::default()
    };
    let first = kit
        .chat
        .send_message(&a, &conv.id, keyed.clone())
        .await
        .unwrap();
    let again = kit.chat.send_message(&a, &conv.id, keyed).await.unwrap();
    assert_eq!(first.id, again.id);
    let news = event_kinds(&kit)
        .iter()
        .filter(|(_, k)| k == "message.new")
        .count();
    assert_eq!(news, 1);

    let invalid = |r: Result<Message, ChatError>, field: &str| matches!(&r, Err(ChatError::Invalid { field: f, .. }) if f == field);
    assert!(invalid(
        kit.chat.send_message(&a, &conv.id, send("  ")).await,
        "body"
    ));
    let long = "x".repeat(messages::MAX_BODY_CHARS + 1);
    assert!(invalid(
        kit.chat.send_message(&a, &conv.id, send(&long)).await,
        "body"
    ));
    let bad_meta = SendMessage {
        body: "x".into(),
        metadata: json!([1]),
        ..Default::default()
    };
    assert!(invalid(
        kit.chat.send_message(&a, &conv.id, bad_meta).await,
        "metadata"
    ));
    let attachment = SendMessage {
        body: String::new(),
        metadata: json!({"url": "u"}),
        ..Default::default()
    };
    assert!(
        kit.chat
            .send_message(&a, &conv.id, attachment)
            .await
            .is_ok()
    );
    let bad_user = NewUser {
        id: "a b".into(),
        name: "x".into(),
        metadata: Value::Null,
    };
    assert!(
        matches!(kit.chat.create_user(bad_user).await, Err(ChatError::Invalid { field, .. }) if field == "id")
    );
    let dup = NewUser {
        id: "a".into(),
        name: "x".into(),
        metadata: Value::Null,
    };
    assert!(matches!(
        kit.chat.create_user(dup).await,
        Err(ChatError::Conflict(_))
    ));
}

#[tokio::test]
async fn reading_fires_one_event_per_newly_read_message() {
    let kit = Kit::new(&[]);
    let [a, b] = <[_; 2]>::try_from(kit.users(&["a", "b"]).await).unwrap();
    let conv = kit
        .chat
        .create_conversation(&a, create(&["b"]))
        .await
        .unwrap();
    let mut sent = Vec::new();
    for body in ["1", "2", "3"] {
        sent.push(
            kit.chat
                .send_message(&a, &conv.id, send(body))
                .await
                .unwrap(),
        );
    }
    kit.chat
        .send_message(&b, &conv.id, send("mine"))
        .await
        .unwrap();
    let state = kit
        .chat
        .mark_read(&b, &conv.id, Some(sent[1].id.clone()))
        .await
        .unwrap();
    assert_eq!(state.unread_count, 1);
    let state = kit.chat.mark_read(&b, &conv.id, None).await.unwrap();
    assert_eq!(state.unread_count, 0);
    kit.chat.mark_read(&b, &conv.id, None).await.unwrap();
    let reads: Vec<Value> = kit
        .chat
        .events_since(&a, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "message.read")
        .map(|e| e.payload["message"]["id"].clone())
        .collect();
    let ids: Vec<Value> = sent.iter().map(|m| json!(m.id)).collect();
    assert_eq!(reads, ids);
}

#[tokio::test]
async fn live_subscribers_get_committed_events_and_typing() {
    let kit = Kit::new(&[]);
    let [a, b, c] = <[_; 3]>::try_from(kit.users(&["a", "b", "c"]).await).unwrap();
    let conv = kit
        .chat
        .create_conversation(&a, create(&["b"]))
        .await
        .unwrap();
    let mut rx = kit.chat.hub().subscribe();
    let m = kit
        .chat
        .send_message(&b, &conv.id, send("hello"))
        .await
        .unwrap();
    let ev = rx.recv().await.unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.payload["message"]["id"].clone()),
        ("message.new", json!(m.id))
    );
    assert!(ev.is_visible_to(&a.id) && ev.is_visible_to(&b.id) && !ev.is_visible_to(&c.id));
    let logged = kit.chat.events_since(&a, 0, 100).await.unwrap();
    assert_eq!(logged.last().map(|e| e.id), Some(ev.id));

    // No plugin implements typing-started: typing is live only and touches no table.
    let stored = event_kinds(&kit).len();
    kit.chat
        .typing(&b, &conv.id, TypingState::Finished)
        .await
        .unwrap();
    let typing = rx.recv().await.unwrap();
    assert_eq!((typing.id, typing.kind.as_str()), (0, "typing.stop"));
    assert_eq!(typing.payload["typing"]["state"], "finished");
    assert_eq!(event_kinds(&kit).len(), stored);
}
