//! The timer loop: calls plugins' `on-timer` export when their timers (stored in SQLite by the
//! `scheduler` power) are due.
//!
//! Each round, on a blocking thread, every due timer of a running plugin that exports `on-timer` is
//! fired, earliest first, through the plugin's circuit breaker (a disabled plugin's timers wait for its
//! trial call; failed timer calls count toward tripping it). A one-shot timer is deleted after a successful call; a failed one is retried
//! after a backoff, [`TIMER_ATTEMPTS`] times in all. A repeating timer moves on by its interval (skipping
//! the times missed while the server was down). The loop sleeps until the next timer is due, at most
//! [`TIMER_POLL`], and is woken early when a plugin sets a timer. Because timers are rows, they survive
//! restarts: one that came due while the server was down fires right after the next start.
//!
//! On a node of a cluster every node runs this loop on the same timers, so a node fires a due timer only
//! after leasing it in the database ([`SchedulerHandle::for_node`], SCALE-OUT.md 2.7): two nodes never
//! fire one timer at once, and a timer whose node died mid-firing is fired again by another once its
//! [`TIMER_LEASE`] ran out (at least once, as after a crash of a server on its own).
//!
//! Due times and the loop's sleeps are on the [`Clock`] its [`SchedulerHandle`] carries (the server's
//! configured clock), the same one [`crate::powers::ServerServices`] computes due times from when a
//! plugin sets a timer: a test on a manual clock moves it past a reminder's delay and the timer fires at
//! once, and not a moment of fake time before. On such a clock [`TIMER_POLL`] is fake time too.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::model::Millis;
use crate::plugins::CallError;
use crate::plugins::registry::Registry;
use crate::store::Db;

/// Longest the loop sleeps without being woken: it picks up timers of a plugin loaded meanwhile.
pub const TIMER_POLL: Duration = Duration::from_secs(1);

/// Timers read per query; the round keeps reading until none is due.
const TIMER_BATCH: u32 = 32;

/// Attempts at a one-shot timer whose `on-timer` fails, before it is dropped (and logged).
pub const TIMER_ATTEMPTS: u32 = 5;

/// Delay after a one-shot timer's first failure; doubled after each further one.
pub const TIMER_FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// How long a cluster node's lease on a timer it fires lasts: longer than any `on-timer` call may run
/// (the after-hook budget's wall-clock cap, 10 s by default), so a live node's lease never runs out
/// mid-call; a dead node's timers wait this long before another node fires them.
pub const TIMER_LEASE: Duration = Duration::from_secs(30);

/// Wakes the timer loop (after a plugin set a timer), and is where its time comes from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    notify: Arc<Notify>,
    /// What due times are computed from and the loop sleeps on.
    clock: Arc<dyn Clock>,
    /// A cluster node's id: timers are leased before they fire.
    node: Option<String>,
}

impl Default for SchedulerHandle {
    fn default() -> Self {
        SchedulerHandle::new(Arc::new(SystemClock))
    }
}

impl SchedulerHandle {
    /// A handle for a loop whose due times and sleeps are on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        SchedulerHandle {
            notify: Arc::default(),
            clock,
            node: None,
        }
    }

    /// The same handle for node `node` of a cluster: the loop leases each timer before firing it.
    pub fn for_node(mut self, node: &str) -> Self {
        self.node = Some(node.to_owned());
        self
    }

    /// The clock timers are due by: a new timer's due time is its delay from this clock's now.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// There may be a timer due sooner than the loop thinks.
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

/// The timer loop.
#[derive(Debug)]
pub struct Scheduler;

impl Scheduler {
    /// Starts the loop over `db`'s timers and `registry`'s plugins; it stops when `shutdown` completes
    /// (a firing in progress finishes first).
    pub fn spawn(
        db: Arc<Db>,
        registry: Arc<Registry>,
        handle: SchedulerHandle,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            tokio::pin!(shutdown);
            loop {
                let (db2, reg2, clock) = (db.clone(), registry.clone(), handle.clock.clone());
                let node = handle.node.clone();
                let fired = tokio::task::spawn_blocking(move || {
                    fire_due_as(&db2, &reg2, &*clock, node.as_deref())
                });
                let sleep = match fired.await {
                    Ok(Ok(sleep)) => sleep,
                    Ok(Err(e)) => {
                        tracing::error!("timer loop: {e}");
                        TIMER_POLL
                    }
                    Err(e) => {
                        tracing::error!("timer loop: a firing panicked: {e}");
                        TIMER_POLL
                    }
                };
                tokio::select! {
                    () = &mut shutdown => return,
                    () = handle.notify.notified() => {}
                    () = handle.clock.sleep(sleep) => {}
                }
            }
        })
    }
}

