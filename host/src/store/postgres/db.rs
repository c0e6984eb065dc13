//! [`PgDb`]: the chat database on PostgreSQL, single node, behind the same synchronous seam as SQLite.
//!
//! ## Connections driven by their callers
//! tokio-postgres is async, the seam is not: every store call in the server already runs on a
//! `spawn_blocking` thread (SQLite blocks), and tests and tools call it from plain threads. So each store
//! call checks out a connection of [`DrivenPool`] and runs its queries with that connection's own
//! current-thread runtime, on the calling thread, which also does the connection's I/O
//! ([`super::driven`] says why: a statement through a shared runtime's thread cost 4-5 times the CPU).
//! [`PgDb`] also owns a small multi-threaded tokio runtime (`PgRuntime`) for the node's
//! background work, which is async (migrations, the server lock, the sequencer, the cluster's catalog and
//! heartbeats), with a [`PgPool`] of its own. Owning both, rather than borrowing the server's runtime,
//! means a `PgDb` works from any thread (a `#[test]` has no runtime), and its connections do not die with
//! whichever runtime happened to create them (a `#[tokio::test]`'s ends with the test).
//!
//! Async code should go through [`crate::blocking::run`], as the chat layer does for every store call. A call
//! made from async code anyway (a test's helper, a tool) is run under `tokio::task::block_in_place`, which
//! moves the worker's other tasks to another thread while this one blocks; that works on a
//! multi-threaded runtime and panics on a current-thread one, where blocking the thread would stall it.
//!
//! ## Writes: one at a time, in commit order
//! [`PgDb::write_then`] runs its closure in a READ COMMITTED transaction while holding an in-process
//! writer mutex, through the commit and `after_commit`, exactly like SQLite's writer lock. That is what
//! keeps event id order = commit order on this node: PostgreSQL hands identity values out at insert, not
//! at commit, so two overlapping writers could commit ids 8 then 7, a live subscriber would see 8 first,
//! and a client resuming "after 8" would never get 7; the WebSocket resume and the dispatcher rely on that
//! order (SCALE-OUT.md 2.3, 2.4). It also makes live publishing in `after_commit` happen in id order. The
//! cost is SQLite's: one writer at a time per node, so throughput is bounded by one transaction's round
//! trips. Cluster mode replaces the mutex by conversation row locks and the sequencer (SCALE-OUT.md 2.3,
//! 2.4), which is also why `send_message` takes the conversation's row lock first already.
//!
//! The mutex is taken before a connection is checked out, so writers waiting for it do not hold pool
//! connections that readers need.
//!
//! A transaction that appends no event has no commit order to keep and skips the mutex
//! ([`PgDb::write_without_events`]): the dispatcher's rounds, which write only deliveries and the outbox
//! rows of events already committed. Under load a round otherwise waited behind every queued send (30-40
//! ms per round at 16 clients, BENCHMARKS.md problem 18) and held the after-hooks back as long. Nothing
//! else writes those rows but admin requests (a dead letter replayed), whose row locks PostgreSQL orders.
//!
//! ## Retries
//! A closure whose statement failed with a serialization failure (`40001`) or a deadlock (`40P01`) runs
//! again on a fresh transaction, up to [`MAX_WRITE_ATTEMPTS`] times in all. Under the writer mutex neither
//! can happen between this node's writers; they guard against other sessions (an admin's `psql`, the KV
//! store's transactions on the same database). The chat layer wraps store errors in its own, so the
//! write loop asks the connection whether a statement lost such a race (`PgConn`), not the error.
//!
//! A transaction's `BEGIN` goes out with its first statement ([`Transaction`]), so a pooled connection
//! the server closed (a restart) fails that statement, before anything of the transaction ran: a write or
//! a read then runs its closure again on another connection, up to the pool's size, so the first call
//! after a restart does not fail for a connection the pool had not yet noticed was dead. A connection
//! lost after that is reported ([`StoreError::is_unavailable`]), never retried: a lost `COMMIT` may have
//! committed.
//!
//! ## Reads
//! [`PgDb::read`] runs its closure in a `REPEATABLE READ READ ONLY` transaction: every query sees one
//! snapshot, as a SQLite read transaction does, and the server refuses writes. Its end is not waited for
//! (nothing of it can be lost), so a read of one statement is one round trip.
//!
//! ## Durability
//! [`Durability::Process`] sets `synchronous_commit = off` on every connection (SCALE-OUT.md 2.2): a
//! commit returns before PostgreSQL flushes its WAL, which survives the chathooks process being killed
//! (PostgreSQL holds the data) but may lose the last ~0.6 s of commits if PostgreSQL itself crashes.
//! [`Durability::Power`] sets it `on`: each commit waits for the WAL flush. Set in the connection's
//! startup options, so it costs no statement (a pooler in front of PostgreSQL must pass `options`
//! through; PgBouncer needs `ignore_startup_parameters = options` or a `-c` in its own settings).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio_postgres::IsolationLevel;

