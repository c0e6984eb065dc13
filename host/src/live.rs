//! Live fan-out: every committed event (and every typing change, custom plugin event and push
//! notification) is published here, and each WebSocket connection receives the events whose audience
//! contains its user.
//!
//! ## Routing
//! The [`Hub`] keeps one bounded channel per connected user (shared by that user's connections) and
//! sends each event only to the channels of the users in its [`LiveEvent::audience`]: a socket is never
//! woken for an event it may not see, and publishing costs one lookup per audience member rather than one
//! visibility check per connection. Each event is serialized once, when it is published, into a
//! [`LiveFrame`] whose bytes every socket sends as they are.
//!
//! Because routing reads the audience recorded with the event, membership changes take effect exactly at
//! the event that makes them: a member added receives the events after it (and `member.added` itself), a
//! member removed receives `member.removed` and nothing after it.
//!
//! ## Ordering and gaps
//! Chat operations publish from [`Db::write_then`](crate::store::Db::write_then)'s `after_commit`, while
//! the write lock is still held, and the hub fans each event out under one lock, so stored events reach
//! every channel in event-id order. Each channel is bounded ([`USER_CHANNEL_CAPACITY`]): a subscriber that
//! falls that far behind gets [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged) and
//! should catch up from the database with `Chat::events_since(last id seen)`, exactly as a reconnecting
//! client does with `?since=`.
//!
//! Typing changes, custom plugin events and push notifications are live only: they are never replayed,
//! and their [`LiveEvent::id`] is 0.

mod hub;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;

pub use hub::{Hub, LIVE_CHANNEL_CAPACITY, Relay, USER_CHANNEL_CAPACITY, UserEvents};

use crate::model::Millis;
use crate::store::StoredEvent;

/// One event as live subscribers (WebSocket clients) receive it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiveEvent {
    /// The event id, what a client passes as `?since=` after a reconnect; 0 for live-only events (typing).
    pub id: i64,
    /// The WebSocket event name, e.g. `message.new` (see [`crate::events::ChatEvent::kind`]).
    pub kind: String,
    /// The conversation it belongs to, if any.
    pub conversation_id: Option<String>,
    /// The users allowed to see it: the hub routes the event to these users' connections only.
    #[serde(skip)]
    pub audience: Vec<String>,
    /// The event's data (see [`crate::events::ChatEvent`] for each kind's fields).
    pub payload: serde_json::Value,
    /// When it happened.
    pub created_at: Millis,
}

impl LiveEvent {
    /// Whether `user_id` may see this event (a linear scan: for tests and one-off checks; the hub routes
    /// by audience instead of asking this per connection).
    pub fn is_visible_to(&self, user_id: &str) -> bool {
        self.audience.iter().any(|u| u == user_id)
    }

    /// The event as the JSON text a WebSocket client receives.
    pub fn to_frame(&self) -> Result<LiveFrame, serde_json::Error> {
        Ok(LiveFrame {
            id: self.id,
            text: serde_json::to_string(self)?.into(),
        })
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

/// One event serialized for the wire, once, and shared by every connection that sends it: cloning the
/// text clones a reference count, not the bytes (an event of a 1,000-member conversation carries its
/// participant list, tens of KiB).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFrame {
    /// The event id (0 for live-only events), so a connection can skip what it already replayed.
    pub id: i64,
    /// The JSON text frame: [`LiveEvent`] serialized (without its audience).
    pub text: Utf8Bytes,
}

#[cfg(test)]
mod tests;
