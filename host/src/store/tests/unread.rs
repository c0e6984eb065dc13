//! Every change that moves an unread count, each count also checked against what it stands for: the
//! messages after the participant's read mark, from others, not deleted.

use super::{TestDb, TestResult, ids};
use crate::store::limits::MAX_PAGE_LIMIT;
use crate::store::{MessagePage, NewMessage, Result, StoreError};

backend_tests!(TestDb:
    a_send_counts_for_everyone_but_the_sender,
    deleting_uncounts_only_where_the_message_was_unread,
    reading_uncounts_what_it_reads,
    members_join_with_nothing_unread_and_rejoin_the_same_way,
    edits_do_not_change_counts,
    a_rolled_back_send_counts_nothing,
);

/// Every participant's unread count, in join order, after checking each against the messages (counted
/// from the conversation's messages and the participant's read mark) and against `unread_count`.
fn unread(t: &TestDb, conversation_id: &str) -> Result<Vec<(String, u32)>> {
    t.db.read(|r| {
        let page = MessagePage {
            limit: Some(MAX_PAGE_LIMIT),
            ..Default::default()
        };
        let messages = r.list_messages(conversation_id, &page)?;
        assert!(
            messages.len() < MAX_PAGE_LIMIT as usize,
            "one page holds them all"
        );
        let mut out = Vec::new();
        for p in r.participants(conversation_id)? {
            let id = p.user.id;
            let read_up_to = match &p.last_read_message_id {
                Some(message_id) => r.get_message(message_id)?.seq,
                None => 0,
            };
            let expected = messages
                .iter()
                .filter(|m| m.seq > read_up_to && m.sender.id != id && !m.deleted)
                .count();
            assert_eq!(
                usize::try_from(p.unread_count).ok(),
                Some(expected),
                "{id}'s count drifted from the messages"
            );
            assert_eq!(r.unread_count(conversation_id, &id)?, p.unread_count);
            out.push((id, p.unread_count));
        }
        Ok(out)
    })
}

fn counts(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(id, n)| ((*id).to_owned(), *n)).collect()
}

fn a_send_counts_for_everyone_but_the_sender(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 0), ("c", 0)])
    );
    t.send(&conv.id, "a", "one")?;
    t.send(&conv.id, "a", "two")?;
    t.send(&conv.id, "b", "three")?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 2), ("c", 3)])
    );
    // Another conversation's messages do not count here.
    let other = t.conversation(&["a", "b"])?;
    t.send(&other.id, "a", "elsewhere")?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 2), ("c", 3)])
    );
    Ok(())
}

fn deleting_uncounts_only_where_the_message_was_unread(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    let first = t.send(&conv.id, "a", "one")?;
    let second = t.send(&conv.id, "a", "two")?;
    let from_b = t.send(&conv.id, "b", "three")?;
    // b has read everything, c nothing.
    t.db.write(|tx| tx.mark_read(&conv.id, "b", None, 5))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 0), ("c", 3)])
    );

    t.db.write(|tx| tx.delete_message(&second.id, 6))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 0), ("c", 2)])
    );
    // Twice changes nothing.
    assert!(!t.db.write(|tx| tx.delete_message(&second.id, 7))?.changed);
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 0), ("c", 2)])
    );
    // The sender's own message was never unread for them.
    t.db.write(|tx| tx.delete_message(&from_b.id, 8))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 0), ("c", 1)])
    );
    // Reading past a deleted message does not uncount it twice.
    t.db.write(|tx| tx.mark_read(&conv.id, "c", Some(&from_b.id), 9))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 0), ("c", 0)])
    );
    t.db.write(|tx| tx.delete_message(&first.id, 10))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 0), ("c", 0)])
    );
    Ok(())
}

fn reading_uncounts_what_it_reads(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let m: Vec<_> = (1..=5)
        .map(|i| t.send(&conv.id, "a", &i.to_string()))
        .collect::<Result<_>>()?;
    t.send(&conv.id, "b", "mine")?;
    t.db.write(|tx| tx.delete_message(&m[1].id, 3))?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 1), ("b", 4)]));

    // Up to m[2]: m[0] and m[2] read, m[1] was deleted.
    let read =
        t.db.write(|tx| tx.mark_read(&conv.id, "b", Some(&m[2].id), 4))?;
    assert_eq!(read.unread_count, 2);
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 1), ("b", 2)]));
    // Backwards changes nothing.
    let back =
        t.db.write(|tx| tx.mark_read(&conv.id, "b", Some(&m[0].id), 5))?;
    assert_eq!((back.unread_count, back.newly_read.len()), (2, 0));
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 1), ("b", 2)]));
    // Everything; the reader's own message in range does not matter.
    let all = t.db.write(|tx| tx.mark_read(&conv.id, "b", None, 6))?;
    assert_eq!(all.unread_count, 0);
    let all = t.db.write(|tx| tx.mark_read(&conv.id, "a", None, 6))?;
    assert_eq!(all.unread_count, 0);
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 0)]));
    t.send(&conv.id, "a", "after")?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 1)]));
    Ok(())
}

fn members_join_with_nothing_unread_and_rejoin_the_same_way(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b"])?;
    let history = t.send(&conv.id, "a", "before c")?;
    t.db.write(|tx| tx.add_participants(&conv.id, &ids(&["c"]), 3))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 1), ("c", 0)])
    );
    t.send(&conv.id, "a", "with c")?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 2), ("c", 1)])
    );
    // History deleted after c joined was never unread for c.
    t.db.write(|tx| tx.delete_message(&history.id, 4))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 1), ("c", 1)])
    );

    // Leaving drops the membership; messages meanwhile are history; rejoining starts at 0.
    assert!(t.db.write(|tx| tx.remove_participant(&conv.id, "c", 5))?);
    assert_eq!(t.db.read(|r| r.unread_count(&conv.id, "c"))?, 0);
    t.send(&conv.id, "a", "while c is away")?;
    t.db.write(|tx| tx.add_participants(&conv.id, &ids(&["c"]), 6))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 2), ("c", 0)])
    );
    t.send(&conv.id, "b", "welcome back")?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 2), ("c", 1)])
    );
    Ok(())
}

fn edits_do_not_change_counts(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let m = t.send(&conv.id, "a", "typo")?;
    t.db.write(|tx| tx.edit_message(&m.id, "fixed", None, &[], 3))?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 1)]));
    t.db.write(|tx| tx.mark_read(&conv.id, "b", None, 4))?;
    t.db.write(|tx| tx.edit_message(&m.id, "fixed again", None, &[], 5))?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 0)]));
    Ok(())
}

fn a_rolled_back_send_counts_nothing(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let new = NewMessage {
        conversation_id: conv.id.clone(),
        sender_id: "a".into(),
        body: "lost".into(),
        ..Default::default()
    };
    let rolled_back: Result<()> = t.db.write(|tx| {
        tx.send_message(&new, 2)?;
        Err(StoreError::Conflict("abort".into()))
    });
    assert!(rolled_back.is_err());
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 0)]));
    Ok(())
}
