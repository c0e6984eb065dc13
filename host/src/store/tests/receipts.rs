//! Receipts: reading is a high-water mark that reads everything before it; message status sums up the
//! receipts of the other participants.

use super::{TestDb, TestResult, ids};
use crate::model::MessageStatus;
use crate::store::{Result, StoreError};

backend_tests!(TestDb:
    reading_up_to_a_message_reads_everything_before_it,
    status_summarises_other_participants_receipts,
    receipt_counts_cover_the_members_present_at_sending,
);

fn receipt_counts_cover_the_members_present_at_sending(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c", "d"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    let m = t.send(&conv.id, "a", "hi")?;
    // d joins after the message: not one of those it waits for.
    t.db.write(|tx| tx.add_participants(&conv.id, &["d".to_owned()], 5))?;
    let counts = |t: &TestDb| t.db.write(|tx| tx.receipt_counts(&m.id));
    let none = counts(&t)?;
    assert_eq!((none.others, none.delivered, none.read), (2, 0, 0));
    assert!(!none.delivered_to_all() && !none.read_by_all());
    t.db.write(|tx| tx.mark_delivered(&m.id, "b", 6))?;
    t.db.write(|tx| tx.mark_delivered(&m.id, "a", 6))?;
    let one = counts(&t)?;
    assert_eq!(
        (one.delivered, one.read),
        (1, 0),
        "the sender does not count"
    );
    let read = t.db.write(|tx| tx.mark_read(&conv.id, "c", None, 7))?;
    assert_eq!(
        read.newly_delivered,
        std::slice::from_ref(&m.id),
        "c's read delivered it too"
    );
    let both = counts(&t)?;
    assert_eq!((both.delivered, both.read), (2, 1), "reading delivers");
    assert!(both.delivered_to_all() && !both.read_by_all());
    let read = t.db.write(|tx| tx.mark_read(&conv.id, "b", None, 8))?;
    assert!(
        read.newly_delivered.is_empty(),
        "b had it delivered already"
    );
    assert!(counts(&t)?.read_by_all());
    assert!(matches!(
        t.db.write(|tx| tx.receipt_counts("nope")),
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

fn reading_up_to_a_message_reads_everything_before_it(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let m: Vec<_> = (1..=4)
        .map(|i| t.send(&conv.id, "a", &i.to_string()))
        .collect::<Result<_>>()?;
    t.send(&conv.id, "b", "mine")?;
    assert_eq!(t.db.read(|r| r.unread_count(&conv.id, "b"))?, 4);
    assert_eq!(t.db.read(|r| r.unread_count(&conv.id, "a"))?, 1);

    let read =
        t.db.write(|tx| tx.mark_read(&conv.id, "b", Some(&m[2].id), 10))?;
    assert_eq!(
        read.newly_read,
        vec![m[0].id.clone(), m[1].id.clone(), m[2].id.clone()]
    );
    assert_eq!((read.last_read_seq, read.unread_count), (3, 1));
    let me = t.db.read(|r| r.participant(&conv.id, "b"))?;
    assert_eq!(
        me.map(|p| (p.unread_count, p.last_read_message_id)),
        Some((1, Some(m[2].id.clone())))
    );

    // Never backwards; None means "everything".
    let back =
        t.db.write(|tx| tx.mark_read(&conv.id, "b", Some(&m[0].id), 11))?;
    assert!(back.newly_read.is_empty());
    assert_eq!(back.last_read_seq, 3);
    let all = t.db.write(|tx| tx.mark_read(&conv.id, "b", None, 12))?;
    assert_eq!(
        (all.newly_read, all.unread_count),
        (vec![m[3].id.clone()], 0)
    );

    let r = t.db.read(|r| r.receipt(&m[0].id, "b"))?;
    assert_eq!(
        r.map(|r| (r.delivered_at, r.read_at)),
        Some((Some(10), Some(10)))
    );
    assert!(matches!(
        t.db.write(|tx| tx.mark_read(&conv.id, "zed", None, 13)),
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

fn status_summarises_other_participants_receipts(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c", "d"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    let m = t.send(&conv.id, "a", "hello")?;
    let status = || t.db.read(|r| Ok(r.get_message(&m.id)?.status));
    assert_eq!(status()?, MessageStatus::Sent);
    // The sender's own receipt does not count.
    t.db.write(|tx| tx.mark_delivered(&m.id, "a", 1))?;
    assert_eq!(status()?, MessageStatus::Sent);
    let first = t.db.write(|tx| tx.mark_delivered(&m.id, "b", 2))?;
    assert!(first.changed);
    assert!(!t.db.write(|tx| tx.mark_delivered(&m.id, "b", 3))?.changed);
    assert_eq!(status()?, MessageStatus::Delivered);
    t.db.write(|tx| tx.mark_read(&conv.id, "b", None, 4))?;
    assert_eq!(status()?, MessageStatus::SomeRead);
    // Someone who joins later does not hold the message back from all_read.
    t.db.write(|tx| tx.add_participants(&conv.id, &ids(&["d"]), 5))?;
    t.db.write(|tx| tx.mark_read(&conv.id, "c", None, 6))?;
    assert_eq!(status()?, MessageStatus::AllRead);
    assert_eq!(t.db.read(|r| r.unread_count(&conv.id, "d"))?, 0);
    // One receipt each for a (delivered), b (delivered, then read) and c (read); none for d.
    let receipts: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|user| t.db.read(|r| r.receipt(&m.id, user)))
        .collect::<Result<_>>()?;
    let times: Vec<_> = receipts
        .iter()
        .map(|r| r.as_ref().map(|r| (r.delivered_at, r.read_at)))
        .collect();
    assert_eq!(
        times,
        [
            Some((Some(1), None)),
            Some((Some(2), Some(4))),
            Some((Some(6), Some(6))),
            None
        ]
    );
    Ok(())
}
