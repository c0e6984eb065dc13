//! Plugin key-value storage in SQLite: one table, every row namespaced by the plugin's name.
//!
//! The namespace is filled in by the host from the plugin's identity, never by the plugin, so one plugin
//! cannot read or write another's keys.
//!
//! ## Quota
//! `plugin_kv_usage` holds each plugin's key count and bytes (key + value), updated in the same transaction
//! as every write, so checking a [`KvQuota`] costs one indexed row read per write, however many keys the
//! plugin holds. Expired rows count until they are purged or overwritten; a write that would go over the
//! quota first purges that plugin's expired rows and checks again. A write that does not grow the usage
//! (an overwrite with a smaller value, a delete) is always allowed, even over a quota that was lowered.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
}

/// The KV store of every plugin, in one SQLite database file.
///
/// One connection behind a mutex: KV operations are short single-statement or single-transaction calls
/// made from hook calls on blocking threads, and SQLite serializes writers anyway.
#[derive(Debug)]
pub struct KvStore {
    conn: Mutex<Connection>,
}

fn now_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plugin_kv (
    plugin TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
";

/// The usage table, and filling it from the rows a store created before it existed.
const USAGE_SCHEMA: &str = "
CREATE TABLE plugin_kv_usage (
    plugin TEXT PRIMARY KEY,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO plugin_kv_usage (plugin, keys, bytes)
    SELECT plugin, count(*), sum(length(CAST(key AS BLOB)) + length(value)) FROM plugin_kv GROUP BY plugin;
";

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

/// What a write does to a row's expiry.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    /// Set it (`None`: never expires).
    Set(Option<i64>),
    /// Keep the row's current expiry (a new row never expires).
    Keep,
}

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

impl KvStore {
    /// Open (and create if needed) the KV table in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut conn = conn;
        create_schema(&mut conn)?;
        Ok(KvStore {
            conn: Mutex::new(conn),
        })
    }

    /// A KV store that lives only in memory, for `chathooks test` and the harness: the same code paths,
    /// nothing left behind.
    pub fn open_in_memory() -> Result<Self, KvError> {
        let mut conn = Connection::open_in_memory()?;
        create_schema(&mut conn)?;
        Ok(KvStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, KvError>) -> Result<R, KvError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// The live value of `key`.
    pub fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.with(|c| get_live(c, plugin, key))
    }

    /// Store `value` under `key`, expiring after `ttl_ms` if given. No quota: for tools and tests.
    pub fn set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        self.set_within(plugin, KvQuota::UNLIMITED, key, value, ttl_ms)
    }

    /// Store `value` under `key`, expiring after `ttl_ms` if given, unless that takes `plugin` past
    /// `quota`.
    pub fn set_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        let now = now_ms();
        let expires = ttl_ms.map(|ttl| now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)));
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            put(&tx, plugin, quota, key, value, Expiry::Set(expires))?;
            tx.commit()?;
            Ok(())
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
    pub fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existed = get_live(&tx, plugin, key)?.is_some();
            remove(&tx, plugin, key)?;
            tx.commit()?;
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

    /// Store `new` (or delete, for `None`) if the live value equals `expected`; whether it did. No quota.
    pub fn compare_and_swap(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        self.compare_and_swap_within(plugin, KvQuota::UNLIMITED, key, expected, new)
    }

    /// [`KvStore::compare_and_swap`] within `quota`.
    pub fn compare_and_swap_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current = get_live(&tx, plugin, key)?;
            if current.as_deref() != expected {
                return Ok(false);
            }
            match new {
                Some(value) => put(&tx, plugin, quota, key, value, Expiry::Set(None))?,
                None => {
                    remove(&tx, plugin, key)?;
                }
            }
            tx.commit()?;
            Ok(true)
        })
    }

    /// Add `delta` to the decimal integer under `key` (absent counts as 0); the new value. An existing
    /// expiry is kept. No quota.
    pub fn increment(&self, plugin: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        self.increment_within(plugin, KvQuota::UNLIMITED, key, delta)
    }

    /// [`KvStore::increment`] within `quota`.
    pub fn increment_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current = match get_live(&tx, plugin, key)? {
                None => 0,
                Some(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or(KvError::NotANumber)?,
            };
            let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
            put(
                &tx,
                plugin,
                quota,
                key,
                next.to_string().as_bytes(),
                Expiry::Keep,
            )?;
            tx.commit()?;
            Ok(next)
        })
    }

    /// Remove expired rows of every plugin; the number removed. Expired rows are already invisible, this
    /// only gives the space (and the quota) back.
    pub fn purge_expired(&self) -> Result<usize, KvError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n = purge_expired_rows(&tx, None)?;
            tx.commit()?;
            Ok(n)
        })
    }
}

/// Bytes a row takes against the quota.
fn row_bytes(key: &str, value: &[u8]) -> i64 {
    i64::try_from(key.len().saturating_add(value.len())).unwrap_or(i64::MAX)
}

