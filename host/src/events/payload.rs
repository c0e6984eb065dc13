//! An event's payload as it is stored and sent to WebSocket clients, and decoded back: the variant's
//! fields, with the participant list of a large conversation left out.

use serde::Deserialize;

use super::{ChatEvent, EventError};
use crate::store::StoredEvent;

impl ChatEvent {
    /// The payload as stored and sent to WebSocket clients: the variant's fields.
    pub fn payload(&self) -> serde_json::Value {
        let mut payload = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => {
                tagged.remove("payload").unwrap_or(serde_json::Value::Null)
            }
            // Serializing records of strings, numbers and JSON values cannot fail.
            _ => serde_json::Value::Null,
        };
        if let Some(conversation) = payload.get_mut("conversation") {
            omit_large_participant_lists(conversation);
        }
        payload
    }

    /// Decodes a stored event.
    pub fn from_stored(event: &StoredEvent) -> Result<Self, EventError> {
        Self::from_payload(event.id, &event.kind, &event.payload)
    }

    /// Decodes event `id` of `kind` from its payload.
    pub fn from_payload(
        id: i64,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<Self, EventError> {
        use serde::de::value::MapDeserializer;
        // Read in place as `{"kind": ..., "payload": ...}`: the payload is borrowed, not copied into a
        // new tree first (a copy of every message's JSON per decode showed in the dispatcher's profile).
        let kind_value = serde_json::Value::String(kind.to_owned());
        let entries = [("kind", &kind_value), ("payload", payload)];
        let fields = MapDeserializer::<_, serde_json::Error>::new(entries.into_iter());
        ChatEvent::deserialize(fields).map_err(|source| EventError::Payload {
            id,
            kind: kind.to_owned(),
            source,
        })
    }
}

/// The most participant ids an event's copy of a conversation lists: past it the list is left out
/// (`participant_ids_omitted`). A frame to each of 1,000 members carried the 1,000 ids (12 KB), so a
/// message cost a million ids copied into sockets and stored once more in the event log; clients and
/// plugins that need the members ask for them (`GET /v1/conversations/{id}`, `chat.participants`).
pub const MAX_EVENT_PARTICIPANT_IDS: u64 = 100;

/// Leaves the participant ids out of `conversation` (a serialized [`crate::model::Conversation`]) when it has more
/// than [`MAX_EVENT_PARTICIPANT_IDS`].
fn omit_large_participant_lists(conversation: &mut serde_json::Value) {
    let large = conversation
        .get("participant_count")
        .and_then(serde_json::Value::as_u64)
        .is_some_and(|count| count > MAX_EVENT_PARTICIPANT_IDS);
    if let (true, Some(fields)) = (large, conversation.as_object_mut()) {
        fields.insert(
            "participant_ids".to_owned(),
            serde_json::Value::Array(Vec::new()),
        );
        fields.insert(
            "participant_ids_omitted".to_owned(),
            serde_json::Value::Bool(true),
        );
    }
}