/// Fires every timer due by `clock` that can fire now; returns how long to sleep before the next round.
pub fn fire_due(db: &Db, registry: &Registry, clock: &dyn Clock) -> crate::store::Result<Duration> {
    fire_due_as(db, registry, clock, None)
}

/// [`fire_due`] on cluster node `node` (leasing each timer first), or on a server on its own (`None`).
pub fn fire_due_as(
    db: &Db,
    registry: &Registry,
    clock: &dyn Clock,
    node: Option<&str>,
) -> crate::store::Result<Duration> {
    // The time of the last look, which found nothing (more) to fire.
    let now = loop {
        let now = clock.now_ms();
        let due = match (node, db.as_postgres()) {
            (Some(node), Some(pg)) => {
                let plugins: Vec<String> = registry
                    .running()
                    .iter()
                    .filter(|p| p.plugin.has_timer())
                    .map(|p| p.name().to_owned())
                    .collect();
                let lease = Millis::try_from(TIMER_LEASE.as_millis()).unwrap_or(Millis::MAX);
                pg.lease_timers(node, &plugins, now, now.saturating_add(lease), TIMER_BATCH)?
            }
            _ => db.read(|c| c.due_timers(now, TIMER_BATCH))?,
        };
        let firable: Vec<_> = due
            .into_iter()
            .filter(|t| {
                registry
                    .get(&t.plugin)
                    .is_some_and(|p| p.plugin.has_timer())
            })
            .collect();
        if firable.is_empty() {
            break now;
        }
        for timer in &firable {
            fire(db, registry, clock, timer)?;
        }
    };
    let next = db.read(|c| c.next_timer_due())?;
    Ok(match next {
        // Due at the last look but not firable (its plugin is not running): wait for a reload. One that
        // came due since that look gets a short sleep, not the poll.
        Some(at) if at > now => {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(TIMER_POLL)
        }
        _ => TIMER_POLL,
    })
}

fn fire(
    db: &Db,
    registry: &Registry,
    clock: &dyn Clock,
    timer: &crate::store::Timer,
) -> crate::store::Result<()> {
    let Some(loaded) = registry.get(&timer.plugin) else {
        return Ok(());
    };
    let result = loaded.call_timer(&timer.name, &timer.payload);
    let now = clock.now_ms();
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        // Disabled by its circuit breaker: not an attempt; the timer waits for the trial call.
        Err(CallError::Disabled { retry_in, .. }) => {
            let at =
                now.saturating_add(Millis::try_from(retry_in.as_millis()).unwrap_or(Millis::MAX));
            db.write(|tx| tx.finish_firing(timer, Some(at.max(now + 1)), timer.attempts))?;
            return Ok(());
        }
        Err(e) => Some(e.to_string()),
    };
    let (next, attempts) = match (timer.interval_ms, &error) {
        (Some(interval), _) => {
            let interval = Millis::try_from(interval).unwrap_or(Millis::MAX);
            let mut at = timer.due_at.saturating_add(interval);
            if at <= now {
                at = now.saturating_add(interval);
            }
            (Some(at), 0)
        }
        (None, None) => (None, 0),
        (None, Some(_)) if timer.attempts + 1 >= TIMER_ATTEMPTS => (None, 0),
        (None, Some(_)) => {
            let delay = TIMER_FIRST_BACKOFF.saturating_mul(1 << timer.attempts.min(16));
            let at = now.saturating_add(Millis::try_from(delay.as_millis()).unwrap_or(Millis::MAX));
            (Some(at), timer.attempts + 1)
        }
    };
    if let Some(error) = &error {
        let gave_up = timer.interval_ms.is_none() && next.is_none();
        tracing::warn!(
            plugin = %timer.plugin,
            timer = %timer.name,
            attempt = timer.attempts + 1,
            gave_up,
            "on-timer failed: {error}"
        );
    }
    db.write(|tx| tx.finish_firing(timer, next, attempts))?;
    Ok(())
}