/// The size of the row under `key` (live or expired), if there is one.
fn stored_size(tx: &Transaction<'_>, plugin: &str, key: &str) -> Result<Option<i64>, KvError> {
    let mut stmt = tx.prepare_cached(
        "SELECT length(CAST(key AS BLOB)) + length(value) FROM plugin_kv WHERE plugin = ?1 AND key = ?2",
    )?;
    Ok(stmt
        .query_row(params![plugin, key], |r| r.get(0))
        .optional()?)
}

/// Adds to `plugin`'s usage row.
fn add_usage(tx: &Transaction<'_>, plugin: &str, keys: i64, bytes: i64) -> Result<(), KvError> {
    if keys == 0 && bytes == 0 {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO plugin_kv_usage (plugin, keys, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (plugin) DO UPDATE SET keys = keys + excluded.keys, bytes = bytes + excluded.bytes",
    )?;
    stmt.execute(params![plugin, keys, bytes])?;
    Ok(())
}

/// Whether adding `keys` and `bytes` keeps `plugin` within `quota` (growth only: shrinking always is).
fn check_quota(
    tx: &Transaction<'_>,
    plugin: &str,
    quota: KvQuota,
    keys: i64,
    bytes: i64,
) -> Result<(), KvError> {
    if quota == KvQuota::UNLIMITED || (keys <= 0 && bytes <= 0) {
        return Ok(());
    }
    let (held_keys, held_bytes): (i64, i64) = tx
        .query_row(
            "SELECT keys, bytes FROM plugin_kv_usage WHERE plugin = ?1",
            [plugin],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, 0));
    let over = |held: i64, delta: i64, max: u64| {
        delta > 0 && u64::try_from(held.saturating_add(delta)).unwrap_or(0) > max
    };
    if over(held_keys, keys, quota.max_keys) {
        return Err(KvError::QuotaExceeded {
            what: "keys",
            limit: quota.max_keys,
        });
    }
    if over(held_bytes, bytes, quota.max_bytes) {
        return Err(KvError::QuotaExceeded {
            what: "bytes",
            limit: quota.max_bytes,
        });
    }
    Ok(())
}

