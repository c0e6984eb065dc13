//! The dispatcher's memory of the `deliveries` table: one queue per (plugin, conversation), each knowing
//! which of its events are waiting, when each is due, and whether a call is running.
//!
//! Why in memory: finding "the due heads of all queues" in SQL means looking at every pending delivery
//! (a backlog of 20,000 made each lookup cost milliseconds, and the dispatcher looked once per plugin
//! per finished delivery). Here a head is found in O(log n), and only the dispatcher's own changes
//! (fan-out, outcomes) and an occasional reload touch the memory.
//!
//! The store stays the authority. This memory only proposes heads: starting one goes through
//! [`Deliveries::start_head`](crate::store::Deliveries::start_head), which checks in SQL that it still is the
//! due head of its queue, so out-of-date memory can delay a delivery but never break order or start one
//! twice. A failed check reloads that queue ([`Queues::replace_queue`]); deliveries written by others (a
//! replayed dead letter) appear at the next full [`Queues::load`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use crate::model::Millis;
use crate::store::QueuedDelivery;

/// A queue's first delivery, due and with no call running in its queue: ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    /// The plugin it is for.
    pub plugin: String,
    /// Its conversation (`""` for events outside any).
    pub conversation: String,
    /// The event.
    pub event_id: i64,
}

/// Every known undelivered delivery, by plugin and conversation.
#[derive(Debug, Default)]
pub(super) struct Queues {
    plugins: HashMap<String, PluginQueues>,
    /// Heads not yet due, soonest first, as (due, plugin, conversation, event id). An entry is stale
    /// (skipped when it comes up) if its queue's head or the head's due time changed since.
    waiting: BinaryHeap<Reverse<(Millis, String, String, i64)>>,
}

/// One plugin's queues.
#[derive(Debug, Default)]
struct PluginQueues {
    queues: HashMap<String, Queue>,
    /// Deliveries in `queues` (waiting or in flight): the plugin's backlog, kept by
    /// [`Queues::with_queue`] so that reading it costs nothing at every fan-out.
    len: usize,
    /// The heads ready to start, as (event id, conversation): oldest event first, as the SQL
    /// dispatcher ordered them, so no conversation starves.
    ready: BTreeSet<(i64, String)>,
}

/// One (plugin, conversation) queue.
#[derive(Debug, Default)]
struct Queue {
    /// Events waiting (not in flight), oldest first, with the time each is due.
    waiting: BTreeMap<i64, Millis>,
    /// Events with a call running: while any is, the queue starts nothing (normally there is one).
    in_flight: BTreeSet<i64>,
    /// The event id under which this queue is in its plugin's `ready` set, if it is.
    ready: Option<i64>,
    /// The (due, event id) of this queue's live entry in `Queues::waiting`, if it has one: a head that
    /// waits for a retry gets one entry however many events are queued behind it meanwhile.
    scheduled: Option<(Millis, i64)>,
    /// Events of `waiting` or `in_flight` with no delivery row: first attempts made straight from the
    /// outbox ([`super::direct`]).
    from_outbox: BTreeSet<i64>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_empty()
    }

    fn len(&self) -> usize {
        self.waiting.len() + self.in_flight.len()
    }

    /// Adds the row's delivery where its state says.
    fn add(&mut self, row: &QueuedDelivery) {
        if row.in_flight {
            self.in_flight.insert(row.event_id);
        } else {
            self.waiting.insert(row.event_id, row.next_attempt_at);
        }
    }
}

impl Queues {
    /// Memory built from the store's rows (from
    /// [`Read::queued_deliveries`](crate::store::Read::queued_deliveries)).
    pub fn load(rows: Vec<QueuedDelivery>, now: Millis) -> Queues {
        let mut queues = Queues::default();
        let mut touched = Vec::new();
        for row in rows {
            let first = queues.with_queue(&row.plugin, &row.conversation, |queue| {
                let first = queue.is_empty();
                queue.add(&row);
                first
            });
            if first {
                touched.push((row.plugin, row.conversation));
            }
        }
        for (plugin, conversation) in touched {
            queues.refresh(&plugin, &conversation, now);
        }
        queues
    }

