//! One dispatch round, blocking: record the outcomes of finished calls, fan new events out, and start
//! the due queue heads, all in one write transaction, so a busy dispatcher takes the write lock at most
//! once per round (however many calls ended and events arrived since the last), not three times per
//! delivery. The transaction begins with the round's first statement ([`Db::write_deliveries`]): a round
//! that writes nothing takes no lock.
//!
//! Order inside a round matters: outcomes are recorded before heads are chosen, so a queue whose head
//! just succeeded offers its next event in the same round; the start of a head with a row is committed
//! before its hook is called, so attempt numbers stay right across crashes (a first attempt straight
//! from the outbox has no row to start: after a crash it is attempt 1 again, [`super::direct`]). Most
//! rounds of a busy server on its own write nothing of their own, so they do their memory work without
//! keeping other writes waiting. The backlog bounds ([`super::backlog`]) are applied in the same
//! transaction: an unloaded plugin's expired deliveries and the fan-out beyond a full backlog become dead
//! letters. What needs attention is logged and counted only once committed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::events::{self, MAX_HOOK_DEPTH};
use crate::plugins::registry::Registry;
use crate::store::{self, Db, QueuedDelivery, StoredEvent};

use super::DispatchConfig;
use super::arrivals::{self, Arrived, Handed, NewEvent};
use super::backlog::{Backlogs, Unloaded, backlog_full_reason, unloaded_reason};
use super::deliver::{DeliveryOutcome, Started, failed, hook_call};
use super::direct::{Direct, Owed};
use super::first_calls::{Call, FirstCalls};
use super::outcomes::{GivenUp, record_all, report};
use super::queues::Queues;
use super::starts::{Start, start_ready};
use super::stats::DispatchStats;
use super::warnings::Warnings;

/// Events fanned out per round: big enough to clear a burst quickly, small enough that the writer lock
/// is never held long (a fan-out is a few inserts per event). A full batch makes the loop run another
/// round at once.
const FAN_OUT_BATCH: u32 = 256;

/// A call that ended, waiting for its outcome to be committed by the next round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finished {
    /// The plugin called.
    pub plugin: String,
    /// Its queue's conversation (`""` for none).
    pub conversation: String,
    /// The event delivered.
    pub event_id: i64,
    /// The attempt it was.
    pub attempt: u32,
    /// How the call ended.
    pub outcome: DeliveryOutcome,
    /// The last report of its run ([`Started::follows`]): the run's call slot is free again.
    pub ends_run: bool,
    /// A first attempt made straight from the outbox ([`super::direct`]): its row is written only if
    /// it did not succeed.
    pub from_outbox: bool,
}

/// What the dispatcher remembers between rounds.
#[derive(Debug, Default)]
pub(super) struct Memory {
    /// The deliveries table as far as the dispatcher knows it.
    pub queues: Queues,
    /// Since when plugins owed deliveries have not been loaded.
    pub unloaded: Unloaded,
    /// The per-plugin rate limit of warnings.
    pub warnings: Warnings,
    /// The first attempt's hook calls of the events fanned out, until each delivery started.
    pub first_calls: FirstCalls,
    /// The events held in the outbox while their first attempts run straight from it.
    pub direct: Direct,
    /// An event id up to which every event still in the outbox is held in `direct`, where the outbox is
    /// read on from (0: from its start). Only where events commit in id order.
    pub read_after: i64,
    /// The events handed over by their commits and not read yet ([`super::arrivals`]).
    pub arrived: Arrived,
}

/// What a round works with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deps<'a> {
    /// The store.
    pub db: &'a Db,
    /// The plugins.
    pub registry: &'a Registry,
    /// Retries, bounds, clock.
    pub config: &'a DispatchConfig,
    /// Where dead letters are counted.
    pub stats: &'a DispatchStats,
    /// Where commits hand their events over ([`super::arrivals`]).
    pub handed: &'a Handed,
}

