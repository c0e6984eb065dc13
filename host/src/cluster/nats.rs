//! The node's NATS client, and the small senders built on it: the hub's [`NatsRelay`] and the coalescing
//! [`Poke`].
//!
//! Core NATS is at most once: a message published while the connection is down, or dropped for a slow
//! consumer, is gone. Nothing here relies on a message arriving: stored events are read back from the
//! database when a node sees a gap ([`super::feed`]), pokes only save waiting for a poll, and live-only
//! events (typing, custom events, pushes) carry no delivery promise on a single server either.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::{Notify, mpsc, watch};

use super::subjects;
use super::wire::{Disconnect, WireEvent};
use crate::config::ClusterSettings;
use crate::live::{LiveEvent, Relay};

/// Longest wait between two reconnection attempts: a restarted NATS server is found within this.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How long the first connection may take before the start fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection, and a counter of (re)connections the feed watches to fill what it missed meanwhile.
#[derive(Debug, Clone)]
pub struct Nats {
    /// The client; cheap to clone.
    pub client: Client,
    /// Bumped on every (re)connection after the first.
    pub reconnects: watch::Receiver<u64>,
}

/// Connects to the NATS servers of `settings`, failing with their addresses when none answers.
pub async fn connect(settings: &ClusterSettings) -> anyhow::Result<Nats> {
    let (bump, reconnects) = watch::channel(0_u64);
    let bump = Arc::new(bump);
    let options = ConnectOptions::new()
        .name(format!("chathooks {} {}", settings.name, settings.node_id))
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100)
                .saturating_mul(u32::try_from(attempts).unwrap_or(u32::MAX))
                .min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let bump = bump.clone();
            async move {
                match event {
                    Event::Connected => {
                        tracing::info!("NATS connection back");
                        bump.send_modify(|n| *n += 1);
                    }
                    Event::Disconnected => tracing::warn!("NATS connection lost; reconnecting"),
                    other => tracing::debug!("NATS: {other}"),
                }
            }
        });
    let servers = settings.nats.join(",");
    let client = options
        .connect(settings.nats.clone())
        .await
        .with_context(|| {
            format!(
                "cannot connect to NATS at {servers}: check that nats-server is running there \
                 (--nats)"
            )
        })?;
    Ok(Nats { client, reconnects })
}

/// The largest message the server takes (NATS's default, 1 MiB, until the server has said).
pub fn max_payload(client: &Client) -> usize {
    match client.server_info().max_payload {
        0 => 1024 * 1024,
        max => max,
    }
}

/// What the relay's sender task publishes, in the order it was asked.
#[derive(Debug)]
enum Outgoing {
    Live(Arc<LiveEvent>),
    Disconnect(String),
}

/// The hub's [`Relay`] on a cluster node: publishes live-only events and disconnects for every node. Its
/// methods never block or wait (they are called from blocking threads and async code alike): a task
/// publishes in order.
#[derive(Debug)]
pub struct NatsRelay {
    outgoing: mpsc::UnboundedSender<Outgoing>,
}

impl NatsRelay {
    /// A relay publishing with `client` under `cluster`'s subjects; its task runs on the current runtime
    /// until the relay is dropped.
    pub fn spawn(client: Client, cluster: &str) -> Arc<Self> {
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Outgoing>();
        let (live, disconnect) = (subjects::live(cluster), subjects::disconnect(cluster));
        tokio::spawn(async move {
            while let Some(next) = queue.recv().await {
                let max = max_payload(&client);
                let (subject, bytes) = match next {
                    Outgoing::Live(event) => (&live, WireEvent::from_live(&event).encode(max)),
                    Outgoing::Disconnect(user_id) => {
                        (&disconnect, serde_json::to_vec(&Disconnect { user_id }))
                    }
                };
                let bytes = match bytes {
                    Ok(bytes) => bytes,
                    Err(err) => {
                        tracing::error!("cannot encode a message for NATS: {err}");
                        continue;
                    }
                };
                if let Err(err) = client.publish(subject.clone(), bytes.into()).await {
                    tracing::warn!(subject, "publishing to NATS failed: {err}");
                }
            }
        });
        Arc::new(NatsRelay { outgoing })
    }
}

impl Relay for NatsRelay {
    fn live(&self, ev: Arc<LiveEvent>) {
        // Fails only once the task ended (shutdown): nothing left to publish to.
        let _ = self.outgoing.send(Outgoing::Live(ev));
    }

    fn disconnect_user(&self, user_id: &str) {
        let _ = self.outgoing.send(Outgoing::Disconnect(user_id.to_owned()));
    }
}

/// A coalescing poke on one subject: [`Poke::poke`] never waits, and any number of pokes made while one
/// is being published make one more message, not one each.
#[derive(Debug, Clone)]
pub struct Poke {
    wanted: Arc<Notify>,
}

impl Poke {
    /// A poke publishing an empty message on `subject`; its task runs on the current runtime until the
    /// runtime ends.
    pub fn spawn(client: Client, subject: String) -> Self {
        let wanted = Arc::new(Notify::new());
        let waiting = wanted.clone();
        tokio::spawn(async move {
            loop {
                waiting.notified().await;
                if let Err(err) = client.publish(subject.clone(), Default::default()).await {
                    tracing::debug!(subject, "poke not published: {err}");
                }
            }
        });
        Poke { wanted }
    }

    /// Asks for one message to be published soon.
    pub fn poke(&self) {
        self.wanted.notify_one();
    }
}
