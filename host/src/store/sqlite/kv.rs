//! Plugin key-value storage in SQLite: one table, every row namespaced by the plugin's name.
//!
//! The namespace is filled in by the host from the plugin's identity, never by the plugin, so one plugin
//! cannot read or write another's keys.
//!
//! Quotas (keys and bytes per plugin, checked in O(1) per write) are in [`super::kv_quota`].

use rusqlite::{Connection, OptionalExtension};

use super::checkpoint::{Checkpointer, FALLBACK_AUTOCHECKPOINT_PAGES};
use super::kv_quota::{Expiry, Row, USAGE_SCHEMA, purge_expired_rows, put, put_over, remove};
use super::kv_statements::{Kept, KvSql};
use super::kv_writes::KvConn;
use crate::store::kv::{Commit, KvError, KvQuota, KvUsage};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The KV store of every plugin, in one SQLite database file.
///
/// One connection behind a mutex: KV operations are short single-statement or single-transaction calls
/// made from hook calls on blocking threads, and SQLite serializes writers anyway. Writes may wait for a
/// commit ([`Commit::Later`], see `super::kv_writes`).
#[derive(Debug)]
pub struct SqliteKv {
    conn: Mutex<KvConn>,
    /// How many times writes waiting for a commit were rolled back (read without the mutex).
    lost: Arc<AtomicU64>,
    /// Moves the WAL into the file off the plugins' calls (see [`super::checkpoint`]); none in memory.
    checkpointer: Option<Checkpointer>,
}

pub(super) fn now_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plugin_kv (
    plugin TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
";

fn create_schema(conn: &mut Connection) -> Result<(), KvError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA)?;
    let has_usage: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'plugin_kv_usage'",
        [],
        |r| r.get(0),
    )?;
    if !has_usage {
        tx.execute_batch(USAGE_SCHEMA)?;
    }
    tx.commit()?;
    Ok(())
}

/// SQL condition for a row that has not expired; `:now` is bound to the current time. A macro, so the
/// statements below are constants (no formatting per call) that still share one definition.
macro_rules! live {
    () => {
        "(expires_at IS NULL OR expires_at > :now)"
    };
}

