//! The PostgreSQL schema, as an append-only list of migrations recorded in a `schema_version` table.
//!
//! A list of its own, written for PostgreSQL, not a translation of the SQLite one (SCALE-OUT.md 2.2): its
//! version 1 is the SQLite schema at its latest version (`schema/v1.sql` says how each type was
//! translated), since a new backend has no history to replay. Never edit a migration once a release has
//! shipped it; append one. Migration `n` moves a database from version `n - 1` to `n`.
//!
//! ## Nodes booting together
//! Every node runs [`migrate`] at start, so several may run it at once on a fresh database. All pending
//! migrations run in one transaction that first takes a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`): the first node migrates, the others wait, then find the work done. The
//! transaction-scoped form, rather than `pg_advisory_lock`, because COMMIT or ROLLBACK releases it however
//! the transaction ends, so a failed migration can never return a pooled connection that still holds it.
//! The transaction is READ COMMITTED whatever the server's default, so that the version read after the
//! lock is granted sees the migration the previous holder committed (under REPEATABLE READ the snapshot
//! would predate it and the waiter would apply it again). PostgreSQL's DDL is transactional: a migration
//! that fails leaves nothing behind.
//!
//! The lock's key is derived from the schema the tables go in (`current_schema()`), not from a cluster
//! name: two clusters sharing one schema share its migrations and must take turns, while clusters in
//! separate schemas of one database need not wait for each other.

use deadpool_postgres::GenericClient;
use tokio_postgres::IsolationLevel;

use super::connect::PgPool;
use super::error::{PgError, Result};
use super::locks::advisory_key;

/// Every migration, oldest first. Index `i` holds the step to version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema/v1.sql"),
    include_str!("schema/v2.sql"),
    include_str!("schema/v3.sql"),
    include_str!("schema/v4.sql"),
    include_str!("schema/v5.sql"),
    include_str!("schema/v6.sql"),
    include_str!("schema/v7.sql"),
    include_str!("schema/v8.sql"),
    include_str!("schema/v9.sql"),
    include_str!("schema/v10.sql"),
    include_str!("schema/v11.sql"),
    include_str!("schema/v12.sql"),
    include_str!("schema/v13.sql"),
    include_str!("schema/v14.sql"),
    include_str!("schema/v15.sql"),
    include_str!("schema/v16.sql"),
];

/// The table of applied versions, one row each: when, and by which chathooks release.
const SCHEMA_VERSION_TABLE: &str = "
CREATE TABLE IF NOT EXISTS schema_version (
    version     BIGINT PRIMARY KEY,
    applied_at  BIGINT NOT NULL,
    applied_by  TEXT NOT NULL
)";

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version the database had (0: empty).
    pub from: i64,
    /// The version it has now: [`latest_version`].
    pub to: i64,
}

/// The schema version this build migrates to.
pub fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// The database's schema version: the newest applied, 0 for a database chathooks never migrated.
pub async fn current_version(client: &impl GenericClient) -> Result<i64> {
    let row = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?;
    Ok(row.get(0))
}

/// Brings the database up to [`latest_version`], safely while other nodes do the same (see the module
/// docs). Refuses ([`PgError::SchemaTooNew`]) a database a newer build migrated.
pub async fn migrate(pool: &PgPool) -> Result<Migrated> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await?;
    // Keeps PostgreSQL's NOTICEs ("relation ... already exists, skipping"), which tokio-postgres logs at
    // INFO, out of every start's log.
    tx.batch_execute("SET LOCAL client_min_messages TO warning")
        .await?;
    let schema: Option<String> = tx.query_one("SELECT current_schema()", &[]).await?.get(0);
    let key = advisory_key(schema.as_deref().unwrap_or(""), "migrate");
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
        .await?
        .get(0);
    if !locked {
        tracing::info!(
            setting = %pool.setting(),
            "waiting for another chathooks to finish migrating the PostgreSQL schema"
        );
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await?;
    }
    tx.batch_execute(SCHEMA_VERSION_TABLE).await?;
    let from = current_version(&tx).await?;
    let supported = latest_version();
    if from > supported {
        return Err(PgError::SchemaTooNew {
            found: from,
            supported,
        });
    }
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version <= from {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at, applied_by)
             VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, $2)",
            &[&version, &concat!("chathooks ", env!("CARGO_PKG_VERSION"))],
        )
        .await?;
    }
    tx.commit().await?;
    if from < supported {
        tracing::info!(
            setting = %pool.setting(),
            from,
            to = supported,
            "migrated the PostgreSQL schema"
        );
    }
    Ok(Migrated {
        from,
        to: supported,
    })
}