    /// Adds a delivery just fanned out. One already known (in any state) is left as it is.
    pub fn insert(&mut self, row: QueuedDelivery, now: Millis) {
        let added = self.with_queue(&row.plugin, &row.conversation, |queue| {
            let known = queue.in_flight.contains(&row.event_id)
                || queue.waiting.contains_key(&row.event_id);
            if !known {
                queue.add(&row);
            }
            !known
        });
        if added {
            self.refresh(&row.plugin, &row.conversation, now);
        }
    }

    /// Whether `plugin` may be owed an event of `conversation` straight from the outbox, or keep
    /// waiting for one without a row: its queue holds no row (see [`super::direct`]).
    pub fn may_start_from_outbox(&self, plugin: &str, conversation: &str) -> bool {
        self.plugins
            .get(plugin)
            .and_then(|p| p.queues.get(conversation))
            .is_none_or(|q| q.len() == q.from_outbox.len())
    }

    /// Adds an event fanned out to `plugin` with no delivery row (after
    /// [`Queues::may_start_from_outbox`]), due now.
    pub fn insert_from_outbox(
        &mut self,
        plugin: &str,
        conversation: &str,
        event_id: i64,
        now: Millis,
    ) {
        self.with_queue(plugin, conversation, |queue| {
            queue.waiting.insert(event_id, now);
            queue.from_outbox.insert(event_id);
        });
        self.refresh(plugin, conversation, now);
    }

    /// Whether the delivery of `event_id` in `plugin`'s queue for `conversation` has no row.
    pub fn is_from_outbox(&self, plugin: &str, conversation: &str, event_id: i64) -> bool {
        self.plugins
            .get(plugin)
            .and_then(|p| p.queues.get(conversation))
            .is_some_and(|q| q.from_outbox.contains(&event_id))
    }

    /// The delivery of `event_id` in `plugin`'s queue for `conversation` has a row now.
    pub fn written(&mut self, plugin: &str, conversation: &str, event_id: i64) {
        self.with_queue(plugin, conversation, |queue| {
            queue.from_outbox.remove(&event_id);
        });
    }

    /// Puts back a call running straight from the outbox, which no row shows (after [`Queues::load`]).
    pub fn restore_from_outbox(
        &mut self,
        plugin: &str,
        conversation: &str,
        event_id: i64,
        now: Millis,
    ) {
        self.with_queue(plugin, conversation, |queue| {
            queue.waiting.remove(&event_id);
            queue.in_flight.insert(event_id);
            queue.from_outbox.insert(event_id);
        });
        self.refresh(plugin, conversation, now);
    }

    /// Replaces one queue with the store's rows for it (after [`Deliveries::start_head`] refused its head);
    /// calls running straight from the outbox, which no row shows, stay.
    ///
    /// [`Deliveries::start_head`]: crate::store::Deliveries::start_head
    pub fn replace_queue(
        &mut self,
        plugin: &str,
        conversation: &str,
        rows: Vec<QueuedDelivery>,
        now: Millis,
    ) {
        self.unready(plugin, conversation);
        self.with_queue(plugin, conversation, |queue| {
            queue.waiting.clear();
            let in_flight = &mut queue.in_flight;
            queue
                .from_outbox
                .retain(|event_id| in_flight.contains(event_id));
            in_flight.retain(|event_id| queue.from_outbox.contains(event_id));
            for row in &rows {
                queue.add(row);
            }
        });
        self.refresh(plugin, conversation, now);
    }

