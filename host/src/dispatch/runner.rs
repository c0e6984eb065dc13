//! Running the deliveries a round started, on blocking threads, and reporting each outcome to the loop.
//!
//! Under load the calls are not what costs: a profile of the server with five plugins on every hook
//! (BENCHMARKS.md, section 2) spent a fifth of its time in the kernel switching threads, because each
//! delivery was a `spawn_blocking` of its own (wake a pool thread, run a 7 µs call, report, park). So the
//! deliveries a round starts run in a few rows, one blocking thread each (as many rows as the machine
//! has cores, so the calls still use every core): a few hops per round instead of one per delivery.
//!
//! A round may start several events of one queue together, as a run ([`super::round::MAX_RUN`]), so a
//! busy conversation's queue moves by dozens of events per round, not one. A run's calls are made in
//! order on one thread; once one does not succeed or takes [`STOPS_RUN`] or more, the rest of the run is
//! not called but postponed (attempt given back, due again at once, behind it), so the queue's order
//! holds and a run never holds a thread for more than one call that long.
//!
//! The calls write to the plugins' KV store with [`Commit::Later`](crate::store::kv::Commit): a row (or
//! a run on its own thread) commits their writes once, after its last call and before it reports any
//! outcome, so a delivery is never recorded as done without its writes, and one KV commit serves a row
//! instead of each write paying its own (on a file, most of what an increment cost).
//!
//! In a row, a slow call would hold back the deliveries behind it (after-hooks only: requests never wait
//! for a delivery). Two rules bound that:
//! - only the deliveries of plugins whose calls are fast lately ([`Recent::fast`]: the latest and all but
//!   [`SLOW_ALLOWED`] of the last [`FAST_WINDOW`] took under [`SLOW_CALL`]) run in rows; a plugin that
//!   was slow lately gets a thread per delivery, as before, so a plugin waiting on HTTP still makes its
//!   calls side by side and never delays another;
//! - a call that turns out slow inside a row hands the runs of the row not yet begun to threads of their
//!   own as soon as it returns, so a plugin that turns slow delays the other runs by one call, once (its
//!   own run goes on, alone on the thread now, unless the call took [`STOPS_RUN`], see above).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::DispatchConfig;
use super::deliver::{self, DeliveryOutcome, Started};
use super::round::Finished;
use crate::store::kv::KvStore;

/// A call that takes longer than this is slow: more than a hundred times a typical after-hook (7-30 µs
/// in BENCHMARKS.md), about what an outbound request or a large KV scan costs. Measured in real time, as
/// it is the machine's cost, not the chat's clock.
pub const SLOW_CALL: Duration = Duration::from_millis(2);

/// A call that takes this long stops its run: the rest is given back for a later round. Ten times
/// [`SLOW_CALL`], so that a call merely slowed by a busy machine does not: on a cluster node sharing two
/// busy cores with PostgreSQL, 7% of the bench plugins' calls took 2-4 ms, and stopping their runs there
/// gave back 6,865 deliveries for 10,020 made, each a lease taken and returned (BENCHMARKS.md problem
/// 37). A run holds its thread (and a shutdown) for at most [`super::round::MAX_RUN`] calls of under
/// this each, or fewer and the one that stops it.
pub const STOPS_RUN: Duration = Duration::from_millis(20);

/// The latest calls of a plugin that tell whether it is fast lately ([`Recent::fast`]): a plugin that is
/// slow now and then (an HTTP call every few events) keeps a thread per delivery.
pub const FAST_WINDOW: u32 = 16;

/// Slow calls among a plugin's last [`FAST_WINDOW`] with which it still counts as fast, if its latest was
/// fast. On a cluster node sharing two busy cores with PostgreSQL, 7% of the bench plugins' calls took
/// over [`SLOW_CALL`] (a KV write waiting for its answer behind other processes): none allowed, the
/// plugins were fast only now and then, so their queues moved one event per round and the after-hooks
/// fell seconds behind (BENCHMARKS.md problem 37). A plugin slow every fourth call has more than this in
/// every window.
pub const SLOW_ALLOWED: u32 = 2;