use super::connect::{PgPool, PoolOptions};
use super::driven::DrivenPool;
use super::error::{PgError, connection_lost, must_retry};
use super::kv::PgKv;
use super::leases::LeaseHolder;
use super::locks::advisory_key;
use super::migrations::migrate;
use super::owner::{LockMode, ServerLock, TAKE_GRACE};
use super::remembered::Remembered;
use super::runtime::PgRuntime;
use super::seam::PgConn;
use super::sequencer::SequencerSession;
use super::setting::PgSetting;
use super::transaction::Transaction;
use super::writer::WriterMutex;
use crate::store::Durability;
use crate::store::error::{Result, StoreError};
use crate::store::{AfterCommit, Read, Tx};

mod alone;

/// Most connections of the pool for the node's background work ([`PgDb::pool`]): it makes a statement
/// now and then (a migration at start, a heartbeat, the plugin catalog), never one per request, so a few
/// are plenty beside the `--db-pool-size` the store's calls run on.
pub const BACKGROUND_POOL_SIZE: usize = 4;

/// How long a cluster node's lease on a delivery it started lasts: longer than any after-hook call may
/// run (its wall-clock cap, ten times the after-hook budget: 10 s by default), so a live node never loses
/// a lease mid-call; a dead node's deliveries are started elsewhere this long after it started them. A run
/// leases all its deliveries at once, and the calls behind others in a row begin later: one whose lease
/// would run out within its cap is given back instead (`dispatch::deliver::Started::lease_too_short`).
pub const DELIVERY_LEASE: std::time::Duration = std::time::Duration::from_secs(20);

/// Most times a write's closure runs when PostgreSQL fails it with a serialization failure or a deadlock.
/// A transaction that loses five races in a row is contending with something a retry will not outwait.
pub const MAX_WRITE_ATTEMPTS: u32 = 5;

