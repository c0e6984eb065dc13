//! The event log: read by audience, resumed after an id, and only what committed.

use super::{TestDb, TestResult, ids};
use crate::store::{Result, StoreError};

backend_tests!(TestDb:
    events_since_filters_by_audience_and_resumes,
    a_rolled_back_change_leaves_no_event,
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
