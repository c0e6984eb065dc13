//! First attempts made straight from the outbox, with no delivery row of their own.
//!
//! A delivery row costs three writes (the fan-out's insert, the start's update, the success's delete) for
//! a call that almost always succeeds the first time: with five plugins at 16 clients those writes were
//! most of the dispatcher's transaction, about 14 µs of the server's CPU per delivery (BENCHMARKS.md,
//! problem 14). So an event fanned out to a plugin whose queue for its conversation holds no row gets no
//! row either: the event's own outbox row is the durable record, and the delivery waits in the
//! dispatcher's memory like any other until its call starts. The event stays in the outbox while any
//! plugin is owed it that way. A call that fails (or is postponed) gets its delivery row when its outcome
//! is recorded, with its attempt count, and goes on as any other delivery; so does one that cannot start
//! soon: its plugin is not running or is switched off by its circuit breaker, a row of its queue waits
//! ahead of it (a retry), or the dispatcher shuts down. A crash before that leaves the event in the
//! outbox, and the next start fans it out again: the calls are made again, as a crash mid-call always
//! did (at least once), as attempt 1 again (nothing counted the attempt that died with the process).
//!
//! Order per (plugin, conversation) holds the same way: a queue with a call running starts nothing else,
//! whether that call has a row or not, and the memory of what is owed straight from the outbox
//! ([`Direct`]) survives a reload of the queues from the store. An event leaves the outbox only once no
//! earlier event of its conversation is still held there, so that after a crash each plugin is sent
//! again a suffix of its queue, in order, never an old event after newer ones.
//!
//! Only on a server on its own
//! ([`Deliveries::may_start_from_outbox`](crate::store::Deliveries::may_start_from_outbox)): on a node of a
//! cluster every start is a lease that the other nodes must see.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Events held in the outbox at most; beyond this, fan-outs write delivery rows as before until some are
/// released. Bounds how many ids each round's read of the outbox leaves out, and what a crash delivers
/// again.
pub(super) const MAX_HELD: usize = 512;

/// Longest an event released from the outbox stays there before it is removed (real time: it is the
/// machine's cost). Removing it is a write of its own that nothing waits for, so the round that releases
/// it need not make one: under load, most rounds then write nothing of their own, and the removals go
/// out together every this often. A crash meanwhile delivers those events again (at least once), and
/// the outbox's depth (`/metrics`) counts them until then.
pub(super) const FLUSH_AFTER: Duration = Duration::from_millis(100);

/// Released events removed from the outbox at once, however recent: bounds the ids each read of the
/// outbox leaves out.
pub(super) const FLUSH_EVENTS: usize = 256;

/// The events held in the outbox while deliveries straight from it are owed, by id.
#[derive(Debug, Default, Clone)]
pub(super) struct Direct {
    events: BTreeMap<i64, Held>,
    /// Events no plugin is owed any more, not yet removed from the outbox ([`FLUSH_AFTER`]).
    released: Vec<i64>,
    /// When the oldest of `released` was released.
    released_at: Option<Instant>,
}

/// One held event.
#[derive(Debug, Clone)]
struct Held {
    /// Its conversation (`""` for none): events leave the outbox in order per conversation.
    conversation: String,
    /// The plugins owed the event straight from the outbox, each with whether its call has started:
    /// those whose outcome is not recorded yet.
    owed: Vec<(String, bool)>,
}

/// A delivery owed straight from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owed<'a> {
    /// The plugin.
    pub plugin: &'a str,
    /// The event's conversation (`""` for none).
    pub conversation: &'a str,
    /// The event.
    pub event_id: i64,
    /// Whether its call has started.
    pub started: bool,
}

impl Direct {
    /// Holds `event_id` in the outbox while `plugins` are owed it straight from there.
    pub fn hold(&mut self, event_id: i64, conversation: &str, plugins: &[String]) {
        self.events.insert(
            event_id,
            Held {
                conversation: conversation.to_owned(),
                owed: plugins.iter().map(|p| (p.clone(), false)).collect(),
            },
        );
    }

    /// `plugin`'s call of `event_id` started.
    pub fn started(&mut self, event_id: i64, plugin: &str) {
        if let Some(held) = self.events.get_mut(&event_id) {
            for (owed, started) in &mut held.owed {
                if owed == plugin {
                    *started = true;
                }
            }
        }
    }

    /// `plugin` is no longer owed `event_id` straight from the outbox: its call's outcome is recorded
    /// (it succeeded, or has a row now), or it has a row without a call.
    pub fn ended(&mut self, event_id: i64, plugin: &str) {
        if let Some(held) = self.events.get_mut(&event_id) {
            held.owed.retain(|(p, _)| p != plugin);
        }
    }

    /// Releases the events that may leave the outbox now (no plugin is owed them, and no earlier event
    /// of their conversation is held for a plugin): [`Direct::take_released`] hands them out for removal.
    pub fn release(&mut self, now: Instant) {
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut released = Vec::new();
        for (event_id, held) in &self.events {
            if !held.owed.is_empty() {
                blocked.insert(&held.conversation);
            } else if !blocked.contains(held.conversation.as_str()) {
                released.push(*event_id);
            }
        }
        for event_id in &released {
            self.events.remove(event_id);
        }
        if !released.is_empty() {
            self.released_at.get_or_insert(now);
            self.released.extend(released);
        }
    }

