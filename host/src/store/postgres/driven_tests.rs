//! [`DrivenPool`] against a real server (`chathooks_testservers::Postgres::shared`, a fresh database per
//! test): its bounds, reuse, threads, and connections the server closed.

use std::time::Duration;

use chathooks_testservers::Postgres;

use super::driven::{Checkout, DrivenPool};
use super::{PgDb, PgError, PgSetting, PoolOptions};
use crate::store::Durability;

type TestResult = anyhow::Result<()>;

fn driven(url: &str, size: usize, wait: Duration) -> anyhow::Result<DrivenPool> {
    Ok(DrivenPool::new(
        PgSetting::parse(url)?,
        PoolOptions { size, wait },
    ))
}

/// The server process behind `conn`.
fn backend_pid(conn: &mut Checkout) -> anyhow::Result<i32> {
    let (rt, client) = conn.parts();
    Ok(rt
        .block_on(client.query_one("SELECT pg_backend_pid()", &[]))?
        .get(0))
}

/// Connections open to the database `conn` is on, `conn`'s own included.
fn connections_open(conn: &mut Checkout) -> anyhow::Result<i64> {
    let (rt, client) = conn.parts();
    Ok(rt
        .block_on(client.query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
            &[],
        ))?
        .get(0))
}

#[test]
fn a_connection_comes_back_to_the_pool_and_serves_the_next_caller() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = driven(&pg.url_for_new_database()?, 4, Duration::from_secs(5))?;
    let first = backend_pid(&mut pool.get()?)?;
    let second = backend_pid(&mut pool.get()?)?;
    assert_eq!(first, second, "the idle connection was not reused");
    Ok(())
}

#[test]
fn a_caller_waits_for_a_free_connection_only_as_long_as_the_pool_says() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = driven(&pg.url_for_new_database()?, 1, Duration::from_millis(50))?;
    let held = pool.get()?;
    let err = pool.get().err();
    assert!(
        matches!(err, Some(PgError::PoolTimeout { size: 1, .. })),
        "{err:?}"
    );
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("all 1 of the pool are busy"), "{message}");
    drop(held);
    drop(pool.get()?);
    Ok(())
}

#[test]
fn a_waiting_caller_gets_the_connection_another_thread_gives_back() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = driven(&pg.url_for_new_database()?, 1, Duration::from_secs(5))?;
    let mut held = pool.get()?;
    let pid = backend_pid(&mut held)?;
    let waiter = std::thread::spawn({
        let pool = pool.clone();
        move || -> anyhow::Result<i32> { backend_pid(&mut pool.get()?) }
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(held);
    let got = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("the waiting thread panicked"))??;
    assert_eq!(got, pid);
    Ok(())
}

#[test]
fn threads_share_the_pool_without_opening_more_than_its_size() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = driven(&pg.url_for_new_database()?, 2, Duration::from_secs(10))?;
    let most = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<i64> {
                    let mut most = 0;
                    for _ in 0..25 {
                        most = most.max(connections_open(&mut pool.get()?)?);
                    }
                    Ok(most)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?)
            .collect::<anyhow::Result<Vec<i64>>>()
    })?;
    assert_eq!(most.iter().max(), Some(&2), "{most:?}");
    Ok(())
}

#[test]
fn an_unreachable_server_is_an_error_that_frees_the_slot() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!(
        "host={} port=1 user=nobody dbname=nothing connect_timeout=1",
        dir.path().display()
    );
    let pool = driven(&url, 1, Duration::from_secs(5))?;
    for _ in 0..2 {
        let err = pool.get().err();
        assert!(matches!(err, Some(PgError::Unreachable { .. })), "{err:?}");
    }
    Ok(())
}

/// Fills `db`'s pool of four with idle connections, each used once, then has the server close them.
fn close_idle_connections(db: &PgDb) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..4).map(|_| s.spawn(|| db.read(|r| r.ping()))).collect();
        for reader in readers {
            reader
                .join()
                .map_err(|_| anyhow::anyhow!("a reader panicked"))??;
        }
        anyhow::Ok(())
    })?;
    let killed: i64 = db.handle().block_on(async {
        let client = db.pool().get().await?;
        let row = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await?;
        anyhow::Ok(row.get(0))
    })?;
    assert!(killed >= 1, "no connection was closed");
    Ok(())
}

#[test]
fn the_store_takes_another_connection_when_the_server_closed_its_idle_ones() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg.url_for_new_database()?;
    let options = PoolOptions {
        size: 4,
        ..PoolOptions::default()
    };
    let db = PgDb::connect(&url, Durability::Process, options)?;
    // A write's and a read's BEGIN go out with their first statement, which then meets the closed
    // connection; so does a lone read.
    close_idle_connections(&db)?;
    for n in 0..6 {
        db.write(|tx| tx.create_user(&super::db_tests::user(&format!("u{n}")), 0))?;
    }
    close_idle_connections(&db)?;
    for _ in 0..6 {
        db.read(|r| r.ping())?;
    }
    close_idle_connections(&db)?;
    for _ in 0..6 {
        assert!(db.token_owner("no such token", 0)?.is_none());
    }
    Ok(())
}

#[test]
fn a_transaction_whose_closure_failed_is_over_before_its_connection_waits_idle() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg.url_for_new_database()?;
    let one = PoolOptions {
        size: 1,
        ..PoolOptions::default()
    };
    let db = PgDb::connect(&url, Durability::Process, one)?;
    let pid = backend_pid(&mut db.driven().get()?)?;
    let failed = db.read(|r| {
        r.ping()?;
        Err::<(), _>(crate::store::StoreError::Invalid("stop here".to_owned()))
    });
    assert!(failed.is_err());
    // Seen from another connection: the read's transaction ended, though nothing used its connection
    // since (it would hold its snapshot, and a write's locks, until then).
    let observer = driven(&url, 1, Duration::from_secs(5))?;
    let mut conn = observer.get()?;
    let (rt, client) = conn.parts();
    let state: String = rt
        .block_on(client.query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid]))?
        .get(0);
    assert_eq!(state, "idle");
    Ok(())
}
