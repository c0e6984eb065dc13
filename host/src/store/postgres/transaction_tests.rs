//! [`Transaction`] against a real server (`chathooks_testservers::Postgres::shared`, a fresh database
//! per test): a `BEGIN` sent with the first statement still makes one transaction of everything, and a
//! transaction that makes no statement sends nothing.

use std::time::Duration;

use chathooks_testservers::Postgres;
use tokio::try_join;
use tokio_postgres::IsolationLevel;

use super::driven::{Checkout, DrivenPool};
use super::transaction::Transaction;
use super::{PgSetting, PoolOptions};

type TestResult = anyhow::Result<()>;

/// A pool of one connection on a fresh database with a table `t (n int primary key)`.
fn pool_with_table() -> anyhow::Result<Option<(DrivenPool, String)>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    let pool = DrivenPool::new(
        PgSetting::parse(&url)?,
        PoolOptions {
            size: 1,
            wait: Duration::from_secs(5),
        },
    );
    let mut conn = pool.get()?;
    let (rt, client) = conn.parts();
    rt.block_on(client.batch_execute("CREATE TABLE t (n int PRIMARY KEY)"))?;
    drop(conn);
    Ok(Some((pool, url)))
}

/// The values in `t`, as a new connection sees them.
fn committed(url: &str) -> anyhow::Result<Vec<i32>> {
    let observer = DrivenPool::new(PgSetting::parse(url)?, PoolOptions::default());
    let mut conn = observer.get()?;
    let (rt, client) = conn.parts();
    let rows = rt.block_on(client.query("SELECT n FROM t ORDER BY n", &[]))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// What the server last saw on `conn`'s connection, and whether it is in a transaction, asked from
/// another connection.
fn seen(url: &str, pid: i32) -> anyhow::Result<(String, String)> {
    let observer = DrivenPool::new(PgSetting::parse(url)?, PoolOptions::default());
    let mut conn = observer.get()?;
    let (rt, client) = conn.parts();
    let row = rt.block_on(client.query_one(
        "SELECT query, state FROM pg_stat_activity WHERE pid = $1",
        &[&pid],
    ))?;
    Ok((row.get(0), row.get(1)))
}

/// [`seen`] once the server has read what the connection sent last as it went back to the pool: a
/// busy machine may take a moment. A transaction left open would stay `idle in transaction` for good.
fn settled(url: &str, pid: i32) -> anyhow::Result<(String, String)> {
    let mut state = seen(url, pid)?;
    for _ in 0..500 {
        if state.1 != "idle in transaction" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        state = seen(url, pid)?;
    }
    Ok(state)
}

fn pid(conn: &mut Checkout) -> anyhow::Result<i32> {
    let (rt, client) = conn.parts();
    Ok(rt
        .block_on(client.query_one("SELECT pg_backend_pid()", &[]))?
        .get(0))
}

#[test]
fn statements_after_a_begin_sent_with_the_first_are_one_transaction() -> TestResult {
    let Some((pool, url)) = pool_with_table()? else {
        return Ok(());
    };
    let mut conn = pool.get()?;
    let (rt, client) = conn.parts();
    let tx = Transaction::on_first_statement(client, IsolationLevel::ReadCommitted, false);
    assert!(!tx.begun());
    // Two statements in flight at once as the first, as a send's pipeline makes them.
    rt.block_on(async {
        try_join!(
            tx.execute("INSERT INTO t VALUES (1)", &[]),
            tx.execute("INSERT INTO t VALUES (2)", &[]),
        )
    })?;
    assert!(tx.begun());
    // Inside the transaction, and nobody else sees its rows yet.
    assert_eq!(committed(&url)?, Vec::<i32>::new());
    // A statement that fails: the rollback takes the first two with it.
    let duplicate = rt.block_on(tx.execute("INSERT INTO t VALUES (1)", &[]));
    assert!(duplicate.is_err());
    rt.block_on(tx.rollback())?;
    drop(tx);
    assert_eq!(committed(&url)?, Vec::<i32>::new());

    let tx = Transaction::on_first_statement(client, IsolationLevel::ReadCommitted, false);
    rt.block_on(tx.execute("INSERT INTO t VALUES (3)", &[]))?;
    rt.block_on(tx.execute("INSERT INTO t VALUES (4)", &[]))?;
    rt.block_on(tx.commit())?;
    assert_eq!(committed(&url)?, [3, 4]);
    Ok(())
}

#[test]
fn a_transaction_that_makes_no_statement_sends_nothing() -> TestResult {
    let Some((pool, url)) = pool_with_table()? else {
        return Ok(());
    };
    let mut conn = pool.get()?;
    let pid = pid(&mut conn)?;
    let (rt, client) = conn.parts();
    let tx = Transaction::on_first_statement(client, IsolationLevel::ReadCommitted, false);
    rt.block_on(tx.commit())?;
    drop(tx);
    let tx = Transaction::on_first_statement(client, IsolationLevel::RepeatableRead, true);
    rt.block_on(tx.rollback())?;
    drop(tx);
    drop(Transaction::on_first_statement(
        client,
        IsolationLevel::ReadCommitted,
        false,
    ));
    drop(conn);
    assert_eq!(
        seen(&url, pid)?,
        ("SELECT pg_backend_pid()".to_owned(), "idle".to_owned())
    );
    Ok(())
}

#[test]
fn a_read_only_transaction_refuses_writes_from_its_first_statement() -> TestResult {
    let Some((pool, url)) = pool_with_table()? else {
        return Ok(());
    };
    let mut conn = pool.get()?;
    let (rt, client) = conn.parts();
    let tx = Transaction::on_first_statement(client, IsolationLevel::RepeatableRead, true);
    let refused = rt.block_on(tx.execute("INSERT INTO t VALUES (1)", &[]));
    let error = refused.err().and_then(|e| e.code().cloned());
    assert_eq!(
        error,
        Some(tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION)
    );
    assert!(!tx.lost_at_begin());
    drop(tx);
    drop(conn);
    assert_eq!(committed(&url)?, Vec::<i32>::new());
    Ok(())
}

#[test]
fn a_dropped_transaction_is_rolled_back_before_its_connection_waits_idle() -> TestResult {
    let Some((pool, url)) = pool_with_table()? else {
        return Ok(());
    };
    let mut conn = pool.get()?;
    let pid = pid(&mut conn)?;
    let (rt, client) = conn.parts();
    let tx = Transaction::on_first_statement(client, IsolationLevel::ReadCommitted, false);
    rt.block_on(tx.execute("INSERT INTO t VALUES (1)", &[]))?;
    // Its closure failed: neither committed nor rolled back.
    drop(tx);
    drop(conn);
    // The `ROLLBACK` was sent as the connection went back.
    assert_eq!(settled(&url, pid)?.1, "idle");
    assert_eq!(committed(&url)?, Vec::<i32>::new());
    // The connection serves the next caller.
    let mut conn = pool.get()?;
    let (rt, client) = conn.parts();
    let tx = Transaction::on_first_statement(client, IsolationLevel::ReadCommitted, false);
    rt.block_on(tx.execute("INSERT INTO t VALUES (2)", &[]))?;
    rt.block_on(tx.commit())?;
    drop(tx);
    drop(conn);
    assert_eq!(committed(&url)?, [2]);
    Ok(())
}

#[test]
fn a_closed_connection_is_lost_at_begin_and_nothing_ran() -> TestResult {
    let Some((pool, url)) = pool_with_table()? else {
        return Ok(());
    };
    let mut conn = pool.get()?;
    let pid = pid(&mut conn)?;
    let killer = DrivenPool::new(PgSetting::parse(&url)?, PoolOptions::default());
    {
        let mut other = killer.get()?;
        let (rt, client) = other.parts();
        rt.block_on(client.query_one("SELECT pg_terminate_backend($1)", &[&pid]))?;
        // Gone once the server no longer lists it.
        for _ in 0..200 {
            let listed = rt.block_on(
                client.query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid]),
            )?;
            if listed.is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let (rt, client) = conn.parts();
    let tx = Transaction::on_first_statement(client, IsolationLevel::ReadCommitted, false);
    let failed = rt.block_on(tx.execute("INSERT INTO t VALUES (1)", &[]));
    assert!(failed.is_err());
    assert!(tx.lost_at_begin());
    drop(tx);
    conn.discard();
    assert_eq!(committed(&url)?, Vec::<i32>::new());
    Ok(())
}

#[test]
fn a_read_is_over_before_its_connection_waits_idle_though_nobody_waited_for_its_end() -> TestResult
{
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg.url_for_new_database()?;
    let one = PoolOptions {
        size: 1,
        wait: Duration::from_secs(5),
    };
    let db = super::PgDb::connect(&url, crate::store::Durability::Process, one)?;
    let pid = pid(&mut db.driven().get()?)?;
    db.read(|r| r.ping())?;
    // The read's end was sent as its connection went back to the pool.
    assert_eq!(
        settled(&url, pid)?,
        ("COMMIT".to_owned(), "idle".to_owned())
    );
    // The connection serves the next read, and the answer to that end is not taken for its own.
    db.read(|r| r.ping())?;
    assert_eq!(db.read(|r| r.latest_event_id())?, 0);
    Ok(())
}
