//! The writer connection, and group commit: concurrent writes share one transaction and one commit.
//!
//! ## Why
//! A commit appends every page the transaction changed to the WAL, a 4 KiB frame each, with two `pwrite`
//! calls per frame. A sent message changes about ten pages (the message row and its indexes, the event, its
//! audience, the conversation, the unread counters), and with 16 clients sending those frames were a fifth
//! of the server's CPU (BENCHMARKS.md, problem 11). Writes that queue for the writer at the same time mostly
//! change the same pages (the tails of the messages, events and audience tables, the same few index and
//! conversation pages): committed together, each page is written once for the group.
//!
//! ## How
//! A write takes the writer lock, begins the group's transaction if none is open, and runs in a savepoint
//! of its own: a write that fails (or panics) rolls back to its savepoint, undoing only its own changes, and
//! fails alone. Then, if another write is already queued for the lock (and the group is not full), a
//! write that may wait ([`Wait::ForQueued`]) leaves the transaction open, releases the lock and waits for
//! the group's outcome; the next write joins the same transaction. The write that finds nobody waiting
//! (or may not wait) commits for everyone, runs every member's `after_commit` in the order they ran, then
//! wakes the members. A single writer with nobody waiting commits at once, as before: grouping only ever
//! happens to writes that would have waited anyway.
//!
//! A write waiting for the others of its group must not hold a lock their `f` may take (no store caller
//! does: the chat operations, admin changes and plugin powers that write hold none). A loop whose next step
//! waits on its write (the dispatcher's rounds, `Db::write_promptly`) commits as soon as it ran
//! ([`Wait::Never`]), with any writes that joined before it: a round queued behind sends commits theirs
//! with its own, and never waits for the requests queued behind it.
//!
//! ## What it keeps
//! - A write returns only after its changes are committed (or with the error that prevented it): a failed
//!   commit fails every member of the group with the same SQLite error, and none of their `after_commit`
//!   runs.
//! - Event ids are assigned in the order writes run and published in that order, all before the next group
//!   can commit: live subscribers see events in id order, exactly as when each write committed alone.
//! - Durability is the same per commit; with `synchronous=FULL` a group pays one fsync instead of one each.

use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use super::token_cache::AccountChanges;
use crate::store::AfterCommit;
use crate::store::error::{Result, StoreError};

/// Writes that wait in one group for its commit, at most: bounds how long the first of them waits while
/// others keep arriving (each joining write adds its own run time to the group's).
pub const MAX_GROUP_MEMBERS: usize = 32;

/// Whether a write may wait for the writes queued behind it to join its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Let them join, and return once the last of them committed for all: requests, whose answers can
    /// wait a few hundred microseconds for a commit that serves many.
    ForQueued,
    /// Commit at once: a loop whose next step waits on this write (the dispatcher's rounds), which would
    /// otherwise wait for the requests queued behind it.
    Never,
}

/// The writer connection inside a write transaction: what the store's write functions take. It dereferences
/// to the connection; the transaction and its savepoint are [`Writer`]'s business.
pub struct Writing<'c> {
    conn: &'c Connection,
}

impl Deref for Writing<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The only connection that writes, with the group transaction open on it.
#[derive(Debug)]
pub struct Writer {
    state: Mutex<State>,
    /// Writes blocked on `state`'s lock: a [`Wait::ForQueued`] write that sees one leaves the transaction
    /// open for it (a dispatcher round queued behind a send then commits both).
    waiting: AtomicUsize,
    /// What the transactions change in `users` and `tokens`, for the token cache.
    accounts: Arc<AccountChanges>,
}

#[derive(Debug)]
struct State {
    conn: Connection,
    /// The group whose transaction is open on `conn`, if any.
    group: Option<Group>,
}

/// The writes of one open transaction.
#[derive(Default)]
struct Group {
    /// Writes that succeeded, handed the transaction on and wait for its outcome.
    waiting_members: usize,
    /// What each successful write leaves to do after the commit, in the order the writes ran.
    after_commit: Vec<AfterCommit>,
    /// Where the waiting members learn how the commit went.
    outcome: Arc<Outcome>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("waiting_members", &self.waiting_members)
            .field("after_commit", &self.after_commit.len())
            .finish()
    }
}

