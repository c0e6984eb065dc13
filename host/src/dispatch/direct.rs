//! First attempts made straight from the outbox, with no delivery row of their own.
//!
//! A delivery row costs three writes (the fan-out's insert, the start's update, the success's delete) for
//! a call that almost always succeeds the first time: with five plugins at 16 clients those writes were
//! most of the dispatcher's transaction, about 14 µs of the server's CPU per delivery (BENCHMARKS.md,
//! problem 14). So when an event is fanned out to a plugin whose queue for its conversation is empty, and
//! the round starts the call at once, no row is written: the event's own outbox row is the durable
//! record. It stays in the outbox until the outcome of every such call is recorded; a call that failed
//! (or was postponed, or never started) gets its delivery row then, with its attempt count, and goes on
//! as any other delivery. A crash before that leaves the event in the outbox, and the next start fans it
//! out again: the calls are made again, as a crash mid-call always did (at least once).
//!
//! Order per (plugin, conversation) holds the same way: a queue with a call running starts nothing else,
//! whether that call has a row or not, and the memory of what runs straight from the outbox ([`Direct`])
//! survives a reload of the queues from the store. An event leaves the outbox only once no earlier event
//! of its conversation is still held there, so that after a crash each plugin is sent again a suffix of
//! its queue, in order, never an old event after newer ones.
//!
//! Only on a server on its own ([`Tx::may_start_from_outbox`](crate::store::Tx::may_start_from_outbox)):
//! on a node of a cluster every start is a lease that the other nodes must see.

use std::collections::{BTreeMap, HashSet};

/// Events held in the outbox at most; beyond this, fan-outs write delivery rows as before until some are
/// released. Bounds how many ids each round's read of the outbox leaves out, and what a plugin that
/// stalls with calls straight from the outbox holds there (the calls of one round at most).
pub(super) const MAX_HELD: usize = 512;

/// The events held in the outbox while calls straight from it run, by id.
#[derive(Debug, Default, Clone)]
pub(super) struct Direct {
    events: BTreeMap<i64, Held>,
}

/// One held event.
#[derive(Debug, Clone)]
struct Held {
    /// Its conversation (`""` for none): events leave the outbox in order per conversation.
    conversation: String,
    /// The plugins whose call straight from the outbox has no recorded outcome yet.
    running: Vec<String>,
}

impl Direct {
    /// Holds `event_id` in the outbox while the calls of `plugins`, just started, run.
    pub fn hold(&mut self, event_id: i64, conversation: &str, plugins: Vec<String>) {
        self.events.insert(
            event_id,
            Held {
                conversation: conversation.to_owned(),
                running: plugins,
            },
        );
    }

    /// The outcome of `plugin`'s call of `event_id` is recorded (it succeeded, or has a row now).
    pub fn ended(&mut self, event_id: i64, plugin: &str) {
        if let Some(held) = self.events.get_mut(&event_id) {
            held.running.retain(|p| p != plugin);
        }
    }

    /// Takes the events that may leave the outbox now: no call of theirs runs, and no earlier event of
    /// their conversation is held with a call running.
    pub fn release(&mut self) -> Vec<i64> {
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut released = Vec::new();
        for (event_id, held) in &self.events {
            if !held.running.is_empty() {
                blocked.insert(&held.conversation);
            } else if !blocked.contains(held.conversation.as_str()) {
                released.push(*event_id);
            }
        }
        for event_id in &released {
            self.events.remove(event_id);
        }
        released
    }

    /// The ids of the held events, which reads of the outbox leave out.
    pub fn ids(&self) -> Vec<i64> {
        self.events.keys().copied().collect()
    }

    /// Whether one more event may be held ([`MAX_HELD`]) besides `offered` about to be.
    pub fn has_room(&self, offered: usize) -> bool {
        self.events.len().saturating_add(offered) < MAX_HELD
    }

    /// Every call running straight from the outbox, as (plugin, conversation, event id): what a reload of
    /// the queues puts back in flight.
    pub fn running(&self) -> impl Iterator<Item = (&str, &str, i64)> {
        self.events.iter().flat_map(|(event_id, held)| {
            held.running
                .iter()
                .map(move |plugin| (plugin.as_str(), held.conversation.as_str(), *event_id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn an_event_leaves_once_its_calls_ended_and_no_earlier_one_of_its_conversation_runs() {
        let mut direct = Direct::default();
        direct.hold(1, "a", plugins(&["p", "q"]));
        direct.hold(2, "a", plugins(&["p"]));
        direct.hold(3, "b", plugins(&["p"]));
        direct.ended(2, "p");
        direct.ended(3, "p");
        assert_eq!(
            direct.release(),
            [3],
            "2 waits for 1, of the same conversation"
        );
        direct.ended(1, "p");
        assert_eq!(direct.release(), Vec::<i64>::new(), "q still runs 1");
        assert_eq!(
            direct.running().collect::<Vec<_>>(),
            [("q", "a", 1)],
            "what a reload puts back in flight"
        );
        direct.ended(1, "q");
        assert_eq!(direct.release(), [1, 2]);
        assert!(direct.ids().is_empty());
    }

    #[test]
    fn it_holds_at_most_max_held_events_and_names_them_for_the_outbox_reads() {
        let mut direct = Direct::default();
        for id in 0..i64::try_from(MAX_HELD).unwrap_or(i64::MAX) {
            assert!(direct.has_room(0));
            direct.hold(id, "c", plugins(&["p"]));
        }
        assert!(!direct.has_room(0));
        assert_eq!(direct.ids().len(), MAX_HELD);
        assert_eq!(direct.ids()[..3], [0, 1, 2]);
    }
}
