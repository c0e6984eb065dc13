//! Starting and stopping a node's plugin and membership parts: the catalog mirror ([`super::catalog`]),
//! the publisher of its plugins folder ([`super::publisher`]) and its heartbeat ([`super::nodes`]).
//!
//! The server calls [`start`] once its registry (loading from the mirror folder) and dispatcher exist, and
//! [`Member::stop`] when it shuts down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::catalog::{self, CatalogSync, Mirror};
use super::nodes::{HEARTBEAT_EVERY, Heartbeat, NodeState};
use super::publisher::Publisher;
use crate::plugins::registry::Registry;
use crate::plugins::watcher::{OnChange, WatchConfig, Watcher};
use crate::store::Db;

/// What [`start`] needs.
#[derive(Clone)]
pub struct MemberDeps {
    /// The shared database (PostgreSQL).
    pub db: Arc<Db>,
    /// The node's registry, loading from `mirror_dir`.
    pub registry: Arc<Registry>,
    /// Who this node is.
    pub node: Arc<NodeState>,
    /// The node's NATS connection.
    pub nats: async_nats::Client,
    /// The folder the catalog is mirrored into (`<data dir>/cluster-plugins`).
    pub mirror_dir: PathBuf,
    /// A publisher's plugins folder (`--plugins-dir`), pushed to the catalog; `None`: not a publisher.
    pub publish_dir: Option<PathBuf>,
    /// Whether to watch `publish_dir` for changes (off with `--no-watch`: pushed at start only).
    pub watch: bool,
    /// How often the catalog is looked at without a poke ([`catalog::POLL_EVERY`]).
    pub poll: Duration,
    /// Called after the registry changed (the server wakes its dispatcher).
    pub on_change: OnChange,
}

impl std::fmt::Debug for MemberDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberDeps")
            .field("node", &self.node)
            .field("mirror_dir", &self.mirror_dir)
            .field("publish_dir", &self.publish_dir)
            .finish_non_exhaustive()
    }
}

/// A node's running plugin and membership parts.
#[derive(Debug)]
pub struct Member {
    sync: CatalogSync,
    publisher: Option<Watcher>,
    heartbeat: Heartbeat,
}

/// Pushes the publisher's folder (if any) to the catalog, mirrors the catalog into the registry once,
/// then starts the catalog loop, the publisher's watcher and the heartbeat. Fails when the database is
/// not PostgreSQL or NATS refuses the subscription; a failed first look is only logged (the loop
/// retries).
pub async fn start(deps: MemberDeps) -> anyhow::Result<Member> {
    let cluster = deps.node.cluster.clone();
    std::fs::create_dir_all(&deps.mirror_dir).with_context(|| {
        format!(
            "creating the cluster plugins folder {}",
            deps.mirror_dir.display()
        )
    })?;
    let publisher = deps.publish_dir.as_ref().map(|dir| {
        Arc::new(Publisher::new(
            deps.db.clone(),
            &cluster,
            deps.registry.runtime().clone(),
            dir,
        ))
    });
    if let Some(publisher) = &publisher {
        let pushing = publisher.clone();
        let pushed = tokio::task::spawn_blocking(move || pushing.push_all()).await?;
        match pushed {
            Ok(0) => {}
            Ok(_) => catalog::poke(&deps.nats, &cluster).await,
            Err(e) => tracing::error!("cannot read the plugins folder to publish it: {e}"),
        }
    }
    let mut mirror = Mirror::new(
        deps.db.clone(),
        deps.registry.clone(),
        &cluster,
        &deps.mirror_dir,
    );
    match mirror.sync().await {
        Ok(report) if !report.changes.is_empty() => (deps.on_change)(),
        Ok(_) => {}
        Err(e) => tracing::warn!("{e}; trying again every {:?}", deps.poll),
    }
    let sync = catalog::spawn(mirror, deps.nats.clone(), deps.poll, deps.on_change.clone()).await?;
    let publisher = match (publisher, &deps.publish_dir) {
        (Some(publisher), Some(dir)) if deps.watch => {
            let (nats, name) = (deps.nats.clone(), cluster.clone());
            let on_push: OnChange = Arc::new(move || {
                let (nats, name) = (nats.clone(), name.clone());
                tokio::spawn(async move { catalog::poke(&nats, &name).await });
            });
            match Watcher::spawn_for(publisher, dir.clone(), WatchConfig::default(), on_push) {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    tracing::error!(
                        "the plugins folder is not watched, push changes with `chathooks plugins push`: {e:#}"
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let heartbeat = Heartbeat::start(deps.db, deps.registry, deps.node, HEARTBEAT_EVERY)?;
    Ok(Member {
        sync,
        publisher,
        heartbeat,
    })
}

impl Member {
    /// Looks at the catalog now.
    pub fn wake(&self) {
        self.sync.wake();
    }

    /// Stops the publisher's watcher, the catalog loop and the heartbeat.
    pub async fn stop(self) {
        if let Some(watcher) = self.publisher {
            watcher.stop().await;
        }
        self.sync.stop().await;
        self.heartbeat.stop().await;
    }
}
