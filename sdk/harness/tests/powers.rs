//! The power examples through the harness: what they ask their powers to do is recorded, grants come
//! from the manifest (or are given), timers are fired by hand.

use chathooks_harness::{Grants, Harness, PluginPowers, Recorded};
use chathooks_tests::example;
use serde_json::json;

fn powers(grants: Grants, config: serde_json::Value) -> PluginPowers {
    PluginPowers {
        config: config.as_object().cloned().unwrap_or_default(),
        grants,
    }
}

fn bot_grants() -> Grants {
    Grants {
        chat_post: true,
        chat_join: true,
        ..Grants::default()
    }
}

fn posts(calls: &[Recorded]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Recorded::Post(p) => Some(p.body.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn welcome_bot_posts_the_configured_greeting_as_its_bot() {
    let h = Harness::load_with_powers(
        example("welcome_bot"),
        powers(bot_grants(), json!({"greeting": "Hello {name}!"})),
    )
    .expect("load");
    h.fire(
        "after-users-added-to-conversation",
        json!({ "conversation": { "id": "c1" }, "new_users": [{ "id": "bob", "name": "Bob" }] }),
    )
    .expect("fire");
    let calls = h.take_power_calls();
    assert!(matches!(&calls[0], Recorded::Join { conversation_id, .. } if conversation_id == "c1"));
    match &calls[1] {
        Recorded::Post(post) => {
            assert_eq!(post.body, "Hello Bob!");
            assert_eq!(post.plugin, "welcome_bot");
            assert_eq!(post.depth, 1);
        }
        other => panic!("expected a post, got {other:?}"),
    }
}

#[test]
fn without_grants_every_power_is_denied_as_a_value() {
    let h =
        Harness::load_with_powers(example("welcome_bot"), PluginPowers::default()).expect("load");
    let err = h
        .fire(
            "after-users-added-to-conversation",
            json!({ "conversation": { "id": "c1" }, "new_users": [{ "id": "bob" }] }),
        )
        .expect_err("denied");
    assert!(err.to_string().contains("chat: denied"), "{err}");
    assert!(h.take_power_calls().is_empty());
    // The instance did not trap: the next call works on it.
    assert_eq!(h.plugin().idle_instances(), 1);
}

#[test]
fn command_bot_answers_after_a_bot_message_one_level_deeper() {
    let h = Harness::load_with_powers(example("command_bot"), powers(bot_grants(), json!({})))
        .expect("load");
    h.fire(
        "after-message-sent",
        json!({
            "message": { "id": "m1", "sender": { "id": "bot.other" }, "body": "/roll d20",
                         "origin": { "plugin": { "name": "other", "depth": 2 } } },
            "conversation": { "id": "c1" },
        }),
    )
    .expect("fire");
    let calls = h.take_power_calls();
    let depth = calls.iter().find_map(|c| match c {
        Recorded::Post(p) => Some(p.depth),
        _ => None,
    });
    assert_eq!(depth, Some(3));
    // A message already at the limit cannot be answered: the post is refused as too deep.
    let err = h
        .fire(
            "after-message-sent",
            json!({
                "message": { "id": "m2", "sender": { "id": "bot.other" }, "body": "/help",
                             "origin": { "plugin": { "name": "other", "depth": 3 } } },
                "conversation": { "id": "c1" },
            }),
        )
        .expect_err("too deep");
    assert!(err.to_string().contains("loop guard"), "{err}");
}

#[test]
fn reminder_sets_a_timer_and_posts_when_it_fires() {
    let grants = Grants {
        scheduler: true,
        ..bot_grants()
    };
    let h =
        Harness::load_with_powers(example("reminder"), powers(grants, json!({}))).expect("load");
    h.fire(
        "after-message-sent",
        json!({
            "message": { "id": "m9", "sender": { "id": "alice" }, "body": "/remind 90s tea" },
            "conversation": { "id": "c1" },
        }),
    )
    .expect("fire");
    let calls = h.take_power_calls();
    let timer = calls
        .iter()
        .find_map(|c| match c {
            Recorded::Timer(t) => Some(t.clone()),
            _ => None,
        })
        .expect("a timer");
    assert_eq!((timer.name.as_str(), timer.delay_ms), ("remind:m9", 90_000));
    h.fire_timer(&timer.name, &timer.payload).expect("timer");
    assert_eq!(
        posts(&h.take_power_calls()),
        ["⏰ Reminder for @alice: tea"]
    );
}

#[test]
fn webhook_bridge_signs_what_it_sends_and_retries_on_errors() {
    let grants = Grants {
        http_hosts: vec!["hooks.test".into()],
        ..Grants::default()
    };
    let h = Harness::load_with_powers(
        example("webhook_bridge"),
        powers(
            grants,
            json!({"url": "http://hooks.test/in", "secret": "k"}),
        ),
    )
    .expect("load");
    let event = json!({ "message": { "id": "m1", "body": "hi" }, "conversation": { "id": "c1" } });
    h.fire("after-message-sent", event.clone()).expect("fire");
    let calls = h.take_power_calls();
    let Recorded::Http(request) = &calls[0] else {
        panic!("expected a request, got {calls:?}");
    };
    let signature = request
        .headers
        .iter()
        .find(|(k, _)| k == "x-chathooks-signature")
        .map(|(_, v)| v.clone());
    assert_eq!(
        signature,
        Some(chathooks::powers::hmac::signature("k", &request.body))
    );
    h.set_http_response(502, "bad gateway");
    let err = h.fire("after-message-sent", event).expect_err("retried");
    assert!(err.to_string().contains("webhook answered 502"), "{err}");
}

#[test]
fn push_notify_pushes_each_recipient() {
    let grants = Grants {
        push: true,
        ..Grants::default()
    };
    let h =
        Harness::load_with_powers(example("push_notify"), powers(grants, json!({}))).expect("load");
    h.fire(
        "after-message-sent",
        json!({
            "message": { "id": "m1", "conversation_id": "c1", "sender": { "id": "alice", "name": "Alice" }, "body": "hi" },
            "conversation": { "id": "c1", "title": "Team" },
            "participants": [
                { "user": { "id": "alice" } },
                { "user": { "id": "bob" }, "unread_count": 2 }
            ],
        }),
    )
    .expect("fire");
    let calls = h.take_power_calls();
    let Recorded::Push(n) = &calls[0] else {
        panic!("expected a push, got {calls:?}");
    };
    assert_eq!(n.user_ids, ["bob"]);
    assert_eq!(
        (n.title.as_str(), n.body.as_str(), n.badge),
        ("Team", "Alice: hi", Some(2))
    );
    assert_eq!(n.data, json!({"conversation_id": "c1", "message_id": "m1"}));
}
