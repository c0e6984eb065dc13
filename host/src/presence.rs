//! Presence: a user is online while they hold at least one WebSocket connection, and goes offline a
//! grace period ([`GRACE`] unless configured, `presence_grace_ms`) after their last one closes (a reconnect within it changes nothing, so a flaky network or a
//! page reload does not flicker).
//!
//! ## Shape
//! Each node counts its own connections in memory, in one task ([`Presence::start`]) that receives
//! connects, disconnects and expired grace periods in order and owns the counts, so no lock is shared
//! with the sockets and the store sees each user's changes in the order they happened. Only a node's
//! first connection of a user and its last one (once the grace period ran out) touch the store: a row per
//! (user, node) in `presence` ([`crate::store::Tx::set_presence`]). The chat layer
//! ([`Chat::record_presence_blocking`]) turns a flip of the user's overall state (their first connection
//! on any node, or their last one anywhere) into a live `user.presence.changed` event for the user and
//! everyone who shares a conversation with them (relayed to every node of a cluster, as typing is), and
//! one durable `after-user-presence-changed` call when a plugin implements it.
//!
//! A node starting drops the rows its previous run left (its sockets are gone). On a node of a cluster
//! the task also sweeps, every [`SWEEP_EVERY`]: it drops the rows of nodes that died and have not come
//! back (their heartbeat older than [`ALIVE_WITHIN`], so their users go offline within seconds rather
//! than when the node restarts, if ever), and puts back its own rows if another node swept them while
//! the database could not hear this node's heartbeat.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::chat::Chat;
use crate::clock::Clock;
pub use crate::cluster::nodes::ALIVE_WITHIN;

/// The node name a server on its own records its connections under (a cluster node uses its node id),
/// on either backend.
pub const LOCAL_NODE: &str = "";

/// How long a user stays online after their last connection closed, by default: long enough for a
/// reload or a network hiccup to reconnect (a few seconds), short enough that contacts see them leave
/// promptly.
pub const GRACE: Duration = Duration::from_secs(5);

/// The largest conversation through which members hear of each other's presence. Beyond it a
/// conversation is a channel rather than a circle of contacts, and announcing every member's connect to
/// every other member is quadratic: 1,000 members connecting in the morning would make a million frames.
/// Members of larger conversations read each other's presence with `GET /v1/presence` (as Slack clients
/// ask for the users they show).
pub const MAX_PRESENCE_CONVERSATION: i64 = 100;

/// How often a node of a cluster sweeps the presence rows of dead nodes and checks its own.
pub const SWEEP_EVERY: Duration = Duration::from_millis(2500);

/// What the presence task hears.
#[derive(Debug)]
enum Change {
    /// A connection of the user opened.
    Connected(String),
    /// A connection of the user closed.
    Disconnected(String),
    /// The grace period that began with disconnect number `generation` of the user ran out.
    Expired { user_id: String, generation: u64 },
    /// Time to sweep dead nodes' rows and check this node's own (a node of a cluster).
    Sweep,
}

/// One user's connections on this node.
#[derive(Debug, Default)]
struct Count {
    /// Open connections.
    open: usize,
    /// Bumped on every connect and every last disconnect, so an expired grace period that is not the
    /// latest one is ignored.
    generation: u64,
    /// Whether the store has this node's row for the user.
    recorded: bool,
}

/// This node's presence: hand it every WebSocket connection ([`Presence::connected`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Presence {
    changes: mpsc::UnboundedSender<Change>,
}

/// Held for as long as a connection is open; dropping it reports the disconnect.
#[derive(Debug)]
pub struct Connection {
    user_id: String,
    changes: mpsc::UnboundedSender<Change>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The task is gone only at shutdown, when presence no longer matters.
        let _ = self
            .changes
            .send(Change::Disconnected(std::mem::take(&mut self.user_id)));
    }
}

impl Presence {
    /// Starts the presence task of node `node` ([`LOCAL_NODE`] for a
    /// server on its own) on `chat`, timing grace periods of `grace` on `clock`. It first drops the rows
    /// a previous run of the node left; a node of a cluster then sweeps every [`SWEEP_EVERY`] of `clock`.
    /// It ends when every handle is dropped.
    pub fn start(chat: Chat, node: String, clock: Arc<dyn Clock>, grace: Duration) -> Presence {
        let (tx, rx) = mpsc::unbounded_channel();
        let presence = Presence {
            changes: tx.clone(),
        };
        if node != LOCAL_NODE {
            tokio::spawn(sweep_ticks(clock.clone(), tx.downgrade()));
        }
        let timing = Grace { clock, grace };
        tokio::spawn(run(chat, node, timing, tx.downgrade(), rx));
        presence
    }

