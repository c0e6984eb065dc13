//! Each operation fires its hook once with its payload; before-hook chains modify, reject, fail open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::{create, event_kinds, send};
use crate::chat::testkit::{Kit, copy_plugin, example, fixture};
use crate::chat::*;
use crate::dispatch::DeliveryOutcome;
use crate::model::TypingState;

#[tokio::test]
async fn every_operation_fires_its_hook_once_with_its_payload() {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a, b, c] = <[_; 3]>::try_from(kit.users(&["a", "b", "c"]).await).unwrap();
    let chat = &kit.chat;
    let conv = chat.create_conversation(&a, create(&["b"])).await.unwrap();
    assert_eq!(
        (conv.participant_ids.clone(), conv.admin_ids.clone()),
        (vec!["a".into(), "b".into()], vec!["a".into()])
    );
    let patch = UpdateConversation {
        title: Some(Some("Team".into())),
        metadata: None,
    };
    chat.update_conversation(&a, &conv.id, patch).await.unwrap();
    chat.add_participants(&a, &conv.id, vec!["c".into()])
        .await
        .unwrap();
    let m = chat
        .send_message(&a, &conv.id, send("hi @b and @zed"))
        .await
        .unwrap();
    assert_eq!(m.mentions, vec!["b".to_owned()]);
    let edit = EditMessage {
        body: Some("hello @b".into()),
        metadata: Some(json!({"k": 1})),
    };
    chat.edit_message(&a, &m.id, edit).await.unwrap();
    chat.mark_delivered(&b, &m.id).await.unwrap();
    let read = chat.mark_read(&b, &conv.id, None).await.unwrap();
    assert_eq!(
        (read.unread_count, read.last_read_message_id.as_deref()),
        (0, Some(m.id.as_str()))
    );
    chat.add_reaction(&b, &m.id, "👍").await.unwrap();
    chat.remove_reaction(&b, &m.id, "👍").await.unwrap();
    chat.typing(&a, &conv.id, TypingState::Begin).await.unwrap();
    chat.remove_participant(&a, &conv.id, "c").await.unwrap();
    chat.delete_message(&a, &m.id).await.unwrap();
    chat.delete_conversation(&a, &conv.id).await.unwrap();

    let events = event_kinds(&kit);
    let kinds: Vec<&str> = events.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "conversation.created",
            "conversation.updated",
            "member.added",
            "message.new",
            "message.mentioned",
            "message.updated",
            "message.delivered",
            "message.read",
            "reaction.new",
            "reaction.deleted",
            "typing.start",
            "member.removed",
            "message.deleted",
            "conversation.deleted",
        ]
    );
    assert!(
        kit.after_keys().is_empty(),
        "nothing is delivered before the dispatcher runs"
    );
    let outcomes = kit.drain();
    assert_eq!(outcomes.len(), events.len());

    // Exactly one record per event, under the event's hook.
    let expected: Vec<String> = events
        .iter()
        .map(|(id, kind)| {
            format!(
                "{}:{id}",
                crate::events::hook_for_kind(kind).unwrap().name()
            )
        })
        .collect();
    assert_eq!(kit.after_keys(), expected);
    let rec = |i: usize| kit.record(&expected[i]).unwrap();
    for (i, (id, _)) in events.iter().enumerate() {
        assert_eq!(
            rec(i)["context"],
            json!({"event_id": id, "attempt": 1, "at": rec(i)["context"]["at"]})
        );
    }

    let created = rec(0);
    assert_eq!(created["conversation"]["title"], "T");
    assert_eq!(
        (
            &created["conversation"]["owner_id"],
            &created["conversation"]["participant_count"]
        ),
        (&json!("a"), &json!(2))
    );
    assert_eq!(rec(1)["conversation"]["title"], "Team");
    assert_eq!(rec(2)["new_users"], json!(["c"]));
    assert_eq!(rec(2)["conversation"]["participant_count"], 3);
    let sent = rec(3);
    assert_eq!(sent["message"]["body"], "hi @b and @zed");
    assert_eq!(
        (
            sent["message"]["sender"].clone(),
            sent["message"]["seq"].clone()
        ),
        (json!("a"), json!(1))
    );
    assert_eq!(sent["message"]["origin"], "user");
    assert_eq!(sent["conversation"]["last_message_id"], json!(m.id));
    assert_eq!(sent["conversation"]["participant_count"], 3);
    assert_eq!(rec(4)["mentioned_users"], json!(["b"]));
    let updated = rec(5);
    assert_eq!(
        (
            updated["message"]["body"].clone(),
            updated["message"]["metadata"].clone()
        ),
        (json!("hello @b"), json!({"k": 1}))
    );
    assert!(updated["message"]["edited_at"].is_u64());
    assert_eq!(rec(6)["receipt"]["user"], "b");
    assert!(rec(6)["receipt"]["delivered_at"].is_u64());
    assert!(rec(7)["receipt"]["read_at"].is_u64());
    assert_eq!(rec(7)["message"]["id"], json!(m.id));
    assert_eq!(
        rec(8)["reaction"],
        json!({"message_id": m.id, "user": "b", "emoji": "👍", "created_at": rec(8)["reaction"]["created_at"]})
    );
    assert_eq!(rec(9)["reaction"]["emoji"], "👍");
    assert_eq!(rec(10)["events"][0]["state"], "begin");
    assert_eq!(rec(10)["events"][0]["user"], "a");
    assert_eq!(rec(11)["old_users"], json!(["c"]));
    assert_eq!(rec(11)["conversation"]["participant_count"], 2);
    let deleted = rec(12);
    assert_eq!(
        (
            deleted["message"]["deleted"].clone(),
            deleted["message"]["body"].clone()
        ),
        (json!(true), json!(""))
    );
    // The conversation is gone, but its hook gets the snapshot (`chat.participants` has no one left to
    // list: the recorder asked after the deletion).
    let gone = rec(13);
    assert_eq!(gone["conversation"]["id"], json!(conv.id));
    assert_eq!(gone["conversation"]["participant_count"], 2);
    assert!(gone["participants"]["error"].is_string(), "{gone}");

    // Before-hooks saw the drafts.
    assert!(kit.record("before-message-sent:hi @b and @zed").is_some());
    let before_edit = kit.record("before-message-updated:hello @b").unwrap();
    assert_eq!(before_edit["current"]["body"], "hi @b and @zed");

    // Typing and mentions are for hooks only: no client ever gets them from the log.
    for user in [&a, &b, &c] {
        let seen = kit
            .db
            .read(|conn| conn.events_since(&user.id, 0, 100))
            .unwrap();
        assert!(
            seen.iter()
                .all(|e| e.kind != "typing.start" && e.kind != "message.mentioned")
        );
    }
    assert!(kit.drain().is_empty(), "nothing is delivered twice");
}