impl SqliteKv {
    /// Open (and create if needed) the KV table in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        let conn = super::file::open_writer(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", FALLBACK_AUTOCHECKPOINT_PAGES)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut conn = conn;
        create_schema(&mut conn)?;
        let checkpointer = Checkpointer::start(path)?;
        Ok(Self::over(conn, Some(checkpointer)))
    }

    /// A KV store that lives only in memory, for `chathooks test` and the harness: the same code paths,
    /// nothing left behind.
    pub fn open_in_memory() -> Result<Self, KvError> {
        let mut conn = Connection::open_in_memory()?;
        create_schema(&mut conn)?;
        Ok(Self::over(conn, None))
    }

    fn over(conn: Connection, checkpointer: Option<Checkpointer>) -> Self {
        let lost = Arc::new(AtomicU64::new(0));
        SqliteKv {
            conn: Mutex::new(KvConn::new(conn, lost.clone())),
            lost,
            checkpointer,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KvConn> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the read `f`; it sees writes waiting for a commit.
    fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R, KvError>) -> Result<R, KvError> {
        f(self.lock().conn())
    }

    /// Runs `f` as one write, committed as `commit` says (see [`super::kv_writes`]); the checkpoint
    /// thread counts the commits.
    fn write<R>(
        &self,
        commit: Commit,
        f: impl FnOnce(&Connection) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        let result = self.lock().write(commit, f);
        if commit == Commit::Now {
            self.committed();
        }
        result
    }

    fn committed(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.committed();
        }
    }

    /// Commits the writes made with [`Commit::Later`] so far, if any. If that fails they are rolled back
    /// and [`SqliteKv::lost_count`] moves on.
    pub fn commit_waiting(&self) -> Result<(), KvError> {
        let committed = self.lock().commit_waiting()?;
        if committed {
            self.committed();
        }
        Ok(())
    }

    /// Makes the next commit fail (a deferred foreign key violated by a waiting write), so tests see
    /// what a failed commit does to the writes waiting with it.
    #[cfg(test)]
    pub(crate) fn fail_next_commit(&self) -> Result<(), KvError> {
        let mut conn = self.lock();
        conn.commit_waiting()?;
        conn.conn().execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS test_parent (id INTEGER PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS test_child
                 (parent INTEGER REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )?;
        conn.write(Commit::Later, |c| {
            Ok(c.execute("INSERT INTO test_child VALUES (1)", [])?)
        })?;
        Ok(())
    }

    /// How many times writes waiting for a commit were rolled back: a call whose [`Commit::Later`]
    /// writes came after a reading of it made it durable only if it is still the same after
    /// [`SqliteKv::commit_waiting`].
    pub fn lost_count(&self) -> u64 {
        self.lost.load(Ordering::Acquire)
    }

    /// The live value of `key`.
    pub fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.with(|c| get_live(c, plugin, key))
    }

    /// Store `value` under `key`, expiring after `ttl_ms` if given, unless that takes `plugin` past
    /// `quota`.
    pub fn set_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        commit: Commit,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        let now = now_ms();
        let expires = ttl_ms.map(|ttl| now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)));
        self.write(commit, |tx| {
            put(tx, plugin, quota, key, value, Expiry::Set(expires))
        })
    }

    /// What `plugin` keeps now.
    pub fn usage(&self, plugin: &str) -> Result<KvUsage, KvError> {
        self.with(|c| {
            let usage = c
                .query_row(
                    "SELECT keys, bytes FROM plugin_kv_usage WHERE plugin = ?1",
                    [plugin],
                    |r| {
                        Ok(KvUsage {
                            keys: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                            bytes: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                        })
                    },
                )
                .optional()?;
            Ok(usage.unwrap_or_default())
        })
    }

    /// Remove `key`; whether a live value was there.
    pub fn delete(&self, plugin: &str, key: &str, commit: Commit) -> Result<bool, KvError> {
        self.write(commit, |tx| {
            let existed = get_live(tx, plugin, key)?.is_some();
            remove(tx, plugin, key)?;
            Ok(existed)
        })
    }

    /// Live keys starting with `prefix`, in byte order.
    pub fn list_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT key FROM plugin_kv WHERE plugin = :plugin AND substr(key, 1, length(:prefix)) = :prefix
                 AND ",
                live!(),
                " ORDER BY key"
            ))?;
            let rows = stmt.query_map(
                rusqlite::named_params! { ":plugin": plugin, ":prefix": prefix, ":now": now_ms() },
                |r| r.get::<_, String>(0),
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Every live key and value of `plugin`, in key order (for the harness and admin tools).
    pub fn dump(&self, plugin: &str) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT key, value FROM plugin_kv WHERE plugin = :plugin AND ",
                live!(),
                " ORDER BY key"
            ))?;
            let rows = stmt.query_map(
                rusqlite::named_params! { ":plugin": plugin, ":now": now_ms() },
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// [`KvStore::compare_and_swap`](crate::store::kv::KvStore::compare_and_swap) within `quota`.
    pub fn compare_and_swap_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        commit: Commit,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        self.write(commit, |tx| {
            let current = get_live(tx, plugin, key)?;
            if current.as_deref() != expected {
                return Ok(false);
            }
            match new {
                Some(value) => put(tx, plugin, quota, key, value, Expiry::Set(None))?,
                None => {
                    remove(tx, plugin, key)?;
                }
            }
            Ok(true)
        })
    }

    /// [`KvStore::increment`](crate::store::kv::KvStore::increment) within `quota`.
    pub fn increment_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        commit: Commit,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvError> {
        let mut conn = self.lock();
        let in_place = conn.one_statement(commit, |c| {
            // One read for the live value and the stored row's size (the quota's), not two.
            let (live, stored) = get_with_size(c, plugin, key)?;
            let current = match &live {
                None => 0,
                Some(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or(KvError::NotANumber)?,
            };
            let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
            let text = next.to_string();
            if live.as_ref().is_none_or(|old| old.len() != text.len()) {
                return Ok(Err((stored, text, next)));
            }
            // The usual increment (41 to 42): a live row keeps its size, so neither quota counts
            // (keys, bytes) changes; one UPDATE, no quota check, no usage row to keep in step.
            c.get(KvSql::UpdateValue)?
                .execute(rusqlite::named_params! {
                    ":value": text.as_bytes(), ":plugin": plugin, ":key": key,
                })?;
            Ok(Ok(next))
        });
        // A new key, or one whose digits change: the row's size and the quota's counts change together.
        let result = match in_place {
            Ok(Err((stored, text, next))) => conn.write(commit, |tx| {
                let row = Row {
                    plugin,
                    key,
                    stored,
                };
                put_over(tx, row, quota, text.as_bytes(), Expiry::Keep)?;
                Ok(next)
            }),
            Ok(Ok(next)) => Ok(next),
            Err(error) => Err(error),
        };
        drop(conn);
        if commit == Commit::Now {
            self.committed();
        }
        result
    }

    /// Remove expired rows of every plugin; the number removed. Expired rows are already invisible, this
    /// only gives the space (and the quota) back.
    pub fn purge_expired(&self) -> Result<usize, KvError> {
        self.write(Commit::Now, |tx| purge_expired_rows(tx, None))
    }
}

/// The live value of a key and the size of its stored row (live or expired): an increment's read, kept
/// prepared ([`KvSql::ReadWithSize`]).
pub(super) const READ_WITH_SIZE: &str = concat!(
    "SELECT CASE WHEN ",
    live!(),
    " THEN value END, length(CAST(key AS BLOB)) + length(value)
     FROM plugin_kv WHERE plugin = :plugin AND key = :key"
);

/// A live row's new value of the same size: an increment in place, kept prepared
/// ([`KvSql::UpdateValue`]).
pub(super) const UPDATE_VALUE: &str =
    "UPDATE plugin_kv SET value = :value WHERE plugin = :plugin AND key = :key";

/// The live value of `key` and the size of its stored row (live or expired), each if there is one.
fn get_with_size(
    kept: &mut Kept<'_>,
    plugin: &str,
    key: &str,
) -> Result<(Option<Vec<u8>>, Option<i64>), KvError> {
    let found = kept
        .get(KvSql::ReadWithSize)?
        .query_row(
            rusqlite::named_params! { ":plugin": plugin, ":key": key, ":now": now_ms() },
            |r| Ok((r.get(0)?, Some(r.get(1)?))),
        )
        .optional()?;
    Ok(found.unwrap_or((None, None)))
}

fn get_live(c: &Connection, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT value FROM plugin_kv WHERE plugin = :plugin AND key = :key AND ",
        live!()
    ))?;
    let value = stmt
        .query_row(
            rusqlite::named_params! { ":plugin": plugin, ":key": key, ":now": now_ms() },
            |r| r.get(0),
        )
        .optional()?;
    Ok(value)
}
