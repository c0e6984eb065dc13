//! Who this node is in its cluster, and its heartbeat (SCALE-OUT.md 2.9).
//!
//! [`NodeState`] is what the node's parts share about it: its id and cluster, where it serves HTTP, and
//! whether it holds the sequencer role (set by the sequencer, read by the heartbeat). Every
//! [`HEARTBEAT_EVERY`] the [`Heartbeat`] task upserts the node's row in the `nodes` table with that and
//! the plugins its registry runs (name and SHA-256), which is how the admin view shows whether a plugin
//! rollout has reached every node ("3/3 nodes on abc123"). A heartbeat that fails (the database is away)
//! is logged once and tried again at the next beat; the node keeps serving meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::stoppable::Stoppable;
use anyhow::Context;

use crate::config::ClusterSettings;
use crate::plugins::registry::Registry;
use crate::store::Db;
use crate::store::postgres::nodes::{Heartbeat as Beat, NodePlugin};

/// How often a node writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A node whose last heartbeat is older than this is shown as not alive: five missed beats, so a node
/// busy for a moment (a long compile, a slow database) is not reported dead.
pub const ALIVE_WITHIN: Duration = Duration::from_secs(5);

/// What this node's parts share about it. Share it as `Arc<NodeState>`.
#[derive(Debug)]
pub struct NodeState {
    /// The cluster's name.
    pub cluster: String,
    /// This node's id.
    pub node_id: String,
    /// When this node started, in milliseconds since the epoch (its own clock).
    pub started_at_ms: i64,
    /// Set by the sequencer while this node holds the role; reported by the heartbeat. Shared with the
    /// sequencer's own flag ([`NodeState::sharing`]).
    pub is_sequencer: Arc<AtomicBool>,
    /// Where this node serves HTTP, once its listener is bound ([`NodeState::set_http_addr`]).
    http_addr: RwLock<String>,
}

impl NodeState {
    /// The state of a node with `settings`, started now, with a sequencer flag of its own.
    pub fn new(settings: &ClusterSettings) -> Arc<NodeState> {
        NodeState::sharing(settings, Arc::new(AtomicBool::new(false)))
    }

    /// The state of a node with `settings`, started now, whose sequencer flag is `is_sequencer` (the
    /// flag the sequencer sets while it holds the role).
    pub fn sharing(settings: &ClusterSettings, is_sequencer: Arc<AtomicBool>) -> Arc<NodeState> {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Arc::new(NodeState {
            cluster: settings.name.clone(),
            node_id: settings.node_id.clone(),
            started_at_ms,
            is_sequencer,
            http_addr: RwLock::new(String::new()),
        })
    }

    /// Records where this node serves HTTP (`host:port`), for the other nodes and the admin view.
    pub fn set_http_addr(&self, addr: impl ToString) {
        *self
            .http_addr
            .write()
            .unwrap_or_else(PoisonError::into_inner) = addr.to_string();
    }

    /// Where this node serves HTTP; empty until [`NodeState::set_http_addr`].
    pub fn http_addr(&self) -> String {
        self.http_addr
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether this node holds the sequencer role now.
    pub fn is_sequencer(&self) -> bool {
        self.is_sequencer.load(Ordering::Relaxed)
    }

    /// This node's heartbeat now: its state and the plugins `registry` runs.
    pub fn heartbeat(&self, registry: &Registry) -> Beat {
        let plugins = registry
            .running()
            .into_iter()
            .map(|p| NodePlugin {
                name: p.name().to_owned(),
                sha256: p.plugin.hash().to_owned(),
            })
            .collect();
        Beat {
            node_id: self.node_id.clone(),
            started_at: self.started_at_ms,
            http_addr: self.http_addr(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            plugins,
            is_sequencer: self.is_sequencer(),
        }
    }
}

/// The running heartbeat task. Stop it with [`Heartbeat::stop`]; dropping it stops it too.
#[derive(Debug)]
pub struct Heartbeat(Stoppable);

impl Heartbeat {
    /// Writes `node`'s heartbeat into `db` (which must be PostgreSQL) every `every`, starting now.
    pub fn start(
        db: Arc<Db>,
        registry: Arc<Registry>,
        node: Arc<NodeState>,
        every: Duration,
    ) -> anyhow::Result<Heartbeat> {
        db.as_postgres()
            .context("a cluster node's database must be PostgreSQL")?;
        let task = Stoppable::spawn(move |mut stopped| async move {
            let Some(pg) = db.as_postgres() else {
                return;
            };
            match pg.prune_nodes(&node.cluster).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("forgot {n} nodes silent for more than a day"),
                Err(e) => tracing::warn!("cannot forget long-silent nodes: {e}"),
            }
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                let beat = node.heartbeat(&registry);
                match pg.node_heartbeat(&node.cluster, beat).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("the node's heartbeat is written again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(
                            "cannot write the node's heartbeat (retrying every {every:?}): {e}"
                        );
                    }
                    Err(_) => {}
                }
            }
        });
        Ok(Heartbeat(task))
    }

    /// Stops the heartbeat (the row stays; it ages into "not alive").
    pub async fn stop(self) {
        self.0.stop().await;
    }
}