/// The chat database on PostgreSQL; see the module docs.
pub struct PgDb {
    /// The connections of the node's background work (migrations, locks, the sequencer, the cluster's
    /// catalog and heartbeats), on [`PgDb::runtime`].
    pool: PgPool,
    /// The connections the store's calls run on, each driven by its caller's thread.
    driven: DrivenPool,
    /// Serialises this node's writes; see the module docs.
    writer: WriterMutex,
    /// What a server on its own remembers between requests, and the changes it trusts them under.
    remembered: Remembered,
    /// Runs the background pool's connections and the node's async work on them.
    runtime: Arc<PgRuntime>,
    /// What commits survive.
    durability: Durability,
    /// How long taking the server lock waits for a holder that is going away ([`TAKE_GRACE`]).
    lock_grace_ms: AtomicU64,
    /// The lock that makes this the database's only server, once [`PgDb::claim`]ed (or one of a
    /// cluster's nodes, once [`PgDb::join_cluster`]ed).
    server_lock: Mutex<Option<ServerLock>>,
    /// A node of a cluster: no writer mutex, events are appended as drafts for the sequencer, and
    /// deliveries are leased ([`super::leases`]).
    cluster: OnceLock<Box<LeaseHolder>>,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb")
            .field("pool", &self.pool)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl PgDb {
    /// Connects to the database `setting` names (a `postgres://` URL or a key-value string), checks it
    /// is PostgreSQL and migrates it. Call it from a thread that is not running async code.
    pub fn connect(setting: &str, durability: Durability, options: PoolOptions) -> Result<Self> {
        let runtime = Arc::new(PgRuntime::new()?);
        let setting = PgSetting::parse(setting)?
            .with_server_parameter("synchronous_commit", synchronous_commit(durability));
        let driven = DrivenPool::new(setting.clone(), options);
        let background = PoolOptions {
            size: options.size.min(BACKGROUND_POOL_SIZE),
            ..options
        };
        let pool = tokio::task::block_in_place(|| {
            runtime.handle().block_on(async {
                let pool = PgPool::connect(setting, background).await?;
                migrate(&pool).await?;
                Ok::<_, PgError>(pool)
            })
        });
        let pool = pool.map_err(|err| match err {
            PgError::SchemaTooNew { found, supported } => {
                StoreError::SchemaTooNew { found, supported }
            }
            other => StoreError::Postgres(other),
        })?;
        Ok(Self {
            pool,
            driven,
            writer: WriterMutex::default(),
            remembered: Remembered::default(),
            runtime,
            durability,
            server_lock: Mutex::new(None),
            lock_grace_ms: AtomicU64::new(duration_ms(TAKE_GRACE)),
            cluster: OnceLock::new(),
        })
    }

    /// Makes this the only server of the database until it is dropped ([`super::owner`]): fails with
    /// [`PgError::InUse`] when another server holds the database. Tools (`chathooks migrate`) and tests
    /// that open the database beside a server do not claim it.
    ///
    /// Event drafts a cluster left unsequenced (every node stopped before its sequencer took them) become
    /// events first, and the event id generator is moved past the ids the sequencer gave, so the log
    /// continues where the cluster left it.
    pub fn claim(&self) -> Result<()> {
        let held = tokio::task::block_in_place(|| {
            self.runtime.handle().block_on(async {
                let held =
                    ServerLock::take(&self.pool, LockMode::Exclusive, self.lock_grace()).await?;
                let mut session = SequencerSession::open(&self.pool, "", "").await?;
                while !session.sequence(1000).await?.is_empty() {}
                let client = self.pool.get().await?;
                client
                    .execute(
                        "SELECT setval(pg_get_serial_sequence('events', 'id'),
                                       coalesce((SELECT max(id) FROM events), 0) + 1, false)",
                        &[],
                    )
                    .await?;
                Ok::<_, StoreError>(held)
            })
        })?;
        *lock(&self.server_lock) = Some(held);
        Ok(())
    }

    /// Whether this is the database's only server ([`PgDb::claim`]), not a node of a cluster: then
    /// every event is appended here, under the writer mutex, so events commit in id order.
    fn appends_alone(&self) -> bool {
        self.cluster.get().is_none() && lock(&self.server_lock).is_some()
    }

    /// How long [`PgDb::claim`] and [`PgDb::join_cluster`] wait for a holder of the server lock that is
    /// going away before they refuse: [`TAKE_GRACE`], shorter in tests that expect the refusal.
    pub fn set_lock_grace(&self, grace: Duration) {
        self.lock_grace_ms
            .store(duration_ms(grace), Ordering::Relaxed);
    }

    fn lock_grace(&self) -> Duration {
        Duration::from_millis(self.lock_grace_ms.load(Ordering::Relaxed))
    }

