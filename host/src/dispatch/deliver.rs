//! The blocking steps of dispatch: fanning new events out to subscribed plugins, starting the deliveries
//! that are due, and running one delivery (call the hook, record the outcome). The async loop in
//! [`super`] runs these on blocking threads; [`drain`] runs them in the caller's thread (tests, CLI).

use std::collections::HashMap;

use crate::events::{self, ChatEvent, MAX_HOOK_DEPTH};
use crate::model::Millis;
use crate::plugins::registry::{LoadedPlugin, Registry};
use crate::plugins::{CallError, HookOutput};
use crate::store::outbox::{self, Delivery};
use crate::store::{self, Db, dead_letters, ids::now_ms};

use super::DispatchConfig;

/// Events fanned out per database transaction: big enough to clear a burst quickly, small enough that
/// the writer lock is never held long (a fan-out is a few inserts per event).
const FAN_OUT_BATCH: u32 = 256;

/// A delivery that was started (marked in flight) and must now be run.
#[derive(Debug, Clone)]
pub(super) struct Started {
    /// What to deliver, to whom.
    pub delivery: Delivery,
    /// The attempt number `start_delivery` gave it.
    pub attempt: u32,
    /// The plugin version it was started for: it runs there even if a reload swaps the plugin meanwhile
    /// (a call in flight finishes on the old version; later deliveries get the new one).
    pub plugin: LoadedPlugin,
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The hook succeeded (or the plugin no longer exports it).
    Delivered,
    /// The attempt failed; retry at this time.
    Retry {
        /// When the next attempt is due.
        at: Millis,
        /// Why it failed.
        error: String,
    },
    /// The plugin's circuit breaker refused the call: the delivery waits, its attempt not counted.
    Postponed {
        /// When it is due again.
        at: Millis,
    },
    /// The last attempt failed; the delivery is now a dead letter.
    DeadLettered {
        /// Why the last attempt failed.
        error: String,
    },
}

/// Fans every event still in the outbox out to the plugins subscribed to its hook (none for an unknown
/// kind, or for a message from a plugin chain deeper than [`MAX_HOOK_DEPTH`]). Returns how many events
/// were fanned out.
pub(super) fn fan_out_pending(db: &Db, registry: &Registry, now: Millis) -> store::Result<usize> {
    let mut total = 0;
    loop {
        let pending = db.read(|c| outbox::pending_events(c, FAN_OUT_BATCH))?;
        if pending.is_empty() {
            return Ok(total);
        }
        let targets: Vec<(i64, Vec<String>)> = pending
            .iter()
            .map(|e| {
                let too_deep = ChatEvent::from_stored(e)
                    .is_ok_and(|decoded| decoded.plugin_depth() >= MAX_HOOK_DEPTH);
                let plugins = match events::hook_for_kind(&e.kind) {
                    Some(hook) if !too_deep => registry.subscribers(hook),
                    _ => Vec::new(),
                };
                (e.id, plugins)
            })
            .collect();
        db.write(|tx| {
            for (event_id, plugins) in &targets {
                outbox::fan_out(tx, *event_id, plugins, now)?;
            }
            Ok(())
        })?;
        total += targets.len();
    }
}

/// Starts up to `capacity[plugin]` due deliveries per running plugin (head of their queue only, so
/// they may run concurrently) and returns them with their attempt numbers. A plugin its circuit breaker
/// has disabled gets none (its deliveries wait), one whose trial call is due gets one.
pub(super) fn start_due(
    db: &Db,
    registry: &Registry,
    capacity: &HashMap<String, usize>,
    default_capacity: usize,
    now: Millis,
) -> store::Result<Vec<Started>> {
    let mut started = Vec::new();
    for plugin in registry.running() {
        let name = plugin.name().to_owned();
        let room = capacity.get(&name).copied().unwrap_or(default_capacity);
        let room = plugin.dispatch_capacity(room);
        if room == 0 {
            continue;
        }
        let limit = u32::try_from(room).unwrap_or(u32::MAX);
        let due =
            db.read(|c| outbox::next_deliveries(c, now, std::slice::from_ref(&name), limit))?;
        if due.is_empty() {
            continue;
        }
        let attempts = db.write(|tx| {
            due.iter()
                .map(|d| outbox::start_delivery(tx, d.event.id, &d.plugin))
                .collect::<store::Result<Vec<u32>>>()
        })?;
        started.extend(
            due.into_iter()
                .zip(attempts)
                .map(|(delivery, attempt)| Started {
                    delivery,
                    attempt,
                    plugin: plugin.clone(),
                }),
        );
    }
    Ok(started)
}

