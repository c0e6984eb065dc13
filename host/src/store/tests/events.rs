//! The event log: read by audience, resumed after an id, and only what committed.

use super::{TestDb, TestResult, ids};
use crate::store::limits::LARGE_AUDIENCE;
use crate::store::{Result, StoreError};

backend_tests!(TestDb:
    events_since_filters_by_audience_and_resumes,
    a_rolled_back_change_leaves_no_event,
    large_audiences_see_their_events_in_order_with_small_ones,
);

fn events_since_filters_by_audience_and_resumes(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let payload = serde_json::json!({"n": 1});
    let (e1, e2, e3) = t.db.write(|tx| {
        Ok((
            tx.append_event("message.new", Some("c_1"), &ids(&["a", "b"]), &payload, 1)?,
            tx.append_event("message.new", Some("c_2"), &ids(&["c"]), &payload, 2)?,
            tx.append_event(
                "typing.start",
                Some("c_1"),
                &ids(&["b", "a", "a"]),
                &payload,
                3,
            )?,
        ))
    })?;
    assert!(e1 < e2 && e2 < e3);
    let event_ids = |user: &str, since: i64| -> Result<Vec<i64>> {
        let events = t.db.read(|r| r.events_since(user, since, 100))?;
        Ok(events.iter().map(|e| e.id).collect())
    };
    assert_eq!(event_ids("a", 0)?, vec![e1, e3]);
    let for_c = t.db.read(|r| r.events_since("c", 0, 100))?;
    assert_eq!(for_c.len(), 1);
    assert_eq!(
        (for_c[0].kind.as_str(), &for_c[0].payload),
        ("message.new", &payload)
    );
    assert_eq!(event_ids("a", e1)?, vec![e3]);
    assert_eq!(t.db.read(|r| r.events_since("a", 0, 1))?.len(), 1);
    assert_eq!(t.db.read(|r| r.get_event(e3))?.audience, ids(&["a", "b"]));
    assert_eq!(t.db.read(|r| r.latest_event_id())?, e3);
    Ok(())
}

fn a_rolled_back_change_leaves_no_event(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let failed: Result<i64> = t.db.write(|tx| {
        tx.append_event("message.new", None, &ids(&["a"]), &serde_json::json!({}), 1)?;
        Err(StoreError::Conflict("abort".into()))
    });
    assert!(failed.is_err());
    assert!(t.db.read(|r| r.events_since("a", 0, 10))?.is_empty());
    assert!(t.db.read(|r| r.pending_events(10))?.is_empty());
    Ok(())
}

/// Audiences past [`LARGE_AUDIENCE`] are stored once and shared by their events (SQLite); whatever the
/// storage, a user sees exactly the events whose audience names them, in id order, a page at a time.
fn large_audiences_see_their_events_in_order_with_small_ones(t: TestDb) -> TestResult {
    let members: Vec<String> = (0..=LARGE_AUDIENCE).map(|i| format!("u{i:03}")).collect();
    let last = members[LARGE_AUDIENCE].clone();
    // Unsorted and with a repeat, as a caller may pass them.
    let mut everyone = members.clone();
    everyone.reverse();
    everyone.push(members[0].clone());
    let without_last = &members[..LARGE_AUDIENCE];
    let payload = serde_json::json!({});
    let (large, small, again, smaller, at_limit) = t.db.write(|tx| {
        Ok((
            tx.append_event("message.new", Some("c_big"), &everyone, &payload, 1)?,
            tx.append_event(
                "message.new",
                Some("c_2"),
                &ids(&["u000", "x"]),
                &payload,
                2,
            )?,
            tx.append_event("message.new", Some("c_big"), &members, &payload, 3)?,
            // The last member left: a large audience of its own (exactly LARGE_AUDIENCE + 1 before,
            // LARGE_AUDIENCE now, stored as rows again).
            tx.append_event("member.removed", Some("c_big"), without_last, &payload, 4)?,
            tx.append_event("message.new", Some("c_big"), without_last, &payload, 5)?,
        ))
    })?;
    let event_ids = |user: &str, since: i64, limit: u32| -> Result<Vec<i64>> {
        let events = t.db.read(|r| r.events_since(user, since, limit))?;
        Ok(events.iter().map(|e| e.id).collect())
    };
    assert_eq!(
        event_ids("u000", 0, 100)?,
        vec![large, small, again, smaller, at_limit]
    );
    assert_eq!(event_ids(&last, 0, 100)?, vec![large, again]);
    assert_eq!(
        event_ids("u050", large, 100)?,
        vec![again, smaller, at_limit]
    );
    assert_eq!(event_ids("x", 0, 100)?, vec![small]);
    assert!(event_ids("nobody", 0, 100)?.is_empty());
    // Pages merge both kinds in order and stop at the limit.
    assert_eq!(event_ids("u000", 0, 2)?, vec![large, small]);
    assert_eq!(event_ids("u000", small, 1)?, vec![again]);
    assert_eq!(event_ids(&last, again, 10)?, Vec::<i64>::new());
    // The audience reads back sorted, each member once, wherever it is stored.
    assert_eq!(t.db.read(|r| r.get_event(large))?.audience, members);
    assert_eq!(t.db.read(|r| r.get_event(again))?.audience, members);
    assert_eq!(t.db.read(|r| r.get_event(at_limit))?.audience, without_last);
    let pending = t.db.read(|r| r.pending_events(10))?;
    let first = pending.iter().find(|e| e.id == large);
    assert_eq!(first.map(|e| e.audience.clone()), Some(members.clone()));
    Ok(())
}
