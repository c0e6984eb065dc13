//! Dead letters: deliveries that gave up (or were never queued), kept across a restart, listed and
//! replayed into their queue.

use super::{TestDb, TestResult, ids};
use crate::store::StoreError;

backend_tests!(TestDb:
    dead_letters_can_be_listed_and_replayed,
    unqueued_and_given_up_deliveries_become_replayable_dead_letters,
);

fn dead_letters_can_be_listed_and_replayed(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let e1 = t.event(Some("c1"))?;
    let e2 = t.event(Some("c1"))?;
    t.fan_out_all(&ids(&["p"]))?;
    for attempt in 1..=3 {
        assert_eq!(t.db.write(|tx| tx.start_delivery(e1, "p"))?, attempt);
        t.db.write(|tx| tx.delivery_failed(e1, "p", "boom", 0))?;
    }
    let dead = t.db.write(|tx| tx.dead_letter(e1, "p", "gave up", 9))?;
    // The queue moves on to e2 once e1 is dead.
    assert_eq!(t.due(0, &ids(&["p"]))?, vec![(e2, "p".to_owned())]);
    t.db.write(|tx| tx.delivery_succeeded(e2, "p"))?;

    let t = t.reopen()?;
    let letters = t.db.read(|r| r.dead_letters(0, 10))?;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].id, letters[0].event.id, letters[0].attempts),
        (dead, e1, 3)
    );
    assert_eq!(letters[0].last_error, "gave up");

    let replayed = t.db.write(|tx| tx.replay_dead_letter(dead, 20))?;
    assert_eq!(replayed.plugin, "p");
    assert!(t.db.read(|r| r.dead_letters(0, 10))?.is_empty());
    assert!(t.due(19, &ids(&["p"]))?.is_empty());
    assert_eq!(t.due(20, &ids(&["p"]))?, vec![(e1, "p".to_owned())]);
    assert_eq!(t.db.write(|tx| tx.start_delivery(e1, "p"))?, 4);
    assert_eq!(t.db.read(|r| r.backlog())?, vec![("p".to_owned(), 1)]);
    assert!(matches!(
        t.db.write(|tx| tx.replay_dead_letter(dead, 21)),
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

fn unqueued_and_given_up_deliveries_become_replayable_dead_letters(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let (e1, e2, e3) = (
        t.event(Some("c1"))?,
        t.event(Some("c1"))?,
        t.event(Some("c2"))?,
    );
    t.fan_out_all(&ids(&["p", "q"]))?;
    assert_eq!(t.db.write(|tx| tx.start_delivery(e1, "p"))?, 1);
    let e4 = t.event(Some("c1"))?;
    t.db.write(|tx| tx.dead_letter_unqueued(e4, "p", "backlog full", 5))?;
    // e1 is in flight: it stays; e2 and e3 are given up; q keeps its own.
    assert_eq!(t.db.write(|tx| tx.dead_letter_waiting("p", "gone", 6))?, 2);
    let letters = t.db.read(|r| r.dead_letters(0, 10))?;
    let summary: Vec<(i64, &str, u32, &str)> = letters
        .iter()
        .map(|l| {
            (
                l.event.id,
                l.plugin.as_str(),
                l.attempts,
                l.last_error.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (e4, "p", 0, "backlog full"),
            (e2, "p", 0, "gone"),
            (e3, "p", 0, "gone")
        ]
    );
    assert_eq!(
        t.db.read(|r| r.backlog())?,
        vec![("p".to_owned(), 1), ("q".to_owned(), 3)]
    );
    t.db.write(|tx| tx.replay_dead_letter(letters[0].id, 7))?;
    assert_eq!(
        t.db.read(|r| r.backlog())?,
        vec![("p".to_owned(), 2), ("q".to_owned(), 3)]
    );
    Ok(())
}
