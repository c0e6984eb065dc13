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
//! (or may not wait) commits for everyone, runs every member's `after_commit` in the order they ran,
//! releases the lock, then wakes the members. A single writer with nobody waiting commits at once, as
//! before: grouping only ever happens to writes that would have waited anyway.
//!
//! A write waiting for the others of its group must not hold a lock their `f` may take (no store caller
//! does: the chat operations, admin changes and plugin powers that write hold none). A loop whose next step
//! waits on its write (the dispatcher's rounds) commits as soon as it ran ([`Wait::Never`]), with any
//! writes that joined before it: a round queued behind sends commits theirs with its own, and never waits
//! for the requests queued behind it.
//!
//! ## Writes that begin with their first statement
//! A dispatcher round decides in memory what to write, and on a busy server on its own it mostly writes
//! nothing: its calls succeeded straight from the outbox and its new events need no row. Taking the writer
//! up front made every round hold it for that memory work, about a sixth of the time the writer was held
//! with five plugins, and commit the sends' open group early. [`Writer::write_lazily`] takes the lock
//! only when the round first asks for the connection ([`Lazy::writing`]); a round that never asks takes
//! nothing and commits nothing (BENCHMARKS.md, problem 33).
//!
//! ## What it keeps
//! - A write returns only after its changes are committed (or with the error that prevented it): a failed
//!   commit fails every member of the group with the same SQLite error, and none of their `after_commit`
//!   runs.
//! - Event ids are assigned in the order writes run and published in that order, all before the next group
//!   can commit: live subscribers see events in id order, exactly as when each write committed alone.
//! - Durability is the same per commit; with `synchronous=FULL` a group pays one fsync instead of one each.
//!
//! ## Reads on the idle writer
//! A read connection throws its page cache away whenever another connection committed, so right after a
//! commit every read starts cold. [`Writer::read_if_idle`] lends the writer's warm connection to a read
//! when nothing writes or waits and no group's transaction is open; otherwise the read goes elsewhere
//! without waiting.
//!
//! ## How busy it is
//! [`Writer::busy`] adds up how long the writer was held (`/metrics`:
//! `chathooks_store_writer_busy_seconds_total`). Every write of the server goes through it, so once it is
//! held most of the time, the time a message holds it sets how many messages a second the server stores,
//! however many cores are idle (BENCHMARKS.md, problem 32).

use std::cell::OnceCell;
use std::ops::{Deref, DerefMut};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::Action;

use crate::store::AfterCommit;
use crate::store::conversation_cache::ConversationCache;
use crate::store::error::{Result, StoreError};
use crate::store::table_changes::TableChanges;
use crate::store::token_cache::ACCOUNT_TABLES;

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
    conversations: &'c ConversationCache,
}

impl Writing<'_> {
    /// Runs `f`, whose changes to conversations and participants are counters only (message counts,
    /// unread counts, read marks, the last message): the remembered conversations stay valid
    /// ([`crate::store::conversation_cache`]).
    pub fn counters<T>(&self, f: impl FnOnce() -> T) -> T {
        self.conversations.counting(f)
    }

    /// This write made `message_id` the last message of `conversation_id`: the remembered conversation
    /// says so once the transaction commits.
    pub fn last_message(&self, conversation_id: &str, message_id: &str) {
        self.conversations.last_message(conversation_id, message_id);
    }
}

impl Deref for Writing<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The writer for a write that has not begun yet ([`Writer::write_lazily`]).
pub struct Lazy<'w> {
    writer: &'w Writer,
    begun: OnceCell<Begun<'w>>,
}

impl Lazy<'_> {
    /// The writer in the write transaction, begun now if this is the first time asked: from here on the
    /// lock is held until the write ends.
    pub fn writing(&self) -> Result<Writing<'_>> {
        let begun = match self.begun.get() {
            Some(begun) => begun,
            None => {
                let begun = self.writer.begin()?;
                self.begun.get_or_init(|| begun)
            }
        };
        Ok(begun.writing(self.writer))
    }
}