/// Most events of one queue a round starts as one run (called in order on one thread, reported one by
/// one): a queue with a backlog (one busy conversation) then moves by dozens of events per round instead
/// of one, since a queue starts nothing while a call of its own runs. Large enough that one
/// conversation's after-hooks keep up with its sends; small enough (32 calls of a fast plugin are well
/// under a millisecond) that a run does not hold its thread long.
pub(super) const MAX_RUN: usize = 32;

/// What a round may start.
#[derive(Debug, Clone, Default)]
pub(super) struct Room {
    /// Runs each plugin may start now; plugins not named get `default`.
    pub per_plugin: HashMap<String, usize>,
    /// For plugins not in `per_plugin`.
    pub default: usize,
    /// Plugins whose calls are fast lately ([`super::runner`]): their queues start runs of up to
    /// [`MAX_RUN`] events; other plugins' one event at a time.
    pub fast: HashSet<String>,
    /// Whether the round leaves nothing in memory alone ([`super::direct`]): deliveries owed straight
    /// from the outbox that did not start get their rows, and the events released from the outbox are
    /// removed from it now. The last round before a shutdown, and [`super::drain`]'s.
    pub settle: bool,
}

/// A new event of the outbox, with the plugins it is owed to and, if it has any, its first attempt's
/// hook call (decoded once for both, see [`subscribers`]).
type Target = (NewEvent, Vec<String>, Option<Call>);

/// What a round did.
#[derive(Debug, Default)]
pub(super) struct RoundResult {
    /// Deliveries started (committed in flight): the caller runs them.
    pub started: Vec<Started>,
    /// There is more to do at once (a full fan-out batch, a queue reloaded, an outcome to record).
    pub more: bool,
    /// Deliveries were fanned out (other nodes of a cluster may start them).
    pub fanned_out: bool,
}

