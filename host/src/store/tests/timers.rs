//! Plugin timers: due order, a timer set again while it fires, cancelling.

use super::{TestDb, TestResult};

backend_tests!(TestDb: set_fire_and_reset_race);

fn set_fire_and_reset_race(t: TestDb) -> TestResult {
    let db = &t.db;
    db.write(|tx| tx.set_timer("p", "a", 100, None, "x", 1))?;
    db.write(|tx| tx.set_timer("p", "b", 50, Some(1000), "y", 1))?;
    let due = db.read(|r| r.due_timers(100, 10))?;
    assert_eq!(
        due.iter()
            .map(|timer| timer.name.as_str())
            .collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert_eq!(db.read(|r| r.next_timer_due())?, Some(50));
    // `a` is set again while it fires: finishing the old firing leaves the new setting alone.
    db.write(|tx| tx.set_timer("p", "a", 500, None, "z", 2))?;
    assert!(!db.write(|tx| tx.finish_firing(&due[1], None, 0))?);
    assert!(db.write(|tx| tx.finish_firing(&due[0], Some(1050), 0))?);
    let left = db.read(|r| r.timers_of("p"))?;
    assert_eq!(left[0].payload, "z");
    assert_eq!(left[1].due_at, 1050);
    assert!(db.write(|tx| tx.cancel_timer("p", "a"))?);
    assert!(!db.write(|tx| tx.cancel_timer("p", "a"))?);
    Ok(())
}
