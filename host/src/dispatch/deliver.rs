//! The blocking steps of dispatch that concern one delivery: calling the hook and deciding the outcome
//! (done, retry after [`backoff`], postponed by the circuit breaker, or dead letter). Outcomes are not
//! written (or logged) here: the next `round` commits them together with the round's
//! other writes, then warns about failures. [`drain`] and [`Drainer`] run rounds and calls in the
//! caller's thread (tests, CLI).

use std::sync::Arc;

use crate::events;
use crate::model::Millis;
use crate::plugins::limits::wall_clock_cap;
use crate::plugins::registry::{LoadedPlugin, Registry};
use crate::plugins::{CallError, HookCall, HookOutput};
use crate::store::StoredEvent;
use crate::store::kv::{Commit, KvStore};
use crate::store::{self, Db};

use super::DispatchConfig;
use super::arrivals::Handed;
use super::round::{Deps, Finished, Memory, Room, round};
use super::stats::DispatchStats;

/// A delivery that was started (marked in flight) and must now be run.
#[derive(Debug, Clone)]
pub(super) struct Started {
    /// The event delivered.
    pub event_id: i64,
    /// The hook call built from the event (or why it could not be), shared by every plugin the round
    /// started the same event and attempt number for: the payload is decoded once, not once per plugin.
    pub call: Arc<Result<HookCall, String>>,
    /// The attempt number `start_head` gave it.
    pub attempt: u32,
    /// The plugin version it was started for: it runs there even if a reload swaps the plugin meanwhile
    /// (a call in flight finishes on the old version; later deliveries get the new one).
    pub plugin: LoadedPlugin,
    /// Its queue's conversation (`""` for none), to tell the queue when it ends.
    pub conversation: String,
    /// Whether it continues the run of the delivery started just before it (the next event of the same
    /// queue): the two are called in order on one thread, and it is not called if that one failed or was
    /// slow.
    pub follows: bool,
    /// A first attempt made straight from the outbox, with no delivery row ([`super::direct`]).
    pub from_outbox: bool,
    /// On a node of a cluster, when this node's lease on the delivery runs out
    /// ([`StartedRow::leased_until`](crate::store::StartedRow::leased_until)): the runner does not begin
    /// a call that could outlast it ([`Started::lease_too_short`]).
    pub leased_until: Option<Millis>,
}

impl Started {
    /// Whether this delivery's lease ends within the wall-clock cap of its call at `now`, so that another
    /// node could start it again while it runs here. Never for the deliveries of a server on its own; on
    /// a node of a cluster only for one far down a long row of calls (a lease outlasts a call's cap with
    /// room for thousands of fast calls before it).
    pub(super) fn lease_too_short(&self, now: Millis) -> bool {
        self.leased_until.is_some_and(|until| {
            let cap = wall_clock_cap(self.plugin.plugin.limits().after_hook_budget);
            now.saturating_add(Millis::try_from(cap.as_millis()).unwrap_or(Millis::MAX)) > until
        })
    }

    /// The call ended with `outcome` (`ends_run`: the last report of its run): what the next round
    /// records.
    pub(super) fn finished(&self, outcome: DeliveryOutcome, ends_run: bool) -> Finished {
        Finished {
            plugin: self.plugin.name().to_owned(),
            conversation: self.conversation.clone(),
            event_id: self.event_id,
            attempt: self.attempt,
            outcome,
            ends_run,
            from_outbox: self.from_outbox,
        }
    }
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

/// The delay before retrying after failed attempt `attempt` (1-based): `first_backoff` doubled per
/// attempt, capped at `max_backoff`.
pub fn backoff(config: &DispatchConfig, attempt: u32) -> std::time::Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    config
        .first_backoff
        .saturating_mul(1u32 << doublings)
        .min(config.max_backoff)
}

/// The outcome of failed attempt `attempt`: a retry after [`backoff`], or a dead letter after the last.
pub(super) fn failed(
    config: &DispatchConfig,
    attempt: u32,
    error: String,
    now: Millis,
) -> DeliveryOutcome {
    if attempt >= config.max_attempts {
        return DeliveryOutcome::DeadLettered { error };
    }
    let delay = backoff(config, attempt);
    let at = now.saturating_add(Millis::try_from(delay.as_millis()).unwrap_or(Millis::MAX));
    DeliveryOutcome::Retry { at, error }
}

/// The hook call of `event` at attempt number `attempt`, built from its payload (which holds every
/// argument, so no store read), or why it cannot be.
pub(super) fn hook_call(event: &StoredEvent, attempt: u32) -> Arc<Result<HookCall, String>> {
    Arc::new(events::stored_hook_call(event, attempt).map_err(|e| e.to_string()))
}

