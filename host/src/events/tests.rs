//! The event mapping: stored form round trips, kinds and hooks agree, visibility, participants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::store::{Read, StoredEvent};
use serde_json::json;

use super::*;
use crate::model::{HeldMessage, HoldState, Origin};
use crate::plugins::bindings::types as wit;
use crate::store::sqlite::testutil::{TestDb, ids};

fn user(id: &str) -> User {
    User {
        id: id.into(),
        name: id.to_uppercase(),
        metadata: json!({}),
    }
}

fn conversation() -> Conversation {
    Conversation {
        id: "c1".into(),
        title: None,
        admin_ids: ids(&["a"]),
        moderator_ids: vec![],
        owner_id: Some("a".into()),
        participant_ids: ids(&["a", "b"]),
        participant_count: 2,
        participant_ids_omitted: false,
        distinct_by_participants: false,
        metadata: json!({"x": 1}),
        last_message_id: Some("m1".into()),
        created_at: 1,
        updated_at: 2,
    }
}

fn message() -> Message {
    Message {
        id: "m1".into(),
        conversation_id: "c1".into(),
        sender: user("a"),
        body: "hi @b".into(),
        metadata: json!({}),
        seq: 1,
        created_at: 3,
        edited_at: None,
        deleted: false,
        origin: Origin::Plugin {
            name: "bot".into(),
            depth: 2,
        },
        mentions: ids(&["b"]),
        status: Default::default(),
        parent_id: None,
        reply_count: 0,
        last_reply_at: None,
        client_id: None,
    }
}

/// One event of every kind.
fn every_event() -> Vec<ChatEvent> {
    let (c, m) = (conversation(), message());
    let receipt = Receipt {
        message_id: "m1".into(),
        user: user("b"),
        delivered_at: Some(4),
        read_at: None,
    };
    let reaction = Reaction {
        message_id: "m1".into(),
        user: user("b"),
        emoji: "👍".into(),
        created_at: 5,
    };
    let typing = |state| TypingEvent {
        conversation_id: "c1".into(),
        user: user("b"),
        state,
        at: 6,
    };
    vec![
        ChatEvent::MessageSent {
            message: m.clone(),
            conversation: c.clone(),
            parent: None,
        },
        ChatEvent::UsersMentioned {
            message: m.clone(),
            conversation: c.clone(),
            mentioned_users: vec![user("b")],
        },
        ChatEvent::MessageUpdated {
            message: m.clone(),
            conversation: c.clone(),
        },
        ChatEvent::MessageDeleted {
            message: m.clone(),
            conversation: c.clone(),
        },
        ChatEvent::typing(typing(TypingState::Begin), c.clone()),
        ChatEvent::typing(typing(TypingState::Pause), c.clone()),
        ChatEvent::MessageDelivered {
            message: m.clone(),
            conversation: c.clone(),
            receipt: receipt.clone(),
        },
        ChatEvent::MessageRead {
            message: m.clone(),
            conversation: c.clone(),
            receipt,
        },
        ChatEvent::ReactionAdded {
            message: m.clone(),
            conversation: c.clone(),
            reaction: reaction.clone(),
        },
        ChatEvent::ReactionRemoved {
            message: m,
            conversation: c.clone(),
            reaction,
        },
        ChatEvent::ConversationCreated {
            conversation: c.clone(),
        },
        ChatEvent::ConversationUpdated {
            conversation: c.clone(),
        },
        ChatEvent::ConversationDeleted {
            conversation: c.clone(),
        },
        ChatEvent::MembersAdded {
            conversation: c.clone(),
            users: vec![user("b")],
        },
        ChatEvent::MembersRemoved {
            conversation: c.clone(),
            users: vec![user("z")],
        },
        ChatEvent::MessageDeliveredToAll {
            message: message(),
            conversation: c.clone(),
        },
        ChatEvent::MessageReadByAll {
            message: message(),
            conversation: c.clone(),
        },
        ChatEvent::MessageHeld {
            held: held(),
            conversation: c.clone(),
        },
        ChatEvent::MessageApproved {
            message: message(),
            conversation: c.clone(),
            moderator: user("a"),
        },
        ChatEvent::MessageRejected {
            held: held(),
            conversation: c,
            moderator: user("a"),
        },
        ChatEvent::UserPresenceChanged {
            user: user("b"),
            presence: Presence {
                user_id: "b".into(),
                online: true,
                last_seen_at: Some(7),
            },
        },
    ]
    .into_iter()
    .chain(roles_bans_and_blocks())
    .collect()
}

