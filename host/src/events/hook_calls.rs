//! From a stored event to the hook call a plugin receives: decoding and the event context.

use super::{ChatEvent, EventError, to_wit};
use crate::model::Millis;
use crate::plugins::HookCall;
use crate::plugins::bindings::types as wit;
use crate::store::StoredEvent;

/// The hook call for delivery `attempt` of a stored event: decodes it and fills in the event context.
pub fn stored_hook_call(event: &StoredEvent, attempt: u32) -> Result<HookCall, EventError> {
    let decoded = ChatEvent::from_stored(event)?;
    Ok(decoded_hook_call(&decoded, event, attempt))
}

/// Like [`stored_hook_call`] for an event already decoded (`decoded` from `event`): no second decode.
pub fn decoded_hook_call(decoded: &ChatEvent, event: &StoredEvent, attempt: u32) -> HookCall {
    hook_call_of(decoded, event.id, event.created_at, attempt)
}

/// The hook call for delivery `attempt` of event `id`, which happened at `created_at` and decodes to
/// `decoded`.
pub fn hook_call_of(decoded: &ChatEvent, id: i64, created_at: Millis, attempt: u32) -> HookCall {
    let context = wit::EventContext {
        event_id: u64::try_from(id).unwrap_or(0),
        attempt,
        at: to_wit::timestamp(created_at),
    };
    decoded.hook_call(context)
}
