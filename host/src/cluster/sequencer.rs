//! The sequencer role on a node (SCALE-OUT.md 2.4): every node runs [`Sequencer`], one at a time holds the
//! role ([`SequencerSession`] says how it is elected and taken from a hung holder), and the holder turns
//! event drafts into events in batches and publishes each batch, in id order, for every node's feed.
//!
//! The holder runs a batch when a writer pokes it (NATS `seq`, after each commit that stored events), and
//! every [`POLL`] anyway, so a lost poke costs latency, never an event. After a batch it wakes this node's
//! dispatcher (the new events are in the outbox) and once a second it publishes the newest id
//! ([`Head`]), so that a node that missed the last publish notices on an idle cluster too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::nats::Nats;
use super::subjects;
use super::wire::{Head, WireEvent};
use crate::dispatch::DispatchHandle;
use crate::stoppable::Stoppable;
use crate::store::postgres::PgPool;
use crate::store::postgres::sequencer::SequencerSession;
use crate::store::{Result, StoredEvent};

/// Drafts per batch: one transaction and one WAL flush for up to this many events.
pub const BATCH: u32 = 1000;

/// How often the holder looks for drafts without being poked.
pub const POLL: Duration = Duration::from_millis(50);

/// How often the holder proves it is alive (heartbeat row) and publishes the newest id; how often the
/// other nodes try to take the role.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A holder whose heartbeat is older than this is taken to be hung, and its session is ended by a
/// challenger.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// What the role loop needs.
#[derive(Debug, Clone)]
pub struct SequencerDeps {
    /// The database's pool (for its setting: the role has a session of its own).
    pub pool: PgPool,
    /// The connection to NATS.
    pub nats: Nats,
    /// The cluster's name.
    pub cluster: String,
    /// This node's id.
    pub node_id: String,
    /// This node's dispatcher, woken after each batch.
    pub dispatch: DispatchHandle,
    /// Set while this node holds the role (the heartbeat and the admin view report it).
    pub holding: Arc<AtomicBool>,
}

/// The running role loop; stops when [`Sequencer::stop`] is awaited or it is dropped.
#[derive(Debug)]
pub struct Sequencer(Stoppable);

impl Sequencer {
    /// Starts competing for the role.
    pub async fn start(deps: SequencerDeps) -> anyhow::Result<Sequencer> {
        let poked = Arc::new(Notify::new());
        let mut pokes = deps
            .nats
            .client
            .subscribe(subjects::sequence(&deps.cluster))
            .await?;
        let task = Stoppable::spawn(move |mut stopped| async move {
            let waker = poked.clone();
            let listener = tokio::spawn(async move {
                while pokes.next().await.is_some() {
                    waker.notify_one();
                }
            });
            tokio::select! {
                _ = &mut stopped => {}
                () = compete(&deps, &poked) => {}
            }
            listener.abort();
            deps.holding.store(false, Ordering::Release);
        });
        Ok(Sequencer(task))
    }

    /// Gives the role up (its session ends) and waits for the loop to stop.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

/// Forever: open a session, wait for the role, hold it until the session fails, start again.
async fn compete(deps: &SequencerDeps, poked: &Notify) {
    loop {
        match SequencerSession::open(&deps.pool, &deps.cluster, &deps.node_id).await {
            Ok(session) => {
                if let Err(err) = contend(deps, session, poked).await {
                    tracing::warn!("sequencer session ended: {err}");
                }
                deps.holding.store(false, Ordering::Release);
            }
            Err(err) => tracing::debug!("sequencer session not open yet: {err}"),
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Waits for the role on `session`, then holds it; returns when the session fails.
async fn contend(
    deps: &SequencerDeps,
    mut session: SequencerSession,
    poked: &Notify,
) -> Result<()> {
    let stale_ms = i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
    while !session.try_lead().await? {
        if let Some(node) = session.challenge(stale_ms).await? {
            tracing::warn!(
                node,
                "the sequencer's heartbeat is older than {STALE_AFTER:?}: its session was ended to take \
                 over the role"
            );
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
    tracing::info!(node = deps.node_id, "this node is the cluster's sequencer");
    deps.holding.store(true, Ordering::Release);
    session.heartbeat().await?;
    let mut head = session.latest().await?;
    let mut beat = tokio::time::interval(HEARTBEAT);
    loop {
        let batch = session.sequence(BATCH).await?;
        if let Some(newest) = batch.last() {
            head = newest.id;
            let full = batch.len() >= usize::try_from(BATCH).unwrap_or(usize::MAX);
            publish(deps, batch).await;
            deps.dispatch.new_events();
            if full {
                continue;
            }
        }
        tokio::select! {
            () = poked.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = beat.tick() => {
                session.heartbeat().await?;
                publish_head(deps, head).await;
            }
        }
    }
}

/// Publishes a committed batch in id order.
async fn publish(deps: &SequencerDeps, batch: Vec<StoredEvent>) {
    let client = &deps.nats.client;
    let subject = subjects::events(&deps.cluster);
    let max = super::nats::max_payload(client);
    for event in batch {
        let id = event.id;
        let bytes = match WireEvent::from_stored(event).encode(max) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::error!(id, "cannot encode event {id} for NATS: {err}");
                continue;
            }
        };
        // A lost publish is filled from the database by every node that notices the gap.
        if let Err(err) = client.publish(subject.clone(), bytes.into()).await {
            tracing::warn!(id, "publishing event {id} to NATS failed: {err}");
        }
    }
}

/// Publishes the newest id.
async fn publish_head(deps: &SequencerDeps, id: i64) {
    let bytes = match serde_json::to_vec(&Head { id }) {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::error!("cannot encode the head: {err}");
            return;
        }
    };
    if let Err(err) = deps
        .nats
        .client
        .publish(subjects::head(&deps.cluster), bytes.into())
        .await
    {
        tracing::debug!("publishing the head to NATS failed: {err}");
    }
}
