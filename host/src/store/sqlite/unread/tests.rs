//! Every change that moves an unread counter, each checked against the formula the counter replaces.

use rusqlite::Connection;

use crate::store::records::NewMessage;
use crate::store::sqlite::messages::{delete_message, edit_message};
use crate::store::sqlite::participants::{add_participants, participants, remove_participant};
use crate::store::sqlite::receipts::{mark_read, unread_count};
use crate::store::sqlite::testutil::{TestDb, ids};
use crate::store::{Result, StoreError};

/// The count the column replaces: messages after the read mark, from others, not deleted.
fn counted(conn: &Connection, conversation_id: &str, user_id: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM participants p JOIN messages m ON m.conversation_id = p.conversation_id
         WHERE p.conversation_id = ?1 AND p.user_id = ?2
           AND m.seq > p.last_read_seq AND m.sender_id != p.user_id AND m.deleted = 0",
        [conversation_id, user_id],
        |r| r.get(0),
    )?)
}

/// Every participant's stored count, in join order, after checking each against [`counted`] and against
/// what [`participants`] and [`unread_count`] report.
fn unread(t: &TestDb, conversation_id: &str) -> Result<Vec<(String, u32)>> {
    t.db.read(|c| {
        let mut out = Vec::new();
        for p in participants(c, conversation_id)? {
            let id = p.user.id;
            let expected = counted(c, conversation_id, &id)?;
            assert_eq!(
                i64::from(p.unread_count),
                expected,
                "{id}'s counter drifted"
            );
            assert_eq!(unread_count(c, conversation_id, &id)?, p.unread_count);
            out.push((id, p.unread_count));
        }
        Ok(out)
    })
}

fn counts(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(id, n)| ((*id).to_owned(), *n)).collect()
}

#[test]
fn a_send_counts_for_everyone_but_the_sender() -> Result<()> {
    let t = TestDb::with_users(&["a", "b", "c"])?;
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

#[test]
fn deleting_uncounts_only_where_the_message_was_unread() -> Result<()> {
    let t = TestDb::with_users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    let first = t.send(&conv.id, "a", "one")?;
    let second = t.send(&conv.id, "a", "two")?;
    let from_b = t.send(&conv.id, "b", "three")?;
    // b has read everything, c nothing.
    t.db.write(|tx| mark_read(tx, &conv.id, "b", None, 5))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 0), ("c", 3)])
    );

    t.db.write(|tx| delete_message(tx, &second.id, 6))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 0), ("c", 2)])
    );
    // Twice changes nothing.
    assert!(!t.db.write(|tx| delete_message(tx, &second.id, 7))?.changed);
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 1), ("b", 0), ("c", 2)])
    );
    // The sender's own message was never unread for them.
    t.db.write(|tx| delete_message(tx, &from_b.id, 8))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 0), ("c", 1)])
    );
    // Reading past a deleted message does not uncount it twice.
    t.db.write(|tx| mark_read(tx, &conv.id, "c", Some(&from_b.id), 9))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 0), ("c", 0)])
    );
    t.db.write(|tx| delete_message(tx, &first.id, 10))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 0), ("c", 0)])
    );
    Ok(())
}

#[test]
fn reading_uncounts_what_it_reads() -> Result<()> {
    let t = TestDb::with_users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let m: Vec<_> = (1..=5)
        .map(|i| t.send(&conv.id, "a", &i.to_string()))
        .collect::<Result<_>>()?;
    t.send(&conv.id, "b", "mine")?;
    t.db.write(|tx| delete_message(tx, &m[1].id, 3))?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 1), ("b", 4)]));

    // Up to m[2]: m[0] and m[2] read, m[1] was deleted.
    let read =
        t.db.write(|tx| mark_read(tx, &conv.id, "b", Some(&m[2].id), 4))?;
    assert_eq!(read.unread_count, 2);
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 1), ("b", 2)]));
    // Backwards changes nothing.
    let back =
        t.db.write(|tx| mark_read(tx, &conv.id, "b", Some(&m[0].id), 5))?;
    assert_eq!((back.unread_count, back.newly_read.len()), (2, 0));
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 1), ("b", 2)]));
    // Everything; the reader's own message in range does not matter.
    let all = t.db.write(|tx| mark_read(tx, &conv.id, "b", None, 6))?;
    assert_eq!(all.unread_count, 0);
    let all = t.db.write(|tx| mark_read(tx, &conv.id, "a", None, 6))?;
    assert_eq!(all.unread_count, 0);
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 0)]));
    t.send(&conv.id, "a", "after")?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 1)]));
    Ok(())
}

#[test]
fn members_join_with_nothing_unread_and_rejoin_the_same_way() -> Result<()> {
    let t = TestDb::with_users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b"])?;
    let history = t.send(&conv.id, "a", "before c")?;
    t.db.write(|tx| add_participants(tx, &conv.id, &ids(&["c"]), 3))?;
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
    t.db.write(|tx| delete_message(tx, &history.id, 4))?;
    assert_eq!(
        unread(&t, &conv.id)?,
        counts(&[("a", 0), ("b", 1), ("c", 1)])
    );

    // Leaving drops the row; messages meanwhile are history; rejoining starts at 0.
    assert!(t.db.write(|tx| remove_participant(tx, &conv.id, "c", 5))?);
    assert_eq!(t.db.read(|c| unread_count(c, &conv.id, "c"))?, 0);
    t.send(&conv.id, "a", "while c is away")?;
    t.db.write(|tx| add_participants(tx, &conv.id, &ids(&["c"]), 6))?;
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

#[test]
fn edits_do_not_change_counts() -> Result<()> {
    let t = TestDb::with_users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let m = t.send(&conv.id, "a", "typo")?;
    t.db.write(|tx| edit_message(tx, &m.id, "fixed", None, &[], 3))?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 1)]));
    t.db.write(|tx| mark_read(tx, &conv.id, "b", None, 4))?;
    t.db.write(|tx| edit_message(tx, &m.id, "fixed again", None, &[], 5))?;
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 0)]));
    Ok(())
}

#[test]
fn a_rolled_back_send_counts_nothing() -> Result<()> {
    let t = TestDb::with_users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let new = NewMessage {
        conversation_id: conv.id.clone(),
        sender_id: "a".into(),
        body: "lost".into(),
        ..Default::default()
    };
    let rolled_back: Result<()> = t.db.write(|tx| {
        crate::store::sqlite::messages::send_message(tx, &new, 2)?;
        Err(StoreError::Conflict("abort".into()))
    });
    assert!(rolled_back.is_err());
    assert_eq!(unread(&t, &conv.id)?, counts(&[("a", 0), ("b", 0)]));
    Ok(())
}
