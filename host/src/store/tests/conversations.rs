//! Conversations: the distinct one found by its exact participant set; create, update, list, delete.

use super::{TestDb, TestResult, ids};
use crate::store::{ConversationPatch, NewConversation, StoreError};

backend_tests!(TestDb:
    distinct_conversations_are_found_by_exact_participant_set,
    create_update_list_and_delete,
);

fn distinct_conversations_are_found_by_exact_participant_set(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let new = NewConversation {
        participant_ids: ids(&["a", "b"]),
        admin_ids: ids(&["a"]),
        distinct_by_participants: true,
        ..Default::default()
    };
    let first = t.db.write(|tx| tx.create_conversation(&new, 1))?;
    assert!(first.changed);
    assert_eq!(first.value.admin_ids, ids(&["a"]));
    assert_eq!(first.value.participant_count, 2);

    let reversed = NewConversation {
        participant_ids: ids(&["b", "a"]),
        admin_ids: vec![],
        ..new.clone()
    };
    let again = t.db.write(|tx| tx.create_conversation(&reversed, 2))?;
    assert!(!again.changed);
    assert_eq!(again.value.id, first.value.id);

    let not_distinct = NewConversation {
        distinct_by_participants: false,
        ..new.clone()
    };
    assert!(
        t.db.write(|tx| tx.create_conversation(&not_distinct, 3))?
            .changed
    );

    // A superset is a different conversation; after adding c to the first, {a,b} is new again.
    let abc = NewConversation {
        participant_ids: ids(&["a", "b", "c"]),
        ..new.clone()
    };
    assert!(t.db.write(|tx| tx.create_conversation(&abc, 4))?.changed);
    t.db.write(|tx| tx.add_participants(&first.value.id, &ids(&["c"]), 5))?;
    let fresh = t.db.write(|tx| tx.create_conversation(&new, 6))?;
    assert!(fresh.changed);
    assert_ne!(fresh.value.id, first.value.id);
    Ok(())
}

fn create_update_list_and_delete(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let unknown = NewConversation {
        participant_ids: ids(&["a", "zed"]),
        ..Default::default()
    };
    let err = t.db.write(|tx| tx.create_conversation(&unknown, 1));
    assert!(matches!(
        err,
        Err(StoreError::NotFound { what: "user", .. })
    ));
    let empty =
        t.db.write(|tx| tx.create_conversation(&NewConversation::default(), 1));
    assert!(matches!(empty, Err(StoreError::Invalid(_))));

    let conv = t.conversation(&["a", "b"])?;
    let patch = ConversationPatch {
        title: Some(Some("Team".into())),
        metadata: Some(serde_json::json!({"x": 1})),
    };
    let updated =
        t.db.write(|tx| tx.update_conversation(&conv.id, &patch, 13))?;
    assert_eq!(
        (updated.title.as_deref(), updated.updated_at),
        (Some("Team"), 13)
    );
    assert_eq!(updated.metadata, serde_json::json!({"x": 1}));

    let quiet = t.conversation(&["a", "b"])?;
    t.send(&conv.id, "a", "hello")?;
    let listed = t.db.read(|r| r.list_for_user("b", 50))?;
    let order: Vec<&str> = listed.iter().map(|l| l.conversation.id.as_str()).collect();
    assert_eq!(order, vec![conv.id.as_str(), quiet.id.as_str()]);
    assert_eq!(listed[0].unread_count, 1);
    let preview = listed[0].last_message.as_ref().map(|m| m.body.as_str());
    assert_eq!(preview, Some("hello"));
    assert!(t.db.read(|r| r.list_for_user("c", 50))?.is_empty());

    let gone = t.db.write(|tx| tx.delete_conversation(&conv.id))?;
    assert_eq!(gone.id, conv.id);
    let missing = t.db.read(|r| r.get_conversation(&conv.id));
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    Ok(())
}
