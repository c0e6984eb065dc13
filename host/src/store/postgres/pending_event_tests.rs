//! On the database's only server, a write's event goes out with its next statement or its `COMMIT`
//! ([`super::events::PendingEvent`]), with an id taken with its `BEGIN`: against a real server, the
//! events keep commit order, a later statement of the write sees them, and one that fails fails its
//! write. Skips without PostgreSQL, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use chathooks_testservers::Postgres;
use serde_json::json;

use super::db_tests::{test_pool, user};
use crate::store::{Db, Durability, StoreError};

type TestResult = anyhow::Result<()>;

/// A fresh database claimed by this server, with users `a` and `b`.
fn claimed() -> anyhow::Result<Option<Db>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let db = Db::connect(
        &pg.url_for_new_database()?,
        Durability::Process,
        test_pool(),
    )?;
    db.claim()?;
    db.write(|tx| {
        tx.create_user(&user("a"), 1)?;
        tx.create_user(&user("b"), 1)
    })?;
    Ok(Some(db))
}

fn audience() -> Vec<String> {
    vec!["a".to_owned(), "b".to_owned()]
}

#[test]
fn events_sent_with_the_next_statement_or_the_commit_keep_commit_order() -> TestResult {
    let Some(db) = claimed()? else {
        return Ok(());
    };
    let append = |tx: &dyn crate::store::Tx, n: i64| {
        tx.append_event("custom.n", None, &audience(), &json!({ "n": n }), 2)
    };
    // After a statement: the first event goes out with the next statement, which sees it; the second
    // takes its id from the sequence.
    let (first, second, seen) = db.write(|tx| {
        tx.get_user("a")?;
        let first = append(tx, 1)?;
        let seen = tx.get_event(first)?;
        let second = append(tx, 2)?;
        Ok((first, second, seen))
    })?;
    assert_eq!((seen.id, &seen.payload), (first, &json!({"n": 1})));
    assert!(first < second);
    // An event that goes out with the `COMMIT`.
    let third = db.write(|tx| {
        tx.get_user("b")?;
        append(tx, 3)
    })?;
    // An event that is the write's first statement.
    let fourth = db.write(|tx| append(tx, 4))?;
    assert!(second < third && third < fourth);
    let stored = db.read(|r| r.events_since("b", 0, 100))?;
    let ns: Vec<(i64, serde_json::Value)> = stored
        .iter()
        .map(|e| (e.id, e.payload["n"].clone()))
        .collect();
    assert_eq!(
        ns,
        [
            (first, json!(1)),
            (second, json!(2)),
            (third, json!(3)),
            (fourth, json!(4)),
        ]
    );
    assert_eq!(stored[0].audience, audience());
    // Queued for the after-hooks, as `append_event` says.
    let queued: Vec<i64> = db
        .read(|r| r.pending_events(100))?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(queued, [first, second, third, fourth]);
    Ok(())
}

#[test]
fn an_event_that_fails_with_the_commit_fails_its_write_and_nothing_of_it_commits() -> TestResult {
    let Some(db) = claimed()? else {
        return Ok(());
    };
    // PostgreSQL refuses a NUL in text (`22021`, which the store reports as invalid input); only the
    // statement finds out.
    let bad = vec!["a\u{0}b".to_owned()];
    let failed = db.write(|tx| {
        tx.create_user(&user("c"), 3)?;
        tx.append_event("custom.bad", None, &bad, &json!({}), 3)
    });
    assert!(
        matches!(&failed, Err(StoreError::Invalid(message)) if message.contains("NUL")),
        "{failed:?}"
    );
    assert!(db.read(|r| r.find_user("c"))?.is_none());
    assert!(db.read(|r| r.events_since("a", 0, 100))?.is_empty());
    // The same with a statement after it: that statement reports the event's failure.
    let failed = db.write(|tx| {
        tx.create_user(&user("c"), 3)?;
        tx.append_event("custom.bad", None, &bad, &json!({}), 3)?;
        tx.get_user("a")
    });
    assert!(
        matches!(&failed, Err(StoreError::Invalid(message)) if message.contains("NUL")),
        "{failed:?}"
    );
    assert!(db.read(|r| r.find_user("c"))?.is_none());
    // The next write goes on as usual.
    let id = db.write(|tx| {
        tx.get_user("a")?;
        tx.append_event("custom.good", None, &audience(), &json!({}), 4)
    })?;
    assert_eq!(db.read(|r| r.get_event(id))?.kind, "custom.good");
    Ok(())
}
