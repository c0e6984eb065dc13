//! A test cluster: PostgreSQL, `nats-server` and N `chathooks serve` nodes (SCALE-OUT.md 2.10).
//!
//! - PostgreSQL: a throwaway server of the cluster's own when the case restarts it
//!   ([`ClusterOptions::own_postgres`]), else a fresh database on the test binary's shared server.
//! - NATS: a `nats-server` of its own, restartable on the same port.
//! - Nodes `n1..nN`: `chathooks serve --listen 127.0.0.1:0 --data-dir <tmp>/nK --database <url> --nats
//!   <url> --node-id nK --cluster-name t<random> --plugins-dir <tmp>/plugins --admin-key <key>`. Every
//!   node gets the same plugins folder: in cluster mode each node publishes it to the shared catalog
//!   (identical files are a no-op) and loads the plugins from the catalog. `--no-watch` is not given:
//!   a publisher watches its folder, and nothing here changes the folder after the start.
//!
//! One cluster runs at a time in this test binary ([`Cluster::start`] takes a process-wide turn): each
//! is three servers compiling plugins on a 2-core machine, and the cases measure delivery and failover
//! times that parallel clusters would distort.

use std::ffi::OsString;
use std::path::PathBuf;

use chathooks_testservers::{Nats, Postgres};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use crate::node::Node;
use crate::wait::{eventually, must};

/// The admin key of every test node.
pub const ADMIN_KEY: &str = "cluster-test-admin-key-0123456789";

/// Every node's presence grace period (`--presence-grace-ms`): short, so a case sees a user go offline
/// within a poll or two.
pub const PRESENCE_GRACE_MS: u64 = 200;

/// A plugin to install before the nodes start.
pub struct Plugin {
    /// The built component (`chathooks_tests::fixture("recorder")`).
    pub wasm: PathBuf,
    /// Its manifest (`<name>.toml` beside it), if it needs grants or limits.
    pub manifest: Option<String>,
}

impl Plugin {
    /// A fixture plugin from `tests/fixtures/` (built on first use), without a manifest.
    pub fn fixture(name: &str) -> Plugin {
        Plugin {
            wasm: chathooks_tests::fixture(name),
            manifest: None,
        }
    }

    /// A fixture plugin with a manifest (grants, limits).
    pub fn fixture_with(name: &str, manifest: &str) -> Plugin {
        Plugin {
            manifest: Some(manifest.to_owned()),
            ..Plugin::fixture(name)
        }
    }

