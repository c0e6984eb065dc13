//! Outbox → after-hooks: the dispatcher delivers every committed event to every plugin subscribed to its
//! hook, at least once, in order per (plugin, conversation), with the event id and attempt number.
//!
//! ## The loop
//! 1. At start: [`recover_in_flight`](crate::store::outbox::recover_in_flight): calls cut short by a crash
//!    are due again (their attempt count is kept).
//! 2. Each round, on a blocking thread: fan new events out to the plugins that export the event's hook
//!    (one delivery row each), then start the due deliveries at the head of their queues, at most
//!    [`DispatchConfig::max_in_flight_per_plugin`] per plugin.
//! 3. Each started delivery runs on its own blocking thread: the hook is called within the plugin's
//!    budget and the outcome recorded: done, retry after [`deliver::backoff`], or dead letter after
//!    [`DispatchConfig::max_attempts`]. A slow or failing plugin only holds back its own queue for that
//!    conversation; other conversations, other plugins and HTTP requests never wait for it.
//! 4. Sleep until woken ([`DispatchHandle::wake`], after every commit that wrote events and every
//!    finished delivery), until the next retry is due, or at most [`DispatchConfig::poll_interval`].
//!
//! On shutdown the loop starts nothing new and waits for calls in flight (each bounded by its budget).

pub mod deliver;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::model::Millis;
use crate::plugins::registry::Registry;
use crate::store::{self, Db, ids::now_ms, outbox};

pub use deliver::{DeliveryOutcome, backoff, drain};

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

/// How the dispatcher retries; the defaults are the constants above. Tests shrink the backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_attempts: MAX_ATTEMPTS,
            first_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
            max_in_flight_per_plugin: MAX_IN_FLIGHT_PER_PLUGIN,
            poll_interval: POLL_INTERVAL,
        }
    }
}

/// Wakes the dispatcher. Cheap to clone; waking is a non-blocking flag, safe while holding the write lock.
#[derive(Debug, Clone, Default)]
pub struct DispatchHandle {
    notify: Arc<Notify>,
}

impl DispatchHandle {
    /// A handle that no dispatcher listens to (for tools and tests that run [`drain`] themselves).
    pub fn detached() -> Self {
        Self::default()
    }

    /// Tells the dispatcher there may be new work (new events, a replayed dead letter, a new plugin).
    pub fn wake(&self) {
        self.notify.notify_one();
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
            in_flight: HashMap::new(),
            retries: BinaryHeap::new(),
        };
        let task = tokio::spawn(state.run(shutdown));
        (handle, task)
    }
}

/// A finished delivery, reported back to the loop.
struct Done {
    plugin: String,
    outcome: Option<DeliveryOutcome>,
}

struct Loop {
    db: Arc<Db>,
    registry: Arc<Registry>,
    config: Arc<DispatchConfig>,
    notify: Arc<Notify>,
    /// Calls running per plugin.
    in_flight: HashMap<String, usize>,
    /// When retries scheduled by this loop are due (min-heap).
    retries: BinaryHeap<Reverse<Millis>>,
}

impl Loop {
    async fn run(mut self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || db.write(outbox::recover_in_flight)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!("recovered {n} deliveries left in flight"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("recovering in-flight deliveries failed: {e}"),
            Err(e) => tracing::error!("recovering in-flight deliveries panicked: {e}"),
        }
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        tokio::pin!(shutdown);
        loop {
            let next_due = match self.round(&done_tx).await {
                Ok(next_due) => next_due,
                Err(e) => {
                    tracing::error!("dispatch round failed: {e}");
                    None
                }
            };
            let sleep = self.sleep_for(next_due);
            tokio::select! {
                () = &mut shutdown => break,
                () = self.notify.notified() => {}
                Some(done) = done_rx.recv() => self.finished(done),
                () = tokio::time::sleep(sleep) => {}
            }
        }
        while self.in_flight.values().any(|n| *n > 0) {
            match done_rx.recv().await {
                Some(done) => self.finished(done),
                None => break,
            }
        }
    }

    /// One round: fan out, start what is due, spawn the calls. Returns the store's next due time.
    async fn round(
        &mut self,
        done_tx: &mpsc::UnboundedSender<Done>,
    ) -> store::Result<Option<Millis>> {
        let (db, registry) = (self.db.clone(), self.registry.clone());
        let default_capacity = self.config.max_in_flight_per_plugin;
        let capacity: HashMap<String, usize> = self
            .in_flight
            .iter()
            .map(|(name, n)| (name.clone(), default_capacity.saturating_sub(*n)))
            .collect();
        let planned = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            deliver::fan_out_pending(&db, &registry, now)?;
            let started = deliver::start_due(&db, &registry, &capacity, default_capacity, now)?;
            let next_due = db.read(outbox::next_due_at)?;
            Ok::<_, store::StoreError>((started, next_due))
        })
        .await
        .map_err(|e| store::StoreError::Invalid(format!("dispatch round panicked: {e}")))?;
        let (started, next_due) = planned?;
        for s in started {
            *self.in_flight.entry(s.delivery.plugin.clone()).or_default() += 1;
            let (db, config) = (self.db.clone(), self.config.clone());
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                let plugin = s.delivery.plugin.clone();
                let outcome =
                    tokio::task::spawn_blocking(move || deliver::run_delivery(&db, &config, &s))
                        .await;
                let outcome = match outcome {
                    Ok(Ok(outcome)) => Some(outcome),
                    Ok(Err(e)) => {
                        tracing::error!(plugin, "recording a delivery failed: {e}");
                        None
                    }
                    Err(e) => {
                        tracing::error!(plugin, "a delivery panicked: {e}");
                        None
                    }
                };
                let _ = done_tx.send(Done { plugin, outcome });
            });
        }
        Ok(next_due)
    }

    fn finished(&mut self, done: Done) {
        if let Some(n) = self.in_flight.get_mut(&done.plugin) {
            *n = n.saturating_sub(1);
        }
        if let Some(DeliveryOutcome::Retry { at, .. } | DeliveryOutcome::Postponed { at }) =
            done.outcome
        {
            self.retries.push(Reverse(at));
        }
    }

    /// How long to sleep: until the earliest future retry or due delivery, at most the poll interval.
    /// Due times in the past are ignored: such deliveries are blocked behind a call in flight (whose end
    /// wakes the loop) or belong to a plugin that is not loaded.
    fn sleep_for(&mut self, next_due: Option<Millis>) -> Duration {
        let now = now_ms();
        let mut retry_due = false;
        while self.retries.peek().is_some_and(|Reverse(at)| *at <= now) {
            self.retries.pop();
            retry_due = true;
        }
        if retry_due {
            // It may have come due after the round read the clock: run another round now.
            return Duration::ZERO;
        }
        let earliest = [self.retries.peek().map(|Reverse(at)| *at), next_due]
            .into_iter()
            .flatten()
            .filter(|at| *at > now)
            .min();
        let poll = self.config.poll_interval;
        earliest.map_or(poll, |at| {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(poll)
        })
    }
}

#[cfg(test)]
mod tests;
