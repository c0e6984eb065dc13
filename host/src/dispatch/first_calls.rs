//! The first attempt's hook call of each event fanned out, built once at fan-out and kept until every
//! plugin it was queued for has started it: most deliveries start in a later round than their fan-out
//! (behind a call of their queue), and reading the event back and decoding it again for each such round
//! was a tenth of the server's time with five plugins and 16 clients (BENCHMARKS.md, problem 12).
//!
//! Only a shortcut: a delivery whose call is not here (a retry, or one queued before the dispatcher's
//! memory was last reloaded) has its event read from the store, as before.

use std::collections::HashMap;
use std::sync::Arc;

use crate::plugins::HookCall;

/// Events kept at most. Each entry holds its decoded hook call (a few hundred bytes to a few KiB); a
/// backlog beyond this many events (a plugin switched off for a while) reads the rest from the store.
pub(super) const MAX_KEPT: usize = 16_384;

/// A hook call, or why the event could not be turned into one.
pub(super) type Call = Arc<Result<HookCall, String>>;

/// The first-attempt calls of fanned-out events, each with how many queued deliveries have yet to
/// start it.
#[derive(Debug, Default)]
pub(super) struct FirstCalls {
    calls: HashMap<i64, (Call, usize)>,
}

impl FirstCalls {
    /// Keeps the first-attempt call of event `event_id` for `deliveries` starts (nothing when full or
    /// none).
    pub fn keep(&mut self, event_id: i64, call: Call, deliveries: usize) {
        if deliveries == 0 || self.calls.len() >= MAX_KEPT {
            return;
        }
        self.calls.insert(event_id, (call, deliveries));
    }

    /// The first-attempt call of `event_id` for one delivery starting now, if kept; forgotten after the
    /// last delivery it was kept for.
    pub fn take(&mut self, event_id: i64) -> Option<Call> {
        let (call, left) = self.calls.get_mut(&event_id)?;
        let call = call.clone();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.calls.remove(&event_id);
        }
        Some(call)
    }

    /// Forgets everything (the dispatcher's memory was reloaded: deliveries may have gone without
    /// starting, and their entries would stay forever).
    pub fn clear(&mut self) {
        self.calls.clear();
    }

    /// Events kept, for tests.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.calls.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::deliver::hook_call;
    use crate::store::StoredEvent;

    fn event(id: i64) -> StoredEvent {
        StoredEvent {
            id,
            kind: "message.new".to_owned(),
            conversation_id: Some("c".to_owned()),
            audience: Vec::new(),
            payload: serde_json::json!({}),
            created_at: 0,
        }
    }

    #[test]
    fn a_call_is_kept_for_as_many_starts_as_deliveries_then_forgotten() {
        let mut calls = FirstCalls::default();
        calls.keep(7, hook_call(&event(7), 1), 2);
        calls.keep(8, hook_call(&event(8), 1), 0);
        assert_eq!(calls.len(), 1, "an event queued for nobody is not kept");
        let first = calls.take(7).expect("kept for two");
        let second = calls.take(7).expect("kept for two");
        assert!(Arc::ptr_eq(&first, &second), "built once");
        assert!(calls.take(7).is_none(), "forgotten after the last");
        assert_eq!(calls.len(), 0);
    }

    #[test]
    fn it_keeps_at_most_max_kept_events_and_forgets_them_on_clear() {
        let mut calls = FirstCalls::default();
        for id in 0..=i64::try_from(MAX_KEPT).unwrap_or(i64::MAX) {
            calls.keep(id, hook_call(&event(id), 1), 1);
        }
        assert_eq!(calls.len(), MAX_KEPT);
        assert!(calls.take(0).is_some());
        assert!(
            calls
                .take(i64::try_from(MAX_KEPT).unwrap_or(i64::MAX))
                .is_none(),
            "the event beyond the bound is read from the store instead"
        );
        calls.clear();
        assert!(calls.take(1).is_none());
    }
}
