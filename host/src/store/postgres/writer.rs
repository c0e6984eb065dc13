//! [`WriterMutex`]: the lock that lets one write transaction at a time append events on a node on its
//! own ([`PgDb::write_then`](super::PgDb::write_then) says why), and how long it has been held.
//!
//! With 16 clients the mutex is what bounds a single node's sends (BENCHMARKS.md, problem 35: held over
//! 90% of the time, 721 µs per send), so its busy time is exported as SQLite's writer's is (`/metrics`:
//! `chathooks_store_writer_busy_seconds_total`): a rate near 1 means every write queues for it, and
//! cluster mode, which has no such mutex, is the way past it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The writer mutex and its busy time.
#[derive(Debug, Default)]
pub(super) struct WriterMutex {
    lock: Mutex<()>,
    /// Nanoseconds it has been held since it was made.
    busy_ns: AtomicU64,
}

/// The mutex, held until dropped; the time it was held counts in [`WriterMutex::busy`].
pub(super) struct HeldWriter<'w> {
    _guard: MutexGuard<'w, ()>,
    since: Instant,
    busy_ns: &'w AtomicU64,
}

impl WriterMutex {
    /// Waits for the mutex and holds it. A panic of a holder poisons nothing that matters: its
    /// transaction was dropped, which rolls back.
    pub(super) fn hold(&self) -> HeldWriter<'_> {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        HeldWriter {
            _guard: guard,
            since: Instant::now(),
            busy_ns: &self.busy_ns,
        }
    }

    /// How long it has been held in all.
    pub(super) fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed))
    }
}

impl Drop for HeldWriter<'_> {
    fn drop(&mut self) {
        let held = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(held, Ordering::Relaxed);
    }
}