    /// Makes this node `node_id` of cluster `cluster` on the database: takes the server lock in shared
    /// mode (refused with [`PgError::InUse`] while a server on its own serves the database), drops the
    /// writer mutex, appends events as drafts for the sequencer and leases deliveries (SCALE-OUT.md 2.3,
    /// 2.4, 2.6).
    pub fn join_cluster(&self, cluster: &str, node_id: &str) -> Result<()> {
        let held = tokio::task::block_in_place(|| {
            self.runtime.handle().block_on(ServerLock::take(
                &self.pool,
                LockMode::Shared,
                self.lock_grace(),
            ))
        })?;
        *lock(&self.server_lock) = Some(held);
        let lease_ms =
            crate::model::Millis::try_from(DELIVERY_LEASE.as_millis()).unwrap_or(i64::MAX);
        let _ = self.cluster.set(Box::new(LeaseHolder {
            node_id: node_id.to_owned(),
            fan_out_key: advisory_key(cluster, "fan-out"),
            lease_ms,
            cluster: cluster.to_owned(),
        }));
        Ok(())
    }

    /// Whether this is a node of a cluster ([`PgDb::join_cluster`]).
    pub fn is_clustered(&self) -> bool {
        self.cluster.get().is_some()
    }

    /// The setting, redacted: for messages and logs.
    pub fn location(&self) -> &str {
        self.pool.setting().redacted()
    }

    /// The pool, for tools and tests that run their own SQL (on [`PgDb::handle`]).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How long the writer mutex has been held since the database was opened (see `super::writer`);
    /// `None` on a node of a cluster, which has none.
    pub fn writer_busy(&self) -> Option<std::time::Duration> {
        self.cluster.get().is_none().then(|| self.writer.busy())
    }

    /// The connections the store's calls run on (tests look at them).
    #[cfg(test)]
    pub(super) fn driven(&self) -> &DrivenPool {
        &self.driven
    }

    /// The backend's runtime, to drive [`PgDb::pool`]'s futures with `block_on`.
    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// The plugins' KV store in this same database (tables `plugin_kv` and `plugin_kv_usage`), sharing
    /// its connections.
    pub fn kv(&self) -> PgKv {
        PgKv::new(self.driven.clone())
    }

    /// Runs `f` in one READ COMMITTED transaction and commits if it returns `Ok`; see the module docs for
    /// the writer mutex and the retries (so `f` may run more than once).
    pub fn write<T>(&self, f: impl FnMut(&dyn Tx) -> Result<T>) -> Result<T> {
        self.write_then(f, |_| None)
    }

    /// Like [`PgDb::write`], then runs what `after_commit` makes of the result while still holding the
    /// writer mutex, so that the next write cannot commit before it returns (live events in id order).
    pub fn write_then<T>(
        &self,
        f: impl FnMut(&dyn Tx) -> Result<T>,
        after_commit: impl FnOnce(&T) -> Option<AfterCommit>,
    ) -> Result<T> {
        let _writer = self.cluster.get().is_none().then(|| self.writer.hold());
        self.transact(f, after_commit, MAX_WRITE_ATTEMPTS, true)
    }

    /// Like [`PgDb::write`] for a transaction that appends no event (the dispatcher's rounds), which
    /// need not wait for the writer mutex: that keeps events in commit order and nothing else (see the
    /// module docs). An event appended in it anyway fails it ([`StoreError::Invalid`]). It runs once:
    /// a transaction that lost a race returns that error, since its caller may keep state the first run
    /// changed (the dispatcher then reloads its memory).
    pub fn write_without_events<T>(&self, f: impl FnMut(&dyn Tx) -> Result<T>) -> Result<T> {
        self.transact(f, |_| None, 1, false)
    }