/// Runs one round. `finished` is emptied once its outcomes are committed (kept if the round fails, to be
/// recorded by the next). `reload` replaces the memory's queues with the store's view first. After an
/// error, the queues may be ahead of the store: the next round must reload.
pub(super) fn round(
    deps: &Deps<'_>,
    memory: &mut Memory,
    finished: &mut Vec<Finished>,
    room: &Room,
    reload: bool,
) -> store::Result<RoundResult> {
    let Deps {
        db,
        registry,
        config,
        ..
    } = *deps;
    let now = config.clock.now_ms();
    memory.warnings.flush(now);
    let mut result = RoundResult::default();
    let queues = &mut memory.queues;
    if reload {
        // Before this round's writes: outcomes and fan-outs below apply to the reloaded memory as well.
        *queues = Queues::load(db.read(|c| c.queued_deliveries())?, now);
        for owed in memory.direct.owed() {
            let Owed {
                plugin,
                conversation,
                event_id,
                ..
            } = owed;
            if owed.started {
                queues.restore_from_outbox(plugin, conversation, event_id, now);
            } else {
                queues.insert_from_outbox(plugin, conversation, event_id, now);
            }
        }
        memory.first_calls.clear();
        memory.read_after = 0;
        tracing::trace!("dispatcher memory reloaded: {} deliveries", queues.len());
    }
    let held = memory.direct.ids();
    // Read on from `read_after`: most rounds then read only the new events, not past the events held
    // (hundreds under load, BENCHMARKS.md problem 17), and leave out only those held beyond it.
    let after = memory.read_after;
    let held_after: Vec<i64> = held.iter().copied().filter(|id| *id > after).collect();
    let (events, in_order) = arrivals::pending_events(
        db,
        deps.handed,
        &mut memory.arrived,
        after,
        FAN_OUT_BATCH,
        &held_after,
    )?;
    result.more = events.len() >= FAN_OUT_BATCH as usize;
    let targets: Vec<Target> = events
        .into_iter()
        .map(|e| {
            let (plugins, call) = subscribers(registry, &e);
            (e, plugins, call)
        })
        .collect();
    let running = registry.running();
    queues.promote(now);
    let expired = memory
        .unloaded
        .expired(queues, &running, now, config.unloaded_grace);
    if finished.is_empty()
        && targets.is_empty()
        && expired.is_empty()
        && !memory.direct.flush_due(Instant::now(), room.settle)
        && !running.iter().any(|p| queues.has_ready(p.name()))
    {
        return Ok(result);
    }

    // One transaction: outcomes, the bounds, fan-out, then the ready heads of the running plugins, as
    // far as each has room. Memory follows along (a failed commit makes the caller reload it).
    let mut backlogs = Backlogs::new(config.max_backlog_per_plugin);
    let mut given_up: Vec<GivenUp> = Vec::new();
    let mut fanned_out = false;
    // Per event of `targets` fanned out (by index), how many deliveries it queued.
    let mut queued: Vec<(usize, usize)> = Vec::new();
    // Changed only once the round commits: a failed round leaves the held events as they were.
    let mut direct = Direct::default();
    // Whether every event read was fanned out or held (the round's transaction decides).
    let mut all_taken = false;
    let (starts, stale) = db.write_deliveries(|tx| {
        fanned_out = false;
        queued.clear();
        direct = memory.direct.clone();
        let from_outbox = tx.may_start_from_outbox();
        all_taken = from_outbox;
        record_all(tx, finished, now)?;
        for f in finished.iter() {
            if f.from_outbox {
                direct.ended(f.event_id, &f.plugin);
            }
            let again = match f.outcome {
                DeliveryOutcome::Retry { at, .. } | DeliveryOutcome::Postponed { at } => Some(at),
                DeliveryOutcome::Delivered | DeliveryOutcome::DeadLettered { .. } => None,
            };
            queues.finish(&f.plugin, &f.conversation, f.event_id, again, now);
        }
        for plugin in &expired {
            let reason = unloaded_reason(plugin, config.unloaded_grace);
            let count = tx.dead_letter_waiting(plugin, &reason, now)?;
            queues.drop_waiting(plugin, now);
            // None on a cluster node while another node runs the plugin (the next reload brings its
            // deliveries back into memory).
            if count > 0 {
                given_up.push(GivenUp::Unloaded {
                    plugin: plugin.clone(),
                    count,
                    reason,
                });
            }
        }
        // On a node of a cluster another node may be fanning out, or have fanned some of these out since
        // they were read: fan out only under the cluster's lock, and only what is still in the outbox.
        // On a server on its own nobody else fans out (one statement less per round on PostgreSQL).
        let fan_out: Vec<(usize, &Target)> = if targets.is_empty() {
            Vec::new()
        } else if from_outbox {
            targets.iter().enumerate().collect()
        } else if !tx.may_fan_out()? {
            Vec::new()
        } else {
            let limit = FAN_OUT_BATCH.saturating_add(u32::try_from(held.len()).unwrap_or(u32::MAX));
            let still: HashSet<i64> = tx.pending_event_ids(limit)?.into_iter().collect();
            targets
                .iter()
                .enumerate()
                .filter(|(_, (e, _, _))| still.contains(&e.id()))
                .collect()
        };
        // On a node of a cluster every delivery has its row: the round's events are fanned out together
        // once their backlogs are checked, in two statements instead of one or more per event.
        let mut together: Vec<(usize, Cow<'_, StoredEvent>, Vec<String>)> = Vec::new();
        for (index, (event, plugins, _)) in fan_out {
            let split = backlogs.split(queues, plugins);
            for plugin in split.full {
                let disabled = running
                    .iter()
                    .any(|p| p.name() == plugin && p.dispatch_capacity(1) == 0);
                let reason = backlog_full_reason(&plugin, backlogs.cap(), disabled);
                tx.dead_letter_unqueued(event.id(), &plugin, &reason, now)?;
                given_up.push(GivenUp::BacklogFull {
                    plugin,
                    event_id: event.id(),
                    reason,
                });
            }
            if !from_outbox {
                together.push((index, event.stored(), split.queue));
                continue;
            }
            // A plugin whose queue holds no row is owed the event straight from the outbox.
            let conversation = event.conversation_id().unwrap_or("");
            let (straight, rowed): (Vec<String>, Vec<String>) =
                split.queue.into_iter().partition(|plugin| {
                    direct.has_room() && queues.may_start_from_outbox(plugin, conversation)
                });
            let rows = if straight.is_empty() {
                tx.fan_out_event(&event.stored(), &rowed, now)?
            } else if rowed.is_empty() {
                Vec::new()
            } else {
                tx.queue_event(&event.stored(), &rowed, now)?
            };
            queued.push((index, rows.len() + straight.len()));
            for row in rows {
                queues.insert(row, now);
                fanned_out = true;
            }
            for plugin in &straight {
                queues.insert_from_outbox(plugin, conversation, event.id(), now);
            }
            if !straight.is_empty() {
                direct.hold(event.id(), conversation, &straight);
            }
        }
        let events: Vec<(&StoredEvent, &[String])> = together
            .iter()
            .map(|(_, event, plugins)| (event.as_ref(), plugins.as_slice()))
            .collect();
        let created = tx.fan_out_events(&events, now)?;
        for ((index, _, _), rows) in together.iter().zip(created) {
            queued.push((*index, rows.len()));
            for row in rows {
                queues.insert(row, now);
                fanned_out = true;
            }
        }
        let (starts, stale) = start_ready(tx, queues, &mut direct, &running, room, now)?;
        // What is owed straight from the outbox and did not start may wait for a later round only
        // while nothing else can hold it up: its plugin runs and is not switched off, and no row waits
        // in its queue (a retry). Otherwise it gets its row now. Then the events no plugin is owed any
        // more leave the outbox.
        let mut give_rows = Vec::new();
        for owed in direct.owed().filter(|owed| !owed.started) {
            let may_wait = !room.settle
                && queues.may_start_from_outbox(owed.plugin, owed.conversation)
                && running
                    .iter()
                    .any(|p| p.name() == owed.plugin && p.dispatch_capacity(1) > 0);
            if !may_wait {
                give_rows.push(QueuedDelivery {
                    event_id: owed.event_id,
                    plugin: owed.plugin.to_owned(),
                    conversation: owed.conversation.to_owned(),
                    next_attempt_at: now,
                    in_flight: false,
                });
            }
        }
        for delivery in give_rows {
            tx.requeue_delivery(&delivery, 0, None)?;
            queues.written(&delivery.plugin, &delivery.conversation, delivery.event_id);
            direct.ended(delivery.event_id, &delivery.plugin);
            fanned_out = true;
        }
        let at = Instant::now();
        direct.release(at);
        let released = direct.take_released(at, room.settle);
        tx.leave_outbox(&released)?;
        Ok((starts, stale))
    })?;
    memory.direct = direct;
    // Every event read has left the outbox or is held, and none with a smaller id can commit later.
    if all_taken
        && in_order
        && let Some((last, _, _)) = targets.last()
    {
        memory.read_after = memory.read_after.max(last.id());
    }
    deps.stats.set_owed(memory.direct.owed_counts());
    for (index, deliveries) in queued {
        if let Some((event, _, Some(call))) = targets.get(index) {
            memory
                .first_calls
                .keep(event.id(), call.clone(), deliveries);
        }
    }
    report(deps, &mut memory.warnings, finished, &given_up, now);
    finished.clear();
    result.fanned_out = fanned_out;
    let queues = &mut memory.queues;
    // From here on nothing may return early: the starts are committed and must reach the caller.
    // The store disagrees with memory about these queues (a replayed dead letter went first): re-read.
    for head in stale {
        match db.read(|c| c.delivery_queue(&head.plugin, &head.conversation)) {
            Ok(rows) => {
                tracing::debug!(
                    plugin = head.plugin,
                    event_id = head.event_id,
                    "queue changed behind the dispatcher; reloaded it ({} deliveries)",
                    rows.len()
                );
                queues.replace_queue(&head.plugin, &head.conversation, rows, now);
                result.more = true;
            }
            Err(e) => tracing::error!(plugin = head.plugin, "re-reading a queue failed: {e}"),
        }
    }

    // The hook calls to make: a first attempt's as the fan-out built it; any other's built from its
    // event, read now (after the commit, holding no lock), once per event and attempt number however
    // many plugins it goes to.
    let first_calls = &mut memory.first_calls;
    let kept: Vec<Option<Call>> = starts
        .iter()
        .map(|start| {
            (start.row.attempt == 1)
                .then(|| first_calls.take(start.head.event_id))
                .flatten()
        })
        .collect();
    let missing: HashSet<i64> = starts
        .iter()
        .zip(&kept)
        .filter(|(_, call)| call.is_none())
        .map(|(start, _)| start.head.event_id)
        .collect();
    let read: HashMap<i64, Result<StoredEvent, String>> = if missing.is_empty() {
        HashMap::new()
    } else {
        db.read(|c| {
            Ok(missing
                .iter()
                .map(|id| (*id, c.get_event(*id).map_err(|e| e.to_string())))
                .collect())
        })
        .unwrap_or_else(|e| missing.iter().map(|id| (*id, Err(e.to_string()))).collect())
    };
    let mut built: HashMap<(i64, u32), Call> = HashMap::new();
    // Whether the run being built lost a delivery: the rest of it must wait, not run out of order.
    let mut broken = false;
    for (start, call) in starts.into_iter().zip(kept) {
        let Start {
            head,
            row,
            plugin,
            follows,
            from_outbox,
        } = start;
        if !follows {
            broken = false;
        } else if broken {
            // Its attempt is given back; it is due again at once, behind the one that failed.
            finished.push(Finished {
                outcome: DeliveryOutcome::Postponed { at: now },
                plugin: head.plugin,
                conversation: head.conversation,
                event_id: head.event_id,
                attempt: row.attempt,
                ends_run: true,
                from_outbox,
            });
            continue;
        }
        let call = match (call, read.get(&head.event_id)) {
            (Some(call), _) => Ok(call),
            (None, Some(Ok(event))) => Ok(built
                .entry((event.id, row.attempt))
                .or_insert_with(|| hook_call(event, row.attempt))
                .clone()),
            (None, Some(Err(error))) => Err(error.clone()),
            (None, None) => Err(format!("event {} was not read", head.event_id)),
        };
        match call {
            Ok(call) => result.started.push(Started {
                call,
                event_id: head.event_id,
                attempt: row.attempt,
                plugin,
                conversation: head.conversation,
                follows,
                from_outbox,
                leased_until: row.leased_until,
            }),
            // Cannot happen while events are never deleted and the disk works; if it does, it counts
            // as a failed attempt.
            Err(error) => {
                finished.push(Finished {
                    outcome: failed(config, row.attempt, error, now),
                    plugin: head.plugin,
                    conversation: head.conversation,
                    event_id: head.event_id,
                    attempt: row.attempt,
                    ends_run: true,
                    from_outbox,
                });
                broken = true;
                result.more = true;
            }
        }
    }
    Ok(result)
}

/// The plugins an event is owed to: those exporting its hook (none for an unknown kind, or for a message
/// from a plugin chain deeper than [`MAX_HOOK_DEPTH`]); with them, the first attempt's hook call, built
/// from the same decode as the depth (or why the event cannot be decoded, which each attempt reports).
fn subscribers(registry: &Registry, event: &NewEvent) -> (Vec<String>, Option<Call>) {
    let Some(hook) = events::hook_for_kind(event.kind()) else {
        return (Vec::new(), None);
    };
    let plugins = registry.subscribers(hook);
    // Decoding the event costs more than asking who listens: only when someone does.
    if plugins.is_empty() {
        return (plugins, None);
    }
    match event.decode() {
        Ok(decoded) if decoded.plugin_depth() >= MAX_HOOK_DEPTH => (Vec::new(), None),
        Ok(decoded) => {
            let call = events::hook_call_of(&decoded, event.id(), event.created_at(), 1);
            (plugins, Some(Arc::new(Ok(call))))
        }
        Err(e) => (plugins, Some(Arc::new(Err(e.to_string())))),
    }
}
