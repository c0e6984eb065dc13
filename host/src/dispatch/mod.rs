//! Outbox → after-hooks: the dispatcher delivers every committed event to every plugin subscribed to its
//! hook, at least once, in order per (plugin, conversation), with the event id and attempt number.
//!
//! ## The loop
//! 1. At start: [`recover_in_flight`](crate::store::Tx::recover_in_flight): calls cut short by a crash
//!    are due again (their attempt count is kept). Then the deliveries table is loaded into memory
//!    (`queues`): one queue per (plugin, conversation).
//! 2. Each `round`, on a blocking thread and in one write transaction where it can:
//!    record the outcomes of the calls that ended, fan new events out to the plugins that export the
//!    event's hook, then start the ready queue heads, at most
//!    [`DispatchConfig::max_in_flight_per_plugin`] per plugin, each with the due events right behind it
//!    in its queue as one run (up to `round::MAX_RUN` for a plugin whose calls are fast lately). Heads
//!    come from memory; each start of a delivery row is checked in SQL, so stale memory never breaks
//!    order. A plugin whose queue holds no row gets no row for a new event either: the event stays in
//!    the outbox until that first attempt's outcome is recorded, and only a call that does not succeed
//!    (or cannot start soon) gets a row (`direct`). On a server on its own, that is nearly every
//!    delivery: a round writes a row for what fails, and the events done leave the outbox together.
//! 3. The started runs go to blocking threads (`runner`: a fast plugin's in a row on one, a slow
//!    plugin's each on its own; a run's calls in order, the rest of a run not called once one fails or
//!    is slow): the hook is called within the plugin's budget and the outcome (done, retry after
//!    [`deliver::backoff`], dead letter after [`DispatchConfig::max_attempts`]) goes back to the loop
//!    for the next round to record. A slow or failing plugin only holds back its own queue for that
//!    conversation; other conversations, other plugins and HTTP requests never wait for it.
//! 4. Sleep until woken ([`DispatchHandle::new_events_handed`] after every commit that wrote events,
//!    [`DispatchHandle::wake`] after other changes), until a call ends, until the next retry is due,
//!    or at most [`DispatchConfig::poll_interval`], on
//!    [`DispatchConfig::clock`] like the due times: a test that moves a manual clock past a backoff (or
//!    past a circuit breaker's cool-down, which the poll notices) wakes the loop at once, and on such a
//!    clock the poll is fake time too (every in-process change wakes the loop anyway). Rounds are at
//!    least [`ROUND_GAP`] apart: whatever arrives meanwhile makes one round. After a `wake` or a poll,
//!    as often as [`RELOAD_COST_FACTOR`] allows, the loop reloads its memory from the store, to pick up
//!    deliveries others wrote (a replayed dead letter, another node's fan-out); new events need no
//!    reload, the next round reads them from the outbox (their ids only, when the commits that stored
//!    them handed them over: `arrivals`).
//!
//! ## On a node of a cluster
//! Every node runs this loop on the same PostgreSQL tables, every delivery with its row (no start straight
//! from the outbox: [`Deliveries::may_start_from_outbox`](crate::store::Deliveries::may_start_from_outbox));
//! the store makes it safe ([`crate::store::postgres::leases`]): a round fans out only while it holds the
//! cluster's fan-out lock ([`Deliveries::may_fan_out`](crate::store::Deliveries::may_fan_out)), and only
//! events still in the outbox; a start (of a head, or of each delivery of a run) is a lease, which another
//! node takes over once it runs out (the next attempt); a call that could outlast its lease is given back
//! instead of begun; only the lessee records an outcome, and `recover_in_flight` takes back only this
//! node's leases.
//! The memory is this node's view: pokes from other nodes' fan-outs ([`DispatchConfig::fanned_out`]) and the
//! poll reload it, and each start is still checked in SQL.
//!
//! ## Bounded backlogs
//! A plugin that cannot take its deliveries (disabled by its circuit breaker, failing, too slow, or no
//! longer loaded) must not make the deliveries table grow without bound. Two limits apply, each turning
//! deliveries into dead letters with the reason, never dropping one silently (an admin lists and replays
//! them; `/metrics` counts them by plugin and reason):
//! - **Backlog**: a plugin may have at most [`DispatchConfig::max_backlog_per_plugin`] deliveries
//!   waiting or in flight ([`MAX_BACKLOG_PER_PLUGIN`]). An event fanned out to a plugin that is full
//!   becomes a dead letter right away instead of a delivery, so the plugin keeps its oldest events, in
//!   order, and the rest wait for replay. The default is far above what a cool-down or a reload piles up.
//! - **Unloaded**: deliveries owed to a plugin that is no longer loaded (its file was deleted, or it fails
//!   to load with no earlier version serving) wait [`DispatchConfig::unloaded_grace`] ([`UNLOADED_GRACE`])
//!   for it to come back, as after a redeploy; then they become dead letters. No new events are fanned out
//!   to a plugin that is not loaded.
//!
//! Failures that need attention (a failed attempt and its retry, a dead letter, a full backlog, an
//! unloaded plugin's deliveries given up) are logged as warnings, at most one line per plugin per
//! [`warnings::WARNING_INTERVAL`] after the first ([`warnings`]).
//!
//! On shutdown the loop starts nothing new, waits for calls in flight (each bounded by its budget) and
//! records their outcomes; deliveries owed straight from the outbox that did not start get their rows.
//! A crash before that only means those calls are made again after the restart (at least once), and so
//! are the first attempts of the events still in the outbox (those of the last
//! `direct::FLUSH_AFTER` included).

