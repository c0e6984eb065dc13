//! Cluster mode's node heartbeats (SCALE-OUT.md 2.9): table `nodes`, one row per node of a cluster,
//! upserted by the node every second ([`crate::cluster::nodes`]) and read by the admin view.
//!
//! Times are the database clock's, in milliseconds: a heartbeat's age is computed against the same clock
//! that wrote it, so skew between the nodes' clocks cannot make a live node look dead. Rows of nodes that
//! stopped stay (shown as not alive) until [`prune`] drops those silent for longer than a day.

use serde::{Deserialize, Serialize};

use super::catalog::NOW_MS;
use super::connect::PgPool;
use super::db::PgDb;
use super::error::Result;

/// A plugin a node runs, as its heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodePlugin {
    /// The plugin's name.
    pub name: String,
    /// The SHA-256 of the version the node runs.
    pub sha256: String,
}

/// What a node writes with each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The node's id (`--node-id`).
    pub node_id: String,
    /// When the node started, in milliseconds since the epoch.
    pub started_at: i64,
    /// Where the node serves HTTP (empty while it has not bound its listener yet).
    pub http_addr: String,
    /// The chathooks version the node runs.
    pub version: String,
    /// The plugins it runs, by name.
    pub plugins: Vec<NodePlugin>,
    /// Whether it holds the sequencer role.
    pub is_sequencer: bool,
}

/// A node's row, with its heartbeat's age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// What the node last wrote.
    pub heartbeat: Heartbeat,
    /// When it last wrote, in milliseconds since the epoch (database clock).
    pub heartbeat_at: i64,
    /// How long ago that was, in milliseconds, by the database clock at the time of the read.
    pub age_ms: i64,
    /// The PostgreSQL session that wrote it.
    pub backend_pid: i32,
}

/// How long a node's row stays after its last heartbeat before [`prune`] removes it.
pub const FORGET_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// Writes `beat` as `cluster`'s row for its node.
pub async fn upsert(pool: &PgPool, cluster: &str, beat: &Heartbeat) -> Result<()> {
    let plugins = serde_json::to_string(&beat.plugins).unwrap_or_else(|_| "[]".to_owned());
    let client = pool.get().await?;
    let sql = format!(
        "INSERT INTO nodes (cluster, node_id, started_at, heartbeat_at, http_addr, version, plugins,
                            is_sequencer, backend_pid)
         VALUES ($1, $2, $3, {NOW_MS}, $4, $5, $6, $7, pg_backend_pid())
         ON CONFLICT (cluster, node_id) DO UPDATE
           SET started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at,
               http_addr = EXCLUDED.http_addr, version = EXCLUDED.version, plugins = EXCLUDED.plugins,
               is_sequencer = EXCLUDED.is_sequencer, backend_pid = EXCLUDED.backend_pid"
    );
    client
        .execute(
            &sql,
            &[
                &cluster,
                &beat.node_id,
                &beat.started_at,
                &beat.http_addr,
                &beat.version,
                &plugins,
                &beat.is_sequencer,
            ],
        )
        .await?;
    Ok(())
}

/// Every node row of `cluster`, by id.
pub async fn list(pool: &PgPool, cluster: &str) -> Result<Vec<NodeRow>> {
    let client = pool.get().await?;
    let sql = format!(
        "SELECT node_id, started_at, http_addr, version, plugins, is_sequencer, heartbeat_at,
                {NOW_MS} - heartbeat_at, backend_pid
         FROM nodes WHERE cluster = $1 ORDER BY node_id"
    );
    let rows = client.query(&sql, &[&cluster]).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let plugins: String = row.get(4);
            NodeRow {
                heartbeat: Heartbeat {
                    node_id: row.get(0),
                    started_at: row.get(1),
                    http_addr: row.get(2),
                    version: row.get(3),
                    // Written by [`upsert`]; a row edited by hand into something else shows no plugins.
                    plugins: serde_json::from_str(&plugins).unwrap_or_default(),
                    is_sequencer: row.get(5),
                },
                heartbeat_at: row.get(6),
                age_ms: row.get(7),
                backend_pid: row.get(8),
            }
        })
        .collect())
}

/// Removes `cluster`'s rows of nodes silent for longer than [`FORGET_AFTER_MS`]; returns how many.
pub async fn prune(pool: &PgPool, cluster: &str) -> Result<u64> {
    let client = pool.get().await?;
    let sql = format!("DELETE FROM nodes WHERE cluster = $1 AND heartbeat_at < {NOW_MS} - $2");
    Ok(client.execute(&sql, &[&cluster, &FORGET_AFTER_MS]).await?)
}

impl PgDb {
    /// [`upsert`] on this database.
    pub async fn node_heartbeat(&self, cluster: &str, beat: Heartbeat) -> Result<()> {
        let cluster = cluster.to_owned();
        self.run_async(|pool| async move { upsert(&pool, &cluster, &beat).await })
            .await
    }

    /// [`list`] on this database.
    pub async fn cluster_nodes(&self, cluster: &str) -> Result<Vec<NodeRow>> {
        let cluster = cluster.to_owned();
        self.run_async(|pool| async move { list(&pool, &cluster).await })
            .await
    }

    /// [`prune`] on this database.
    pub async fn prune_nodes(&self, cluster: &str) -> Result<u64> {
        let cluster = cluster.to_owned();
        self.run_async(|pool| async move { prune(&pool, &cluster).await })
            .await
    }
}
