//! The PostgreSQL backend against a real server: one throwaway cluster per test binary
//! (`chathooks_testservers::Postgres::shared`), a fresh database per test. Each test skips when PostgreSQL
//! is not installed, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use std::time::Duration;

use chathooks_testservers::Postgres;

use super::migrations::{current_version, latest_version};
use super::*;

type TestResult = anyhow::Result<()>;

/// Every table of the schema at its latest version, `schema_version` included.
const TABLES: &[&str] = &[
    "audience_members",
    "audiences",
    "bans",
    "blocks",
    "conversations",
    "dead_letters",
    "deliveries",
    "devices",
    "event_audience",
    "event_drafts",
    "events",
    "held_messages",
    "mentions",
    "messages",
    "nodes",
    "outbox",
    "participants",
    "plugin_catalog",
    "plugin_kv",
    "plugin_kv_usage",
    "plugin_overrides",
    "plugin_timers",
    "presence",
    "reactions",
    "receipts",
    "schema_version",
    "sequencers",
    "tokens",
    "users",
];

/// The secondary indexes, under the names the SQLite schema gives them.
const INDEXES: &[&str] = &[
    "deliveries_due",
    "deliveries_order",
    "events_audience",
    "held_messages_client_id",
    "held_messages_queue",
    "mentions_user",
    "messages_thread",
    "messages_threads",
    "participants_user",
    "plugin_timers_due",
    "presence_node",
    "tokens_user",
];

async fn pool(setting: &str) -> anyhow::Result<PgPool> {
    let options = PoolOptions {
        size: 4,
        ..PoolOptions::default()
    };
    Ok(PgPool::connect(PgSetting::parse(setting)?, options).await?)
}