mod arrivals;
mod backlog;
pub mod deliver;
mod direct;
mod first_calls;
mod outcomes;
mod queues;
mod round;
mod runner;
mod starts;
pub mod stats;
#[cfg(test)]
pub(crate) mod test_log;
pub mod warnings;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::plugins::registry::Registry;
use crate::store::{self, Db};

pub use arrivals::Arrival;
pub use deliver::{DeliveryOutcome, Drainer, backoff, drain};
pub use stats::{DeadLetterCause, DispatchStats};

use arrivals::Handed;
use round::{Finished, Memory, Room};
use runner::Runner;

/// Attempts before a delivery becomes a dead letter. With [`FIRST_BACKOFF`] doubling, five attempts span
/// about 15 seconds: enough to ride out a plugin's transient failure (a remote endpoint restarting),
/// short enough that a broken plugin's events reach the admin's dead-letter list quickly for replay.
pub const MAX_ATTEMPTS: u32 = 5;

/// Delay after the first failed attempt; doubled after each further failure (1 s, 2 s, 4 s, ...).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Longest delay between attempts, however many failed.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Calls one plugin may have running at once (each in a different conversation). Bounds the blocking
/// threads and warm instances one busy plugin takes, while still letting conversations proceed in
/// parallel; the machine has two cores, so more would only queue.
pub const MAX_IN_FLIGHT_PER_PLUGIN: usize = 4;

/// Longest the loop sleeps without being woken: a safety net that picks up retries made due by another
/// process's clock or a plugin loaded without a wake. One cheap query per second.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Shortest time between two rounds. Under load, calls end and events arrive every few microseconds;
/// gathering them for a few milliseconds makes one write transaction of dozens of outcomes, starts and
/// fan-outs instead of one each, and one wake of the loop instead of one per report, which leaves the
/// cores to requests: with five plugins and one client, 1 ms between rounds gave 58% of the no-plugin
/// rate, 3 ms 61%, 5 ms 63% (BENCHMARKS.md, problem 12). An idle dispatcher reacts at once (the gap only
/// counts from the previous round), and a busy queue does not wait a gap per event: a round starts up
/// to `round::MAX_RUN` of its events.
pub const ROUND_GAP: Duration = Duration::from_millis(3);

/// A full reload of the dispatcher's memory (one scan of the deliveries table, needed only to see
/// deliveries written by others, such as a replayed dead letter) runs at most once per this many times
/// its own last duration: at most 1/20 of one core with any backlog. With a small backlog it costs
/// microseconds, so a replay is seen at the next wake; with 30,000 queued deliveries, within ~0.3 s.
pub const RELOAD_COST_FACTOR: u32 = 20;

/// Deliveries one plugin may have waiting, retrying or in flight; an event fanned out to a plugin that has
/// this many becomes a dead letter instead ("backlog full"). A plugin disabled by its circuit breaker for
/// a cool-down (30 s by default) at a busy node's 1,000 to 3,000 events per second collects 30,000 to
/// 90,000, and a healthy plugin behind a benchmark burst tens of thousands: those must not lose anything.
/// Beyond that the plugin is not coming back soon, and each further delivery would cost a table row and
/// dispatcher memory (about 200 bytes together) for nothing: 100,000 bound that to about 20 MB per
/// plugin. Set with `--max-plugin-backlog`.
pub const MAX_BACKLOG_PER_PLUGIN: usize = 100_000;