    /// Reports a new connection of `user_id`; the returned guard reports its end.
    pub fn connected(&self, user_id: &str) -> Connection {
        let _ = self.changes.send(Change::Connected(user_id.to_owned()));
        Connection {
            user_id: user_id.to_owned(),
            changes: self.changes.clone(),
        }
    }
}

/// Asks for a sweep every [`SWEEP_EVERY`] until the task is gone.
async fn sweep_ticks(clock: Arc<dyn Clock>, task: mpsc::WeakUnboundedSender<Change>) {
    loop {
        clock.sleep(SWEEP_EVERY).await;
        let Some(changes) = task.upgrade() else {
            return;
        };
        if changes.send(Change::Sweep).is_err() {
            return;
        }
    }
}

/// Drops the rows of dead nodes other than `node`, then makes `node`'s rows those of `connected`.
async fn sweep(chat: &Chat, node: &str, connected: BTreeSet<String>) {
    let (chat, node) = (chat.clone(), node.to_owned());
    let swept = tokio::task::spawn_blocking(move || {
        let cleared = chat.clear_silent_nodes_blocking(&node, ALIVE_WITHIN)?;
        chat.reconcile_node_presence_blocking(&node, &connected)?;
        Ok::<_, crate::chat::ChatError>(cleared)
    })
    .await;
    match swept {
        Ok(Ok(cleared)) if cleared.is_empty() => {}
        Ok(Ok(cleared)) => {
            tracing::info!(nodes = ?cleared, "cleared the presence of nodes that stopped heartbeating")
        }
        Ok(Err(error)) => tracing::warn!(%error, "presence sweep failed; retrying at the next"),
        Err(error) => tracing::warn!(%error, "presence sweep failed"),
    }
}

/// How grace periods are timed.
struct Grace {
    clock: Arc<dyn Clock>,
    grace: Duration,
}

async fn run(
    chat: Chat,
    node: String,
    timing: Grace,
    myself: mpsc::WeakUnboundedSender<Change>,
    mut changes: mpsc::UnboundedReceiver<Change>,
) {
    let cleared = {
        let (chat, node) = (chat.clone(), node.clone());
        tokio::task::spawn_blocking(move || chat.clear_node_presence_blocking(&node)).await
    };
    if let Ok(Err(error)) = cleared {
        tracing::warn!(%error, "could not clear this node's presence rows from its last run");
    }
    let mut counts: HashMap<String, Count> = HashMap::new();
    while let Some(change) = changes.recv().await {
        let (user_id, online) = match change {
            Change::Connected(user_id) => {
                let count = counts.entry(user_id.clone()).or_default();
                count.open += 1;
                count.generation += 1;
                if count.recorded {
                    continue;
                }
                count.recorded = true;
                (user_id, true)
            }
            Change::Disconnected(user_id) => {
                let Some(count) = counts.get_mut(&user_id) else {
                    continue;
                };
                count.open = count.open.saturating_sub(1);
                if count.open == 0 {
                    count.generation += 1;
                    let (generation, sleep, myself) = (
                        count.generation,
                        timing.clock.sleep(timing.grace),
                        myself.clone(),
                    );
                    tokio::spawn(async move {
                        sleep.await;
                        if let Some(changes) = myself.upgrade() {
                            let _ = changes.send(Change::Expired {
                                user_id,
                                generation,
                            });
                        }
                    });
                }
                continue;
            }
            Change::Expired {
                user_id,
                generation,
            } => {
                match counts.get(&user_id) {
                    Some(c) if c.open == 0 && c.generation == generation => {}
                    _ => continue,
                }
                counts.remove(&user_id);
                (user_id, false)
            }
            Change::Sweep => {
                let connected = counts
                    .iter()
                    .filter(|(_, count)| count.recorded)
                    .map(|(user, _)| user.clone())
                    .collect();
                sweep(&chat, &node, connected).await;
                continue;
            }
        };
        let (chat, node, user) = (chat.clone(), node.clone(), user_id.clone());
        let recorded = tokio::task::spawn_blocking(move || {
            chat.record_presence_blocking(&user, &node, online)
        })
        .await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(user = user_id, online, %error, "presence not recorded")
            }
            Err(error) => tracing::warn!(user = user_id, online, %error, "presence task failed"),
        }
    }
}
