//! KV quotas: how many keys and bytes (keys plus values) each plugin keeps.
//!
//! `plugin_kv_usage` holds each plugin's key count and bytes, updated in the same transaction as every
//! write, so checking a [`KvQuota`] costs one indexed row read per write, however many keys the plugin
//! holds. Expired rows count until they are purged or overwritten; a write that would go over the quota
//! first purges that plugin's expired rows and checks again. A write that does not grow the usage (an
//! overwrite with a smaller value, a delete) is always allowed, even over a quota that was lowered.
//!
//! The row-level writes of [`super::kv`] live here, since each must keep the usage row in step. Each takes
//! the store's connection inside a write transaction (`KvConn::write`, in `kv_writes`).

use rusqlite::{Connection, OptionalExtension, params};

use super::kv::now_ms;
use crate::store::kv::{KvError, KvQuota};

/// The usage table, and filling it from the rows a store created before it existed.
pub(super) const USAGE_SCHEMA: &str = "
CREATE TABLE plugin_kv_usage (
    plugin TEXT PRIMARY KEY,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO plugin_kv_usage (plugin, keys, bytes)
    SELECT plugin, count(*), sum(length(CAST(key AS BLOB)) + length(value)) FROM plugin_kv GROUP BY plugin;
";

/// What a write does to a row's expiry.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expiry {
    /// Set it (`None`: never expires).
    Set(Option<i64>),
    /// Keep the row's current expiry (a new row never expires).
    Keep,
}

/// Bytes a row takes against the quota.
fn row_bytes(key: &str, value: &[u8]) -> i64 {
    i64::try_from(key.len().saturating_add(value.len())).unwrap_or(i64::MAX)
}

/// The size of the row under `key` (live or expired), if there is one.
fn stored_size(tx: &Connection, plugin: &str, key: &str) -> Result<Option<i64>, KvError> {
    let mut stmt = tx.prepare_cached(
        "SELECT length(CAST(key AS BLOB)) + length(value) FROM plugin_kv WHERE plugin = ?1 AND key = ?2",
    )?;
    Ok(stmt
        .query_row(params![plugin, key], |r| r.get(0))
        .optional()?)
}

/// Adds to `plugin`'s usage row.
fn add_usage(tx: &Connection, plugin: &str, keys: i64, bytes: i64) -> Result<(), KvError> {
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
    tx: &Connection,
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
pub(super) fn put(
    tx: &Connection,
    plugin: &str,
    quota: KvQuota,
    key: &str,
    value: &[u8],
    expiry: Expiry,
) -> Result<(), KvError> {
    let stored = stored_size(tx, plugin, key)?;
    put_over(
        tx,
        Row {
            plugin,
            key,
            stored,
        },
        quota,
        value,
        expiry,
    )
}

/// A row about to be written, as the caller read it in the same transaction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    /// Whose it is.
    pub plugin: &'a str,
    /// Its key.
    pub key: &'a str,
    /// The size of the row stored under `key` now (live or expired), if there is one.
    pub stored: Option<i64>,
}

/// [`put`] over `row`, whose stored size the caller has read already.
pub(super) fn put_over(
    tx: &Connection,
    row: Row<'_>,
    quota: KvQuota,
    value: &[u8],
    expiry: Expiry,
) -> Result<(), KvError> {
    let Row {
        plugin,
        key,
        stored: old,
    } = row;
    let keys = i64::from(old.is_none());
    let bytes = row_bytes(key, value) - old.unwrap_or(0);
    if let Err(err) = check_quota(tx, plugin, quota, keys, bytes) {
        // Expired rows still count; give them back and look again before refusing (the row under `key`
        // may have been one of them: read its size again).
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
pub(super) fn remove(tx: &Connection, plugin: &str, key: &str) -> Result<bool, KvError> {
    let Some(size) = stored_size(tx, plugin, key)? else {
        return Ok(false);
    };
    tx.prepare_cached("DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2")?
        .execute(params![plugin, key])?;
    add_usage(tx, plugin, -1, -size)?;
    Ok(true)
}

/// Deletes expired rows (of `plugin`, or of everyone), keeping the usage rows in step; how many.
pub(super) fn purge_expired_rows(tx: &Connection, plugin: Option<&str>) -> Result<usize, KvError> {
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

#[cfg(test)]
mod tests {
    use crate::store::kv::{KvStore, KvUsage};
    use rusqlite::Connection;

    /// A KV file from before quotas has no usage table: opening it builds one from the rows. (Quotas
    /// themselves are tested on every backend in `store/tests/`.)
    #[test]
    fn usage_is_built_for_a_store_made_before_it_existed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kv.sqlite3");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(crate::store::sqlite::kv::SCHEMA)
                .expect("old schema");
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