    /// The released events to remove from the outbox at `now`, if that is due ([`FLUSH_AFTER`],
    /// [`FLUSH_EVENTS`]) or `settle` asks for it; forgotten once handed out.
    pub fn take_released(&mut self, now: Instant, settle: bool) -> Vec<i64> {
        if !self.flush_due(now, settle) {
            return Vec::new();
        }
        self.released_at = None;
        std::mem::take(&mut self.released)
    }

    /// Whether released events are due for removal from the outbox at `now` (any, with `settle`).
    pub fn flush_due(&self, now: Instant, settle: bool) -> bool {
        !self.released.is_empty()
            && (settle
                || self.released.len() >= FLUSH_EVENTS
                || self.flush_at().is_some_and(|at| at <= now))
    }

    /// When the released events are due for removal from the outbox, if any are waiting.
    pub fn flush_at(&self) -> Option<Instant> {
        self.released_at.map(|at| at + FLUSH_AFTER)
    }

    /// The ids of the held events and of those released but still in the outbox, which reads of the
    /// outbox leave out.
    pub fn ids(&self) -> Vec<i64> {
        self.events.keys().chain(&self.released).copied().collect()
    }

    /// Whether any event is held, or released but still in the outbox.
    pub fn holds_any(&self) -> bool {
        !self.events.is_empty() || !self.released.is_empty()
    }

    /// Whether one more event may be held ([`MAX_HELD`]).
    pub fn has_room(&self) -> bool {
        self.events.len() < MAX_HELD
    }

    /// How many deliveries each plugin is owed straight from the outbox.
    pub fn owed_counts(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for owed in self.owed() {
            *counts.entry(owed.plugin.to_owned()).or_default() += 1;
        }
        counts
    }

    /// Every delivery owed straight from the outbox, oldest event first: what a reload of the queues
    /// puts back, and what each round checks may still wait without a row.
    pub fn owed(&self) -> impl Iterator<Item = Owed<'_>> {
        self.events.iter().flat_map(|(event_id, held)| {
            held.owed.iter().map(move |(plugin, started)| Owed {
                plugin,
                conversation: &held.conversation,
                event_id: *event_id,
                started: *started,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn owed(direct: &Direct) -> Vec<(&str, &str, i64, bool)> {
        direct
            .owed()
            .map(|o| (o.plugin, o.conversation, o.event_id, o.started))
            .collect()
    }

    #[test]
    fn an_event_leaves_once_no_plugin_is_owed_it_and_no_earlier_one_of_its_conversation_is_held() {
        let mut direct = Direct::default();
        direct.hold(1, "a", &plugins(&["p", "q"]));
        direct.hold(2, "a", &plugins(&["p"]));
        direct.hold(3, "b", &plugins(&["p"]));
        direct.started(1, "p");
        direct.started(1, "q");
        assert_eq!(
            owed(&direct),
            [
                ("p", "a", 1, true),
                ("q", "a", 1, true),
                ("p", "a", 2, false),
                ("p", "b", 3, false)
            ],
            "what a reload puts back"
        );
        direct.ended(2, "p");
        direct.ended(3, "p");
        direct.release(Instant::now());
        assert_eq!(
            direct.take_released(Instant::now(), true),
            [3],
            "2 waits for 1, of the same conversation"
        );
        direct.ended(1, "p");
        direct.release(Instant::now());
        assert!(
            direct.take_released(Instant::now(), true).is_empty(),
            "q is still owed 1"
        );
        direct.ended(1, "q");
        direct.release(Instant::now());
        assert_eq!(direct.take_released(Instant::now(), true), [1, 2]);
        assert!(direct.ids().is_empty() && !direct.holds_any());
    }

    #[test]
    fn released_events_leave_the_outbox_together_once_the_oldest_waited_or_enough_are_released() {
        let mut direct = Direct::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        direct.hold(1, "a", &[]);
        direct.release(at(0));
        direct.hold(2, "b", &[]);
        direct.release(at(50));
        assert_eq!(direct.ids(), [1, 2], "still left out of the outbox reads");
        assert_eq!(direct.flush_at(), Some(at(0) + FLUSH_AFTER));
        assert!(
            direct
                .take_released(at(0) + FLUSH_AFTER - Duration::from_millis(1), false)
                .is_empty()
        );
        assert_eq!(direct.take_released(at(0) + FLUSH_AFTER, false), [1, 2]);
        assert_eq!(direct.flush_at(), None);
        let many = i64::try_from(FLUSH_EVENTS).unwrap_or(i64::MAX);
        for id in 10..10 + many {
            direct.hold(id, "c", &[]);
        }
        direct.release(at(200));
        assert_eq!(direct.take_released(at(200), false).len(), FLUSH_EVENTS);
    }

    #[test]
    fn it_holds_at_most_max_held_events_and_names_them_for_the_outbox_reads() {
        let mut direct = Direct::default();
        for id in 0..i64::try_from(MAX_HELD).unwrap_or(i64::MAX) {
            assert!(direct.has_room());
            direct.hold(id, "c", &plugins(&["p"]));
        }
        assert!(!direct.has_room());
        assert_eq!(direct.ids().len(), MAX_HELD);
        assert_eq!(direct.ids()[..3], [0, 1, 2]);
    }
}