/// A group's commit, once it happened: `Ok`, or the SQLite error every member reports.
#[derive(Debug, Default)]
struct Outcome {
    result: Mutex<Option<std::result::Result<(), rusqlite::Error>>>,
    done: Condvar,
}

impl Outcome {
    fn finish(&self, result: std::result::Result<(), &rusqlite::Error>) {
        *lock(&self.result) = Some(result.map_err(duplicate));
        self.done.notify_all();
    }

    fn wait(&self) -> Result<()> {
        let mut result = lock(&self.result);
        loop {
            match &*result {
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) => return Err(StoreError::Sqlite(duplicate(e))),
                None => {
                    result = self
                        .done
                        .wait(result)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        }
    }
}

impl Writer {
    /// The writer over `conn`, which must be in autocommit mode (no transaction open).
    pub fn new(conn: Connection) -> Self {
        let accounts = AccountChanges::watch(&conn);
        Writer {
            state: Mutex::new(State { conn, group: None }),
            waiting: AtomicUsize::new(0),
            accounts,
        }
    }

    /// The changes this writer makes to `users` and `tokens`.
    pub fn account_changes(&self) -> Arc<AccountChanges> {
        Arc::clone(&self.accounts)
    }

    /// Runs `f` in the write transaction (see the module docs); if it succeeds, the transaction commits
    /// (with whatever other writes joined it) and the `AfterCommit` made from its value by `after_commit`
    /// runs before the next transaction can commit. Returns whether a commit happened on this call, for
    /// the checkpointer's count, with `f`'s value.
    ///
    /// A [`Wait::Never`] write commits as soon as it ran, with whatever writes ran before it in the group,
    /// rather than waiting for the writes queued behind it to join.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Writing<'_>) -> Result<T>,
        after_commit: impl FnOnce(&T) -> Option<AfterCommit>,
        wait: Wait,
    ) -> (bool, Result<T>) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut state = lock(&self.state);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if state.group.is_none() {
            if let Err(e) = run(&state.conn, "BEGIN IMMEDIATE") {
                return (false, Err(e.into()));
            }
            state.group = Some(Group::default());
        }

        let ran = match run(&state.conn, "SAVEPOINT write") {
            Ok(()) => panic::catch_unwind(AssertUnwindSafe(|| f(&Writing { conn: &state.conn }))),
            Err(e) => Ok(Err(e.into())),
        };
        let ended = match &ran {
            Ok(Ok(_)) => run(&state.conn, "RELEASE write"),
            _ => run(&state.conn, "ROLLBACK TO write")
                .and_then(|()| run(&state.conn, "RELEASE write")),
        };
        if let Err(e) = ended {
            // The transaction is in a state nobody can vouch for: roll the whole group back.
            let group = state.group.take().unwrap_or_default();
            rollback(&state.conn);
            self.accounts.transaction_ended();
            group.outcome.finish(Err(&e));
            drop(state);
            return (false, finish(ran).and(Err(e.into())));
        }
        let group = state.group.get_or_insert_with(Group::default);
        if let Ok(Ok(value)) = &ran
            && let Some(then) = after_commit(value)
        {
            group.after_commit.push(then);
        }

        if wait == Wait::ForQueued
            && self.waiting.load(Ordering::SeqCst) > 0
            && group.waiting_members < MAX_GROUP_MEMBERS
        {
            // Someone is queued for the lock: they join this transaction, and the last one commits.
            let outcome = match &ran {
                Ok(Ok(_)) => {
                    group.waiting_members += 1;
                    Some(Arc::clone(&group.outcome))
                }
                _ => None,
            };
            drop(state);
            return match outcome {
                Some(outcome) => (false, outcome.wait().and_then(|()| finish(ran))),
                None => (false, finish(ran)),
            };
        }

        let group = state.group.take().unwrap_or_default();
        let committed = run(&state.conn, "COMMIT");
        match &committed {
            Ok(()) => {
                for then in group.after_commit {
                    if panic::catch_unwind(AssertUnwindSafe(then)).is_err() {
                        tracing::error!("publishing a committed write's events panicked");
                    }
                }
            }
            Err(_) => rollback(&state.conn),
        }
        self.accounts.transaction_ended();
        group.outcome.finish(committed.as_ref().map(|_| ()));
        drop(state);
        // A write that failed reports its own error, whatever became of the others'.
        let result =
            finish(ran).and_then(|value| committed.map(|()| value).map_err(StoreError::from));
        (true, result)
    }
}