    /// The plugin's name: its file name without `.wasm`.
    pub fn name(&self) -> String {
        self.wasm
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// `[limits]` that let a plugin log every call of a case: the default rate (100 lines/s, burst 1,000 per
/// node) would drop lines the cases count.
pub const LOG_FREELY: &str = "[limits]\nlog_lines_per_second = 100000\nlog_burst = 100000\n\
log_bytes_per_second = 100000000\nlog_burst_bytes = 100000000\n";

/// What a case needs from its cluster.
pub struct ClusterOptions {
    /// How many nodes (`n1..`).
    pub nodes: usize,
    /// Plugins every node runs.
    pub plugins: Vec<Plugin>,
    /// A PostgreSQL server of its own, which the case may restart or stop.
    pub own_postgres: bool,
}

impl ClusterOptions {
    /// Three nodes, no plugins, the shared PostgreSQL.
    pub fn three() -> ClusterOptions {
        ClusterOptions {
            nodes: 3,
            plugins: Vec::new(),
            own_postgres: false,
        }
    }

    /// These options with `plugins`.
    pub fn with_plugins(mut self, plugins: Vec<Plugin>) -> ClusterOptions {
        self.plugins = plugins;
        self
    }
}

/// The PostgreSQL server a cluster runs on.
enum Pg {
    /// The test binary's shared server (a fresh database on it).
    Shared(&'static Postgres),
    /// A server of the cluster's own.
    Own(Postgres),
}

/// A running cluster. Dropping it kills the nodes, then stops NATS and (its own) PostgreSQL.
pub struct Cluster {
    /// The nodes, `n1` first. Declared first: dropped (killed) before the servers they use.
    pub nodes: Vec<Node>,
    /// The NATS server.
    pub nats: Nats,
    /// The PostgreSQL server.
    pg: Pg,
    /// The database's name on `pg`.
    pub database: String,
    /// The database's URL (what `--database` got).
    pub database_url: String,
    /// `--cluster-name`.
    pub name: String,
    /// The plugins folder every node publishes.
    pub plugins_dir: PathBuf,
    /// Data folders and the plugins folder.
    _dir: tempfile::TempDir,
    /// This binary's one-cluster-at-a-time turn; released last.
    _turn: MutexGuard<'static, ()>,
}

/// Whose turn it is to run a cluster.
static TURN: Mutex<()> = Mutex::const_new(());

impl Cluster {
    /// Starts PostgreSQL (or takes a database on the shared one), NATS and the nodes, and waits until every
    /// node answers `/healthz` and runs every plugin of `options`. `None`, after a printed reason, when
    /// PostgreSQL or `nats-server` is not installed (a failure under `CHATHOOKS_REQUIRE_*`).
    pub async fn start(options: ClusterOptions) -> Option<Cluster> {
        let turn = TURN.lock().await;
        let pg = if options.own_postgres {
            Pg::Own(Postgres::start_or_skip()?)
        } else {
            Pg::Shared(Postgres::shared()?)
        };
        let nats = Nats::start_or_skip()?;
        let server = match &pg {
            Pg::Shared(pg) => *pg,
            Pg::Own(pg) => pg,
        };
        let database = must(server.create_database(), "a database for the cluster");
        let database_url = server.url(&database);
        let dir = chathooks_tests::temp_dir();
        let plugins_dir = dir.path().join("plugins");
        must(std::fs::create_dir_all(&plugins_dir), "the plugins folder");
        for plugin in &options.plugins {
            let name = plugin.name();
            must(
                std::fs::copy(&plugin.wasm, plugins_dir.join(format!("{name}.wasm"))),
                "copy a plugin",
            );
            if let Some(manifest) = &plugin.manifest {
                must(
                    std::fs::write(plugins_dir.join(format!("{name}.toml")), manifest),
                    "write a manifest",
                );
            }
        }
        let name = format!("t{:08x}", rand_u32());
        let mut cluster = Cluster {
            nodes: Vec::new(),
            nats,
            pg,
            database,
            database_url,
            name,
            plugins_dir,
            _dir: dir,
            _turn: turn,
        };
        // Start them together, then wait for each: start-up (migrations, plugin compiles) overlaps.
        for i in 1..=options.nodes {
            let id = format!("n{i}");
            let args = cluster.node_args(&id);
            cluster.nodes.push(Node::spawn(&id, args));
        }
        for node in &mut cluster.nodes {
            node.wait_listening();
        }
        let plugins: Vec<String> = options.plugins.iter().map(Plugin::name).collect();
        cluster.wait_ready(&plugins).await;
        Some(cluster)
    }

    /// The `serve` flags of node `id`.
    fn node_args(&self, id: &str) -> Vec<OsString> {
        let data_dir = self._dir.path().join(id);
        let mut args: Vec<OsString> = Vec::new();
        let mut flag = |name: &str, value: OsString| {
            args.push(name.into());
            args.push(value);
        };
        flag("--listen", "127.0.0.1:0".into());
        flag("--data-dir", data_dir.into());
        flag("--database", self.database_url.clone().into());
        flag("--nats", self.nats.url().into());
        flag("--node-id", id.into());
        flag("--cluster-name", self.name.clone().into());
        flag("--plugins-dir", self.plugins_dir.clone().into());
        flag("--admin-key", ADMIN_KEY.into());
        flag("--presence-grace-ms", PRESENCE_GRACE_MS.to_string().into());
        args
    }

    /// Node `nK` (1-based, as its id).
    pub fn node(&self, k: usize) -> &Node {
        &self.nodes[k - 1]
    }

    /// Node `nK`, to kill, pause or restart it.
    pub fn node_mut(&mut self, k: usize) -> &mut Node {
        &mut self.nodes[k - 1]
    }

    /// Waits until every running node answers `/healthz` with 200 and `GET /v1/admin/cluster` on n1 shows
    /// every running node on the catalog's version of each of `plugins`.
    pub async fn wait_ready(&mut self, plugins: &[String]) {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        for &i in &running {
            let node = &self.nodes[i];
            eventually(&format!("{} answers /healthz", node.id), || async {
                crate::api::healthz(node).await.filter(|s| *s == 200)
            })
            .await;
        }
        if plugins.is_empty() {
            return;
        }
        let want = running.len();
        let asker = &self.nodes[running[0]];
        eventually(
            &format!("{want} nodes run the catalog's {plugins:?}"),
            || async {
                let view = crate::api::cluster_view(asker).await?;
                plugins
                    .iter()
                    .all(|name| plugin_on(&view, name) == Some(want))
                    .then_some(())
            },
        )
        .await;
    }

    /// The PostgreSQL server.
    pub fn postgres(&self) -> &Postgres {
        match &self.pg {
            Pg::Shared(pg) => pg,
            Pg::Own(pg) => pg,
        }
    }

    /// The cluster's own PostgreSQL, to restart or stop; panics on the shared one.
    pub fn own_postgres(&mut self) -> &mut Postgres {
        match &mut self.pg {
            Pg::Own(pg) => pg,
            Pg::Shared(_) => panic!("this case needs ClusterOptions::own_postgres"),
        }
    }

    /// Runs `sql` on the cluster's database; what `psql` printed (unaligned, tuples only).
    pub fn sql(&self, sql: &str) -> String {
        must(self.postgres().psql(&self.database, sql), sql)
    }

    /// Every node's last lines, for a failure message.
    pub fn tails(&self, n: usize) -> String {
        self.nodes
            .iter()
            .map(|node| format!("--- {}:\n{}", node.id, node.tail(n)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How many live nodes run the catalog's version of plugin `name`, from a cluster view.
pub fn plugin_on(view: &Value, name: &str) -> Option<usize> {
    view["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["nodes_on_catalog"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// A random number from the standard library's per-process hash keys (cluster names).
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    u32::try_from(hasher.finish() & u64::from(u32::MAX)).unwrap_or_default()
}
