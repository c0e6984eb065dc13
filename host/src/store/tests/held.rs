//! The moderation queue: a held message takes no seq and counts nowhere until approved; a decision is
//! made once; listings filter by sender and state.

use super::{TestDb, TestResult};
use crate::model::{HoldState, Origin};
use crate::store::{NewHeld, NewMessage, StoreError};

backend_tests!(TestDb:
    a_held_message_waits_apart_and_is_decided_once,
);

fn a_held_message_waits_apart_and_is_decided_once(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let hold = |client_id: &str| NewHeld {
        conversation_id: conv.id.clone(),
        sender_id: "b".into(),
        body: "buy now".into(),
        metadata: serde_json::json!({"k": 1}),
        mentions: vec!["a".into()],
        origin: Origin::User,
        client_id: Some(client_id.into()),
        parent_id: None,
        reason: "looks like spam".into(),
        held_by: "spam-guard".into(),
    };
    let held = t.db.write(|tx| tx.hold_message(&hold("k1"), 5))?;
    assert!(held.changed);
    let again = t.db.write(|tx| tx.hold_message(&hold("k1"), 6))?;
    assert!(
        !again.changed && again.value.id == held.value.id,
        "idempotent by client_id"
    );
    let other = t.db.write(|tx| tx.hold_message(&hold("k2"), 7))?.value;
    let h = &held.value;
    assert_eq!(
        (
            h.state,
            h.reason.as_str(),
            h.held_by.as_str(),
            h.mentions.clone()
        ),
        (
            HoldState::Pending,
            "looks like spam",
            "spam-guard",
            vec!["a".to_owned()]
        )
    );
    assert_eq!(h.metadata, serde_json::json!({"k": 1}));

    // Nothing in the conversation, nothing unread.
    assert!(
        t.db.read(|r| r.list_messages(&conv.id, &Default::default()))?
            .is_empty()
    );
    assert_eq!(t.db.read(|r| r.unread_count(&conv.id, "a"))?, 0);

    let pending =
        t.db.read(|r| r.held_messages(&conv.id, None, Some(HoldState::Pending), 10))?;
    assert_eq!(pending.len(), 2);
    assert!(
        t.db.read(|r| r.held_messages(&conv.id, Some("a"), None, 10))?
            .is_empty()
    );

    let approved =
        t.db.write(|tx| tx.decide_held(&h.id, HoldState::Approved, "a", None, 9))?;
    assert_eq!(
        (
            approved.state,
            approved.decided_by.as_deref(),
            approved.decided_at
        ),
        (HoldState::Approved, Some("a"), Some(9))
    );
    let twice =
        t.db.write(|tx| tx.decide_held(&h.id, HoldState::Rejected, "a", None, 10));
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    let rejected =
        t.db.write(|tx| tx.decide_held(&other.id, HoldState::Rejected, "a", Some("no ads"), 11))?;
    assert_eq!(rejected.decision_reason.as_deref(), Some("no ads"));

    // Approval sends it under its own id.
    let new = NewMessage {
        id: Some(h.id.clone()),
        conversation_id: conv.id.clone(),
        sender_id: "b".into(),
        body: h.body.clone(),
        ..NewMessage::default()
    };
    let sent = t.db.write(|tx| tx.send_message(&new, 12))?.value;
    assert_eq!((sent.id.as_str(), sent.seq), (h.id.as_str(), 1));
    assert_eq!(t.db.read(|r| r.unread_count(&conv.id, "a"))?, 1);
    let rest =
        t.db.read(|r| r.held_messages(&conv.id, None, Some(HoldState::Pending), 10))?;
    assert!(rest.is_empty());
    Ok(())
}