/// `f`'s result, or its panic resumed on the caller's thread.
fn finish<T>(ran: std::thread::Result<Result<T>>) -> Result<T> {
    match ran {
        Ok(result) => result,
        Err(panic) => panic::resume_unwind(panic),
    }
}

/// Runs one of the transaction statements, cached: parsing `BEGIN IMMEDIATE`, `SAVEPOINT` and `COMMIT`
/// anew on every write costs more than running them.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Ends whatever transaction is open after a failure; nothing to report to beyond the failure itself.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// The same SQLite error for another member of the group (rusqlite's error is not `Clone`).
fn duplicate(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// Locks `m`, recovering from poisoning: every write's changes are behind its own savepoint, and a panic
/// inside one is caught and rolled back before the lock is released.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    /// Writes blocked on the lock now (for tests that line writes up behind one another).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    /// A writer on a fresh file with `t(n)`, and a child table whose foreign key is checked at commit.
    fn writer(dir: &tempfile::TempDir) -> Writer {
        let conn = Connection::open(dir.path().join("w.db")).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;
             CREATE TABLE t (n INTEGER NOT NULL);
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .expect("schema");
        Writer::new(conn)
    }

    fn insert(w: &Writing<'_>, n: i64) -> Result<()> {
        w.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
        Ok(())
    }

    fn rows(writer: &Writer) -> Vec<i64> {
        let state = lock(&writer.state);
        let mut stmt = state
            .conn
            .prepare("SELECT n FROM t ORDER BY rowid")
            .expect("select");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    /// What a write's `after_commit` records: its number, in the order the commits' publishing ran.
    fn publish(log: &Arc<Mutex<Vec<i64>>>, n: i64) -> Option<AfterCommit> {
        let log = Arc::clone(log);
        Some(Box::new(move || lock(&log).push(n)))
    }

    /// Holds the writer (inside a write of its own, `n`, flagging `inside` once there) until `queued`
    /// writes wait for the lock, so they all join its group. Returns how it ended, and whether this call
    /// committed.
    fn hold_until_queued(
        writer: &Writer,
        n: i64,
        queued: usize,
        inside: &AtomicBool,
        log: &Arc<Mutex<Vec<i64>>>,
        wait: Wait,
    ) -> (bool, Result<()>) {
        writer.write(
            |w| {
                insert(w, n)?;
                inside.store(true, Ordering::SeqCst);
                let start = Instant::now();
                while writer.waiting() < queued {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "writes never queued"
                    );
                    thread::yield_now();
                }
                Ok(())
            },
            |()| publish(log, n),
            wait,
        )
    }

    /// Waits for `flag`.
    fn wait_for(flag: &AtomicBool) {
        while !flag.load(Ordering::SeqCst) {
            thread::yield_now();
        }
    }

    #[test]
    fn writes_queued_behind_one_commit_together_and_publish_in_the_order_they_ran() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = writer(&dir);
        let log = Arc::new(Mutex::new(Vec::new()));
        let inside = AtomicBool::new(false);
        let commits = thread::scope(|s| {
            let holder =
                s.spawn(|| hold_until_queued(&writer, 0, 3, &inside, &log, Wait::ForQueued));
            // The holder takes the lock first, then the others queue behind it.
            wait_for(&inside);
            let queued: Vec<_> = (1..=3)
                .map(|n| {
                    let (writer, log, dir) = (&writer, &log, &dir);
                    s.spawn(move || {
                        let (committed, result) =
                            writer.write(|w| insert(w, n), |()| publish(log, n), Wait::ForQueued);
                        result.expect("a queued write");
                        // Its row is committed when it returns: a new connection sees it.
                        let other = Connection::open(dir.path().join("w.db")).expect("reader");
                        let seen: i64 = other
                            .query_row("SELECT count(*) FROM t WHERE n = ?1", [n], |r| r.get(0))
                            .expect("count");
                        assert_eq!(seen, 1);
                        committed
                    })
                })
                .collect();
            let (committed, result) = holder.join().expect("holder");
            result.expect("the holding write");
            let mut commits = usize::from(committed);
            for q in queued {
                commits += usize::from(q.join().expect("queued"));
            }
            commits
        });
        assert_eq!(commits, 1, "four writes, one commit");
        let stored = rows(&writer);
        assert_eq!(stored.len(), 4);
        assert_eq!(*lock(&log), stored, "published in the order the writes ran");
    }

    #[test]
    fn a_prompt_write_commits_without_waiting_for_the_writes_queued_behind_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = writer(&dir);
        let log = Arc::new(Mutex::new(Vec::new()));
        let inside = AtomicBool::new(false);
        thread::scope(|s| {
            let holder = s.spawn(|| hold_until_queued(&writer, 0, 1, &inside, &log, Wait::Never));
            wait_for(&inside);
            let queued =
                s.spawn(|| writer.write(|w| insert(w, 1), |()| publish(&log, 1), Wait::ForQueued));
            let (committed, result) = holder.join().expect("holder");
            assert!(
                committed && result.is_ok(),
                "the prompt write committed itself"
            );
            let (committed, result) = queued.join().expect("queued");
            assert!(
                committed && result.is_ok(),
                "the queued write committed on its own"
            );
        });
        assert_eq!(rows(&writer), [0, 1]);
        assert_eq!(*lock(&log), [0, 1]);
    }

    #[test]
    fn a_failed_or_panicking_write_in_a_group_undoes_only_its_own_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = writer(&dir);
        let log = Arc::new(Mutex::new(Vec::new()));
        let inside = AtomicBool::new(false);
        thread::scope(|s| {
            let holder =
                s.spawn(|| hold_until_queued(&writer, 0, 3, &inside, &log, Wait::ForQueued));
            wait_for(&inside);
            let ok = s.spawn(|| {
                writer
                    .write(|w| insert(w, 1), |()| publish(&log, 1), Wait::ForQueued)
                    .1
            });
            let failed = s.spawn(|| {
                writer
                    .write(
                        |w| {
                            insert(w, 2)?;
                            Err::<(), _>(StoreError::Invalid("refused".into()))
                        },
                        |()| publish(&log, 2),
                        Wait::ForQueued,
                    )
                    .1
            });
            let panicked = s.spawn(|| {
                writer.write(
                    |w| {
                        insert(w, 3)?;
                        panic!("a bug in a write");
                    },
                    |()| publish(&log, 3),
                    Wait::ForQueued,
                )
            });
            assert!(holder.join().expect("holder").1.is_ok());
            assert!(ok.join().expect("ok").is_ok());
            assert!(matches!(
                failed.join().expect("failed"),
                Err(StoreError::Invalid(_))
            ));
            assert!(panicked.join().is_err(), "the panic reaches its own caller");
        });
        let mut stored = rows(&writer);
        stored.sort_unstable();
        assert_eq!(stored, [0, 1]);
        let mut published = lock(&log).clone();
        published.sort_unstable();
        assert_eq!(published, [0, 1]);
        // The writer is usable afterwards, with nothing left open.
        writer
            .write(|w| insert(w, 4), |()| None, Wait::ForQueued)
            .1
            .expect("a later write");
        assert!(lock(&writer.state).conn.is_autocommit());
    }

    #[test]
    fn a_failed_commit_fails_every_member_and_publishes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = writer(&dir);
        let log = Arc::new(Mutex::new(Vec::new()));
        let inside = AtomicBool::new(false);
        let results = thread::scope(|s| {
            // The holder's own row is fine; a member's child row breaks a foreign key checked at COMMIT.
            let holder =
                s.spawn(|| hold_until_queued(&writer, 0, 1, &inside, &log, Wait::ForQueued).1);
            wait_for(&inside);
            let breaker = s.spawn(|| {
                writer
                    .write(
                        |w| {
                            w.execute("INSERT INTO child (parent) VALUES (42)", [])?;
                            Ok(())
                        },
                        |()| publish(&log, 1),
                        Wait::ForQueued,
                    )
                    .1
            });
            [
                holder.join().expect("holder"),
                breaker.join().expect("breaker"),
            ]
        });
        for result in &results {
            assert!(
                matches!(result, Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation),
                "{result:?}"
            );
        }
        assert!(rows(&writer).is_empty());
        assert!(lock(&log).is_empty());
        writer
            .write(|w| insert(w, 2), |()| None, Wait::ForQueued)
            .1
            .expect("a later write");
        assert_eq!(rows(&writer), [2]);
    }
}