/// The delay before retrying after failed attempt `attempt` (1-based): `first_backoff` doubled per
/// attempt, capped at `max_backoff`.
pub fn backoff(config: &DispatchConfig, attempt: u32) -> std::time::Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    config
        .first_backoff
        .saturating_mul(1u32 << doublings)
        .min(config.max_backoff)
}

/// Runs one started delivery: builds the hook call from the stored event, calls the plugin, and records
/// success, a retry, or a dead letter. Blocking.
pub(super) fn run_delivery(
    db: &Db,
    config: &DispatchConfig,
    started: &Started,
) -> store::Result<DeliveryOutcome> {
    let Started {
        delivery,
        attempt,
        plugin,
    } = started;
    let (event_id, name) = (delivery.event.id, delivery.plugin.as_str());
    let call = db.read(|c| Ok(events::stored_hook_call(c, &delivery.event, *attempt)))?;
    let result: Result<(), String> = match call {
        Err(e) => Err(e.to_string()),
        Ok(call) => match plugin.call(&call) {
            Ok(HookOutput::Done(Ok(()))) | Ok(HookOutput::Decision(_)) => Ok(()),
            // A new version that dropped the hook has nothing to do with the event.
            Err(CallError::NotExported { .. }) => Ok(()),
            // Disabled by its circuit breaker since the delivery was started: not an attempt, it waits.
            Err(CallError::Disabled { retry_in, .. }) => {
                let at = now_ms()
                    .saturating_add(Millis::try_from(retry_in.as_millis()).unwrap_or(Millis::MAX));
                db.write(|tx| outbox::postpone_delivery(tx, event_id, name, at))?;
                return Ok(DeliveryOutcome::Postponed { at });
            }
            Ok(HookOutput::Done(Err(reason))) => Err(reason),
            Err(e) => Err(e.to_string()),
        },
    };
    let now = now_ms();
    match result {
        Ok(()) => {
            db.write(|tx| outbox::delivery_succeeded(tx, event_id, name))?;
            Ok(DeliveryOutcome::Delivered)
        }
        Err(error) if *attempt >= config.max_attempts => {
            tracing::warn!(
                plugin = name,
                event_id,
                attempt,
                "after-hook failed for the last time, dead-lettered: {error}"
            );
            db.write(|tx| dead_letters::dead_letter(tx, event_id, name, &error, now))?;
            Ok(DeliveryOutcome::DeadLettered { error })
        }
        Err(error) => {
            let delay = backoff(config, *attempt);
            let at = now.saturating_add(Millis::try_from(delay.as_millis()).unwrap_or(Millis::MAX));
            tracing::info!(plugin = name, event_id, attempt, retry_in = ?delay, "after-hook failed: {error}");
            db.write(|tx| outbox::delivery_failed(tx, event_id, name, &error, at))?;
            Ok(DeliveryOutcome::Retry { at, error })
        }
    }
}

/// Delivers everything that is due now, one delivery at a time in the calling thread, until nothing is
/// due (retries whose backoff has not elapsed are left). Returns the outcomes in order. For tests and
/// one-shot tools; the server runs [`super::Dispatcher`].
pub fn drain(
    db: &Db,
    registry: &Registry,
    config: &DispatchConfig,
) -> store::Result<Vec<DeliveryOutcome>> {
    let mut outcomes = Vec::new();
    loop {
        let now = now_ms();
        fan_out_pending(db, registry, now)?;
        let started = start_due(db, registry, &HashMap::new(), 1, now)?;
        if started.is_empty() {
            return Ok(outcomes);
        }
        for s in &started {
            outcomes.push(run_delivery(db, config, s)?);
        }
    }
}
