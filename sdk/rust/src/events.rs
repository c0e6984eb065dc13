//! Custom live events to WebSocket clients (WIT interface `chathooks:plugin/events`, grant `events`).
//!
//! Clients receive `{"id": 0, "kind": "plugin.<plugin name>.<type>", "conversation_id", "payload": data}`.
//! Events are live only: not stored, not replayed. A plugin's events are rate-limited: past the limit a call
//! returns [`EventsError::RateLimited`] ([`EventsError::retry_after`]).
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

impl EventsError {
    /// If the call was refused by the plugin's rate limit of events (`[limits]` `events_per_second`
    /// and `events_burst` in its manifest): how long until a call would be allowed. Nothing was done;
    /// wait (a timer) or give up rather than retry in a loop, which only uses up the call's time budget.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            EventsError::RateLimited(ms) => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// A one-line explanation of an [`EventsError`].
pub fn describe(error: &EventsError) -> String {
    match error {
        EventsError::Denied(why) => format!("events: denied: {why}"),
        EventsError::Invalid(why) => format!("events: invalid: {why}"),
        EventsError::NotFound(why) => format!("events: not found: {why}"),
        EventsError::RateLimited(ms) => format!("events: rate limited: retry in {ms} ms"),
    }
}

impl From<EventsError> for String {
    fn from(error: EventsError) -> Self {
        describe(&error)
    }
}