/// What a plugin's latest calls took, for [`Recent::fast`].
#[derive(Debug, Clone, Copy, Default)]
struct Recent {
    /// One bit per call, the latest lowest: set for a slow one.
    slow: u32,
    /// Calls seen, up to [`FAST_WINDOW`].
    seen: u32,
}

impl Recent {
    /// Notes one more call, fast or not.
    fn record(&mut self, fast: bool) {
        self.slow = (self.slow << 1) | u32::from(!fast);
        self.seen = self.seen.saturating_add(1).min(FAST_WINDOW);
    }

    /// Whether the latest call and all but [`SLOW_ALLOWED`] of the last [`FAST_WINDOW`] were fast.
    fn fast(self) -> bool {
        let window = (1u32 << FAST_WINDOW) - 1;
        self.seen >= FAST_WINDOW
            && self.slow & 1 == 0
            && (self.slow & window).count_ones() <= SLOW_ALLOWED
    }
}

/// Runs started deliveries and sends each outcome to the loop. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Runner {
    config: Arc<DispatchConfig>,
    /// The plugins' KV store, whose writes of a row or run are committed before their outcomes are
    /// reported ([`deliver::settle_kv_writes`]).
    kv: Arc<KvStore>,
    done: mpsc::UnboundedSender<Finished>,
    /// Per plugin, which of its latest calls were slow.
    recent: Arc<Mutex<HashMap<String, Recent>>>,
    /// Rows a round's fast deliveries are dealt over: one per core, so they use every core and no more
    /// threads than that.
    rows: usize,
}

impl Runner {
    /// A runner reporting to `done`, whose calls write to `kv`.
    pub fn new(
        config: Arc<DispatchConfig>,
        kv: Arc<KvStore>,
        done: mpsc::UnboundedSender<Finished>,
    ) -> Self {
        Runner {
            config,
            kv,
            done,
            recent: Arc::default(),
            rows: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }

    /// The plugins whose calls are fast lately ([`Recent::fast`]): a round starts runs of their queues.
    pub fn fast_plugins(&self) -> HashSet<String> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .iter()
            .filter(|(_, recent)| recent.fast())
            .map(|(plugin, _)| plugin.clone())
            .collect()
    }

    /// Runs `started`, whose runs ([`Started::follows`]) are consecutive: the runs of plugins whose calls
    /// are fast lately in rows (in the round's order, dealt out over one thread per core), the others each
    /// on a thread of its own. Returns at once.
    pub fn run(&self, started: Vec<Started>) {
        let mut runs: Vec<Vec<Started>> = Vec::new();
        for s in started {
            match runs.last_mut() {
                Some(run) if s.follows => run.push(s),
                _ => runs.push(vec![s]),
            }
        }
        let (fast, slow): (Vec<Vec<Started>>, Vec<Vec<Started>>) = {
            let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            runs.into_iter().partition(|run| {
                run.first().is_some_and(|s| {
                    recent
                        .get(s.plugin.name())
                        .is_some_and(|recent| recent.fast())
                })
            })
        };
        for run in slow {
            self.spawn_run(run);
        }
        let count = self.rows.min(fast.len());
        let mut dealt: Vec<Vec<Vec<Started>>> = (0..count).map(|_| Vec::new()).collect();
        for (i, run) in fast.into_iter().enumerate() {
            dealt[i % count].push(run);
        }
        for row in dealt {
            let runner = self.clone();
            tokio::task::spawn_blocking(move || runner.run_row(row));
        }
    }

    /// Runs `run` on a blocking thread of its own.
    fn spawn_run(&self, run: Vec<Started>) {
        let runner = self.clone();
        tokio::task::spawn_blocking(move || {
            runner.reporting(|reports| runner.run_in_order(&run, reports, &mut || {}))
        });
    }

    /// Runs the runs of `row` in order on this thread until a call is slow; the runs not yet begun then
    /// get threads of their own (the rest of the slow call's run is postponed).
    fn run_row(&self, row: Vec<Vec<Started>>) {
        self.reporting(|reports| {
            let mut row = row.into_iter();
            while let Some(run) = row.next() {
                self.run_in_order(&run, reports, &mut || {
                    for rest in row.by_ref() {
                        self.spawn_run(rest);
                    }
                });
            }
        });
    }

