//! Where the server reads the time and waits for it: the system's clocks, or a [`ManualClock`] that tests
//! move by hand.
//!
//! One [`Clock`] serves every part whose behaviour depends on time passing: the plugins' power rate limits
//! and circuit breakers (monotonic [`Clock::now`]), the dispatcher's due times, backoff and grace periods,
//! the timer loop's due times (wall-clock [`Clock::now_ms`], the milliseconds since the Unix epoch that the
//! database stores), and the waits of the loops that act on them ([`Clock::sleep`]: the dispatcher, the
//! timer loop, the push gateway's retries). A test hands one [`ManualClock`] to all of them and runs
//! minutes of retries, a circuit breaker's cool-down or a reminder's delay in no real time.
//!
//! ## Waking on a manual clock
//! A [`ManualClock`] keeps the time it has been moved on in a `tokio::sync::watch` channel;
//! [`ManualClock::advance`] and [`ManualClock::set`] publish the new time, and each [`Clock::sleep`] on it
//! waits on that channel until the clock has passed its end. So a loop sleeping on the clock wakes exactly
//! when a test moves the clock far enough, never before and without polling; with [`SystemClock`] the same
//! call is a plain tokio timer (one small allocation per wait, nothing else).
//!
//! Real-time concerns stay on the system's clocks whatever the configured clock: measuring how long a call
//! took, the dispatcher's batching gap, the watcher's debounce, WebSocket pings.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::model::Millis;
use crate::store::ids::now_ms;

/// A wait on a [`Clock`] (see [`Clock::sleep`]).
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The time, for code that must run on fake time in tests. The server uses [`SystemClock`].
pub trait Clock: Send + Sync + Debug {
    /// The monotonic time now (for measuring intervals).
    fn now(&self) -> Instant;

    /// Milliseconds since the Unix epoch now (for times that are stored or compared with stored ones).
    fn now_ms(&self) -> Millis;

    /// A wait that ends once `duration` has passed on this clock, counted from this call (not from the
    /// first poll).
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn now_ms(&self) -> Millis {
        now_ms()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that stands still until [`ManualClock::advance`] or [`ManualClock::set`] moves it. It starts at
/// the real time it was made (so the times it gives can be compared with rows the chat layer stamps), and
/// clones share the time. Its [`Clock::sleep`]s end when it is moved past their end, however little real
/// time that took.
#[derive(Debug, Clone)]
pub struct ManualClock {
    origin: Instant,
    origin_ms: Millis,
    /// How far the clock has been moved since `origin`; sleepers watch it.
    elapsed: Arc<watch::Sender<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            origin: Instant::now(),
            origin_ms: now_ms(),
            elapsed: Arc::new(watch::Sender::new(Duration::ZERO)),
        }
    }
}

impl ManualClock {
    /// A clock standing at the moment it was made.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock forward by `by`, waking the sleeps that end by then.
    pub fn advance(&self, by: Duration) {
        self.elapsed.send_modify(|e| *e = e.saturating_add(by));
    }

    /// Puts the clock `elapsed` past the moment it was made, waking the sleeps that end by then.
    pub fn set(&self, elapsed: Duration) {
        self.elapsed.send_replace(elapsed);
    }

    /// How far the clock has been moved since it was made.
    pub fn elapsed(&self) -> Duration {
        *self.elapsed.borrow()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + self.elapsed()
    }

    fn now_ms(&self) -> Millis {
        let elapsed = Millis::try_from(self.elapsed().as_millis()).unwrap_or(Millis::MAX);
        self.origin_ms.saturating_add(elapsed)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let mut moved = self.elapsed.subscribe();
        let end = moved.borrow().saturating_add(duration);
        Box::pin(async move {
            // An error means every clone of the clock is gone: nothing can move it any more.
            if moved.wait_for(|elapsed| *elapsed >= end).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_clocks_together_and_clones_share_it() {
        let clock = ManualClock::new();
        let copy = clock.clone();
        let (start, start_ms) = (clock.now(), clock.now_ms());
        clock.advance(Duration::from_millis(1500));
        assert_eq!(copy.now() - start, Duration::from_millis(1500));
        assert_eq!(copy.now_ms() - start_ms, 1500);
        copy.set(Duration::from_secs(60));
        assert_eq!(clock.now_ms() - start_ms, 60_000);
    }

    #[tokio::test]
    async fn a_sleep_on_a_manual_clock_ends_when_the_clock_passes_its_end() {
        use futures_util::FutureExt;
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(5));
        let mut sleep = clock.sleep(Duration::from_millis(1000));
        let mut copy_sleep = clock.clone().sleep(Duration::from_millis(1500));
        assert!((&mut sleep).now_or_never().is_none());
        clock.advance(Duration::from_millis(999));
        assert!((&mut sleep).now_or_never().is_none(), "not yet");
        clock.advance(Duration::from_millis(1));
        // Woken by the advance, without any real time passing.
        tokio::time::timeout(Duration::from_secs(10), &mut sleep)
            .await
            .expect("ends once the clock reached its end");
        assert!((&mut copy_sleep).now_or_never().is_none());
        clock.set(Duration::from_secs(60));
        assert!(copy_sleep.now_or_never().is_some());
        assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
    }
}
