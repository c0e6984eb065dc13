//! Storage: the only code in the server that speaks SQL, behind one seam.
//!
//! ## Overview
//! [`Db`] is the chat database, one variant per backend. It runs closures in transactions: a closure
//! given to [`Db::write`] gets a [`&dyn Tx`](Tx) and one given to [`Db::read`] a [`&dyn Read`](Read),
//! the two traits of [`seam`] that every backend implements. So the chat layer composes one operation
//! from several calls and commits them together with the operation's event, without knowing which
//! database it runs on:
//!
//! ```ignore
//! let sent = db.write(|tx| {
//!     let sent = tx.send_message(&new, now)?;
//!     if sent.changed {
//!         tx.append_event("message.new", Some(&conv_id), &audience, &payload, now)?;
//!     }
//!     Ok(sent)
//! })?;
//! ```
//!
//! The plugins' key-value store is behind the same seam as its own enum, [`kv::KvStore`]. Nothing
//! outside this module names a backend's types (DESIGN decision 11): `chat/`, `events`, `dispatch/`,
//! `powers/`, `api/` and `metrics` see only [`Db`], the traits and the [`records`].
//!
//! ## Layout
//! - [`seam`]: the [`Read`] and [`Tx`] traits; [`records`]: what they take and return; [`limits`]: the
//!   limits and id rules every backend enforces alike; [`error`]: [`StoreError`].
//! - [`sqlite`]: the embedded SQLite backend (the default).
//! - [`postgres`]: the PostgreSQL backend (single node for now; cluster mode in SCALE-OUT.md).
//! - [`kv`]: the plugins' key-value store.
//! - [`data_lock`]: one server per data folder (an OS file lock holding the server's pid).
//! - [`ids`]: id, token and clock helpers.

pub mod conversation_cache;
pub mod data_lock;
pub mod error;
pub mod ids;
pub mod kv;
pub mod limits;
pub mod postgres;
pub mod records;
pub mod seam;
pub mod sqlite;
pub mod table_changes;
#[cfg(test)]
mod tests;
pub mod token_cache;

use std::path::Path;

use crate::model::Millis;

pub use error::{Result, StoreError};
pub use postgres::PoolOptions;
pub use records::*;
pub use seam::{Deliveries, Read, Tx};

/// What a committed write must survive, on either backend: SQLite's `synchronous` and PostgreSQL's
/// `synchronous_commit` follow it (see `sqlite/db.rs` and `postgres/db.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives the chathooks process being killed; may lose the newest commits on power loss (SQLite
    /// `synchronous=NORMAL`) or when PostgreSQL itself crashes (`synchronous_commit=off`).
    #[default]
    Process,
    /// Survives power loss too: every commit waits for its flush to disk.
    Power,
}

/// What a committed write leaves to do: publishing its events to live subscribers and waking the
/// dispatcher ([`Db::write_then`]).
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// The chat database, on one of the backends.
#[derive(Debug)]
pub enum Db {
    /// An embedded SQLite file.
    Sqlite(sqlite::Db),
    /// A PostgreSQL database. Blocks like SQLite: call it from blocking threads, never from async code
    /// (see [`postgres::db`]).
    Postgres(postgres::PgDb),
}

impl Db {
    /// Opens the database `setting` names: a PostgreSQL URL or key-value string
    /// ([`PgSetting::is_postgres`](postgres::PgSetting::is_postgres)) is connected to (with a pool sized
    /// by `pool`) and migrated; anything else is the path of a SQLite file, opened as [`Db::open_with`]
    /// does (`pool` does not apply). Call it from a thread that is not running async code.
    pub fn connect(setting: &str, durability: Durability, pool: PoolOptions) -> Result<Self> {
        if postgres::PgSetting::is_postgres(setting) {
            Ok(Self::Postgres(postgres::PgDb::connect(
                setting, durability, pool,
            )?))
        } else {
            Self::open_with(setting, durability)
        }
    }

