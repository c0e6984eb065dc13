//! One dispatch round, blocking: record the outcomes of finished calls, fan new events out, and start
//! the due queue heads, all in one write transaction, so a busy dispatcher takes the write lock once per
//! round (however many calls ended and events arrived since the last), not three times per delivery.
//!
//! Order inside a round matters: outcomes are recorded before heads are chosen, so a queue whose head
//! just succeeded offers its next event in the same round; the start of a head is committed before its
//! hook is called, so attempt numbers stay right across crashes.

use std::collections::HashMap;

use crate::events::{self, ChatEvent, MAX_HOOK_DEPTH};
use crate::model::Millis;
use crate::plugins::registry::{LoadedPlugin, Registry};
use crate::store::events::{self as stored_events, StoredEvent};
use crate::store::outbox::{self, Delivery, DeliveryState, StartedRow};
use crate::store::{self, Db, StoreError, dead_letters, ids::now_ms};

use super::DispatchConfig;
use super::deliver::{DeliveryOutcome, Started, failed};
use super::queues::{Head, Queues};

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
    /// How the call ended.
    pub outcome: DeliveryOutcome,
}

/// What a round may start.
#[derive(Debug, Clone, Default)]
pub(super) struct Room {
    /// Calls each plugin may start now; plugins not named get `default`.
    pub per_plugin: HashMap<String, usize>,
    /// For plugins not in `per_plugin`.
    pub default: usize,
}

/// What a round did.
#[derive(Debug, Default)]
pub(super) struct RoundResult {
    /// Deliveries started (committed in flight): the caller runs them.
    pub started: Vec<Started>,
    /// There is more to do at once (a full fan-out batch, a queue reloaded, an outcome to record).
    pub more: bool,
}