/// Runs one started delivery: calls the plugin with the hook call the round built. Returns the outcome
/// for the next round to record (and warn about). Blocking.
pub(super) fn run_delivery(config: &DispatchConfig, started: &Started) -> DeliveryOutcome {
    let Started {
        call,
        attempt,
        plugin,
        ..
    } = started;
    let result: Result<(), String> = match call.as_ref() {
        Err(e) => Err(e.clone()),
        Ok(call) => match plugin.call_with(call, Commit::Later) {
            Ok(HookOutput::Done(Ok(()))) | Ok(HookOutput::Decision(_)) => Ok(()),
            // A new version that dropped the hook has nothing to do with the event.
            Err(CallError::NotExported { .. }) => Ok(()),
            // Disabled by its circuit breaker since the delivery was started: not an attempt, it waits.
            Err(CallError::Disabled { retry_in, .. }) => {
                let at = config
                    .clock
                    .now_ms()
                    .saturating_add(Millis::try_from(retry_in.as_millis()).unwrap_or(Millis::MAX));
                return DeliveryOutcome::Postponed { at };
            }
            Ok(HookOutput::Done(Err(reason))) => Err(reason),
            Err(e) => Err(e.to_string()),
        },
    };
    match result {
        Ok(()) => DeliveryOutcome::Delivered,
        Err(error) => failed(config, *attempt, error, config.clock.now_ms()),
    }
}

/// Makes the KV writes of the calls reported in `reports` durable before their outcomes are recorded:
/// deliveries write with [`Commit::Later`], so a run commits once, not once per write. `lost_before` is
/// [`KvStore::lost_count`] read before the first of those calls: if the commit fails, or writes waiting
/// with theirs were rolled back meanwhile (another thread's commit failed), the delivered ones count as
/// failed attempts and are retried. Blocking.
pub(super) fn settle_kv_writes(
    config: &DispatchConfig,
    kv: &KvStore,
    reports: &mut [Finished],
    lost_before: u64,
) {
    let committed = kv.commit_waiting();
    if committed.is_ok() && kv.lost_count() == lost_before {
        return;
    }
    let error = match committed {
        Err(e) => format!("its KV writes were rolled back: {e}"),
        Ok(()) => "its KV writes were rolled back by a failed commit".to_owned(),
    };
    let now = config.clock.now_ms();
    for f in reports {
        if f.outcome == DeliveryOutcome::Delivered {
            f.outcome = failed(config, f.attempt, error.clone(), now);
        }
    }
}

/// Delivers everything that is due now, one delivery per plugin at a time in the calling thread, until
/// nothing is due (retries whose backoff has not elapsed are left). Returns the outcomes in order. For
/// tests and one-shot tools; the server runs [`super::Dispatcher`]. Same rounds as the server's loop.
pub fn drain(
    db: &Db,
    registry: &Registry,
    config: &DispatchConfig,
) -> store::Result<Vec<DeliveryOutcome>> {
    Drainer::default().drain(db, registry, config)
}

/// [`drain`] that keeps what the dispatcher remembers between rounds (how long a plugin has been
/// unloaded, the warnings' rate limit) from one call to the next, as the server's loop does: a test can
/// advance its clock between calls.
#[derive(Debug, Default)]
pub struct Drainer {
    memory: Memory,
    stats: Arc<DispatchStats>,
}

impl Drainer {
    /// Like [`drain`]; the queues are reloaded from the store first.
    pub fn drain(
        &mut self,
        db: &Db,
        registry: &Registry,
        config: &DispatchConfig,
    ) -> store::Result<Vec<DeliveryOutcome>> {
        let deps = Deps {
            db,
            registry,
            config,
            stats: &self.stats,
            handed: &Handed::default(),
        };
        let mut outcomes = Vec::new();
        let mut finished = Vec::new();
        let room = Room {
            default: 1,
            settle: true,
            ..Room::default()
        };
        let mut reload = true;
        loop {
            let done = round(&deps, &mut self.memory, &mut finished, &room, reload)?;
            reload = false;
            if done.started.is_empty() && !done.more && finished.is_empty() {
                return Ok(outcomes);
            }
            let kv = registry.runtime().kv();
            let lost_before = kv.lost_count();
            let mut reports: Vec<Finished> = done
                .started
                .iter()
                .map(|s| s.finished(run_delivery(config, s), true))
                .collect();
            settle_kv_writes(config, kv, &mut reports, lost_before);
            outcomes.extend(reports.iter().map(|f| f.outcome.clone()));
            finished.extend(reports);
        }
    }

    /// What it counted.
    pub fn stats(&self) -> &DispatchStats {
        &self.stats
    }
}
