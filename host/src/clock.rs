//! Where the server reads the time: the system's clocks, or a [`ManualClock`] that tests move by hand.
//!
//! One [`Clock`] serves every part whose behaviour depends on time passing: the plugins' power rate limits
//! (monotonic [`Clock::now`]) and the dispatcher's due times, backoff and grace periods (wall-clock
//! [`Clock::now_ms`], the milliseconds since the Unix epoch that the database stores). A test hands the
//! same [`ManualClock`] to both and runs minutes of retries or a second of refills in no real time.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::model::Millis;
use crate::store::ids::now_ms;

/// The time, for code that must run on fake time in tests. The server uses [`SystemClock`].
pub trait Clock: Send + Sync + Debug {
    /// The monotonic time now (for measuring intervals).
    fn now(&self) -> Instant;

    /// Milliseconds since the Unix epoch now (for times that are stored or compared with stored ones).
    fn now_ms(&self) -> Millis;
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
}

/// A clock that stands still until [`ManualClock::advance`] or [`ManualClock::set`] moves it. It starts at
/// the real time it was made (so the times it gives can be compared with rows the chat layer stamps), and
/// clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    origin: Instant,
    origin_ms: Millis,
    elapsed_nanos: Arc<AtomicU64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            origin: Instant::now(),
            origin_ms: now_ms(),
            elapsed_nanos: Arc::default(),
        }
    }
}

impl ManualClock {
    /// A clock standing at the moment it was made.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.elapsed_nanos.fetch_add(nanos(by), Ordering::SeqCst);
    }

    /// Puts the clock `elapsed` past the moment it was made.
    pub fn set(&self, elapsed: Duration) {
        self.elapsed_nanos.store(nanos(elapsed), Ordering::SeqCst);
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_nanos.load(Ordering::SeqCst))
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
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
}
