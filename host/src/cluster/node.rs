//! Starting and stopping a node's cluster parts: the NATS connection comes first (the hub is built on it),
//! then, once the chat service exists, the feed and the sequencer role.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::feed::Feed;
use super::nats::{self, Nats, NatsRelay, Poke};
use super::sequencer::{Sequencer, SequencerDeps};
use super::subjects;
use crate::chat::StoredSignal;
use crate::config::ClusterSettings;
use crate::dispatch::DispatchHandle;
use crate::live::Hub;
use crate::store::Db;

/// A node's connection to its cluster, before the parts that need the chat service start.
#[derive(Debug, Clone)]
pub struct Link {
    /// The settings.
    pub settings: ClusterSettings,
    /// The NATS connection.
    pub nats: Nats,
    /// Set while this node is the sequencer.
    pub holding: Arc<AtomicBool>,
}

impl Link {
    /// Connects to NATS (failing with the servers' addresses when none answers).
    pub async fn connect(settings: &ClusterSettings) -> anyhow::Result<Link> {
        Ok(Link {
            settings: settings.clone(),
            nats: nats::connect(settings).await?,
            holding: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The node's hub: what it publishes goes to every node.
    pub fn hub(&self) -> Hub {
        Hub::relayed(NatsRelay::spawn(
            self.nats.client.clone(),
            &self.settings.name,
        ))
    }

    /// What the chat service calls after a commit that stored events: a poke to the sequencer.
    pub fn stored_signal(&self) -> StoredSignal {
        let poke = Poke::spawn(
            self.nats.client.clone(),
            subjects::sequence(&self.settings.name),
        );
        StoredSignal(Arc::new(move || poke.poke()))
    }

    /// What a dispatcher that fanned events out calls: a poke that wakes every node's dispatcher, so the
    /// deliveries are started by whichever node has room first.
    pub fn deliveries_poke(&self) -> Arc<dyn Fn() + Send + Sync> {
        let poke = Poke::spawn(
            self.nats.client.clone(),
            subjects::deliveries(&self.settings.name),
        );
        Arc::new(move || poke.poke())
    }

    /// Starts the feed into `hub` and the competition for the sequencer role.
    pub async fn start(
        &self,
        db: Arc<Db>,
        hub: Hub,
        dispatch: DispatchHandle,
    ) -> anyhow::Result<ClusterNode> {
        let pool = db
            .as_postgres()
            .context("a cluster node's database must be PostgreSQL")?
            .pool()
            .clone();
        let feed = Feed::start(db, hub, &self.nats, &self.settings.name)
            .await
            .context("subscribing to the cluster's events on NATS")?;
        let sequencer = Sequencer::start(SequencerDeps {
            pool,
            nats: self.nats.clone(),
            cluster: self.settings.name.clone(),
            node_id: self.settings.node_id.clone(),
            dispatch: dispatch.clone(),
            holding: self.holding.clone(),
        })
        .await
        .context("subscribing to the sequencer's pokes on NATS")?;
        let mut pokes = self
            .nats
            .client
            .subscribe(subjects::deliveries(&self.settings.name))
            .await
            .context("subscribing to the dispatchers' pokes on NATS")?;
        let wake = dispatch.clone();
        let deliveries = tokio::spawn(async move {
            while pokes.next().await.is_some() {
                wake.wake();
            }
        });
        tracing::info!(
            cluster = self.settings.name,
            node = self.settings.node_id,
            "joined the cluster"
        );
        Ok(ClusterNode {
            feed,
            sequencer,
            deliveries,
        })
    }
}

/// A node's running cluster parts.
#[derive(Debug)]
pub struct ClusterNode {
    feed: Feed,
    sequencer: Sequencer,
    /// Wakes this node's dispatcher on every dispatcher's poke.
    deliveries: JoinHandle<()>,
}

impl ClusterNode {
    /// Gives up the sequencer role and stops the feed.
    pub async fn stop(self) {
        self.deliveries.abort();
        self.sequencer.stop().await;
        self.feed.stop().await;
    }
}
