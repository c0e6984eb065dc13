//! What the PostgreSQL backend does when its server goes away: a restart costs nothing (the same `Db`
//! works again without being rebuilt), a stopped server is reported as unavailable (the API's 503), and
//! no error shows the password. Each test starts a server of its own (`Postgres::start`), since it stops
//! it; skips when PostgreSQL is not installed, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use chathooks_testservers::Postgres;
use serde_json::json;

use super::db_tests::test_pool;
use crate::store::kv::KvStore;
use crate::store::{Db, Durability, NewUser, StoreError};

type TestResult = anyhow::Result<()>;

/// The password in every setting here (trust authentication ignores it); it must never be shown.
const PASSWORD: &str = "s3cret-pw";

fn alice() -> NewUser {
    NewUser {
        id: "alice".to_owned(),
        name: "Alice".to_owned(),
        metadata: json!({}),
    }
}

#[test]
fn a_restarted_server_is_used_again_and_a_stopped_one_is_unavailable() -> TestResult {
    let Some(mut pg) = Postgres::start_or_skip() else {
        return Ok(());
    };
    let database = pg.create_database()?;
    let setting = format!("{} password={PASSWORD}", pg.conninfo(&database));
    let db = Db::connect(&setting, Durability::Process, test_pool())?;
    let kv = KvStore::beside(&db, std::path::Path::new("unused"))?;
    db.write(|tx| tx.create_user(&alice(), 1).map(|_| ()))?;
    kv.set("p", "k", b"v", None)?;
    // Every pooled connection is open and idle when the server goes away.
    std::thread::scope(|s| {
        for _ in 0..test_pool().size {
            s.spawn(|| db.read(|r| r.ping()));
        }
    });

    pg.restart()?;
    // The pool's connections died with the old server; the same Db and KV store carry on, the token
    // lookup (one statement outside a transaction) first.
    assert!(db.token_owner("cht_unknown", 2)?.is_none());
    assert_eq!(db.read(|r| r.get_user("alice"))?.name, "Alice");
    db.write(|tx| tx.append_event("x", None, &["alice".to_owned()], &json!({}), 2))?;
    assert_eq!(kv.get("p", "k")?, Some(b"v".to_vec()));
    kv.set("p", "k2", b"w", None)?;
    assert_eq!(kv.increment("p", "n", 2)?, 2);

    pg.stop()?;
    let read = db.read(|r| r.ping()).err();
    let Some(err) = read else {
        anyhow::bail!("a read succeeded with the server stopped");
    };
    assert!(err.is_unavailable(), "{err:?}");
    assert!(matches!(err, StoreError::Postgres(_)));
    let write = db.write(|tx| tx.create_user(&alice(), 3)).err();
    assert!(
        write.as_ref().is_some_and(StoreError::is_unavailable),
        "{write:?}"
    );
    let kv_err = kv.get("p", "k").err();
    assert!(
        kv_err.as_ref().is_some_and(|e| e.is_unavailable()),
        "{kv_err:?}"
    );
    let shown = format!("{err}\n{err:?}\n{write:?}\n{kv_err:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("password=***"), "{shown}");
    Ok(())
}

#[test]
fn statement_errors_are_not_unavailability() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let db = Db::connect(
        &pg.url_for_new_database()?,
        Durability::Process,
        test_pool(),
    )?;
    // A dead letter for an event that does not exist breaks a foreign key: a server fault, not an outage.
    let event = db.write(|tx| {
        tx.create_user(&alice(), 1)?;
        tx.append_event("x", None, &["alice".to_owned()], &json!({}), 1)
    })?;
    let broken = db
        .write(|tx| tx.dead_letter_unqueued(event + 100, "p", "x", 2))
        .err();
    assert!(
        matches!(&broken, Some(e @ StoreError::Postgres(_)) if !e.is_unavailable()),
        "{broken:?}"
    );
    assert!(!StoreError::Conflict("x".to_owned()).is_unavailable());
    Ok(())
}

/// A write that PostgreSQL picks as a deadlock's victim (`40P01`) runs again, whole, on a fresh
/// transaction. The other side is a session of its own that locks the same two rows in the opposite
/// order, with a long `deadlock_timeout`, so that our side is the one whose check finds the cycle.
#[test]
fn a_write_chosen_as_a_deadlock_victim_runs_again() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let db = Db::connect(
        &pg.url_for_new_database()?,
        Durability::Process,
        test_pool(),
    )?;
    let bob = NewUser {
        id: "bob".to_owned(),
        ..alice()
    };
    db.write(|tx| {
        tx.create_user(&alice(), 1)?;
        tx.create_user(&bob, 1).map(|_| ())
    })?;
    let Some(pg_db) = db.as_postgres() else {
        anyhow::bail!("not PostgreSQL");
    };
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let mut runs = 0;
    std::thread::scope(|s| -> TestResult {
        let other = s.spawn(move || {
            pg_db.handle().block_on(async {
                let mut client = pg_db.pool().get().await?;
                let tx = client.transaction().await?;
                tx.batch_execute(
                    "SET LOCAL deadlock_timeout = '20s';
                     UPDATE users SET name = 'B' WHERE id = 'bob'",
                )
                .await?;
                locked_tx.send(())?;
                // Once the write below holds alice and waits for bob, close the cycle.
                let waiting = "SELECT count(*) FROM pg_stat_activity
                               WHERE datname = current_database() AND wait_event_type = 'Lock'";
                let watcher = pg_db.pool().get().await?;
                while watcher
                    .query_one(waiting, &[])
                    .await?
                    .try_get::<_, i64>(0)?
                    == 0
                {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                tx.execute("UPDATE users SET name = 'A' WHERE id = 'alice'", &[])
                    .await?;
                tx.commit().await?;
                Ok::<_, anyhow::Error>(())
            })
        });
        locked_rx.recv()?;
        let written = db.write(|tx| {
            runs += 1;
            tx.set_deactivated("alice", Some(5))?;
            tx.set_deactivated("bob", Some(5))
        });
        assert!(written.is_ok(), "{written:?}");
        other
            .join()
            .map_err(|_| anyhow::anyhow!("the other session panicked"))?
    })?;
    // Once more, usually; on a loaded CI machine it once ran a third time (the retry failed retryably too,
    // cause not pinned down), which is still the behaviour under test: a write that loses runs again.
    assert!(
        (2..=super::db::MAX_WRITE_ATTEMPTS).contains(&runs),
        "the deadlock victim runs again: {runs} runs"
    );
    let alice = db.read(|r| r.get_account("alice"))?;
    assert_eq!(
        (alice.user.name.as_str(), alice.deactivated_at),
        ("A", Some(5))
    );
    Ok(())
}