    /// Moves the heads that have come due by `now` to their plugin's ready set.
    pub fn promote(&mut self, now: Millis) {
        while let Some(Reverse((due, _, _, _))) = self.waiting.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, plugin, conversation, event_id))) = self.waiting.pop() else {
                break;
            };
            if self.is_waiting_head(&plugin, &conversation, event_id, due) {
                self.queue_mut(&plugin, &conversation).scheduled = None;
                self.refresh(&plugin, &conversation, now);
            }
        }
    }

    /// Up to `limit` ready heads of `plugin`, oldest event first. They stay ready until [`Queues::start`].
    pub fn ready(&self, plugin: &str, limit: usize) -> Vec<Head> {
        let Some(plugin_queues) = self.plugins.get(plugin) else {
            return Vec::new();
        };
        plugin_queues
            .ready
            .iter()
            .take(limit)
            .map(|(event_id, conversation)| Head {
                plugin: plugin.to_owned(),
                conversation: conversation.clone(),
                event_id: *event_id,
            })
            .collect()
    }

    /// The events queued right behind ready `head` in its queue that are due at `now`, oldest first, at
    /// most `limit`: what may be started with it as one run (see [`super::runner`]).
    pub fn behind(&self, head: &Head, limit: usize, now: Millis) -> Vec<i64> {
        let Some(queue) = self
            .plugins
            .get(&head.plugin)
            .and_then(|p| p.queues.get(&head.conversation))
        else {
            return Vec::new();
        };
        queue
            .waiting
            .range(head.event_id + 1..)
            .take(limit)
            .take_while(|(_, due)| **due <= now)
            .map(|(event_id, _)| *event_id)
            .collect()
    }

    /// Whether `plugin` has a head ready to start.
    pub fn has_ready(&self, plugin: &str) -> bool {
        self.plugins
            .get(plugin)
            .is_some_and(|p| !p.ready.is_empty())
    }

    /// Marks `head` in flight (its start was committed): its queue starts nothing more until it ends.
    pub fn start(&mut self, head: &Head, now: Millis) {
        self.with_queue(&head.plugin, &head.conversation, |queue| {
            queue.waiting.remove(&head.event_id);
            queue.in_flight.insert(head.event_id);
        });
        self.refresh(&head.plugin, &head.conversation, now);
    }

    /// A call ended and its outcome was committed: the delivery is gone (`again` = `None`: delivered or
    /// dead-lettered) or waits to be retried at `again`.
    pub fn finish(
        &mut self,
        plugin: &str,
        conversation: &str,
        event_id: i64,
        again: Option<Millis>,
        now: Millis,
    ) {
        self.with_queue(plugin, conversation, |queue| {
            queue.in_flight.remove(&event_id);
            // Its outcome is committed: a row if it waits again, none if it is gone.
            queue.from_outbox.remove(&event_id);
            if let Some(at) = again {
                queue.waiting.insert(event_id, at);
            }
        });
        self.refresh(plugin, conversation, now);
    }

    /// The earliest time a waiting head becomes due, if any (stale entries are dropped first, so the
    /// loop does not wake for nothing).
    pub fn next_due(&mut self) -> Option<Millis> {
        while let Some(Reverse((due, plugin, conversation, event_id))) = self.waiting.peek() {
            if self.is_waiting_head(plugin, conversation, *event_id, *due) {
                return Some(*due);
            }
            self.waiting.pop();
        }
        None
    }

    /// Deliveries known (waiting or in flight), for logs and tests.
    pub fn len(&self) -> usize {
        self.plugins
            .values()
            .flat_map(|p| p.queues.values())
            .map(|q| q.waiting.len() + q.in_flight.len())
            .sum()
    }

    /// Deliveries known for `plugin` (waiting or in flight): its backlog. Constant time.
    pub fn plugin_len(&self, plugin: &str) -> usize {
        self.plugins.get(plugin).map_or(0, |p| p.len)
    }

    /// The plugins with any delivery known (constant time per plugin).
    pub fn plugins(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// Whether `plugin` has a delivery waiting (not in flight). Looks at each of its queues: for the
    /// few plugins that are not loaded, not for every plugin in every round.
    pub fn has_waiting(&self, plugin: &str) -> bool {
        self.plugins
            .get(plugin)
            .is_some_and(|p| p.queues.values().any(|q| !q.waiting.is_empty()))
    }

    /// Forgets every waiting delivery of `plugin` (they were dead-lettered); calls in flight stay.
    pub fn drop_waiting(&mut self, plugin: &str, now: Millis) {
        let conversations: Vec<String> = match self.plugins.get(plugin) {
            Some(p) => p.queues.keys().cloned().collect(),
            None => return,
        };
        for conversation in conversations {
            self.with_queue(plugin, &conversation, |queue| {
                queue.waiting.clear();
                let in_flight = &queue.in_flight;
                queue
                    .from_outbox
                    .retain(|event_id| in_flight.contains(event_id));
            });
            self.refresh(plugin, &conversation, now);
        }
    }

    /// Whether (`event_id`, `due`) is still the head of its queue, not ready and with no call running.
    fn is_waiting_head(
        &self,
        plugin: &str,
        conversation: &str,
        event_id: i64,
        due: Millis,
    ) -> bool {
        self.plugins
            .get(plugin)
            .and_then(|p| p.queues.get(conversation))
            .is_some_and(|q| {
                q.scheduled == Some((due, event_id))
                    && q.in_flight.is_empty()
                    && q.waiting.first_key_value() == Some((&event_id, &due))
            })
    }

    /// Runs `f` on one queue (created if missing), keeping its plugin's backlog count right. Every change
    /// to a queue's deliveries goes through here.
    fn with_queue<T>(
        &mut self,
        plugin: &str,
        conversation: &str,
        f: impl FnOnce(&mut Queue) -> T,
    ) -> T {
        let plugin_queues = self.plugins.entry(plugin.to_owned()).or_default();
        let queue = plugin_queues
            .queues
            .entry(conversation.to_owned())
            .or_default();
        let before = queue.len();
        let out = f(queue);
        plugin_queues.len = (plugin_queues.len + queue.len()).saturating_sub(before);
        out
    }

    fn queue_mut(&mut self, plugin: &str, conversation: &str) -> &mut Queue {
        self.plugins
            .entry(plugin.to_owned())
            .or_default()
            .queues
            .entry(conversation.to_owned())
            .or_default()
    }

    /// Takes the queue out of its plugin's ready set.
    fn unready(&mut self, plugin: &str, conversation: &str) {
        let Some(plugin_queues) = self.plugins.get_mut(plugin) else {
            return;
        };
        let Some(queue) = plugin_queues.queues.get_mut(conversation) else {
            return;
        };
        if let Some(event_id) = queue.ready.take() {
            plugin_queues
                .ready
                .remove(&(event_id, conversation.to_owned()));
        }
    }

    /// Puts the queue where its head belongs now: ready (due, nothing running), waiting (not due yet),
    /// or nowhere (a call is running, or the queue is empty, which forgets it).
    fn refresh(&mut self, plugin: &str, conversation: &str, now: Millis) {
        self.unready(plugin, conversation);
        let Some(plugin_queues) = self.plugins.get_mut(plugin) else {
            return;
        };
        let Some(queue) = plugin_queues.queues.get_mut(conversation) else {
            return;
        };
        if queue.is_empty() {
            plugin_queues.queues.remove(conversation);
            if plugin_queues.queues.is_empty() {
                self.plugins.remove(plugin);
            }
            return;
        }
        if !queue.in_flight.is_empty() {
            queue.scheduled = None;
            return;
        }
        if let Some((&event_id, &due)) = queue.waiting.first_key_value() {
            if due <= now {
                queue.scheduled = None;
                queue.ready = Some(event_id);
                plugin_queues
                    .ready
                    .insert((event_id, conversation.to_owned()));
            } else if queue.scheduled != Some((due, event_id)) {
                queue.scheduled = Some((due, event_id));
                self.waiting.push(Reverse((
                    due,
                    plugin.to_owned(),
                    conversation.to_owned(),
                    event_id,
                )));
            }
        }
    }
}

#[cfg(test)]
#[path = "queues_tests.rs"]
mod tests;
