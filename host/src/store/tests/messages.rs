//! Messages: gapless `seq`, idempotent sends, paging, edits, soft deletes and mentions.

use super::{TestDb, TestResult, ids};
use crate::model::Origin;
use crate::store::{MessagePage, NewMessage, Result, StoreError};

backend_tests!(TestDb:
    seq_has_no_gaps_across_rollbacks_and_threads,
    send_is_idempotent_by_sender_and_client_id,
    pages_by_seq_newest_first_by_default,
    edit_soft_delete_and_mentions,
);

fn new(conversation_id: &str, sender: &str, body: &str, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        conversation_id: conversation_id.to_owned(),
        sender_id: sender.to_owned(),
        body: body.to_owned(),
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    }
}

fn seq_has_no_gaps_across_rollbacks_and_threads(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    t.send(&conv.id, "a", "one")?;
    let rolled_back: Result<()> = t.db.write(|tx| {
        tx.send_message(&new(&conv.id, "a", "lost", None), 1)?;
        Err(StoreError::Conflict("abort".into()))
    });
    assert!(rolled_back.is_err());
    std::thread::scope(|s| {
        for sender in ["a", "b"] {
            let (db, conv) = (&t.db, &conv.id);
            s.spawn(move || {
                for i in 0..25 {
                    let sent = db
                        .write(|tx| tx.send_message(&new(conv, sender, &format!("{i}"), None), 3));
                    assert!(sent.is_ok(), "{sent:?}");
                }
            });
        }
    });
    let page = MessagePage {
        limit: Some(200),
        ..Default::default()
    };
    let all = t.db.read(|r| r.list_messages(&conv.id, &page))?;
    let seqs: Vec<i64> = all.iter().rev().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=51).collect::<Vec<_>>());
    assert!(all.iter().all(|m| m.body != "lost"));
    let conversation = t.db.read(|r| r.get_conversation(&conv.id))?;
    assert_eq!(
        conversation.last_message_id.as_deref(),
        Some(all[0].id.as_str())
    );
    Ok(())
}

fn send_is_idempotent_by_sender_and_client_id(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let other = t.conversation(&["a", "b"])?;
    let first =
        t.db.write(|tx| tx.send_message(&new(&conv.id, "a", "hi", Some("k1")), 1))?;
    assert!(first.changed);
    let again =
        t.db.write(|tx| tx.send_message(&new(&conv.id, "a", "hi again", Some("k1")), 2))?;
    assert!(!again.changed);
    assert_eq!(
        (again.value.id.as_str(), again.value.body.as_str()),
        (first.value.id.as_str(), "hi")
    );
    assert_eq!(again.value.client_id.as_deref(), Some("k1"));
    // Another sender may use the same key; the same sender may not reuse it elsewhere.
    assert!(
        t.db.write(|tx| tx.send_message(&new(&conv.id, "b", "yo", Some("k1")), 3))?
            .changed
    );
    let elsewhere =
        t.db.write(|tx| tx.send_message(&new(&other.id, "a", "x", Some("k1")), 4));
    assert!(matches!(elsewhere, Err(StoreError::Conflict(_))));
    let from_b = t.db.read(|r| r.find_by_client_id("b", "k1"))?;
    assert!(from_b.is_some());
    assert_eq!(
        t.db.read(|r| r.get_conversation(&conv.id))?.last_message_id,
        from_b.map(|m| m.id)
    );
    let missing =
        t.db.write(|tx| tx.send_message(&new("c_nope", "a", "x", None), 5));
    assert!(matches!(
        missing,
        Err(StoreError::NotFound {
            what: "conversation",
            ..
        })
    ));
    Ok(())
}

fn pages_by_seq_newest_first_by_default(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let conv = t.conversation(&["a"])?;
    for i in 1..=10 {
        t.send(&conv.id, "a", &i.to_string())?;
    }
    let seqs = |page: MessagePage| -> Result<Vec<i64>> {
        Ok(t.db
            .read(|r| r.list_messages(&conv.id, &page))?
            .iter()
            .map(|m| m.seq)
            .collect())
    };
    assert_eq!(
        seqs(MessagePage {
            limit: Some(3),
            ..Default::default()
        })?,
        vec![10, 9, 8]
    );
    assert_eq!(
        seqs(MessagePage {
            before: Some(8),
            limit: Some(3),
            ..Default::default()
        })?,
        vec![7, 6, 5]
    );
    assert_eq!(
        seqs(MessagePage {
            after: Some(2),
            limit: Some(3),
            ..Default::default()
        })?,
        vec![5, 4, 3]
    );
    let oldest_first = MessagePage {
        after: Some(2),
        limit: Some(3),
        oldest_first: true,
        ..Default::default()
    };
    assert_eq!(seqs(oldest_first)?, vec![3, 4, 5]);
    assert_eq!(
        seqs(MessagePage {
            after: Some(3),
            before: Some(6),
            ..Default::default()
        })?,
        vec![5, 4]
    );
    Ok(())
}

fn edit_soft_delete_and_mentions(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    let mut msg = new(&conv.id, "a", "hey @b and @ghost", None);
    msg.mentions = ids(&["b", "ghost"]);
    msg.metadata = serde_json::json!({"attachment": "x"});
    msg.origin = Origin::Plugin {
        name: "bot".into(),
        depth: 2,
    };
    let sent = t.db.write(|tx| tx.send_message(&msg, 1))?.value;
    assert_eq!(sent.mentions, ids(&["b"]));
    assert_eq!(
        sent.origin,
        Origin::Plugin {
            name: "bot".into(),
            depth: 2
        }
    );

    let edited =
        t.db.write(|tx| tx.edit_message(&sent.id, "now @c", None, &ids(&["c"]), 5))?;
    assert_eq!(
        (edited.body.as_str(), edited.edited_at),
        ("now @c", Some(5))
    );
    assert_eq!(edited.mentions, ids(&["c"]));
    assert_eq!(edited.metadata, serde_json::json!({"attachment": "x"}));

    let deleted = t.db.write(|tx| tx.delete_message(&sent.id, 6))?;
    assert!(deleted.changed && deleted.value.deleted);
    assert_eq!(
        (deleted.value.body.as_str(), &deleted.value.metadata),
        ("", &serde_json::json!({}))
    );
    assert!(deleted.value.mentions.is_empty());
    assert!(!t.db.write(|tx| tx.delete_message(&sent.id, 7))?.changed);
    let edit_deleted =
        t.db.write(|tx| tx.edit_message(&sent.id, "x", None, &[], 8));
    assert!(matches!(edit_deleted, Err(StoreError::Conflict(_))));
    assert_eq!(t.db.read(|r| r.get_message(&sent.id))?.seq, 1);
    Ok(())
}
