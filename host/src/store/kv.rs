//! Plugin key-value storage (the `kv` power), behind the same seam as the chat store: [`KvStore`] is one
//! enum over the backends, so the host's `kv` interface and the harness never name a database.
//!
//! Every key is namespaced by the plugin's name, filled in by the host from the plugin's identity, never by
//! the plugin. Each plugin has a quota of keys and bytes ([`KvQuota`]), checked in the same transaction as
//! the write, so a quota holds exactly however many callers write at once.
//!
//! On SQLite the store is a file of its own beside the chat database (`kv.db`); on PostgreSQL it is two
//! tables of the chat database, reached through the chat database's pool ([`KvStore::beside`]).

use std::path::Path;

use super::Db;
use super::postgres::{PgError, PgKv};
use super::sqlite::kv::SqliteKv;

/// Why a KV operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// `increment` found a value that is not a decimal integer.
    #[error("the stored value is not a decimal integer")]
    NotANumber,
    /// `increment` would overflow a 64-bit integer.
    #[error("the increment overflows a 64-bit integer")]
    Overflow,
    /// The write would take the plugin past its quota of keys or bytes.
    #[error("the plugin's KV quota of {limit} {what} would be exceeded")]
    QuotaExceeded {
        /// `keys` or `bytes`.
        what: &'static str,
        /// The quota.
        limit: u64,
    },
    /// SQLite failed.
    #[error("kv storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed, or cannot be reached now ([`KvError::is_unavailable`]).
    #[error("kv storage: {0}")]
    Postgres(#[from] PgError),
}

impl From<tokio_postgres::Error> for KvError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(PgError::from(error))
    }
}

impl KvError {
    /// Whether the database cannot be reached now, so the same call may succeed later (see
    /// [`StoreError::is_unavailable`](super::StoreError::is_unavailable)). Never true for SQLite.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Postgres(error) => error.is_unavailable(),
            _ => false,
        }
    }
}

/// When a KV write is committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Commit {
    /// Before the write returns: every write but an after-hook's.
    #[default]
    Now,
    /// By the next [`KvStore::commit_waiting`] or `Now` write; visible to every read at once. For the
    /// dispatcher's deliveries, whose outcomes it records only after that commit: a delivery is done only
    /// once its writes are durable, and one whose writes were lost with a failed commit is retried (see
    /// [`KvStore::lost_count`]). PostgreSQL commits every write at once.
    Later,
}

/// How much one plugin may keep in its KV store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    /// Most keys.
    pub max_keys: u64,
    /// Most bytes of keys plus values.
    pub max_bytes: u64,
}

impl KvQuota {
    /// No limit (tools and tests that seed state).
    pub const UNLIMITED: KvQuota = KvQuota {
        max_keys: u64::MAX,
        max_bytes: u64::MAX,
    };
}

/// What one plugin keeps in its KV store now (expired rows included until purged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct KvUsage {
    /// Keys held.
    pub keys: u64,
    /// Bytes of keys plus values.
    pub bytes: u64,
}

/// The KV store of every plugin.
#[derive(Debug)]
pub enum KvStore {
    /// A SQLite file beside the chat database (`kv.db`), or memory for tools and tests.
    Sqlite(SqliteKv),
    /// Tables of the chat database on PostgreSQL (boxed: its pool handle is several times the size of the
    /// SQLite variant).
    Postgres(Box<PgKv>),
}

impl KvStore {
    /// The KV store that goes with `db`: the tables of the same database on PostgreSQL (sharing its pool),
    /// or the SQLite file at `sqlite_path` when `db` is SQLite.
    pub fn beside(db: &Db, sqlite_path: &Path) -> Result<Self, KvError> {
        match db {
            Db::Sqlite(_) => Self::open(sqlite_path),
            Db::Postgres(pg) => Ok(Self::Postgres(Box::new(pg.kv()))),
        }
    }