    /// Runs `calls`, which adds a report per delivery, then commits their KV writes and sends the
    /// reports: one KV commit per row of calls, not one per write. Blocking.
    fn reporting(&self, calls: impl FnOnce(&mut Vec<Finished>)) {
        let lost_before = self.kv.lost_count();
        let mut reports = Vec::new();
        calls(&mut reports);
        deliver::settle_kv_writes(&self.config, &self.kv, &mut reports, lost_before);
        for report in reports {
            let _ = self.done.send(report);
        }
    }

    /// Calls the deliveries of one run in order and reports each; once one does not succeed, or took
    /// [`STOPS_RUN`], the rest are not called but postponed (their attempts given back, due again at
    /// once), so the queue's order holds and a plugin that turned slow holds its thread (and a shutdown)
    /// for one such call, not a run of them. `on_slow` runs after a call of [`SLOW_CALL`] or more. Adds
    /// a report per delivery to `reports`. Blocking.
    fn run_in_order(
        &self,
        run: &[Started],
        reports: &mut Vec<Finished>,
        on_slow: &mut dyn FnMut(),
    ) {
        let mut stopped = false;
        for (i, s) in run.iter().enumerate() {
            let ends_run = i + 1 == run.len();
            let now = self.config.clock.now_ms();
            // A call that could outlast its lease is not begun: given back, it starts again soon,
            // here or on another node, with the rest of its run behind it.
            stopped = stopped || s.lease_too_short(now);
            if stopped {
                reports.push(s.finished(DeliveryOutcome::Postponed { at: now }, ends_run));
                continue;
            }
            let (outcome, took) = self.call(s);
            stopped = outcome != DeliveryOutcome::Delivered || took >= STOPS_RUN;
            reports.push(s.finished(outcome, ends_run));
            if took >= SLOW_CALL {
                on_slow();
            }
        }
    }

    /// Runs one delivery and notes its speed; its outcome and how long it took. Blocking.
    fn call(&self, s: &Started) -> (DeliveryOutcome, Duration) {
        let began = Instant::now();
        let config = &self.config;
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deliver::run_delivery(config, s)
        }));
        // A panic counts as a failed attempt, so the delivery is retried, not stuck in flight.
        let outcome = ran.unwrap_or_else(|_| {
            tracing::error!(plugin = s.plugin.name(), "a delivery panicked");
            let error = "the call panicked".to_owned();
            deliver::failed(config, s.attempt, error, config.clock.now_ms())
        });
        let took = began.elapsed();
        let fast = took < SLOW_CALL;
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent
                .entry(s.plugin.name().to_owned())
                .or_default()
                .record(fast);
        }
        (outcome, took)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn after(calls: &[bool]) -> Recent {
        let mut recent = Recent::default();
        for fast in calls {
            recent.record(*fast);
        }
        recent
    }

    #[test]
    fn a_plugin_is_fast_once_a_window_of_calls_is_mostly_fast_and_the_latest_is() {
        let window = usize::try_from(FAST_WINDOW).unwrap();
        assert!(!after(&vec![true; window - 1]).fast(), "too few calls seen");
        assert!(after(&vec![true; window]).fast());
        // A few slow calls among many fast ones, as on a busy machine.
        let mut noisy = vec![true; window];
        noisy[3] = false;
        noisy[9] = false;
        assert!(after(&noisy).fast());
        // The latest was slow: not now.
        let mut last = vec![true; window];
        last[window - 1] = false;
        assert!(!after(&last).fast());
        // Slow every fourth call, the latest fast: too often all the same.
        let every_fourth: Vec<bool> = (0..=window * 2).map(|i| i % 4 != 3).collect();
        assert_eq!(every_fourth.last(), Some(&true));
        assert!(!after(&every_fourth).fast());
        // Slow ones older than the window are forgotten.
        let mut old = vec![false; 8];
        old.extend(vec![true; window]);
        assert!(after(&old).fast());
    }
}
