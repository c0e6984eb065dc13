//! Live fan-out: every committed event (and every typing change) is published here, and each WebSocket
//! connection subscribes and keeps the events whose audience contains its user.
//!
//! ## Ordering and gaps
//! Chat operations publish from [`Db::write_then`](crate::store::Db::write_then)'s `after_commit`, while
//! the write lock is still held, so stored events reach the channel in event-id order. The channel is
//! bounded ([`LIVE_CHANNEL_CAPACITY`]): a subscriber that falls that far behind gets
//! [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged) and should catch up from the
//! database with `Chat::events_since(last id seen)`, exactly as a reconnecting client does with `?since=`.
//!
//! Typing changes are live only: they are never replayed, and their [`LiveEvent::id`] is 0.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::Millis;
use crate::store::events::StoredEvent;

/// Events buffered for the slowest subscriber before it starts missing them. A WebSocket writer drains
/// its receiver in microseconds; 4096 events cover a burst of several seconds on a busy node, and a
/// subscriber that lags further resumes from the database, so nothing is lost, only re-read.
pub const LIVE_CHANNEL_CAPACITY: usize = 4096;

/// One event as live subscribers (WebSocket clients) receive it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiveEvent {
    /// The event id, what a client passes as `?since=` after a reconnect; 0 for live-only events (typing).
    pub id: i64,
    /// The WebSocket event name, e.g. `message.new` (see [`crate::events::ChatEvent::kind`]).
    pub kind: String,
    /// The conversation it belongs to, if any.
    pub conversation_id: Option<String>,
    /// The users allowed to see it; a subscriber must drop events whose audience lacks its user.
    #[serde(skip)]
    pub audience: Vec<String>,
    /// The event's data (see [`crate::events::ChatEvent`] for each kind's fields).
    pub payload: serde_json::Value,
    /// When it happened.
    pub created_at: Millis,
}

impl LiveEvent {
    /// Whether `user_id` may see this event.
    pub fn is_visible_to(&self, user_id: &str) -> bool {
        self.audience.iter().any(|u| u == user_id)
    }
}

impl From<StoredEvent> for LiveEvent {
    fn from(e: StoredEvent) -> Self {
        LiveEvent {
            id: e.id,
            kind: e.kind,
            conversation_id: e.conversation_id,
            audience: e.audience,
            payload: e.payload,
            created_at: e.created_at,
        }
    }
}

/// The in-process broadcast of [`LiveEvent`]s. Cheap to clone; clones share the channel.
#[derive(Debug, Clone)]
pub struct Hub {
    sender: Arc<broadcast::Sender<Arc<LiveEvent>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no subscribers yet.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(LIVE_CHANNEL_CAPACITY);
        Hub {
            sender: Arc::new(sender),
        }
    }

    /// A receiver of every event published from now on (filter by [`LiveEvent::is_visible_to`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.sender.subscribe()
    }

    /// Publishes `ev` to every current subscriber. Never blocks; with no subscriber it is dropped.
    pub fn publish(&self, ev: LiveEvent) {
        self.publish_shared(Arc::new(ev));
    }

    /// Like [`Hub::publish`] for an event that is already shared.
    pub fn publish_shared(&self, ev: Arc<LiveEvent>) {
        // An error only means nobody is subscribed right now, which is fine: events are in the database.
        let _ = self.sender.send(ev);
    }

    /// How many receivers are subscribed (for tests and the admin API).
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, audience: &[&str]) -> LiveEvent {
        LiveEvent {
            id,
            kind: "message.new".into(),
            conversation_id: Some("c".into()),
            audience: audience.iter().map(|s| (*s).to_owned()).collect(),
            payload: serde_json::json!({}),
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn subscribers_receive_in_publish_order() {
        let hub = Hub::new();
        hub.publish(event(1, &["a"]));
        let mut rx = hub.subscribe();
        hub.clone().publish(event(2, &["a", "b"]));
        hub.publish(event(3, &["c"]));
        let second = rx.recv().await.ok();
        let third = rx.recv().await.ok();
        assert_eq!(second.as_ref().map(|e| e.id), Some(2));
        assert!(second.is_some_and(|e| e.is_visible_to("b") && !e.is_visible_to("c")));
        assert_eq!(third.map(|e| e.id), Some(3));
        assert_eq!(hub.subscriber_count(), 1);
    }
}