/// Runs one round. `finished` is emptied once its outcomes are committed (kept if the round fails, to be
/// recorded by the next). `reload` replaces `queues` with the store's view first. After an error,
/// `queues` may be ahead of the store: the next round must reload.
pub(super) fn round(
    db: &Db,
    registry: &Registry,
    config: &DispatchConfig,
    queues: &mut Queues,
    finished: &mut Vec<Finished>,
    room: &Room,
    reload: bool,
) -> store::Result<RoundResult> {
    let now = now_ms();
    let mut result = RoundResult::default();
    if reload {
        // Before this round's writes: outcomes and fan-outs below apply to the reloaded memory as well.
        *queues = Queues::load(db.read(outbox::queued_deliveries)?, now);
        tracing::trace!("dispatcher memory reloaded: {} deliveries", queues.len());
    }
    let events = db.read(|c| outbox::pending_events(c, FAN_OUT_BATCH))?;
    result.more = events.len() >= FAN_OUT_BATCH as usize;
    let targets: Vec<(StoredEvent, Vec<String>)> = events
        .into_iter()
        .map(|e| {
            let plugins = subscribers(registry, &e);
            (e, plugins)
        })
        .collect();
    let running = registry.running();
    queues.promote(now);
    if finished.is_empty()
        && targets.is_empty()
        && !running.iter().any(|p| queues.has_ready(p.name()))
    {
        return Ok(result);
    }

    // One transaction: outcomes, fan-out, then the ready heads of the running plugins, as far as each
    // has room. Memory follows along (a failed commit makes the caller reload it).
    let (starts, stale) = db.write(|tx| {
        for f in finished.iter() {
            record(tx, f, now)?;
            let again = match f.outcome {
                DeliveryOutcome::Retry { at, .. } | DeliveryOutcome::Postponed { at } => Some(at),
                DeliveryOutcome::Delivered | DeliveryOutcome::DeadLettered { .. } => None,
            };
            queues.finish(&f.plugin, &f.conversation, f.event_id, again, now);
        }
        for (event, plugins) in &targets {
            for row in outbox::fan_out_event(tx, event, plugins, now)? {
                queues.insert(row, now);
            }
        }
        let mut starts: Vec<(Head, StartedRow, LoadedPlugin)> = Vec::new();
        let mut stale: Vec<Head> = Vec::new();
        for plugin in &running {
            let name = plugin.name();
            if !queues.has_ready(name) {
                continue;
            }
            let room = room.per_plugin.get(name).copied().unwrap_or(room.default);
            for head in queues.ready(name, plugin.dispatch_capacity(room)) {
                match outbox::start_head(tx, head.event_id, &head.plugin, now)? {
                    Some(row) => {
                        queues.start(&head, now);
                        starts.push((head, row, plugin.clone()));
                    }
                    None => stale.push(head),
                }
            }
        }
        Ok((starts, stale))
    })?;
    finished.clear();
    // From here on nothing may return early: the starts are committed and must reach the caller.
    // The store disagrees with memory about these queues (a replayed dead letter went first): re-read.
    for head in stale {
        match db.read(|c| outbox::queue(c, &head.plugin, &head.conversation)) {
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

    // The events to deliver (read after the commit, holding no lock).
    let loaded: Vec<Result<StoredEvent, String>> = db
        .read(|c| {
            Ok(starts
                .iter()
                .map(|(head, _, _)| {
                    stored_events::get_event(c, head.event_id).map_err(|e| e.to_string())
                })
                .collect())
        })
        .unwrap_or_else(|e| starts.iter().map(|_| Err(e.to_string())).collect());
    for ((head, row, plugin), event) in starts.into_iter().zip(loaded) {
        match event {
            Ok(event) => result.started.push(Started {
                delivery: Delivery {
                    event,
                    plugin: head.plugin.clone(),
                    attempt: row.attempt,
                    next_attempt_at: row.next_attempt_at,
                    last_error: row.last_error,
                    state: DeliveryState::InFlight,
                },
                attempt: row.attempt,
                plugin,
                conversation: head.conversation,
            }),
            // Cannot happen while events are never deleted and the disk works; if it does, it counts
            // as a failed attempt.
            Err(error) => {
                finished.push(Finished {
                    outcome: failed(config, row.attempt, error, now),
                    plugin: head.plugin,
                    conversation: head.conversation,
                    event_id: head.event_id,
                });
                result.more = true;
            }
        }
    }
    Ok(result)
}

/// The plugins an event is owed to: those exporting its hook (none for an unknown kind, or for a message
/// from a plugin chain deeper than [`MAX_HOOK_DEPTH`]).
fn subscribers(registry: &Registry, event: &StoredEvent) -> Vec<String> {
    let too_deep =
        ChatEvent::from_stored(event).is_ok_and(|decoded| decoded.plugin_depth() >= MAX_HOOK_DEPTH);
    match events::hook_for_kind(&event.kind) {
        Some(hook) if !too_deep => registry.subscribers(hook),
        _ => Vec::new(),
    }
}

/// Commits one outcome. A delivery that is gone already (nothing else removes one while its call runs,
/// but a store edited by hand might) is logged and skipped rather than failing the whole round.
fn record(tx: &rusqlite::Transaction<'_>, f: &Finished, now: Millis) -> store::Result<()> {
    let (event_id, plugin) = (f.event_id, f.plugin.as_str());
    let written = match &f.outcome {
        DeliveryOutcome::Delivered => outbox::delivery_succeeded(tx, event_id, plugin).map(|_| ()),
        DeliveryOutcome::Retry { at, error } => {
            outbox::delivery_failed(tx, event_id, plugin, error, *at)
        }
        DeliveryOutcome::Postponed { at } => outbox::postpone_delivery(tx, event_id, plugin, *at),
        DeliveryOutcome::DeadLettered { error } => {
            dead_letters::dead_letter(tx, event_id, plugin, error, now).map(|_| ())
        }
    };
    match written {
        Err(StoreError::NotFound { .. }) => {
            tracing::warn!(
                plugin,
                event_id,
                "the delivery vanished while its call ran; outcome not recorded"
            );
            Ok(())
        }
        other => other,
    }
}
