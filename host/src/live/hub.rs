//! The [`Hub`]: a bounded broadcast channel per connected user, fed by audience, plus one channel of
//! every event for in-process observers (tests).
//!
//! On a node of a cluster the hub has a [`Relay`]: what this node publishes goes to every node through it
//! instead of straight to local connections, and comes back (to this node too) through
//! [`Hub::route_shared`], so every node routes the same events in the same order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast::{self, error::RecvError};

use super::{LiveEvent, LiveFrame};

/// Events buffered for the slowest [`Hub::subscribe`] receiver (every event of the node) before it
/// starts missing them: several seconds of a busy node's events.
pub const LIVE_CHANNEL_CAPACITY: usize = 4096;

/// Events buffered per connected user before that user's slowest connection starts missing them. A
/// WebSocket writer drains its channel in microseconds, and a channel only carries its own user's
/// events, so 128 covers a long burst; a connection that lags further (a client that stops reading)
/// resumes from the database, so no stored event is lost, only re-read. Kept small because every
/// connected user's channel holds this many slots (about 40 bytes each) from the start.
pub const USER_CHANNEL_CAPACITY: usize = 128;

/// The in-process fan-out of [`LiveEvent`]s. Cheap to clone; clones share the channels.
#[derive(Debug, Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

/// Where a cluster node's hub sends what is published on it, for every node (this one included) to route.
pub trait Relay: Send + Sync {
    /// A live-only event (id 0: typing, custom plugin events, push notifications), for every node's
    /// connections in its audience.
    fn live(&self, ev: Arc<LiveEvent>);
    /// Closes `user_id`'s connections on every node (a deactivated user, revoked tokens).
    fn disconnect_user(&self, user_id: &str);
}

/// What every clone of a hub and every [`UserEvents`] share.
struct Shared {
    /// A cluster node's way to every node; `None` on a server on its own.
    relay: Option<Arc<dyn Relay>>,
    /// Every event, for [`Hub::subscribe`]; sending to it with no receiver costs nothing.
    all: broadcast::Sender<Arc<LiveEvent>>,
    /// The channel of each user with at least one [`UserEvents`] alive. Publishing sends under this
    /// lock, so concurrent publishers' events reach every channel in the same order.
    users: Mutex<HashMap<String, broadcast::Sender<Arc<LiveFrame>>>>,
}

impl std::fmt::Debug for Shared {
    // Counts, not the map: a session's debug output should not list every connected user; `try_lock`
    // so that printing never waits for (or deadlocks with) a publish.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("relayed", &self.relay.is_some())
            .field("observers", &self.all.receiver_count())
            .field(
                "connected_users",
                &self.users.try_lock().map(|users| users.len()).ok(),
            )
            .finish()
    }
}