/// A write begun: the lock held, the group's transaction open, the write's own savepoint made.
struct Begun<'w> {
    state: Held<'w>,
    /// The conversations remembered as of the savepoint.
    mark: usize,
}

impl Begun<'_> {
    fn writing<'a>(&'a self, writer: &'a Writer) -> Writing<'a> {
        Writing {
            conn: &self.state.conn,
            conversations: &writer.conversations,
        }
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
    accounts: Arc<TableChanges>,
    /// The conversations remembered, which the transactions' changes keep true.
    conversations: Arc<ConversationCache>,
    /// Nanoseconds the writer has been held since it was made ([`Writer::busy`]).
    busy_ns: AtomicU64,
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
        let accounts = Arc::new(TableChanges::watching(ACCOUNT_TABLES));
        let conversations = Arc::new(ConversationCache::default());
        // SQLite has one update hook per connection: it tells both.
        let (hook_accounts, hook_conversations) =
            (Arc::clone(&accounts), Arc::clone(&conversations));
        conn.update_hook(Some(move |_: Action, _: &str, table: &str, _: i64| {
            hook_accounts.row_changed(table);
            hook_conversations.row_changed(table);
        }));
        Writer {
            state: Mutex::new(State { conn, group: None }),
            waiting: AtomicUsize::new(0),
            accounts,
            conversations,
            busy_ns: AtomicU64::new(0),
        }
    }

    /// How long the writer has been held since it was made, by writes (each write's own statements, and
    /// a group's commit with what runs after it) and by the reads lent its connection: the time every other
    /// write had to wait for. Its rate is the share of the time the database could take no other write,
    /// which at 1 (always held) bounds the server's writes per second (`/metrics`).
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed))
    }

    /// `state` held from now on, counted in [`Writer::busy`] until it is dropped.
    fn held<'w>(&'w self, state: MutexGuard<'w, State>) -> Held<'w> {
        Held {
            state,
            since: Instant::now(),
            busy_ns: &self.busy_ns,
        }
    }

    /// The changes this writer makes to `users` and `tokens`.
    pub fn account_changes(&self) -> Arc<TableChanges> {
        Arc::clone(&self.accounts)
    }

    /// The conversations remembered, kept true by this writer.
    pub fn conversations(&self) -> &ConversationCache {
        &self.conversations
    }

    /// The transaction on the connection ended, committed or not.
    fn transaction_ended(&self, committed: bool) {
        self.accounts.transaction_ended();
        self.conversations.transaction_ended(committed);
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
        let begun = match self.begin() {
            Ok(begun) => begun,
            Err(e) => return (false, Err(e)),
        };
        let ran = panic::catch_unwind(AssertUnwindSafe(|| f(&begun.writing(self))));
        self.end(begun, ran, after_commit, wait)
    }

    /// Runs `f` as a write that begins only when `f` first asks [`Lazy::writing`] for the writer: one
    /// that makes no statement takes no lock and commits nothing. Once begun it is a [`Wait::Never`]
    /// write (see [`Writer::write`]). The dispatcher's rounds: most of them, on a busy server on its own,
    /// write nothing, and each took the writer for the memory work it does before deciding so
    /// (BENCHMARKS.md, problem 33).
    pub fn write_lazily<T>(&self, f: impl FnOnce(&Lazy<'_>) -> Result<T>) -> (bool, Result<T>) {
        let lazy = Lazy {
            writer: self,
            begun: OnceCell::new(),
        };
        let ran = panic::catch_unwind(AssertUnwindSafe(|| f(&lazy)));
        match lazy.begun.into_inner() {
            Some(begun) => self.end(begun, ran, |_| None, Wait::Never),
            None => (false, finish(ran)),
        }
    }

    /// Takes the lock, begins the group's transaction if none is open, and makes the write's savepoint.
    fn begin(&self) -> Result<Begun<'_>> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut state = self.held(lock(&self.state));
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if state.group.is_none() {
            run(&state.conn, "BEGIN IMMEDIATE")?;
            state.group = Some(Group::default());
        }
        let mark = self.conversations.mark();
        if let Err(e) = run(&state.conn, "SAVEPOINT write") {
            // The transaction is in a state nobody can vouch for: roll the whole group back.
            let group = state.group.take().unwrap_or_default();
            rollback(&state.conn);
            self.transaction_ended(false);
            group.outcome.finish(Err(&e));
            return Err(e.into());
        }
        Ok(Begun { state, mark })
    }

    /// Ends a write begun by [`Writer::begin`] that ran to `ran`: releases or rolls back its savepoint,
    /// then commits for the group or hands the transaction on (see [`Writer::write`]).
    fn end<T>(
        &self,
        begun: Begun<'_>,
        ran: std::thread::Result<Result<T>>,
        after_commit: impl FnOnce(&T) -> Option<AfterCommit>,
        wait: Wait,
    ) -> (bool, Result<T>) {
        let Begun { mut state, mark } = begun;
        let ended = match &ran {
            Ok(Ok(_)) => run(&state.conn, "RELEASE write"),
            _ => {
                self.conversations.rolled_back_to(mark);
                run(&state.conn, "ROLLBACK TO write")
                    .and_then(|()| run(&state.conn, "RELEASE write"))
            }
        };
        if let Err(e) = ended {
            // The transaction is in a state nobody can vouch for: roll the whole group back.
            let group = state.group.take().unwrap_or_default();
            rollback(&state.conn);
            self.transaction_ended(false);
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
        self.transaction_ended(committed.is_ok());
        drop(state);
        // The members learn the outcome once the writer is free: waking them while holding it let the
        // woken threads take the core of the thread holding it, and every other write waited for that
        // (as long as the `COMMIT` itself or longer, BENCHMARKS.md, problem 33).
        group.outcome.finish(committed.as_ref().map(|_| ()));
        // A write that failed reports its own error, whatever became of the others'.
        let result =
            finish(ran).and_then(|value| committed.map(|()| value).map_err(StoreError::from));
        (true, result)
    }

    /// Runs the read `f` on the writer's connection, in a read transaction of its own, when the writer is
    /// idle: no write holds it or is queued for it, and no group's transaction is open (so `f` sees only
    /// committed data, as on a read connection). Otherwise hands `f` back untouched, without waiting: the
    /// caller reads on a read connection instead. `f` must only read.
    ///
    /// Why: a read connection throws its page cache away whenever another connection committed since its
    /// last read, then reads every page again from the WAL with a system call each. The writer's cache
    /// holds the pages it just wrote: the look before a send's before-hooks costs a third less here
    /// (BENCHMARKS.md, problem 20).
    pub fn read_if_idle<T, F>(&self, f: F) -> std::result::Result<Result<T>, F>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            return Err(f);
        }
        let state = self.held(match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(f),
        });
        if state.group.is_some() || !state.conn.is_autocommit() {
            return Err(f);
        }
        if let Err(e) = run(&state.conn, "BEGIN") {
            return Ok(Err(e.into()));
        }
        let read = panic::catch_unwind(AssertUnwindSafe(|| f(&state.conn)));
        // Ending a read transaction cannot lose anything, but the writer's next `BEGIN IMMEDIATE` needs
        // it ended.
        if run(&state.conn, "COMMIT").is_err() {
            rollback(&state.conn);
        }
        drop(state);
        Ok(finish(read))
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

/// The writer's state while held: adds the time held to [`Writer::busy`] when dropped.
struct Held<'w> {
    state: MutexGuard<'w, State>,
    since: Instant,
    busy_ns: &'w AtomicU64,
}

impl Deref for Held<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let held = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(held, Ordering::Relaxed);
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
#[path = "writer_tests.rs"]
mod tests;