#[tokio::test]
async fn before_hooks_chain_in_order_modify_and_reject() {
    let kit = Kit::new(&[
        fixture("recorder"),
        fixture("hostile"),
        example("profanity_filter").with_manifest("priority = -1\n"),
    ]);
    let [a, b] = <[_; 2]>::try_from(kit.users(&["a", "b"]).await).unwrap();
    let conv = kit
        .chat
        .create_conversation(&a, create(&["b"]))
        .await
        .unwrap();
    let order: Vec<String> = kit
        .registry
        .ordered(crate::plugins::Hook::BeforeMessageSent)
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(order, ["profanity_filter", "hostile", "recorder"]);

    // profanity_filter masks, hostile prefixes, recorder sees the result; that is what is stored.
    let m = kit
        .chat
        .send_message(&b, &conv.id, send("heck yes"))
        .await
        .unwrap();
    assert_eq!(m.body, "ok:**** yes");
    assert!(kit.record("before-message-sent:ok:**** yes").is_some());
    kit.drain();
    let sent = kit.record(&kit.keys("after-message-sent:")[0]).unwrap();
    assert_eq!(sent["message"]["body"], "ok:**** yes");

    // The first reject wins; nothing is stored and later plugins never see it.
    let events_before = event_kinds(&kit).len();
    let rejected = kit.chat.send_message(&b, &conv.id, send("reject")).await;
    assert!(
        matches!(&rejected, Err(ChatError::Rejected { plugin, reason }) if plugin == "hostile" && reason == "hostile: reject requested")
    );
    let only_blocked = kit.chat.send_message(&b, &conv.id, send("damn")).await;
    assert!(
        matches!(&only_blocked, Err(ChatError::Rejected { plugin, .. }) if plugin == "profanity_filter")
    );
    assert!(kit.record("before-message-sent:reject").is_none());
    assert_eq!(event_kinds(&kit).len(), events_before);
    let page = kit
        .chat
        .list_messages(&a, &conv.id, MessagePage::default())
        .await
        .unwrap();
    assert_eq!(page.len(), 1);

    // Edits go through before-message-updated (hostile does not export it).
    let edited = kit
        .chat
        .edit_message(
            &b,
            &m.id,
            EditMessage {
                body: Some("crap, fine".into()),
                metadata: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.body, "****, fine");
    let rejected_edit = kit
        .chat
        .edit_message(
            &b,
            &m.id,
            EditMessage {
                body: Some("frak".into()),
                metadata: None,
            },
        )
        .await;
    assert!(matches!(rejected_edit, Err(ChatError::Rejected { .. })));
}

/// With a before-hook, a send looks at its conversation alone before the chain and reads the rest only
/// when it needs to: a retry gets the earlier message back without running the chain again, a reply to
/// a reply and a send to someone who blocked the sender are refused before any hook runs.
#[tokio::test]
async fn sends_with_before_hooks_check_retries_replies_and_blocks_first() {
    let kit = Kit::new(&[
        fixture("recorder"),
        example("profanity_filter").with_manifest("priority = -1\n"),
    ]);
    let [a, b] = <[_; 2]>::try_from(kit.users(&["a", "b"]).await).unwrap();
    let chat = &kit.chat;
    let group = chat.create_conversation(&a, create(&["b"])).await.unwrap();
    let keyed = |body: &str| SendMessage {
        body: body.into(),
        client_id: Some("k1".into()),
        ..Default::default()
    };
    let first = chat
        .send_message(&a, &group.id, keyed("heck no"))
        .await
        .unwrap();
    assert_eq!(first.body, "**** no");
    let again = chat
        .send_message(&a, &group.id, keyed("crap no"))
        .await
        .unwrap();
    assert_eq!(
        (again.id, again.body),
        (first.id.clone(), "**** no".to_owned())
    );
    assert!(kit.record("before-message-sent:**** no").is_some());
    assert!(
        kit.record("before-message-sent:crap no").is_none(),
        "the chain ran again"
    );

    let reply = |parent: &str, body: &str| SendMessage {
        body: body.into(),
        parent_id: Some(parent.to_owned()),
        ..Default::default()
    };
    let answer = chat
        .send_message(&b, &group.id, reply(&first.id, "yes"))
        .await
        .unwrap();
    let nested = chat
        .send_message(&a, &group.id, reply(&answer.id, "nested"))
        .await;
    assert!(matches!(&nested, Err(ChatError::Conflict(why)) if why.starts_with("parent_id")));
    assert!(kit.record("before-message-sent:nested").is_none());

    let direct = chat
        .create_conversation(
            &a,
            CreateConversation {
                distinct_by_participants: true,
                ..create(&["b"])
            },
        )
        .await
        .unwrap();
    chat.block_user(&b, "a").await.unwrap();
    let blocked = chat.send_message(&a, &direct.id, send("hello")).await;
    assert!(matches!(&blocked, Err(ChatError::Blocked { blocker, .. }) if blocker == "b"));
    assert!(kit.record("before-message-sent:hello").is_none());
    let outsider = kit.users(&["c"]).await.remove(0);
    let refused = chat.send_message(&outsider, &group.id, send("hi")).await;
    assert!(matches!(
        refused,
        Err(ChatError::NotFound {
            what: "conversation",
            ..
        })
    ));
}

#[tokio::test]
async fn failing_before_hooks_fail_open_unless_closed() {
    let kit = Kit::new(&[fixture("hostile")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit.chat.create_conversation(&a, create(&[])).await.unwrap();
    let trapped = kit
        .chat
        .send_message(&a, &conv.id, send("trap"))
        .await
        .unwrap();
    assert_eq!(trapped.body, "trap", "the failing plugin is skipped");
    let looped = kit
        .chat
        .send_message(&a, &conv.id, send("loop"))
        .await
        .unwrap();
    assert_eq!(looped.body, "loop");
    let status = &kit.registry.plugins_status()[0];
    assert_eq!((status.calls, status.failures, status.timeouts), (2, 2, 1));
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("timed out"))
    );

    let closed = Kit::new(&[fixture("hostile").with_manifest("fail = \"closed\"\n")]);
    let [a] = <[_; 1]>::try_from(closed.users(&["a"]).await).unwrap();
    let conv = closed
        .chat
        .create_conversation(&a, create(&[]))
        .await
        .unwrap();
    let refused = closed.chat.send_message(&a, &conv.id, send("trap")).await;
    assert!(matches!(refused, Err(ChatError::Rejected { plugin, .. }) if plugin == "hostile"));
    let fine = closed
        .chat
        .send_message(&a, &conv.id, send("fine"))
        .await
        .unwrap();
    assert_eq!(fine.body, "ok:fine");
}

/// An event is queued for the after-hooks only while a running plugin exports its hook: with none, a
/// change leaves the outbox empty (the dispatcher has nothing to do) and is still in the log clients
/// replay; a plugin loaded later gets the changes from then on.
#[tokio::test]
async fn only_events_a_running_plugin_listens_for_are_queued_for_after_hooks() {
    let kit = Kit::new(&[]);
    let [a, _b] = <[_; 2]>::try_from(kit.users(&["a", "b"]).await).unwrap();
    let chat = &kit.chat;
    let conv = chat.create_conversation(&a, create(&["b"])).await.unwrap();
    chat.send_message(&a, &conv.id, send("nobody listens"))
        .await
        .unwrap();
    let depth = || kit.db.read(|c| c.outbox_depth()).unwrap();
    assert_eq!(depth(), 0, "no plugin: nothing queued");
    assert_eq!(
        event_kinds(&kit).len(),
        2,
        "the log still has conversation.created and message.new"
    );

    copy_plugin(&fixture("only_sent"), &kit.plugins_dir());
    let loaded = kit.registry.load_dir(&kit.plugins_dir()).unwrap();
    assert_eq!(loaded, ["only_sent"]);
    let m = chat
        .send_message(&a, &conv.id, send("only-sent listens"))
        .await
        .unwrap();
    chat.add_reaction(&a, &m.id, "👍").await.unwrap();
    assert_eq!(depth(), 1, "message.new queued, reaction.new not");
    let outcomes = kit.drain();
    assert!(
        matches!(outcomes.as_slice(), [DeliveryOutcome::Delivered]),
        "{outcomes:?}"
    );
    assert_eq!(
        kit.kv.get("only_sent", "sent").unwrap(),
        Some(b"1".to_vec())
    );
}
