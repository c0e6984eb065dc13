//! A dispatcher round's transaction on PostgreSQL
//! ([`super::transaction::Transaction::on_first_statement`]): it begins with the round's first
//! statement, against a real server. Skips without PostgreSQL, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use chathooks_testservers::Postgres;

use super::db_tests::{test_pool, user};
use crate::store::{Db, Durability, PoolOptions, StoreError};

type TestResult = anyhow::Result<()>;

/// A write without events (a dispatcher round) begins its transaction with its first statement: one
/// that makes none sends nothing to the server, and one whose statements fail part-way keeps none of
/// them.
#[test]
fn a_write_of_deliveries_begins_its_transaction_with_its_first_statement() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg.url_for_new_database()?;
    // One pooled connection, so every write below runs on it.
    let one = PoolOptions {
        size: 1,
        ..test_pool()
    };
    let db = Db::connect(&url, Durability::Process, one)?;
    let observer = Db::connect(&url, Durability::Process, test_pool())?;
    let (Some(pg_db), Some(observer)) = (db.as_postgres(), observer.as_postgres()) else {
        anyhow::bail!("not PostgreSQL");
    };
    let pid: i32 = {
        let mut conn = pg_db.driven().get()?;
        let (rt, client) = conn.parts();
        rt.block_on(client.query_one("SELECT pg_backend_pid()", &[]))?
            .get(0)
    };
    // What that connection last sent, as the server shows it.
    let last_sent = || -> anyhow::Result<String> {
        observer.handle().block_on(async {
            let client = observer.pool().get().await?;
            let row = client
                .query_one("SELECT query FROM pg_stat_activity WHERE pid = $1", &[&pid])
                .await?;
            anyhow::Ok(row.get(0))
        })
    };
    assert_eq!(last_sent()?, "SELECT pg_backend_pid()");

    // A round that finds nothing to do asks for nothing: no outcomes, no starts, nothing to clear.
    let nothing = db.write_deliveries(|tx| {
        tx.deliveries_succeeded(&[])?;
        tx.start_runs(&[], 1)?;
        tx.leave_outbox(&[])?;
        Ok(7)
    })?;
    assert_eq!(nothing, 7);
    assert_eq!(
        last_sent()?,
        "SELECT pg_backend_pid()",
        "a write that made no statement sent something"
    );

    let failed = pg_db.write_without_events(|tx| {
        tx.create_user(&user("alice"), 1)?;
        tx.create_user(&user("alice"), 1)
    });
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    assert_eq!(last_sent()?, "ROLLBACK");
    assert!(db.read(|r| r.find_user("alice"))?.is_none());

    pg_db.write_without_events(|tx| tx.create_user(&user("alice"), 1))?;
    assert_eq!(last_sent()?, "COMMIT");
    assert!(db.read(|r| r.find_user("alice"))?.is_some());
    Ok(())
}
