//! Catalog mirrors, publishers and heartbeats against a real PostgreSQL and NATS, with real compiled
//! fixture plugins: two in-process "nodes" (each its own registry and mirror folder) converge on what is
//! pushed. Skipped when PostgreSQL or nats-server is not installed (unless the `CHATHOOKS_REQUIRE_*`
//! variables say otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chathooks_testservers::{Nats, Postgres};
use tempfile::TempDir;

use super::catalog::{self, Mirror};
use super::member;
use super::nodes::{Heartbeat, NodeState};
use super::publisher::Publisher;
use crate::chat::testkit::fixture;
use crate::config::ClusterSettings;
use crate::plugins::cache::content_hash;
use crate::plugins::registry::Registry;
use crate::plugins::reload::Change;
use crate::plugins::{CaptureSink, Runtime, RuntimeConfig};
use crate::store::kv::KvStore;
use crate::store::postgres::PoolOptions;
use crate::store::{Db, Durability};

type TestResult = anyhow::Result<()>;

/// A node's plugin side: a registry loading from its own mirror folder.
struct Node {
    _dir: TempDir,
    mirror_dir: std::path::PathBuf,
    registry: Arc<Registry>,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            compilers: crate::plugins::Compilers::Cranelift,
            cache_dir: Some(dir.path().join("cache")),
            kv: Arc::new(KvStore::open_in_memory().unwrap()),
            logs: Arc::new(CaptureSink::default()),
        })
        .unwrap();
        let registry = Arc::new(Registry::new(runtime));
        let mirror_dir = dir.path().join(catalog::MIRROR_DIR);
        std::fs::create_dir_all(&mirror_dir).unwrap();
        registry.load_dir(&mirror_dir).unwrap();
        Node {
            _dir: dir,
            mirror_dir,
            registry,
        }
    }

    fn mirror(&self, db: &Arc<Db>) -> Mirror {
        Mirror::new(db.clone(), self.registry.clone(), "blue", &self.mirror_dir)
    }

    /// The hash of the running version of `name`.
    fn running(&self, name: &str) -> Option<String> {
        self.registry.get(name).map(|p| p.plugin.hash().to_owned())
    }
}

fn database() -> anyhow::Result<Option<Arc<Db>>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    Ok(Some(Arc::new(Db::connect(
        &url,
        Durability::Process,
        PoolOptions::default(),
    )?)))
}

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name).wasm).unwrap()
}

async fn push(db: &Db, name: &str, bytes: &[u8], manifest: Option<&str>) {
    let pg = db.as_postgres().unwrap();
    pg.put_plugin("blue", name, bytes.to_vec(), manifest.map(str::to_owned))
        .await
        .unwrap();
}