/// How long deliveries owed to a plugin that is no longer loaded wait for it before they become dead
/// letters. A redeploy (`rm x.wasm; cp new.wasm x.wasm`) or a reload that compiles for seconds is over in
/// well under a minute, and an operator fixing a broken file by hand takes minutes; ten minutes covers
/// both, and a plugin deleted for good does not keep its queue (and its `deliveries_pending` series) for
/// longer than that.
pub const UNLOADED_GRACE: Duration = Duration::from_secs(600);

/// How the dispatcher retries and bounds backlogs; the defaults are the constants above. Tests shrink the
/// backoff and the limits and drive the clock.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
    /// Delay after the first failure.
    pub first_backoff: Duration,
    /// Cap on the delay.
    pub max_backoff: Duration,
    /// Concurrent calls per plugin.
    pub max_in_flight_per_plugin: usize,
    /// Longest sleep without a wake.
    pub poll_interval: Duration,
    /// Deliveries a plugin may have before further ones become dead letters.
    pub max_backlog_per_plugin: usize,
    /// How long deliveries wait for a plugin that is not loaded before they become dead letters.
    pub unloaded_grace: Duration,
    /// Where due times, backoff and the unloaded grace read the time, and what the loop's sleeps wait on
    /// (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Called after a round that fanned events out: a cluster node pokes every node's dispatcher, so
    /// whichever has room starts the new deliveries (`None` on a server on its own).
    pub fanned_out: Option<FanOutSignal>,
}

/// What [`DispatchConfig::fanned_out`] calls.
#[derive(Clone)]
pub struct FanOutSignal(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for FanOutSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FanOutSignal")
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_attempts: MAX_ATTEMPTS,
            first_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
            max_in_flight_per_plugin: MAX_IN_FLIGHT_PER_PLUGIN,
            poll_interval: POLL_INTERVAL,
            max_backlog_per_plugin: MAX_BACKLOG_PER_PLUGIN,
            unloaded_grace: UNLOADED_GRACE,
            clock: Arc::new(SystemClock),
            fanned_out: None,
        }
    }
}

/// Wakes the dispatcher, and reads what it counts. Cheap to clone; waking is a non-blocking flag, safe
/// while holding the write lock.
#[derive(Debug, Clone, Default)]
pub struct DispatchHandle {
    notify: Arc<Notify>,
    /// Set by [`DispatchHandle::wake`]: the deliveries may have changed behind the loop.
    changed: Arc<AtomicBool>,
    /// Events handed over by the commits that stored them ([`arrivals`]).
    handed: Arc<Handed>,
    stats: Arc<DispatchStats>,
}

impl DispatchHandle {
    /// A handle that no dispatcher listens to (for tools and tests that run [`drain`] themselves).
    pub fn detached() -> Self {
        Self::default()
    }

