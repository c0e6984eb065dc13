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
//! order on one thread; once one does not succeed or is slow, the rest of the run is not called but
//! postponed (attempt given back, due again at once, behind it), so the queue's order holds and a run
//! never holds a thread for more than one slow call.
//!
//! The calls write to the plugins' KV store with [`Commit::Later`](crate::store::kv::Commit): a row (or
//! a run on its own thread) commits their writes once, after its last call and before it reports any
//! outcome, so a delivery is never recorded as done without its writes, and one KV commit serves a row
//! instead of each write paying its own (on a file, most of what an increment cost).
//!
//! In a row, a slow call would hold back the deliveries behind it (after-hooks only: requests never wait
//! for a delivery). Two rules bound that:
//! - only the deliveries of plugins whose last [`FAST_STREAK`] calls each took under [`SLOW_CALL`] run
//!   in rows; a plugin that was slow lately gets a thread per delivery, as before, so a plugin waiting on
//!   HTTP still makes its calls side by side and never delays another;
//! - a call that turns out slow inside a row hands the runs of the row not yet begun to threads of their
//!   own as soon as it returns, so a plugin that turns slow delays the other runs by one call, once (the
//!   rest of its own run is postponed, see above).

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

/// Fast calls in a row after which a plugin's deliveries run in a row again: a plugin that is slow now
/// and then (an HTTP call every few events) keeps a thread per delivery.
pub const FAST_STREAK: u32 = 16;

/// Runs started deliveries and sends each outcome to the loop. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Runner {
    config: Arc<DispatchConfig>,
    /// The plugins' KV store, whose writes of a row or run are committed before their outcomes are
    /// reported ([`deliver::settle_kv_writes`]).
    kv: Arc<KvStore>,
    done: mpsc::UnboundedSender<Finished>,
    /// Per plugin, how many of its latest calls in a row were fast.
    streaks: Arc<Mutex<HashMap<String, u32>>>,
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
            streaks: Arc::default(),
            rows: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }

    /// The plugins whose latest [`FAST_STREAK`] calls were each fast: a round starts runs of their queues.
    pub fn fast_plugins(&self) -> HashSet<String> {
        let streaks = self.streaks.lock().unwrap_or_else(PoisonError::into_inner);
        streaks
            .iter()
            .filter(|(_, streak)| **streak >= FAST_STREAK)
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
            let streaks = self.streaks.lock().unwrap_or_else(PoisonError::into_inner);
            runs.into_iter().partition(|run| {
                run.first().is_some_and(|s| {
                    streaks
                        .get(s.plugin.name())
                        .is_some_and(|streak| *streak >= FAST_STREAK)
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

    /// Calls the deliveries of one run in order and reports each; once one does not succeed, or was slow,
    /// the rest are not called but postponed (their attempts given back, due again at once), so the
    /// queue's order holds and a plugin that turned slow holds its thread (and a shutdown) for one slow
    /// call, not a run of them. `on_slow` runs after a slow call. Adds a report per delivery to
    /// `reports`. Blocking.
    fn run_in_order(
        &self,
        run: &[Started],
        reports: &mut Vec<Finished>,
        on_slow: &mut dyn FnMut(),
    ) {
        let mut stopped = false;
        for (i, s) in run.iter().enumerate() {
            let ends_run = i + 1 == run.len();
            if stopped {
                let at = self.config.clock.now_ms();
                reports.push(s.finished(DeliveryOutcome::Postponed { at }, ends_run));
                continue;
            }
            let (outcome, fast) = self.call(s);
            stopped = outcome != DeliveryOutcome::Delivered || !fast;
            reports.push(s.finished(outcome, ends_run));
            if !fast {
                on_slow();
            }
        }
    }

    /// Runs one delivery and notes its speed; its outcome and whether it was fast. Blocking.
    fn call(&self, s: &Started) -> (DeliveryOutcome, bool) {
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
        let fast = began.elapsed() < SLOW_CALL;
        {
            let mut streaks = self.streaks.lock().unwrap_or_else(PoisonError::into_inner);
            let streak = streaks.entry(s.plugin.name().to_owned()).or_default();
            *streak = if fast { streak.saturating_add(1) } else { 0 };
        }
        (outcome, fast)
    }
}