/// One event of each kind of roles, bans and blocking, in the order of the table.
fn roles_bans_and_blocks() -> Vec<ChatEvent> {
    let c = conversation();
    let ban = Ban {
        conversation_id: "c1".into(),
        user: user("z"),
        banned_by: "a".into(),
        reason: Some("spam".into()),
        created_at: 9,
    };
    vec![
        ChatEvent::ParticipantRoleChanged {
            conversation: c.clone(),
            participant: Participant {
                user: user("b"),
                is_admin: false,
                role: Role::Moderator,
                unread_count: 0,
                last_read_message_id: None,
            },
            old_role: Role::Member,
            changed_by: user("a"),
        },
        ChatEvent::MemberBanned {
            conversation: c.clone(),
            ban: ban.clone(),
        },
        ChatEvent::MemberUnbanned {
            conversation: c.clone(),
            ban,
            unbanned_by: user("a"),
        },
        ChatEvent::OwnerTransferred {
            conversation: c,
            old_owner: Some(user("a")),
            new_owner: user("b"),
        },
        ChatEvent::UserBlocked {
            blocker: user("a"),
            blocked: user("b"),
        },
        ChatEvent::UserUnblocked {
            blocker: user("a"),
            blocked: user("b"),
        },
    ]
}

fn held() -> HeldMessage {
    HeldMessage {
        id: "m9".into(),
        conversation_id: "c1".into(),
        sender: user("b"),
        body: "hmm".into(),
        metadata: json!({}),
        mentions: vec![],
        origin: Origin::User,
        client_id: None,
        parent_id: None,
        reason: "looks like spam".into(),
        held_by: "mod".into(),
        state: HoldState::Rejected,
        decided_by: Some("a".into()),
        decided_at: Some(8),
        decision_reason: Some("spam".into()),
        created_at: 7,
    }
}

#[test]
fn every_event_round_trips_and_names_its_hook() {
    let events = every_event();
    let hooks: std::collections::BTreeSet<Hook> = events.iter().map(ChatEvent::hook).collect();
    let after_hooks = Hook::ALL
        .iter()
        .filter(|h| h.kind() == crate::plugins::HookKind::After);
    let missing: Vec<Hook> = after_hooks
        .filter(|h| !hooks.contains(h))
        .copied()
        .collect();
    assert_eq!(missing, [], "every after-hook has an event");
    for event in events {
        let stored = StoredEvent {
            id: 9,
            kind: event.kind().to_owned(),
            conversation_id: Some("c1".into()),
            audience: vec![],
            payload: event.payload(),
            created_at: 7,
        };
        assert_eq!(
            stored.payload.get("conversation").is_some(),
            event.conversation().is_some(),
            "{}",
            event.kind()
        );
        assert_eq!(ChatEvent::from_stored(&stored).unwrap(), event);
        assert_eq!(hook_for_kind(event.kind()), Some(event.hook()));
        let context = wit::EventContext {
            event_id: 9,
            attempt: 2,
            at: 7,
        };
        assert_eq!(event.hook_call(context).hook(), event.hook());
    }
    let unknown = StoredEvent {
        id: 1,
        kind: "message.new".into(),
        conversation_id: None,
        audience: vec![],
        payload: json!({"nope": 1}),
        created_at: 0,
    };
    assert!(matches!(
        ChatEvent::from_stored(&unknown),
        Err(EventError::Payload { id: 1, .. })
    ));
    assert_eq!(hook_for_kind("something.else"), None);
}