    /// Runs `f` in a READ COMMITTED transaction that begins with its first statement, up to `attempts`
    /// times while it loses races; `events`: whether it may append events.
    fn transact<T>(
        &self,
        mut f: impl FnMut(&dyn Tx) -> Result<T>,
        after_commit: impl FnOnce(&T) -> Option<AfterCommit>,
        attempts: u32,
        events: bool,
    ) -> Result<T> {
        let cluster = self.cluster.get().map(|holder| &**holder);
        // A server's writes report what they change in what it remembers (token owners,
        // conversations); a round's (`!events`, no writer mutex) change none of it.
        let remembered = (events && cluster.is_none()).then_some(&self.remembered);
        let mut attempt = 1;
        loop {
            // A write's `BEGIN` goes out with its first statement, so a closed pooled connection fails
            // that statement: with nothing of the closure on the server, a write that may append
            // events runs again on another connection. A dispatcher round (`!events`) does not: its
            // closure changes the dispatcher's memory as it goes, so its caller tries again later.
            let read_write = (IsolationLevel::ReadCommitted, false);
            let outcome = self.on_first_statement(read_write, events, |tx, rt| {
                let conn = PgConn::new(tx, rt)
                    .in_cluster(cluster)
                    .appending_events(events)
                    .remembering(remembered);
                let result = f(&conn);
                let lost_race = conn.lost_race();
                let ended = end_transaction(tx, result, lost_race, rt);
                if let Some(remembered) = remembered {
                    remembered.transaction_ended(ended.is_ok());
                }
                ended
            })?;
            match outcome {
                Ok(value) => {
                    if let Some(then) = after_commit(&value) {
                        then();
                    }
                    return Ok(value);
                }
                Err((true, error)) if attempt < attempts => {
                    tracing::debug!(attempt, %error, "PostgreSQL transaction lost a race; running it again");
                    attempt += 1;
                }
                Err((_, error)) => return Err(error),
            }
        }
    }

    /// Runs `f` on one `REPEATABLE READ READ ONLY` snapshot. Writes committed before the call are visible.
    /// The transaction begins with `f`'s first statement, and ends without waiting for the server: a
    /// read of one statement is one round trip, not three. `f` runs again on another connection if the
    /// first turned out closed before anything of it ran.
    pub fn read<T>(&self, mut f: impl FnMut(&dyn Read) -> Result<T>) -> Result<T> {
        let cluster = self.cluster.get().map(|holder| &**holder);
        let in_order = self.appends_alone();
        let read_only = (IsolationLevel::RepeatableRead, true);
        self.on_first_statement(read_only, true, |tx, rt| {
            let conn = PgConn::new(tx, rt)
                .in_cluster(cluster)
                .events_in_id_order(in_order);
            let value = f(&conn)?;
            // Nothing a read-only transaction did can be lost; the connection sends its end before it
            // is used again.
            tx.end_without_waiting();
            Ok(value)
        })?
    }