    /// Opens (creating if needed) the KV store in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        Ok(Self::Sqlite(SqliteKv::open(path)?))
    }

    /// A KV store that lives only in memory, for `chathooks test` and the harness: the same code paths,
    /// nothing left behind.
    pub fn open_in_memory() -> Result<Self, KvError> {
        Ok(Self::Sqlite(SqliteKv::open_in_memory()?))
    }

    /// The live value of `key`.
    pub fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            Self::Sqlite(kv) => kv.get(plugin, key),
            Self::Postgres(kv) => kv.get(plugin, key),
        }
    }

    /// Stores `value` under `key`, expiring after `ttl_ms` if given. No quota: for tools and tests.
    pub fn set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        self.set_within(plugin, KvQuota::UNLIMITED, Commit::Now, key, value, ttl_ms)
    }

    /// Stores `value` under `key`, expiring after `ttl_ms` if given, unless that takes `plugin` past
    /// `quota`; committed as `commit` says.
    pub fn set_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        commit: Commit,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        match self {
            Self::Sqlite(kv) => kv.set_within(plugin, quota, commit, key, value, ttl_ms),
            Self::Postgres(kv) => kv.set_within(plugin, quota, key, value, ttl_ms),
        }
    }

    /// What `plugin` keeps now.
    pub fn usage(&self, plugin: &str) -> Result<KvUsage, KvError> {
        match self {
            Self::Sqlite(kv) => kv.usage(plugin),
            Self::Postgres(kv) => kv.usage(plugin),
        }
    }

    /// Removes `key`; whether a live value was there.
    pub fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        self.delete_with(plugin, key, Commit::Now)
    }

    /// [`KvStore::delete`], committed as `commit` says.
    pub fn delete_with(&self, plugin: &str, key: &str, commit: Commit) -> Result<bool, KvError> {
        match self {
            Self::Sqlite(kv) => kv.delete(plugin, key, commit),
            Self::Postgres(kv) => kv.delete(plugin, key),
        }
    }

    /// Live keys starting with `prefix`, in byte order.
    pub fn list_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        match self {
            Self::Sqlite(kv) => kv.list_keys(plugin, prefix),
            Self::Postgres(kv) => kv.list_keys(plugin, prefix),
        }
    }

    /// Every live key and value of `plugin`, in key order (for the harness and admin tools).
    pub fn dump(&self, plugin: &str) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        match self {
            Self::Sqlite(kv) => kv.dump(plugin),
            Self::Postgres(kv) => kv.dump(plugin),
        }
    }

    /// Stores `new` (or deletes, for `None`) if the live value equals `expected`; whether it did. No
    /// quota.
    pub fn compare_and_swap(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        self.compare_and_swap_within(plugin, KvQuota::UNLIMITED, Commit::Now, key, expected, new)
    }

    /// [`KvStore::compare_and_swap`] within `quota`, committed as `commit` says.
    pub fn compare_and_swap_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        commit: Commit,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        match self {
            Self::Sqlite(kv) => {
                kv.compare_and_swap_within(plugin, quota, commit, key, expected, new)
            }
            Self::Postgres(kv) => kv.compare_and_swap_within(plugin, quota, key, expected, new),
        }
    }

    /// Adds `delta` to the decimal integer under `key` (absent counts as 0); the new value. An existing
    /// expiry is kept. No quota.
    pub fn increment(&self, plugin: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        self.increment_within(plugin, KvQuota::UNLIMITED, Commit::Now, key, delta)
    }

    /// [`KvStore::increment`] within `quota`, committed as `commit` says.
    pub fn increment_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        commit: Commit,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvError> {
        match self {
            Self::Sqlite(kv) => kv.increment_within(plugin, quota, commit, key, delta),
            Self::Postgres(kv) => kv.increment_within(plugin, quota, key, delta),
        }
    }

    /// Removes expired rows of every plugin; the number removed. Expired rows are already invisible, this
    /// only gives the space (and the quota) back.
    pub fn purge_expired(&self) -> Result<usize, KvError> {
        match self {
            Self::Sqlite(kv) => kv.purge_expired(),
            Self::Postgres(kv) => kv.purge_expired(),
        }
    }

    /// Commits the writes made with [`Commit::Later`] so far. If that fails they are rolled back, and
    /// [`KvStore::lost_count`] moves on.
    pub fn commit_waiting(&self) -> Result<(), KvError> {
        match self {
            Self::Sqlite(kv) => kv.commit_waiting(),
            Self::Postgres(_) => Ok(()),
        }
    }

    /// How many times writes waiting for a commit were rolled back. A call's [`Commit::Later`] writes,
    /// made after a reading of this, are durable once [`KvStore::commit_waiting`] succeeded with the
    /// count still at that reading. Always 0 on PostgreSQL.
    pub fn lost_count(&self) -> u64 {
        match self {
            Self::Sqlite(kv) => kv.lost_count(),
            Self::Postgres(_) => 0,
        }
    }
}