/// Waits (in short steps, at most 20 s) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_converge_on_a_push_a_new_version_a_manifest_and_a_removal() -> TestResult {
    let Some(db) = database()? else {
        return Ok(());
    };
    let (a, b) = (Node::new(), Node::new());
    let (mut mirror_a, mut mirror_b) = (a.mirror(&db), b.mirror(&db));
    let (v1, v2) = (wasm("only_sent"), wasm("recorder"));

    push(&db, "x", &v1, None).await;
    for mirror in [&mut mirror_a, &mut mirror_b] {
        let report = mirror.sync().await?;
        assert_eq!(report.changes.len(), 1);
        assert_eq!(report.changes[0].change, Change::Loaded);
    }
    assert_eq!(a.running("x"), Some(content_hash(&v1)));
    assert_eq!(b.running("x"), Some(content_hash(&v1)));
    // Nothing changed: nothing is fetched or loaded.
    assert!(mirror_a.sync().await?.changes.is_empty());

    push(&db, "x", &v2, None).await;
    mirror_a.sync().await?;
    mirror_b.sync().await?;
    assert_eq!(a.running("x"), Some(content_hash(&v2)));
    assert_eq!(b.running("x"), Some(content_hash(&v2)));

    // A manifest alone is a new version, written beside the component.
    push(&db, "x", &v2, Some("priority = 7\n")).await;
    let report = mirror_b.sync().await?;
    assert_eq!(report.changes[0].change, Change::Replaced);
    assert_eq!(b.registry.get("x").unwrap().settings.priority, 7);
    assert!(b.mirror_dir.join("x.toml").is_file());

    db.as_postgres().unwrap().remove_plugin("blue", "x").await?;
    let report = mirror_a.sync().await?;
    assert_eq!(report.changes[0].change, Change::Unloaded);
    assert!(a.running("x").is_none() && !a.mirror_dir.join("x.wasm").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_catalog_row_keeps_the_running_version_and_hand_copied_files_go() -> TestResult {
    let Some(db) = database()? else {
        return Ok(());
    };
    let node = Node::new();
    let mut mirror = node.mirror(&db);
    let v1 = wasm("only_sent");
    push(&db, "x", &v1, None).await;
    mirror.sync().await?;
    std::fs::copy(fixture("recorder").wasm, node.mirror_dir.join("stray.wasm"))?;

    // Garbage that went around the checks (a hand-written row): the node reports the failed load and
    // keeps serving v1.
    push(&db, "x", b"\0asm garbage", None).await;
    let report = mirror.sync().await?;
    let failed = report.changes.iter().find(|c| c.name == "x").unwrap();
    assert_eq!(failed.change, Change::Failed);
    assert_eq!(node.running("x"), Some(content_hash(&v1)));
    assert!(!node.mirror_dir.join("stray.wasm").exists());
    // The failure is not retried at every look.
    assert!(mirror.sync().await?.changes.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_load_a_push_at_once_when_poked_through_nats() -> TestResult {
    let Some(db) = database()? else {
        return Ok(());
    };
    let Some(nats) = Nats::start_or_skip() else {
        return Ok(());
    };
    let client = async_nats::connect(nats.url()).await?;
    let (a, b) = (Node::new(), Node::new());
    // Polls an hour apart: only the pokes can make these loops look again in time.
    let hour = Duration::from_secs(3600);
    let noop: crate::plugins::watcher::OnChange = Arc::new(|| {});
    let sync_a = catalog::spawn(a.mirror(&db), client.clone(), hour, noop.clone()).await?;
    let sync_b = catalog::spawn(b.mirror(&db), client.clone(), hour, noop).await?;

    for version in ["only_sent", "recorder"] {
        let bytes = wasm(version);
        push(&db, "x", &bytes, None).await;
        catalog::poke(&client, "blue").await;
        let hash = content_hash(&bytes);
        eventually(&format!("both nodes run {version}"), || {
            a.running("x").as_ref() == Some(&hash) && b.running("x").as_ref() == Some(&hash)
        })
        .await;
    }
    sync_a.stop().await;
    sync_b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_pushes_its_folder_but_not_a_bad_file_and_a_deletion_changes_nothing()
-> TestResult {
    let Some(db) = database()? else {
        return Ok(());
    };
    let node = Node::new();
    let folder = tempfile::tempdir()?;
    std::fs::copy(fixture("only_sent").wasm, folder.path().join("good.wasm"))?;
    std::fs::write(folder.path().join("good.toml"), "priority = 3\n")?;
    std::fs::write(folder.path().join("bad.wasm"), b"not a component")?;
    let publisher = Publisher::new(
        db.clone(),
        "blue",
        node.registry.runtime().clone(),
        folder.path(),
    );
    let pushing = Arc::new(publisher);
    let p = pushing.clone();
    assert_eq!(tokio::task::spawn_blocking(move || p.push_all()).await??, 1);
    let listed = db.as_postgres().unwrap().plugin_catalog("blue").await?;
    let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["good"]);
    assert_eq!(listed[0].manifest.as_deref(), Some("priority = 3\n"));

    // Pushing again changes nothing; deleting the file does not remove the plugin from the catalog.
    let p = pushing.clone();
    assert_eq!(tokio::task::spawn_blocking(move || p.push_all()).await??, 0);
    std::fs::remove_file(folder.path().join("good.wasm"))?;
    crate::plugins::watcher::WatchTarget::removed(pushing.as_ref(), "good");
    assert_eq!(
        db.as_postgres()
            .unwrap()
            .plugin_catalog("blue")
            .await?
            .len(),
        1
    );
    let err = pushing.push(&folder.path().join("bad.wasm")).unwrap_err();
    assert!(err.contains("not a plugin this server can load"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_reports_the_nodes_plugins_and_role() -> TestResult {
    let Some(db) = database()? else {
        return Ok(());
    };
    let node = Node::new();
    std::fs::copy(
        fixture("only_sent").wasm,
        node.mirror_dir.join("counter.wasm"),
    )?;
    node.registry.rescan()?;
    let state = NodeState::new(&ClusterSettings {
        nats: vec![],
        node_id: "n1".to_owned(),
        name: "blue".to_owned(),
    });
    state.set_http_addr("127.0.0.1:8787");
    state
        .is_sequencer
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let beat = Heartbeat::start(
        db.clone(),
        node.registry.clone(),
        state,
        Duration::from_millis(20),
    )?;
    let pg = db.as_postgres().unwrap();
    let mut rows = Vec::new();
    for _ in 0..500 {
        rows = pg.cluster_nodes("blue").await?;
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    beat.stop().await;
    let row = &rows[0].heartbeat;
    assert_eq!(
        (
            row.node_id.as_str(),
            row.http_addr.as_str(),
            row.is_sequencer
        ),
        ("n1", "127.0.0.1:8787", true)
    );
    let hash = content_hash(&wasm("only_sent"));
    assert_eq!(row.plugins.len(), 1);
    assert_eq!(
        (row.plugins[0].name.as_str(), &row.plugins[0].sha256),
        ("counter", &hash)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_publishes_its_folder_at_start_and_a_replaced_file_once_it_settles() -> TestResult
{
    let Some(db) = database()? else {
        return Ok(());
    };
    let Some(nats) = Nats::start_or_skip() else {
        return Ok(());
    };
    let client = async_nats::connect(nats.url()).await?;
    let (publisher, other) = (Node::new(), Node::new());
    let folder = tempfile::tempdir()?;
    std::fs::copy(fixture("only_sent").wasm, folder.path().join("x.wasm"))?;
    let settings = |id: &str| ClusterSettings {
        nats: vec![nats.url()],
        node_id: id.to_owned(),
        name: "blue".to_owned(),
    };
    let deps = |node: &Node, id: &str, publish: Option<&std::path::Path>| member::MemberDeps {
        db: db.clone(),
        registry: node.registry.clone(),
        node: NodeState::new(&settings(id)),
        nats: client.clone(),
        mirror_dir: node.mirror_dir.clone(),
        publish_dir: publish.map(std::path::Path::to_path_buf),
        watch: true,
        // Only pushes and pokes can make the nodes look again within the test.
        poll: Duration::from_secs(3600),
        on_change: Arc::new(|| {}),
    };
    let p = member::start(deps(&publisher, "p", Some(folder.path()))).await?;
    let o = member::start(deps(&other, "o", None)).await?;
    let v1 = content_hash(&wasm("only_sent"));
    assert_eq!(publisher.running("x"), Some(v1.clone()), "loaded at start");
    assert_eq!(other.running("x"), Some(v1));

    // Replaced the clean way (a hidden file renamed into place): pushed, poked, loaded everywhere.
    let part = folder.path().join(".x.wasm.part");
    std::fs::copy(fixture("recorder").wasm, &part)?;
    std::fs::rename(&part, folder.path().join("x.wasm"))?;
    let v2 = content_hash(&wasm("recorder"));
    eventually("both nodes run the replaced file", || {
        publisher.running("x").as_ref() == Some(&v2) && other.running("x").as_ref() == Some(&v2)
    })
    .await;
    p.stop().await;
    o.stop().await;
    Ok(())
}