    /// Every event with an id in `after + 1 ..= through`, oldest first, at most `limit`, whatever its
    /// audience: a cluster node's live feed filling a gap ([`super::events::events_between`]).
    pub fn events_between(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> Result<Vec<crate::store::StoredEvent>> {
        self.in_transaction(IsolationLevel::ReadCommitted, true, |tx, rt| {
            let events = rt.block_on(super::events::events_between(tx, after, through, limit))?;
            rt.block_on(tx.commit())?;
            Ok(events)
        })?
    }

    /// Cluster mode: leases `plugins`' timers due at `now` for `node` until `lease_until`
    /// ([`super::timers::lease_timers`]), in a transaction of its own.
    pub fn lease_timers(
        &self,
        node: &str,
        plugins: &[String],
        now: crate::model::Millis,
        lease_until: crate::model::Millis,
        limit: u32,
    ) -> Result<Vec<crate::store::Timer>> {
        self.in_transaction(IsolationLevel::ReadCommitted, false, |tx, rt| {
            let leased = rt.block_on(super::timers::lease_timers(
                tx,
                node,
                plugins,
                now,
                lease_until,
                limit,
            ))?;
            rt.block_on(tx.commit())?;
            Ok(leased)
        })?
    }

    /// Checks out a connection and hands `body` a transaction on it that begins with its first statement
    /// ([`Transaction::on_first_statement`]). A pooled connection the server closed fails that statement;
    /// if `again`, `body` then runs again on another connection, up to the pool's size.
    fn on_first_statement<R>(
        &self,
        (isolation, read_only): (IsolationLevel, bool),
        again: bool,
        mut body: impl FnMut(&Transaction<'_>, &Runtime) -> R,
    ) -> Result<R> {
        tokio::task::block_in_place(|| {
            let mut stale = 0;
            loop {
                let mut conn = self.driven.get()?;
                let (rt, client) = conn.parts();
                let tx = Transaction::on_first_statement(client, isolation, read_only);
                let value = body(&tx, rt);
                if !(again && tx.lost_at_begin() && stale < self.driven.options().size) {
                    return Ok(value);
                }
                stale += 1;
                tracing::debug!("a pooled PostgreSQL connection was closed; taking another");
                drop(tx);
                conn.discard();
            }
        })
    }

    /// Checks out a connection, begins a transaction on it and hands it to `body`. A pooled connection
    /// that turns out closed at `BEGIN` (the server restarted) is thrown away and another taken, up to
    /// the pool's size: nothing ran on it yet.
    fn in_transaction<R>(
        &self,
        isolation: IsolationLevel,
        read_only: bool,
        body: impl FnOnce(&Transaction<'_>, &Runtime) -> R,
    ) -> Result<R> {
        // From async code (a test's helper, a tool) the whole transaction moves off the async worker:
        // `block_in_place` hands the worker's other tasks to another thread; on the blocking threads the
        // server uses it does nothing.
        tokio::task::block_in_place(|| self.in_transaction_here(isolation, read_only, body))
    }

    /// [`PgDb::in_transaction`] on the calling thread, which must not be running async code.
    fn in_transaction_here<R>(
        &self,
        isolation: IsolationLevel,
        read_only: bool,
        body: impl FnOnce(&Transaction<'_>, &Runtime) -> R,
    ) -> Result<R> {
        let mut stale = 0;
        loop {
            let mut conn = self.driven.get()?;
            let (rt, client) = conn.parts();
            let error = match rt.block_on(Transaction::begin(client, isolation, read_only)) {
                Ok(tx) => return Ok(body(&tx, rt)),
                Err(error) => error,
            };
            if !connection_lost(&error) || stale >= self.driven.options().size {
                return Err(error.into());
            }
            stale += 1;
            tracing::debug!(%error, "a pooled PostgreSQL connection was closed; taking another");
            conn.discard();
        }
    }
}

/// Ends a write transaction after its closure returned `result`: commits `tx` if the closure succeeded,
/// else rolls it back (neither costs a round trip if no statement began it). The error says whether
/// running the closure again may succeed (`lost_race`, or a commit that lost a race).
fn end_transaction<T>(
    tx: &Transaction<'_>,
    result: Result<T>,
    lost_race: bool,
    rt: &Runtime,
) -> std::result::Result<T, (bool, StoreError)> {
    match result {
        Ok(value) => match rt.block_on(tx.commit()) {
            Ok(()) => Ok(value),
            Err(error) => Err((must_retry(&error), StoreError::from(error))),
        },
        Err(error) => {
            // A failed statement already aborted the transaction; say so to the server now rather
            // than when the connection is next used. A connection lost meanwhile is noticed by the
            // pool.
            let _ = rt.block_on(tx.rollback());
            Err((lost_race, error))
        }
    }
}

/// `synchronous_commit` for `durability`; see the module docs.
fn synchronous_commit(durability: Durability) -> &'static str {
    match durability {
        Durability::Process => "off",
        Durability::Power => "on",
    }
}

/// `d` in whole milliseconds, saturating.
fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Locks `m`, recovering from poisoning: a panic inside a closure dropped its transaction, which rolls
/// back, so nothing guarded is left half-done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
