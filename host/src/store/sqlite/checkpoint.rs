//! WAL checkpoints on a thread of their own, off the request path.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint copies them back into the database
//! file and, with `synchronous=NORMAL` or `FULL`, fsyncs it. SQLite's default runs the checkpoint inside
//! the `COMMIT` that takes the WAL past 1,000 pages, holding the write lock: with about ten pages per
//! message sent, one request in a hundred paid a few milliseconds of copying and an fsync, and every
//! writer queued behind it (p99 3.2 ms with one client against a p50 of 0.3 ms).
//!
//! Here the writer only counts its commits. Every [`CHECKPOINT_EVERY_COMMITS`] commits, or
//! [`IDLE_CHECKPOINT`] after the last one, a [`Checkpointer`] thread runs a `PASSIVE` checkpoint on its
//! own connection: it copies what no reader still needs and never waits for, or blocks, the writer or the
//! readers. The writer's own automatic checkpoint stays on at [`FALLBACK_AUTOCHECKPOINT_PAGES`], far above
//! what the thread lets the WAL reach, so a WAL the thread cannot keep small (a disk slower than the
//! writes) is still bounded. Durability is unchanged: a commit is in the WAL when `COMMIT` returns, as
//! before; the checkpoint only moves it.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Commits between two checkpoints under load: about 500 pages of WAL at ten pages a commit, half of
/// SQLite's default threshold, so the thread keeps the WAL below the size SQLite itself would allow.
pub const CHECKPOINT_EVERY_COMMITS: u64 = 50;

/// How long after the last commit a quiet database is checkpointed anyway, so the WAL does not keep
/// what a few commits wrote until the next burst (or the next restart).
pub const IDLE_CHECKPOINT: Duration = Duration::from_millis(200);

/// The writer's own automatic checkpoint, in WAL pages (SQLite's default is 1,000): only reached if the
/// checkpoint thread falls far behind (10 MiB of WAL at the store's 1 KiB pages, 40 MiB in a file made
/// with 4 KiB pages before them: `super::file`).
pub const FALLBACK_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The checkpoint thread of one database file; stops (after a last checkpoint) when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Commits since the last checkpoint.
    commits: u64,
    /// Checkpoints done, for tests.
    done: u64,
    stop: bool,
}

impl Checkpointer {
    /// Starts the thread, with a connection of its own to `path`. If the thread cannot start (the process
    /// is out of threads), the writer's fallback checkpoint alone bounds the WAL; that is logged.
    pub fn start(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn({
                let shared = shared.clone();
                move || run(&conn, &shared)
            })
            .inspect_err(|e| {
                tracing::warn!(
                    "cannot start the checkpoint thread of {}: {e}; commits checkpoint every \
                     {FALLBACK_AUTOCHECKPOINT_PAGES} pages instead",
                    path.display()
                )
            })
            .ok();
        Ok(Checkpointer { shared, thread })
    }

    /// Notes a commit; wakes the thread every [`CHECKPOINT_EVERY_COMMITS`].
    pub fn committed(&self) {
        let mut state = lock(&self.shared.state);
        state.commits += 1;
        if state.commits == 1 || state.commits >= CHECKPOINT_EVERY_COMMITS {
            self.shared.wake.notify_one();
        }
    }

    /// Checkpoints run so far.
    #[cfg(test)]
    pub fn checkpoints(&self) -> u64 {
        lock(&self.shared.state).done
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: wait for enough commits (or a quiet spell after some), checkpoint, repeat; a last
/// checkpoint when stopped.
fn run(conn: &Connection, shared: &Shared) {
    let mut state = lock(&shared.state);
    while !state.stop {
        if state.commits == 0 {
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        if state.commits < CHECKPOINT_EVERY_COMMITS {
            let seen = state.commits;
            let (next, waited) = shared
                .wake
                .wait_timeout(state, IDLE_CHECKPOINT)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            let quiet = waited.timed_out() && state.commits == seen;
            if !quiet && state.commits < CHECKPOINT_EVERY_COMMITS {
                continue;
            }
        }
        state.commits = 0;
        drop(state);
        checkpoint(conn);
        state = lock(&shared.state);
        state.done += 1;
    }
    drop(state);
    checkpoint(conn);
}

/// One `PASSIVE` checkpoint; a failure is logged and retried with the next one (the WAL keeps the data).
fn checkpoint(conn: &Connection) {
    let result: rusqlite::Result<(i64, i64, i64)> =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        });
    match result {
        Ok((_, wal_pages, copied)) => {
            tracing::trace!(wal_pages, copied, "WAL checkpoint");
        }
        Err(e) => tracing::warn!("WAL checkpoint failed (retried after the next commits): {e}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