    /// Tells the dispatcher there may be new work that its memory does not show (a replayed dead letter,
    /// a new plugin, another node's fan-out): it reloads its memory from the store as soon as that is
    /// allowed ([`RELOAD_COST_FACTOR`]).
    pub fn wake(&self) {
        self.changed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Tells the dispatcher that new events are in the outbox: its next round fans them out, no reload
    /// needed. What every commit of a chat change calls; under load a reload at each would run as often
    /// as [`RELOAD_COST_FACTOR`] allows, and forget the hook calls kept for the deliveries not started yet.
    pub fn new_events(&self) {
        self.notify.notify_one();
    }

    /// Like [`DispatchHandle::new_events`], handing over the events just committed: the next round takes
    /// them from here instead of reading them back whole (`arrivals`). Cheap, safe while holding the
    /// write lock.
    pub fn new_events_handed(&self, arrivals: Vec<Arrival>) {
        self.handed.hand(arrivals);
        self.notify.notify_one();
    }

    /// What the dispatcher has counted since it started (for `/metrics`).
    pub fn stats(&self) -> &DispatchStats {
        &self.stats
    }
}

/// The after-hook dispatcher.
#[derive(Debug)]
pub struct Dispatcher;

impl Dispatcher {
    /// Starts the dispatcher with the default [`DispatchConfig`]; it stops when `shutdown` completes.
    pub fn spawn(
        db: Arc<Db>,
        registry: Arc<Registry>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (DispatchHandle, JoinHandle<()>) {
        Self::spawn_with(db, registry, DispatchConfig::default(), shutdown)
    }

    /// Starts the dispatcher with `config`.
    pub fn spawn_with(
        db: Arc<Db>,
        registry: Arc<Registry>,
        config: DispatchConfig,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (DispatchHandle, JoinHandle<()>) {
        let handle = DispatchHandle::default();
        let state = Loop {
            db,
            registry,
            config: Arc::new(config),
            notify: handle.notify.clone(),
            changed: handle.changed.clone(),
            handed: handle.handed.clone(),
            stats: handle.stats.clone(),
            memory: Memory::default(),
            finished: Vec::new(),
            in_flight: HashMap::new(),
            reload: Reload {
                due: true,
                wanted: false,
                last: None,
            },
        };
        let task = tokio::spawn(state.run(shutdown));
        (handle, task)
    }
}

struct Loop {
    db: Arc<Db>,
    registry: Arc<Registry>,
    config: Arc<DispatchConfig>,
    notify: Arc<Notify>,
    /// Whether a wake asked for a reload ([`DispatchHandle::wake`]).
    changed: Arc<AtomicBool>,
    /// Events handed over since the last round.
    handed: Arc<Handed>,
    /// What the loop counts, shared with its handle.
    stats: Arc<DispatchStats>,
    /// The deliveries table as far as this loop knows it (see [`queues`]), and what it remembers about
    /// plugins between rounds.
    memory: Memory,
    /// Calls ended whose outcomes the next round records.
    finished: Vec<Finished>,
    /// Runs of calls running per plugin (see [`round::MAX_RUN`]).
    in_flight: HashMap<String, usize>,
    /// When to reload [`Loop::memory`]'s queues from the store.
    reload: Reload,
}

/// When the loop reloads its memory from the store: at start, after a failed round, and on a wake once
/// [`RELOAD_COST_FACTOR`] times the last reload's duration has passed. A wake that comes sooner is kept,
/// not dropped: the loop wakes again when the reload is allowed ([`Reload::deferred`]).
#[derive(Debug)]
struct Reload {
    /// Reload at the next round.
    due: bool,
    /// A wake came too soon after the last reload: reload once it is allowed.
    wanted: bool,
    /// When the last one ran and how long it took.
    last: Option<(Instant, Duration)>,
}

impl Reload {
    /// Something outside the loop may have changed the deliveries (a wake or the poll timer).
    fn woken(&mut self) {
        self.wanted = true;
        self.settle();
    }

    /// Turns a wanted reload into a due one once the last reload is long enough ago.
    fn settle(&mut self) {
        if self.wanted && self.deferred().is_none() {
            self.wanted = false;
            self.due = true;
        }
    }

    /// How long a wanted reload still has to wait (real time: the cost is the machine's).
    fn deferred(&self) -> Option<Duration> {
        let (at, took) = self.last?;
        if !self.wanted {
            return None;
        }
        took.saturating_mul(RELOAD_COST_FACTOR)
            .checked_sub(at.elapsed())
            .filter(|wait| !wait.is_zero())
    }
}

impl Loop {
    async fn run(mut self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || db.write(|tx| tx.recover_in_flight())).await {
            Ok(Ok(n)) if n > 0 => tracing::info!("recovered {n} deliveries left in flight"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("recovering in-flight deliveries failed: {e}"),
            Err(e) => tracing::error!("recovering in-flight deliveries panicked: {e}"),
        }
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
        let kv = self.registry.runtime().kv().clone();
        let runner = Runner::new(self.config.clone(), kv, done_tx);
        tokio::pin!(shutdown);
        let mut last_round: Option<Instant> = None;
        loop {
            // Rounds at most every ROUND_GAP: what arrives meanwhile (events, the reports of calls)
            // shares one round, and the loop is not woken by each report in between.
            if let Some(wait) = last_round.and_then(|at| ROUND_GAP.checked_sub(at.elapsed())) {
                tokio::time::sleep(wait).await;
            }
            while let Ok(done) = done_rx.try_recv() {
                self.finished(done);
            }
            last_round = Some(Instant::now());
            let sleep = match self.round(&runner, true).await {
                Ok(true) => Duration::ZERO,
                Ok(false) => self.sleep_for(),
                Err(e) => {
                    tracing::error!("dispatch round failed: {e}");
                    self.reload.due = true;
                    self.config.poll_interval
                }
            };
            let deferred = self.reload.deferred();
            // Released events leave the outbox at this time (real time, see `direct::FLUSH_AFTER`).
            let flush = self.memory.direct.flush_at();
            tokio::select! {
                () = &mut shutdown => break,
                () = self.notify.notified() => {
                    if self.changed.swap(false, Ordering::AcqRel) {
                        self.reload.woken();
                    }
                }
                () = tokio::time::sleep(deferred.unwrap_or_default()), if deferred.is_some() => {
                    self.reload.settle();
                }
                Some(done) = done_rx.recv() => self.finished(done),
                () = tokio::time::sleep_until(flush.unwrap_or_else(Instant::now).into()),
                    if flush.is_some() => {}
                () = self.config.clock.sleep(sleep) => {
                    if !sleep.is_zero() {
                        self.reload.woken();
                    }
                }
            }
            // Every call that ended meanwhile is recorded by the same round.
            while let Ok(done) = done_rx.try_recv() {
                self.finished(done);
            }
        }
        while self.in_flight.values().any(|n| *n > 0) {
            match done_rx.recv().await {
                Some(done) => self.finished(done),
                None => break,
            }
        }
        // The last round records the outcomes and gives what is still owed straight from the outbox
        // its rows (the outbox would keep it anyway, but then plugins that got the event would get it
        // again at the next start).
        if (!self.finished.is_empty() || self.memory.direct.holds_any())
            && let Err(e) = self.round(&runner, false).await
        {
            tracing::error!("recording the last outcomes failed (they are delivered again): {e}");
        }
        self.memory.warnings.finish(self.config.clock.now_ms());
    }

    /// One round on a blocking thread (see [`round::round`]); spawns the calls it started unless `start`
    /// is false (shutdown). Returns whether there is more to do at once.
    async fn round(&mut self, runner: &Runner, start: bool) -> store::Result<bool> {
        let (db, registry, config) = (self.db.clone(), self.registry.clone(), self.config.clone());
        let room = if start {
            let default = config.max_in_flight_per_plugin;
            Room {
                per_plugin: self
                    .in_flight
                    .iter()
                    .map(|(name, n)| (name.clone(), default.saturating_sub(*n)))
                    .collect(),
                default,
                fast: runner.fast_plugins(),
                settle: false,
            }
        } else {
            Room {
                settle: true,
                ..Room::default()
            }
        };
        let reload = std::mem::take(&mut self.reload.due);
        if reload {
            // A wake that waited for this reload is answered by it.
            self.reload.wanted = false;
        }
        let mut memory = std::mem::take(&mut self.memory);
        let mut finished = std::mem::take(&mut self.finished);
        let stats = self.stats.clone();
        let handed = self.handed.clone();
        let ran = crate::blocking::run(move || {
            let began = Instant::now();
            let result = round::round(
                &round::Deps {
                    db: &db,
                    registry: &registry,
                    config: &config,
                    stats: &stats,
                    handed: &handed,
                },
                &mut memory,
                &mut finished,
                &room,
                reload,
            );
            (result, memory, finished, began.elapsed())
        })
        .await;
        let (result, memory, finished, took) = match ran {
            Ok(ran) => ran,
            Err(e) => {
                // The memory went with the panic: reload it. Outcomes not yet recorded leave their
                // deliveries in flight until a restart recovers them.
                self.reload.due = true;
                return Err(store::StoreError::Invalid(format!(
                    "dispatch round did not finish: {e}"
                )));
            }
        };
        self.memory = memory;
        self.finished = finished;
        if reload {
            self.reload.last = Some((Instant::now(), took));
        }
        let result = result?;
        if result.fanned_out
            && let Some(signal) = &self.config.fanned_out
        {
            (signal.0)();
        }
        // A run takes one call slot of its plugin, however many events it holds.
        for s in result.started.iter().filter(|s| !s.follows) {
            *self
                .in_flight
                .entry(s.plugin.name().to_owned())
                .or_default() += 1;
        }
        // Straight onto blocking threads, which report back themselves: no async task in between.
        runner.run(result.started);
        Ok(result.more || !self.finished.is_empty())
    }

    fn finished(&mut self, done: Finished) {
        if done.ends_run
            && let Some(n) = self.in_flight.get_mut(&done.plugin)
        {
            *n = n.saturating_sub(1);
        }
        self.finished.push(done);
    }

    /// How long to sleep: until the earliest retry comes due, at most the poll interval. Calls that end
    /// and new events wake the loop sooner.
    fn sleep_for(&mut self) -> Duration {
        let now = self.config.clock.now_ms();
        let poll = self.config.poll_interval;
        self.memory.queues.next_due().map_or(poll, |at| {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(poll)
        })
    }
}

#[cfg(test)]
mod arrivals_tests;
#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod runner_tests;
#[cfg(test)]
mod tests;
