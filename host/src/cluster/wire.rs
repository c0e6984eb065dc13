//! What crosses NATS between the nodes of a cluster, as JSON.
//!
//! Sequenced events carry their audience (the receiving node's hub routes by it) and are sent whole
//! unless they would not fit in one NATS message; then only the id goes, and the receiving nodes read the
//! event from the database (SCALE-OUT.md 2.5).

use serde::{Deserialize, Serialize};

use crate::live::LiveEvent;
use crate::model::Millis;
use crate::store::StoredEvent;

/// An event on the `events` or `live` subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    /// The event id (its position in the log); 0 for live-only events.
    pub id: i64,
    /// The event itself; `None` when it was too big to send, for the receiver to read by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<WireBody>,
}

/// An event's content: a [`LiveEvent`] with its audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireBody {
    /// See [`LiveEvent::kind`].
    pub kind: String,
    /// See [`LiveEvent::conversation_id`].
    pub conversation_id: Option<String>,
    /// See [`LiveEvent::audience`].
    pub audience: Vec<String>,
    /// See [`LiveEvent::payload`].
    pub payload: serde_json::Value,
    /// See [`LiveEvent::created_at`].
    pub created_at: Millis,
}

impl WireEvent {
    /// The whole of `event`.
    pub fn from_live(event: &LiveEvent) -> Self {
        WireEvent {
            id: event.id,
            body: Some(WireBody {
                kind: event.kind.clone(),
                conversation_id: event.conversation_id.clone(),
                audience: event.audience.clone(),
                payload: event.payload.clone(),
                created_at: event.created_at,
            }),
        }
    }

    /// The whole of a stored event.
    pub fn from_stored(event: StoredEvent) -> Self {
        Self::from_live(&LiveEvent::from(event))
    }

    /// The JSON to send: the whole event, or only its id when the whole is longer than `max_bytes`.
    pub fn encode(&self, max_bytes: usize) -> Result<Vec<u8>, serde_json::Error> {
        let whole = serde_json::to_vec(self)?;
        if whole.len() <= max_bytes {
            return Ok(whole);
        }
        serde_json::to_vec(&WireEvent {
            id: self.id,
            body: None,
        })
    }

    /// The live event, when the body came along.
    pub fn into_live(self) -> Option<LiveEvent> {
        let body = self.body?;
        Some(LiveEvent {
            id: self.id,
            kind: body.kind,
            conversation_id: body.conversation_id,
            audience: body.audience,
            payload: body.payload,
            created_at: body.created_at,
        })
    }
}

/// The newest event id, published by the sequencer once a second on the `head` subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The id of the newest sequenced event.
    pub id: i64,
}

/// A user whose connections every node closes, on the `disconnect` subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// The user.
    pub user_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: serde_json::Value) -> LiveEvent {
        LiveEvent {
            id: 7,
            kind: "message.new".into(),
            conversation_id: Some("c1".into()),
            audience: vec!["alice".into(), "bob".into()],
            payload,
            created_at: 42,
        }
    }

    #[test]
    fn an_event_round_trips_with_its_audience() -> Result<(), serde_json::Error> {
        let live = event(serde_json::json!({"body": "hi"}));
        let bytes = WireEvent::from_live(&live).encode(1024)?;
        let back: WireEvent = serde_json::from_slice(&bytes)?;
        assert_eq!(back.into_live(), Some(live));
        Ok(())
    }

    #[test]
    fn an_event_too_big_for_one_message_goes_as_its_id() -> Result<(), serde_json::Error> {
        let live = event(serde_json::json!({"body": "x".repeat(2000)}));
        let bytes = WireEvent::from_live(&live).encode(1024)?;
        let back: WireEvent = serde_json::from_slice(&bytes)?;
        assert_eq!(back, WireEvent { id: 7, body: None });
        assert_eq!(back.into_live(), None);
        Ok(())
    }
}
