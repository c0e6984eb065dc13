//! The plugin catalog, node heartbeats and the presence rows they vouch for against a real PostgreSQL (a fresh database per test; skipped
//! when PostgreSQL is not installed, unless `CHATHOOKS_REQUIRE_POSTGRES=1`).

use chathooks_testservers::Postgres;

use super::catalog::{self, Put};
use super::nodes::{self, Heartbeat, NodePlugin};
use super::presence;
use super::{PgPool, PgSetting, PoolOptions, migrate};
use crate::plugins::cache::content_hash;

type TestResult = anyhow::Result<()>;

async fn fresh_pool() -> anyhow::Result<Option<PgPool>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let options = PoolOptions {
        size: 2,
        ..PoolOptions::default()
    };
    let pool = PgPool::connect(PgSetting::parse(&pg.url_for_new_database()?)?, options).await?;
    migrate(&pool).await?;
    Ok(Some(pool))
}

#[tokio::test]
async fn a_put_is_content_addressed_and_every_change_takes_a_larger_generation() -> TestResult {
    let Some(pool) = fresh_pool().await? else {
        return Ok(());
    };
    let first = catalog::put(&pool, "blue", "echo", b"v1 bytes", None).await?;
    let Put::Added { generation: g1 } = first else {
        panic!("{first:?}");
    };
    // The same bytes and manifest: nothing changes, not even the generation.
    assert_eq!(
        catalog::put(&pool, "blue", "echo", b"v1 bytes", None).await?,
        Put::Unchanged { generation: g1 }
    );
    // A manifest alone is a change, and so are new bytes.
    let with_manifest =
        catalog::put(&pool, "blue", "echo", b"v1 bytes", Some("priority = 1")).await?;
    assert!(matches!(with_manifest, Put::Updated { generation } if generation > g1));
    let v2 = catalog::put(&pool, "blue", "echo", b"v2 bytes", Some("priority = 1")).await?;
    assert!(v2.changed() && v2.generation() > with_manifest.generation());

    let listed = catalog::list(&pool, "blue").await?;
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_eq!(
        (
            entry.name.as_str(),
            entry.sha256.clone(),
            entry.manifest.as_deref(),
            entry.generation,
            entry.size
        ),
        (
            "echo",
            content_hash(b"v2 bytes"),
            Some("priority = 1"),
            v2.generation(),
            8
        )
    );
    let blob = catalog::fetch(&pool, "blue", "echo")
        .await?
        .expect("echo is there");
    assert_eq!(
        (blob.wasm.as_slice(), blob.sha256),
        (&b"v2 bytes"[..], content_hash(b"v2 bytes"))
    );
    Ok(())
}

#[tokio::test]
async fn clusters_sharing_a_database_have_their_own_catalogs() -> TestResult {
    let Some(pool) = fresh_pool().await? else {
        return Ok(());
    };
    catalog::put(&pool, "blue", "echo", b"blue", None).await?;
    catalog::put(&pool, "green", "echo", b"green", None).await?;
    catalog::put(&pool, "green", "audit", b"audit", None).await?;
    let names = |entries: Vec<catalog::CatalogEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.name).collect()
    };
    assert_eq!(names(catalog::list(&pool, "blue").await?), ["echo"]);
    assert_eq!(
        names(catalog::list(&pool, "green").await?),
        ["audit", "echo"]
    );

    assert!(catalog::remove(&pool, "green", "echo").await?);
    assert!(!catalog::remove(&pool, "green", "echo").await?);
    assert!(catalog::fetch(&pool, "green", "echo").await?.is_none());
    assert_eq!(names(catalog::list(&pool, "green").await?), ["audit"]);
    assert_eq!(names(catalog::list(&pool, "blue").await?), ["echo"]);

    // Pushed again after a removal: a new row, with a generation larger than any before.
    let before = catalog::list(&pool, "green").await?[0].generation;
    let again = catalog::put(&pool, "green", "echo", b"green", None).await?;
    assert!(matches!(again, Put::Added { generation } if generation > before));
    Ok(())
}

#[tokio::test]
async fn heartbeats_upsert_one_row_per_node_with_its_age_on_the_database_clock() -> TestResult {
    let Some(pool) = fresh_pool().await? else {
        return Ok(());
    };
    let beat = |node: &str, sequencer: bool| Heartbeat {
        node_id: node.to_owned(),
        started_at: 1_000,
        http_addr: format!("{node}:8787"),
        version: "1.2.3".to_owned(),
        plugins: vec![NodePlugin {
            name: "echo".to_owned(),
            sha256: "abc".to_owned(),
        }],
        is_sequencer: sequencer,
    };
    nodes::upsert(&pool, "blue", &beat("n2", false)).await?;
    nodes::upsert(&pool, "blue", &beat("n1", false)).await?;
    nodes::upsert(&pool, "blue", &beat("n1", true)).await?;
    nodes::upsert(&pool, "green", &beat("n9", false)).await?;

    let rows = nodes::list(&pool, "blue").await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.heartbeat.node_id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2"]);
    assert_eq!(rows[0].heartbeat, beat("n1", true));
    assert!(
        rows.iter()
            .all(|r| (0..5_000).contains(&r.age_ms) && r.backend_pid > 0)
    );

    // A node silent for more than a day is forgotten; a fresh one is kept.
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE nodes SET heartbeat_at = heartbeat_at - $1 - 1 WHERE node_id = 'n2'",
            &[&nodes::FORGET_AFTER_MS],
        )
        .await?;
    assert_eq!(nodes::prune(&pool, "blue").await?, 1);
    assert_eq!(nodes::list(&pool, "blue").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn the_silent_presence_nodes_are_those_without_a_fresh_heartbeat() -> TestResult {
    let Some(pool) = fresh_pool().await? else {
        return Ok(());
    };
    let beat = |node: &str| Heartbeat {
        node_id: node.to_owned(),
        started_at: 1_000,
        http_addr: String::new(),
        version: "1.2.3".to_owned(),
        plugins: Vec::new(),
        is_sequencer: false,
    };
    nodes::upsert(&pool, "blue", &beat("live")).await?;
    nodes::upsert(&pool, "blue", &beat("stale")).await?;
    let mut client = pool.get().await?;
    client
        .batch_execute(
            "UPDATE nodes SET heartbeat_at = heartbeat_at - 60000 WHERE node_id = 'stale';
             INSERT INTO users (id, name, created_at) VALUES ('a', 'a', 0), ('b', 'b', 0);
             INSERT INTO presence (user_id, node, since) VALUES
               ('a', 'live', 0), ('a', 'stale', 0), ('b', 'stale', 0), ('b', 'unknown', 0),
               ('b', '', 0);",
        )
        .await?;
    let tx = super::transaction::Transaction::begin(
        &mut client,
        tokio_postgres::IsolationLevel::ReadCommitted,
        false,
    )
    .await?;
    // A node with no heartbeat row at all (pruned, or never written) is silent too; a server on its
    // own (the empty node) never is.
    assert_eq!(
        presence::silent_presence_nodes(&tx, 5_000).await?,
        ["stale", "unknown"]
    );
    assert_eq!(
        presence::silent_presence_nodes(&tx, 120_000).await?,
        ["unknown"]
    );
    assert_eq!(presence::node_presence_count(&tx, "stale").await?, 2);
    assert_eq!(
        presence::node_presence_users(&tx, "stale").await?,
        ["a", "b"]
    );
    Ok(())
}
