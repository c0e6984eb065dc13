//! Custom live events to WebSocket clients (WIT interface `chathooks:plugin/events`, grant `events`).
//!
//! Clients receive `{"id": 0, "kind": "plugin.<plugin name>.<type>", "conversation_id", "payload": data}`.
//! Events are live only: not stored, not replayed.
//!
//! ```no_run
//! use chathooks_sdk::events;
//! use chathooks_sdk::serde_json::json;
//!
//! # fn demo() -> Result<(), String> {
//! events::to_conversation("c_123", "poll.updated", &json!({"yes": 3, "no": 1}))?;
//! # Ok(()) }
//! ```

use crate::__bindings::chathooks::plugin::events as raw;

/// Why an event was not sent (the WIT variant `events.error`).
pub use raw::Error as EventsError;

/// Sends `data` (a JSON object) as event `event_type` to the connected participants of `conversation_id`.
pub fn to_conversation(
    conversation_id: &str,
    event_type: &str,
    data: &serde_json::Value,
) -> Result<(), EventsError> {
    raw::to_conversation(conversation_id, event_type, &data.to_string())
}

/// Sends `data` as event `event_type` to every connection of user `user_id`.
pub fn to_user(
    user_id: &str,
    event_type: &str,
    data: &serde_json::Value,
) -> Result<(), EventsError> {
    raw::to_user(user_id, event_type, &data.to_string())
}

/// A one-line explanation of an [`EventsError`].
pub fn describe(error: &EventsError) -> String {
    match error {
        EventsError::Denied(why) => format!("events: denied: {why}"),
        EventsError::Invalid(why) => format!("events: invalid: {why}"),
        EventsError::NotFound(why) => format!("events: not found: {why}"),
    }
}

impl From<EventsError> for String {
    fn from(error: EventsError) -> Self {
        describe(&error)
    }
}