impl Shared {
    fn users(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<LiveFrame>>>> {
        // Nothing panics while holding the lock; if something did, the map is still consistent.
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no subscribers yet.
    pub fn new() -> Self {
        Self::with_relay(None)
    }

    /// A cluster node's hub: [`Hub::publish`] and [`Hub::disconnect_user`] go through `relay` to every
    /// node, stored events are not published at all (every node routes them from the sequencer's feed),
    /// and what comes back is routed with [`Hub::route_shared`] and [`Hub::disconnect_local`].
    pub fn relayed(relay: Arc<dyn Relay>) -> Self {
        Self::with_relay(Some(relay))
    }

    fn with_relay(relay: Option<Arc<dyn Relay>>) -> Self {
        let (all, _) = broadcast::channel(LIVE_CHANNEL_CAPACITY);
        Hub {
            shared: Arc::new(Shared {
                relay,
                all,
                users: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A receiver of every event published from now on, whoever its audience (for tests and in-process
    /// observers; filter with [`LiveEvent::is_visible_to`]). WebSocket connections use
    /// [`Hub::subscribe_user`], which is only woken for its user's events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.shared.all.subscribe()
    }

    /// The serialized events whose audience contains `user_id`, published from now on. Every
    /// connection of a user shares one channel; each keeps its own position in it.
    pub fn subscribe_user(&self, user_id: &str) -> UserEvents {
        let mut users = self.shared.users();
        let receiver = match users.get(user_id) {
            Some(channel) => channel.subscribe(),
            None => {
                let (channel, receiver) = broadcast::channel(USER_CHANNEL_CAPACITY);
                users.insert(user_id.to_owned(), channel);
                receiver
            }
        };
        UserEvents {
            user_id: user_id.to_owned(),
            receiver: Some(receiver),
            shared: self.shared.clone(),
        }
    }

    /// Publishes `ev` to its audience's connections (and every [`Hub::subscribe`] receiver). Never
    /// blocks on a subscriber; with nobody connected it is dropped (stored events are in the database).
    pub fn publish(&self, ev: LiveEvent) {
        self.publish_shared(Arc::new(ev));
    }

    /// Like [`Hub::publish`] for an event that is already shared. Serializes the event at most once,
    /// and only if someone in its audience is connected. On a cluster node ([`Hub::relayed`]) a live-only
    /// event (id 0) goes to the relay, and a stored one is left to the sequencer's feed.
    pub fn publish_shared(&self, ev: Arc<LiveEvent>) {
        match &self.shared.relay {
            Some(relay) if ev.id == 0 => relay.live(ev),
            Some(_) => {}
            None => self.route_shared(ev),
        }
    }

    /// Hands `ev` to this node's connections in its audience (and every [`Hub::subscribe`] receiver),
    /// whatever the relay: what a cluster node's feed calls for each event it receives.
    pub fn route_shared(&self, ev: Arc<LiveEvent>) {
        // An error only means nobody observes every event, the normal case.
        let _ = self.shared.all.send(ev.clone());
        let users = self.shared.users();
        if users.is_empty() {
            return;
        }
        let mut frame: Option<Arc<LiveFrame>> = None;
        // An audience may name a user twice (a push to the same user id twice); each gets it once.
        let mut sent: HashSet<&str> = HashSet::new();
        for user in &ev.audience {
            let Some(channel) = users.get(user.as_str()) else {
                continue;
            };
            if !sent.insert(user.as_str()) {
                continue;
            }
            if frame.is_none() {
                match ev.to_frame() {
                    Ok(encoded) => frame = Some(Arc::new(encoded)),
                    Err(err) => {
                        tracing::error!(id = ev.id, kind = %ev.kind, "cannot encode live event: {err}");
                        return;
                    }
                }
            }
            let Some(frame) = &frame else { return };
            // An error means the user's last connection is closing right now; its drop removes the entry.
            let _ = channel.send(frame.clone());
        }
    }

    /// Ends `user_id`'s channel: each of their connections receives what was already queued, then
    /// `Closed`, and closes (for a deactivated user or a revoked token). Connections opened afterwards get
    /// a new channel.
    pub fn disconnect_user(&self, user_id: &str) {
        match &self.shared.relay {
            Some(relay) => relay.disconnect_user(user_id),
            None => self.disconnect_local(user_id),
        }
    }

    /// Ends `user_id`'s channel on this node only (what [`Hub::disconnect_user`] does on a server on its
    /// own; a cluster node's feed calls it for every node's disconnects).
    pub fn disconnect_local(&self, user_id: &str) {
        self.shared.users().remove(user_id);
    }

    /// How many receivers are subscribed: connections (per user) and observers of every event (for tests
    /// and the admin API).
    pub fn subscriber_count(&self) -> usize {
        let users = self.shared.users();
        let connections: usize = users.values().map(broadcast::Sender::receiver_count).sum();
        connections + self.shared.all.receiver_count()
    }

    /// How many users have a channel (at least one live connection).
    pub fn connected_users(&self) -> usize {
        self.shared.users().len()
    }
}

/// One connection's subscription to its user's events ([`Hub::subscribe_user`]). Dropping the last one
/// of a user removes the user's channel.
#[derive(Debug)]
pub struct UserEvents {
    /// Whose channel this is.
    user_id: String,
    /// Always `Some` until dropped: taken in `drop` so that it is gone before the channel is checked.
    receiver: Option<broadcast::Receiver<Arc<LiveFrame>>>,
    /// The hub's channels, to unregister on drop.
    shared: Arc<Shared>,
}

impl UserEvents {
    /// The next event for this user. [`RecvError::Lagged`] means this connection fell more than
    /// [`USER_CHANNEL_CAPACITY`] events behind and missed some: catch up from the database. Cancel safe.
    pub async fn recv(&mut self) -> Result<Arc<LiveFrame>, RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(RecvError::Closed),
        }
    }

    /// The user whose events these are.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The next event if one is waiting (for tests).
    #[cfg(test)]
    pub(super) fn try_recv(&mut self) -> Result<Arc<LiveFrame>, broadcast::error::TryRecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.try_recv(),
            None => Err(broadcast::error::TryRecvError::Closed),
        }
    }
}

impl Drop for UserEvents {
    fn drop(&mut self) {
        let mut users = self.shared.users();
        // Dropped under the lock, so no subscription of the same user can join in between.
        drop(self.receiver.take());
        if users
            .get(&self.user_id)
            .is_some_and(|channel| channel.receiver_count() == 0)
        {
            users.remove(&self.user_id);
        }
    }
}
