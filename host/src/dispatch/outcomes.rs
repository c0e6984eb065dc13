//! What a round does with the calls that ended and the deliveries its bounds gave up: commits each
//! outcome ([`record`]), then, once committed, logs and counts what needs an operator ([`report`]).

use crate::model::Millis;
use crate::store::{self, Deliveries, QueuedDelivery, StoreError};

use super::backoff;
use super::deliver::DeliveryOutcome;
use super::round::{Deps, Finished};
use super::stats::DeadLetterCause;
use super::warnings::{WarningKind, Warnings};

/// Deliveries a round's bounds turned into dead letters, to log and count once committed.
#[derive(Debug)]
pub(super) enum GivenUp {
    /// One event not queued for a plugin whose backlog was full.
    BacklogFull {
        plugin: String,
        event_id: i64,
        reason: String,
    },
    /// An unloaded plugin's waiting deliveries, after the grace period.
    Unloaded {
        plugin: String,
        count: usize,
        reason: String,
    },
}

/// Logs (as rate-limited warnings) and counts what a committed round did that needs an operator's
/// attention: failed attempts, dead letters, and what the backlog bounds gave up.
pub(super) fn report(
    deps: &Deps<'_>,
    warnings: &mut Warnings,
    finished: &[Finished],
    given_up: &[GivenUp],
    now: Millis,
) {
    let Deps { config, stats, .. } = *deps;
    for f in finished {
        let (plugin, event_id, attempt, max) =
            (&f.plugin, f.event_id, f.attempt, config.max_attempts);
        match &f.outcome {
            DeliveryOutcome::Retry { error, .. } => {
                let retry_in = backoff(config, attempt);
                let message = format!(
                    "after-hook delivery of event {event_id} failed (attempt {attempt} of {max}); \
                     retrying in {retry_in:?}: {error}"
                );
                warnings.warn(plugin, WarningKind::Retry, now, message);
            }
            DeliveryOutcome::DeadLettered { error } => {
                stats.dead_lettered(plugin, DeadLetterCause::Attempts, 1);
                let message = format!(
                    "after-hook delivery of event {event_id} failed for the last time (attempt \
                     {attempt} of {max}) and is now a dead letter (GET /v1/admin/dead-letters): {error}"
                );
                warnings.warn(plugin, WarningKind::DeadLettered, now, message);
            }
            DeliveryOutcome::Delivered | DeliveryOutcome::Postponed { .. } => {}
        }
    }
    for g in given_up {
        match g {
            GivenUp::BacklogFull {
                plugin,
                event_id,
                reason,
            } => {
                stats.dead_lettered(plugin, DeadLetterCause::BacklogFull, 1);
                let message = format!("event {event_id} is a dead letter: {reason}");
                warnings.warn(plugin, WarningKind::BacklogFull, now, message);
            }
            GivenUp::Unloaded {
                plugin,
                count,
                reason,
            } => {
                let n = u64::try_from(*count).unwrap_or(u64::MAX);
                stats.dead_lettered(plugin, DeadLetterCause::Unloaded, n);
                let message = format!("{count} waiting deliveries are dead letters: {reason}");
                warnings.warn(plugin, WarningKind::Unloaded, now, message);
            }
        }
    }
}

/// Commits the outcomes of `finished`: the deliveries with a row that succeeded (nearly every outcome
/// of a backlog) in one call and those whose calls were not made in a second (one statement each on
/// PostgreSQL), the others one by one ([`record`]). Each outcome writes only its own delivery, so the
/// order between them does not matter.
pub(super) fn record_all(
    tx: &dyn Deliveries,
    finished: &[Finished],
    now: Millis,
) -> store::Result<()> {
    let (done, others): (Vec<&Finished>, Vec<&Finished>) = finished
        .iter()
        .partition(|f| !f.from_outbox && matches!(f.outcome, DeliveryOutcome::Delivered));
    let done: Vec<(i64, &str)> = done
        .iter()
        .map(|f| (f.event_id, f.plugin.as_str()))
        .collect();
    // A delivery already gone needs no removing, as for `record`.
    tx.deliveries_succeeded(&done)?;
    // Calls not made (the rest of a run that stopped) put back together, one statement on PostgreSQL.
    let (postponed, others): (Vec<&Finished>, Vec<&Finished>) = others
        .into_iter()
        .partition(|f| !f.from_outbox && matches!(f.outcome, DeliveryOutcome::Postponed { .. }));
    let back: Vec<(i64, &str, Millis)> = postponed
        .iter()
        .filter_map(|f| match f.outcome {
            DeliveryOutcome::Postponed { at } => Some((f.event_id, f.plugin.as_str(), at)),
            _ => None,
        })
        .collect();
    for ((event_id, plugin, _), there) in back.iter().zip(tx.postpone_deliveries(&back)?) {
        if !there {
            vanished(plugin, *event_id);
        }
    }
    others.into_iter().try_for_each(|f| record(tx, f, now))
}

/// Commits one outcome. A delivery that is gone already (nothing else removes one while its call runs,
/// but a store edited by hand might) is logged and skipped rather than failing the whole round.
fn record(tx: &dyn Deliveries, f: &Finished, now: Millis) -> store::Result<()> {
    if f.from_outbox {
        return record_from_outbox(tx, f, now);
    }
    let (event_id, plugin) = (f.event_id, f.plugin.as_str());
    let written = match &f.outcome {
        DeliveryOutcome::Delivered => tx.delivery_succeeded(event_id, plugin).map(|_| ()),
        DeliveryOutcome::Retry { at, error } => tx.delivery_failed(event_id, plugin, error, *at),
        DeliveryOutcome::Postponed { at } => tx.postpone_delivery(event_id, plugin, *at),
        DeliveryOutcome::DeadLettered { error } => {
            tx.dead_letter(event_id, plugin, error, now).map(|_| ())
        }
    };
    match written {
        Err(StoreError::NotFound { .. }) => {
            vanished(plugin, event_id);
            Ok(())
        }
        other => other,
    }
}

/// Logs an outcome not recorded because its delivery is gone.
fn vanished(plugin: &str, event_id: i64) {
    tracing::warn!(
        plugin,
        event_id,
        "the delivery vanished while its call ran; outcome not recorded"
    );
}

/// Commits the outcome of a first attempt made straight from the outbox ([`super::direct`]): nothing
/// for a success; otherwise the delivery row it did not have, as the attempt left it (a retry due later,
/// a call not made due again, or a dead letter).
fn record_from_outbox(tx: &dyn Deliveries, f: &Finished, now: Millis) -> store::Result<()> {
    let delivery = |next_attempt_at, in_flight| QueuedDelivery {
        event_id: f.event_id,
        plugin: f.plugin.clone(),
        conversation: f.conversation.clone(),
        next_attempt_at,
        in_flight,
    };
    match &f.outcome {
        DeliveryOutcome::Delivered => Ok(()),
        DeliveryOutcome::Retry { at, error } => {
            tx.requeue_delivery(&delivery(*at, false), f.attempt, Some(error))
        }
        DeliveryOutcome::Postponed { at } => {
            tx.requeue_delivery(&delivery(*at, false), f.attempt.saturating_sub(1), None)
        }
        DeliveryOutcome::DeadLettered { error } => {
            tx.requeue_delivery(&delivery(now, true), f.attempt, Some(error))?;
            tx.dead_letter(f.event_id, &f.plugin, error, now)
                .map(|_| ())
        }
    }
}