async fn names(pool: &PgPool, sql: &str) -> anyhow::Result<Vec<String>> {
    let client = pool.get().await?;
    let rows = client.query(sql, &[]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

#[tokio::test]
async fn migrations_create_the_schema_and_a_second_run_changes_nothing() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = pool(&pg.url_for_new_database()?).await?;
    assert_eq!(current_version(&pool.get().await?).await?, 0);

    let first = migrate(&pool).await?;
    assert_eq!((first.from, first.to), (0, latest_version()));
    let tables = names(
        &pool,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
    )
    .await?;
    assert_eq!(tables, TABLES);
    let indexes = names(
        &pool,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()
           AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key' ORDER BY 1",
    )
    .await?;
    assert_eq!(indexes, INDEXES);

    let second = migrate(&pool).await?;
    assert_eq!(
        (second.from, second.to),
        (latest_version(), latest_version())
    );
    let client = pool.get().await?;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM schema_version", &[])
        .await?
        .get(0);
    assert_eq!(applied, latest_version());
    // Half-empty participants pages, so unread-count updates stay on their page (version 11).
    let options: Vec<String> = client
        .query_one(
            "SELECT coalesce(reloptions, '{}')::text[] FROM pg_class
             WHERE relname = 'participants' AND relnamespace = current_schema()::regnamespace",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(options, ["fillfactor=50"]);

    // Translated types: identity ids, JSON as text, BYTEA, BOOLEAN flags, byte-order collation.
    let id: i64 = client
        .query_one(
            "INSERT INTO events (kind, audience, payload, created_at)
             VALUES ('x', '[\"a\"]', '{\"n\": \"\\u0000\"}', 0) RETURNING id",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(id, 1);
    let payload: String = client
        .query_one("SELECT payload FROM events WHERE id = $1", &[&id])
        .await?
        .get(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&payload)?,
        serde_json::json!({"n": "\u{0}"})
    );
    client
        .execute(
            "INSERT INTO plugin_kv (plugin, key, value) VALUES ('p', '\\x00ff', $1)",
            &[&&b"\x00\xff"[..]],
        )
        .await?;
    let types = names(
        &pool,
        "SELECT table_name || '.' || column_name || ' ' || data_type || coalesce(' ' || collation_name, '')
         FROM information_schema.columns
         WHERE table_schema = current_schema()
           AND (table_name, column_name) IN (('events', 'payload'), ('plugin_kv', 'key'),
                                             ('plugin_kv', 'value'), ('messages', 'deleted'),
                                             ('messages', 'created_at'), ('users', 'id'))
         ORDER BY 1",
    )
    .await?;
    assert_eq!(
        types,
        [
            "events.payload text C",
            "messages.created_at bigint",
            "messages.deleted boolean",
            "plugin_kv.key bytea",
            "plugin_kv.value bytea",
            "users.id text C",
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_migrating_one_fresh_database_at_once_apply_each_version_once() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg.url_for_new_database()?;
    // Three "nodes", each with its own pool, connected before any of them migrates.
    let (a, b, c) = (pool(&url).await?, pool(&url).await?, pool(&url).await?);
    let (a, b, c) = tokio::join!(migrate(&a), migrate(&b), migrate(&c));
    let mut from: Vec<i64> = [a?, b?, c?].iter().map(|m| m.from).collect();
    from.sort_unstable();
    assert_eq!(from, [0, latest_version(), latest_version()]);
    let count = pg.psql(
        url.rsplit('/').next().unwrap_or_default(),
        "SELECT count(*), max(version) FROM schema_version",
    )?;
    assert_eq!(
        count.trim(),
        format!("{}|{}", latest_version(), latest_version())
    );
    Ok(())
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused_naming_both_versions() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = pool(&pg.url_for_new_database()?).await?;
    migrate(&pool).await?;
    let newer = latest_version() + 1;
    pool.get()
        .await?
        .execute(
            "INSERT INTO schema_version (version, applied_at, applied_by) VALUES ($1, 0, 'the future')",
            &[&newer],
        )
        .await?;
    let err = migrate(&pool).await.err();
    let Some(PgError::SchemaTooNew { found, supported }) = &err else {
        anyhow::bail!("expected SchemaTooNew, got {err:?}");
    };
    assert_eq!((*found, *supported), (newer, latest_version()));
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains(&format!("version {newer} "))
            && msg.contains(&format!("({})", latest_version())),
        "{msg}"
    );
    Ok(())
}

/// Every rendering of `err` a log or a user could see.
fn renderings(err: &PgError) -> String {
    format!("{err}\n{err:?}\n{:#}", anyhow::anyhow!(err.to_string()))
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_is_named_without_its_password() -> TestResult {
    // Nothing listens on a port we just released: connection refused, no PostgreSQL needed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let setting = format!("postgres://alice:s3cret-pw@127.0.0.1:{port}/chat");
    let err = pool(&setting)
        .await
        .err()
        .and_then(|e| e.downcast::<PgError>().ok());
    let Some(err @ PgError::Unreachable { .. }) = err else {
        anyhow::bail!("expected Unreachable, got {err:?}");
    };
    let shown = renderings(&err);
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(
        shown.contains(&format!("alice:***@127.0.0.1:{port}/chat")),
        "{shown}"
    );
    assert!(shown.contains("Connection refused"), "{shown}");
    assert!(
        shown.contains("check that the server is running"),
        "{shown}"
    );
    Ok(())
}

#[tokio::test]
async fn a_database_that_does_not_exist_is_named_without_the_password() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg
        .url("no_such_database")
        .replacen("postgres@", "postgres:s3cret-pw@", 1);
    let err = pool(&url)
        .await
        .err()
        .and_then(|e| e.downcast::<PgError>().ok());
    let Some(err @ PgError::Unreachable { .. }) = err else {
        anyhow::bail!("expected Unreachable, got {err:?}");
    };
    let shown = renderings(&err);
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(
        shown.contains("database \"no_such_database\" does not exist"),
        "{shown}"
    );
    Ok(())
}

#[tokio::test]
async fn key_value_settings_connect_and_migrate() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let database = pg.create_database()?;
    // Trust authentication ignores the password; it is here to be redacted.
    let setting = format!("{} password='not shown'", pg.conninfo(&database));
    let pool = pool(&setting).await?;
    assert!(pool.setting().redacted().ends_with("password=***"));
    assert!(!format!("{pool:?}").contains("not shown"));
    assert_eq!(migrate(&pool).await?.to, latest_version());
    Ok(())
}

#[tokio::test]
async fn a_caller_waits_for_a_free_connection_only_as_long_as_the_pool_says() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let options = PoolOptions {
        size: 1,
        wait: Duration::from_millis(50),
    };
    let pool = PgPool::connect(PgSetting::parse(&pg.url_for_new_database()?)?, options).await?;
    let held = pool.get().await?;
    let err = pool.get().await.err();
    assert!(
        matches!(err, Some(PgError::PoolTimeout { size: 1, .. })),
        "{err:?}"
    );
    drop(held);
    drop(pool.get().await?);
    Ok(())
}

#[tokio::test]
async fn version_8_gives_admins_their_role_and_conversations_their_oldest_admin_as_owner()
-> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = pool(&pg.url_for_new_database()?).await?;
    // A database at version 7, as the previous release left it.
    let client = database_at(&pool, 7).await?;
    // c1: a created it (admin since 0), c made admin later; c2: no admin at all.
    client
        .batch_execute(
            "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 0), ('b', 'B', 0), ('c', 'C', 0);
             INSERT INTO conversations (id, created_at, updated_at) VALUES ('c1', 0, 0), ('c2', 0, 0);
             INSERT INTO participants (conversation_id, user_id, is_admin, joined_at)
             VALUES ('c1', 'c', true, 5), ('c1', 'a', true, 0), ('c1', 'b', false, 1),
                    ('c2', 'b', false, 0);",
        )
        .await?;
    drop(client);
    assert_eq!(migrate(&pool).await?.from, 7);
    let roles = names(
        &pool,
        "SELECT conversation_id || ' ' || user_id || ' ' || role FROM participants ORDER BY 1",
    )
    .await?;
    assert_eq!(
        roles,
        ["c1 a admin", "c1 b member", "c1 c admin", "c2 b member"]
    );
    let owners = names(
        &pool,
        "SELECT id || ' ' || coalesce(owner_id, '-') FROM conversations ORDER BY 1",
    )
    .await?;
    assert_eq!(owners, ["c1 a", "c2 -"]);
    Ok(())
}