    /// Opens (creating if needed, with its parent directories) and migrates the SQLite database at
    /// `path`, with [`Durability::Process`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Durability::default())
    }

    /// Like [`Db::open`] with an explicit [`Durability`].
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self> {
        Ok(Self::Sqlite(sqlite::Db::open_with(path, durability)?))
    }

    /// Runs `f` in one transaction and commits if it returns `Ok`; an `Err` (or a panic) rolls everything
    /// back. `f` may be called again if the backend retries a transaction that lost a race, so it must
    /// not have effects outside the transaction. On SQLite, writes queued behind it may join its
    /// transaction and it returns once they all committed (group commit, [`sqlite::writer`]): the caller
    /// must hold no lock that another write's `f` takes.
    pub fn write<T>(&self, f: impl FnMut(&dyn Tx) -> Result<T>) -> Result<T> {
        self.write_then(f, |_| None)
    }

    /// Runs a dispatcher round's changes to the outbox and the deliveries ([`Deliveries`]) in one
    /// transaction, which begins with `f`'s first statement: a round that makes none takes no lock and
    /// costs nothing. Once begun it commits as soon as `f` returned, if `f` returned `Ok`, instead of
    /// waiting for writes queued behind it to join (SQLite's group commit, [`sqlite::writer`]); on
    /// PostgreSQL it does not wait for the writer mutex, which only keeps events in commit order, and a
    /// transaction that loses a race is not run again (its error is returned).
    pub fn write_deliveries<T>(&self, f: impl FnMut(&dyn Deliveries) -> Result<T>) -> Result<T> {
        let mut f = f;
        match self {
            Self::Sqlite(db) => db.write_deliveries(|tx| f(tx)),
            Self::Postgres(db) => db.write_without_events(|tx| f(tx)),
        }
    }

    /// Like [`Db::write`], then runs the [`AfterCommit`] that `after_commit` makes of the result (if any)
    /// once the transaction committed, before the next write can commit.
    ///
    /// Use it to publish the transaction's events to live subscribers: because the next write cannot
    /// commit until it returns, subscribers see events in event-id order, and a client that resumes from
    /// the last id it saw never skips one. It must be quick and must not touch the database (a
    /// non-blocking channel send is right). SQLite may run it on the thread of another write committed in
    /// the same group (see [`sqlite::writer`]), hence `Send` and owned.
    pub fn write_then<T>(
        &self,
        f: impl FnMut(&dyn Tx) -> Result<T>,
        after_commit: impl FnOnce(&T) -> Option<AfterCommit>,
    ) -> Result<T> {
        let mut f = f;
        match self {
            Self::Sqlite(db) => db.write_then(|tx| f(tx), after_commit),
            Self::Postgres(db) => db.write_then(f, after_commit),
        }
    }

    /// Runs `f` on one consistent read snapshot. Writes committed before the call are visible.
    pub fn read<T>(&self, mut f: impl FnMut(&dyn Read) -> Result<T>) -> Result<T> {
        match self {
            Self::Sqlite(db) => db.read(|c| f(c)),
            Self::Postgres(db) => db.read(f),
        }
    }

    /// The outbox's events after `after` but `except` ([`Read::pending_events_after`]), with whether
    /// events commit in id order ([`Read::events_commit_in_id_order`]): what a dispatcher round reads.
    /// On PostgreSQL one statement outside a transaction; on SQLite on the writer's connection when it is
    /// idle ([`sqlite::Db::read_warm`]).
    pub fn pending_events_after(
        &self,
        after: i64,
        limit: u32,
        except: &[i64],
    ) -> Result<(Vec<StoredEvent>, bool)> {
        match self {
            Self::Sqlite(db) => db.read_warm(|c| {
                Ok((
                    c.pending_events_after(after, limit, except)?,
                    c.events_commit_in_id_order(),
                ))
            }),
            Self::Postgres(db) => db.pending_events_after(after, limit, except),
        }
    }

    /// [`Db::pending_events_after`]'s ids alone ([`Read::pending_event_ids_after`]), read the same way.
    pub fn pending_event_ids_after(
        &self,
        after: i64,
        limit: u32,
        except: &[i64],
    ) -> Result<(Vec<i64>, bool)> {
        match self {
            Self::Sqlite(db) => db.read_warm(|c| {
                Ok((
                    c.pending_event_ids_after(after, limit, except)?,
                    c.events_commit_in_id_order(),
                ))
            }),
            Self::Postgres(db) => db.pending_event_ids_after(after, limit, except),
        }
    }

    /// The conversation with `id` ([`Read::get_conversation`]) read on its own: on PostgreSQL one
    /// statement outside a transaction, one round trip where a read takes three; on SQLite remembered
    /// while nothing but counters changed it ([`conversation_cache`]), else read on the writer's
    /// connection when it is idle ([`sqlite::Db::read_warm`]).
    pub fn conversation(&self, id: &str) -> Result<crate::model::Conversation> {
        match self {
            Self::Sqlite(db) => db.conversation(id),
            Self::Postgres(db) => db.conversation(id),
        }
    }

    /// Who `token` belongs to at `now` ([`Read::token_owner`]). A server on its own remembers owners
    /// between requests while nothing changed them ([`token_cache`]); a cluster node reads every time.
    pub fn token_owner(&self, token: &str, now: Millis) -> Result<Option<TokenOwner>> {
        match self {
            Self::Sqlite(db) => db.token_owner(token, now),
            Self::Postgres(db) => db.token_owner(token, now),
        }
    }

    /// The SQLite database underneath, if this is one: for tests and tools that read or repair rows the
    /// seam does not expose.
    pub fn as_sqlite(&self) -> Option<&sqlite::Db> {
        match self {
            Self::Sqlite(db) => Some(db),
            Self::Postgres(_) => None,
        }
    }

    /// The PostgreSQL database underneath, if this is one.
    pub fn as_postgres(&self) -> Option<&postgres::PgDb> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(db) => Some(db),
        }
    }

    /// Makes this process the database's only server while it runs: on PostgreSQL a lock in the database
    /// ([`postgres::owner`]) refuses a second server; a SQLite file is already guarded by its data
    /// folder's lock.
    pub fn claim(&self) -> Result<()> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Postgres(db) => db.claim(),
        }
    }

    /// How long the database's one writer has been held since the server opened it: on SQLite, and on
    /// PostgreSQL on a node on its own (its writer mutex), every write that appends events waits for it,
    /// and when it is held nearly all the time it bounds the server's writes per second. `None` on a node
    /// of a cluster, whose writes do not queue for one lock.
    pub fn writer_busy(&self) -> Option<std::time::Duration> {
        match self {
            Self::Sqlite(db) => Some(db.writer_busy()),
            Self::Postgres(db) => db.writer_busy(),
        }
    }

    /// Where the data is, for messages and logs: the file of a SQLite database, the setting of a
    /// PostgreSQL one with its password replaced by `***`.
    pub fn location(&self) -> String {
        match self {
            Self::Sqlite(db) => db.path().display().to_string(),
            Self::Postgres(db) => db.location().to_owned(),
        }
    }
}