/// Writes `key` = `value` within `quota`, keeping the usage row in step.
fn put(
    tx: &Transaction<'_>,
    plugin: &str,
    quota: KvQuota,
    key: &str,
    value: &[u8],
    expiry: Expiry,
) -> Result<(), KvError> {
    let old = stored_size(tx, plugin, key)?;
    let keys = i64::from(old.is_none());
    let bytes = row_bytes(key, value) - old.unwrap_or(0);
    if let Err(err) = check_quota(tx, plugin, quota, keys, bytes) {
        // Expired rows still count; give them back and look again before refusing.
        if purge_expired_rows(tx, Some(plugin))? == 0 {
            return Err(err);
        }
        return put(tx, plugin, quota, key, value, expiry);
    }
    match expiry {
        Expiry::Set(expires) => tx.prepare_cached(
            "INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )?
        .execute(params![plugin, key, value, expires])?,
        Expiry::Keep => tx.prepare_cached(
            "INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![plugin, key, value])?,
    };
    add_usage(tx, plugin, keys, bytes)
}

/// Deletes the row under `key` (live or expired), keeping the usage row in step; whether there was one.
fn remove(tx: &Transaction<'_>, plugin: &str, key: &str) -> Result<bool, KvError> {
    let Some(size) = stored_size(tx, plugin, key)? else {
        return Ok(false);
    };
    tx.prepare_cached("DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2")?
        .execute(params![plugin, key])?;
    add_usage(tx, plugin, -1, -size)?;
    Ok(true)
}

/// Deletes expired rows (of `plugin`, or of everyone), keeping the usage rows in step; how many.
fn purge_expired_rows(tx: &Transaction<'_>, plugin: Option<&str>) -> Result<usize, KvError> {
    let now = now_ms();
    let freed: Vec<(String, i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT plugin, count(*), sum(length(CAST(key AS BLOB)) + length(value)) FROM plugin_kv
             WHERE expires_at IS NOT NULL AND expires_at <= ?1 AND (?2 IS NULL OR plugin = ?2)
             GROUP BY plugin",
        )?;
        stmt.query_map(params![now, plugin], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut total = 0;
    for (owner, keys, bytes) in &freed {
        tx.prepare_cached(
            "DELETE FROM plugin_kv WHERE plugin = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2",
        )?
        .execute(params![owner, now])?;
        add_usage(tx, owner, -keys, -bytes)?;
        total += usize::try_from(*keys).unwrap_or(0);
    }
    Ok(total)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, KvStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let kv = KvStore::open(&dir.path().join("kv.sqlite3")).expect("open");
        (dir, kv)
    }

    #[test]
    fn plugins_do_not_see_each_other() {
        let (_dir, kv) = store();
        kv.set("a", "k", b"1", None).expect("set");
        assert_eq!(kv.get("b", "k").expect("get"), None);
        assert_eq!(kv.list_keys("b", "").expect("list"), Vec::<String>::new());
        assert_eq!(kv.get("a", "k").expect("get").as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn ttl_expires() {
        let (_dir, kv) = store();
        kv.set("a", "k", b"v", Some(1)).expect("set");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(kv.get("a", "k").expect("get"), None);
        assert_eq!(kv.list_keys("a", "").expect("list"), Vec::<String>::new());
        assert_eq!(kv.purge_expired().expect("purge"), 1);
        assert!(!kv.delete("a", "k").expect("delete"));
    }

    #[test]
    fn increment_and_cas() {
        let (_dir, kv) = store();
        assert_eq!(kv.increment("a", "n", 2).expect("incr"), 2);
        assert_eq!(kv.increment("a", "n", -5).expect("incr"), -3);
        assert!(
            !kv.compare_and_swap("a", "n", Some(b"0"), Some(b"1"))
                .expect("cas")
        );
        assert!(
            kv.compare_and_swap("a", "n", Some(b"-3"), None)
                .expect("cas")
        );
        assert!(
            kv.compare_and_swap("a", "n", None, Some(b"x"))
                .expect("cas")
        );
        assert!(matches!(
            kv.increment("a", "n", 1),
            Err(KvError::NotANumber)
        ));
        assert_eq!(kv.list_keys("a", "n").expect("list"), vec!["n".to_string()]);
    }

    #[test]
    fn values_survive_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kv.sqlite3");
        KvStore::open(&path)
            .expect("open")
            .set("a", "k", b"v", None)
            .expect("set");
        let kv = KvStore::open(&path).expect("reopen");
        assert_eq!(kv.get("a", "k").expect("get").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn quota_counts_keys_and_bytes_in_step_with_writes() {
        let (_dir, kv) = store();
        let quota = KvQuota {
            max_keys: 2,
            max_bytes: 20,
        };
        kv.set_within("a", quota, "k1", b"12345", None)
            .expect("set");
        kv.set_within("a", quota, "k2", b"1", None).expect("set");
        assert_eq!(
            kv.usage("a").expect("usage"),
            KvUsage { keys: 2, bytes: 10 }
        );
        assert!(matches!(
            kv.set_within("a", quota, "k3", b"1", None),
            Err(KvError::QuotaExceeded {
                what: "keys",
                limit: 2
            })
        ));
        // Overwriting an existing key needs no new key; growing it past the bytes does.
        kv.set_within("a", quota, "k1", b"1234567890123", None)
            .expect("grow within");
        assert!(matches!(
            kv.set_within("a", quota, "k1", b"12345678901234567", None),
            Err(KvError::QuotaExceeded {
                what: "bytes",
                limit: 20
            })
        ));
        assert!(matches!(
            kv.increment_within("a", quota, "n", 1),
            Err(KvError::QuotaExceeded { .. })
        ));
        assert!(kv.delete("a", "k2").expect("delete"));
        assert_eq!(kv.increment_within("a", quota, "n", 7).expect("incr"), 7);
        assert!(
            kv.compare_and_swap_within("a", quota, "n", Some(b"7"), None)
                .expect("cas")
        );
        assert_eq!(
            kv.usage("a").expect("usage"),
            KvUsage { keys: 1, bytes: 15 }
        );
        assert_eq!(kv.usage("b").expect("usage"), KvUsage::default());
    }

    #[test]
    fn expired_rows_are_given_back_when_the_quota_is_reached() {
        let (_dir, kv) = store();
        let quota = KvQuota {
            max_keys: 1,
            max_bytes: 1000,
        };
        kv.set_within("a", quota, "old", b"v", Some(1))
            .expect("set");
        std::thread::sleep(std::time::Duration::from_millis(5));
        kv.set_within("a", quota, "new", b"v", None)
            .expect("set after expiry");
        assert_eq!(kv.usage("a").expect("usage"), KvUsage { keys: 1, bytes: 4 });
        kv.set("b", "t", b"v", Some(1)).expect("set");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(kv.purge_expired().expect("purge"), 1);
        assert_eq!(kv.usage("b").expect("usage"), KvUsage::default());
    }

    #[test]
    fn usage_is_built_for_a_store_made_before_it_existed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kv.sqlite3");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(SCHEMA).expect("old schema");
            conn.execute(
                "INSERT INTO plugin_kv (plugin, key, value) VALUES ('a', 'ké', x'0102'), ('a', 'k', x'')",
                [],
            )
            .expect("rows");
        }
        let kv = KvStore::open(&path).expect("reopen");
        assert_eq!(kv.usage("a").expect("usage"), KvUsage { keys: 2, bytes: 6 });
    }
}