#[test]
fn audience_visibility_and_depth() {
    let events = every_event();
    assert_eq!(events[0].audience(), ids(&["a", "b"]));
    assert_eq!(
        events[14].audience(),
        ids(&["a", "b", "z"]),
        "removed members hear of it"
    );
    let visibility: Vec<Visibility> = events.iter().map(ChatEvent::visibility).collect();
    assert_eq!(visibility[1], Visibility::HooksOnly);
    assert_eq!(
        (visibility[4], visibility[5]),
        (Visibility::LiveOnly, Visibility::LiveOnly)
    );
    assert_eq!(
        (events[4].kind(), events[5].kind()),
        ("typing.start", "typing.stop")
    );
    assert_eq!(events[0].plugin_depth(), 2);
    assert_eq!(events[10].plugin_depth(), 0);
    let live = live_only(&events[4], 11);
    assert_eq!(
        (live.id, live.created_at, live.audience.clone()),
        (0, 11, ids(&["a", "b"]))
    );
}

#[test]
fn bans_reach_the_banned_user_and_blocks_only_the_blocker() {
    let [role, banned, unbanned, owner, blocked, unblocked] =
        <[ChatEvent; 6]>::try_from(roles_bans_and_blocks()).unwrap();
    assert_eq!(role.audience(), ids(&["a", "b"]));
    assert_eq!(banned.audience(), ids(&["a", "b", "z"]));
    assert_eq!(unbanned.audience(), ids(&["a", "b", "z"]));
    assert_eq!(owner.audience(), ids(&["a", "b"]));
    assert_eq!(blocked.audience(), ids(&["a"]));
    assert_eq!(unblocked.audience(), ids(&["a"]));
    assert_eq!(blocked.conversation(), None);
    let kinds: Vec<&str> = roles_bans_and_blocks()
        .iter()
        .map(ChatEvent::kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "member.role_changed",
            "member.banned",
            "member.unbanned",
            "conversation.owner_transferred",
            "user.blocked",
            "user.unblocked"
        ]
    );
    let HookCall::AfterMemberBanned { ban, .. } = banned.hook_call(wit::EventContext {
        event_id: 1,
        attempt: 1,
        at: 9,
    }) else {
        panic!("member.banned calls after-member-banned");
    };
    assert_eq!(
        (
            ban.user.id.as_str(),
            ban.banned_by.as_str(),
            ban.reason.as_deref(),
            ban.at
        ),
        ("z", "a", Some("spam"), 9)
    );
    let HookCall::AfterParticipantRoleChanged {
        participant,
        old_role,
        ..
    } = role.hook_call(wit::EventContext {
        event_id: 1,
        attempt: 1,
        at: 9,
    })
    else {
        panic!("member.role_changed calls after-participant-role-changed");
    };
    assert!(matches!(participant.role, wit::Role::Moderator));
    assert!(matches!(old_role, wit::Role::Member));
}

#[test]
fn hidden_events_are_stored_without_audience() {
    let t = TestDb::with_users(&["a", "b"]).unwrap();
    let events = every_event();
    let (sent, mentioned, typing) =
        t.db.write(|tx| {
            Ok((
                append_event(tx, &events[0], 5)?,
                append_event(tx, &events[1], 5)?,
                append_event(tx, &events[4], 5)?,
            ))
        })
        .unwrap();
    assert!(sent.id > 0);
    assert_eq!((mentioned.id, typing.id), (0, 0));
    assert_eq!(typing.audience, ids(&["a", "b"]));
    let seen = t.db.read(|c| c.events_since("b", 0, 10)).unwrap();
    assert_eq!(seen.iter().map(|e| e.id).collect::<Vec<_>>(), vec![sent.id]);
    let queued = t.db.read(|c| c.pending_events(10)).unwrap();
    assert_eq!(queued.len(), 3, "every event reaches the outbox");
}

#[test]
fn wit_values_are_mechanical() {
    assert_eq!(to_wit::json(&serde_json::Value::Null), "{}");
    assert_eq!(to_wit::timestamp(-5), 0);
    let m = to_wit::message(&message());
    assert_eq!((m.seq, m.created_at, m.metadata.as_str()), (1, 3, "{}"));
    assert!(matches!(m.origin, wit::Origin::Plugin(ref p) if p.name == "bot" && p.depth == 2));
    let c = to_wit::conversation(&conversation());
    assert_eq!(
        (
            c.metadata.as_str(),
            c.participant_count,
            c.owner_id.as_deref()
        ),
        (r#"{"x":1}"#, 2, Some("a"))
    );
}