#[tokio::test]
async fn version_12_counts_unread_messages_from_the_messages() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let pool = pool(&pg.url_for_new_database()?).await?;
    // A database at version 11, as the previous release left it.
    let client = database_at(&pool, 11).await?;
    // b read up to seq 1; c joined at seq 2; a sent 1, 2 and 4 (2 deleted), b sent 3.
    client
        .batch_execute(
            "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 0), ('b', 'B', 0), ('c', 'C', 0);
             INSERT INTO conversations (id, last_seq, created_at, updated_at) VALUES ('c1', 4, 0, 0);
             INSERT INTO participants (conversation_id, user_id, joined_at, joined_seq, last_read_seq)
             VALUES ('c1', 'a', 0, 0, 0), ('c1', 'b', 0, 0, 1), ('c1', 'c', 0, 2, 2);
             INSERT INTO messages (id, conversation_id, seq, sender_id, body, created_at, deleted)
             VALUES ('m1', 'c1', 1, 'a', 'x', 0, false), ('m2', 'c1', 2, 'a', 'x', 0, true),
                    ('m3', 'c1', 3, 'b', 'x', 0, false), ('m4', 'c1', 4, 'a', 'x', 0, false);",
        )
        .await?;
    drop(client);
    assert_eq!(migrate(&pool).await?.from, 11);
    let mut client = pool.get().await?;
    let tx = super::transaction::Transaction::begin(
        &mut client,
        tokio_postgres::IsolationLevel::ReadCommitted,
        false,
    )
    .await?;
    let mut counts = Vec::new();
    for user in ["a", "b", "c"] {
        counts.push((user, participants::unread_count(&tx, "c1", user).await?));
    }
    assert_eq!(counts, [("a", 1), ("b", 1), ("c", 2)]);
    Ok(())
}

/// A client of `pool`'s database brought to `version` by the migrations up to it, as a release that
/// stopped there left it.
async fn database_at(pool: &PgPool, version: usize) -> anyhow::Result<deadpool_postgres::Object> {
    let client = pool.get().await?;
    client
        .batch_execute(
            "CREATE TABLE schema_version (
                 version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, applied_by TEXT NOT NULL)",
        )
        .await?;
    for (step, sql) in (1_i64..).zip(&super::migrations::MIGRATIONS[..version]) {
        client.batch_execute(sql).await?;
        client
            .execute(
                "INSERT INTO schema_version VALUES ($1, 0, 'test')",
                &[&step],
            )
            .await?;
    }
    Ok(client)
}
