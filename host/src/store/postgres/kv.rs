//! The plugins' key-value store on PostgreSQL, in the chat database's own tables (`plugin_kv`,
//! `plugin_kv_usage`), with the semantics of [`store::sqlite::kv`](crate::store::sqlite::kv) and its
//! quotas ([`store::sqlite::kv_quota`](crate::store::sqlite::kv_quota), whose docs say how usage is kept).
//!
//! ## Exact under concurrent writers
//! Every write runs in one READ COMMITTED transaction whose first statement locks the plugin's usage row
//! (an upsert, so the row exists to lock, which also returns the usage held). A plugin's writes are
//! therefore serialised on that row, on one node or many: the quota check, a compare-and-swap's read of
//! the current value and the write see every earlier write of that plugin, and a later one waits. Reads
//! (`get`, `list_keys`, `dump`, `usage`) take no lock; each is one statement. Writes of different plugins
//! never wait for each other, nor for the chat database's writer mutex. The cost: a KV write is six or
//! seven round trips (begin, lock, read, size, write, usage, commit), about a millisecond on loopback.
//! A write that reads the value it replaces (the full increment, compare-and-swap) also locks the key's
//! row as it reads it (`FOR UPDATE`), always after the usage row, for the increments below.
//!
//! ## One round trip
//! An increment, the write a counting plugin makes on every event, first tries the server-side function
//! `chathooks_kv_increment` (`schema/v13.sql`, SCALE-OUT.md 2.7): the same steps in the same order in
//! one statement, hence one round trip and one transaction. It answers only the common case (a plain
//! decimal value, within the quota, no expired row, no overflow) and NULL otherwise, and the full path
//! above then runs and decides, so every error and every purge stays where it was.
//!
//! ## Increments that keep their length
//! Most increments (41 to 42) add no key and no byte, so they change nothing the usage row counts. Since
//! `schema/v15.sql` the client first sends exactly that as one `UPDATE` of the key's row, without the
//! usage row and without a function call (`chathooks_kv_bumped` is plain SQL, inlined), and calls the
//! function only when it updated nothing: a plugin's increments of different keys no longer wait for
//! each other, and the usage row is not rewritten by each of them. The `UPDATE` takes the key's row lock, and PostgreSQL evaluates it
//! again on the row as another transaction left it, so concurrent increments of one key add up; the
//! read-modify-write paths above lock the row they read for the same reason. The function takes the usage
//! row only for a key with no row (lock order: usage row, then the key's row, everywhere).
//!
//! Built from the [`PgDb`](super::PgDb) ([`PgDb::kv`](super::PgDb::kv)) rather than connecting on its
//! own: one pool, one setting for both, and no second migration. Like the chat database, it
//! blocks: never call it from async code.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::IsolationLevel;

use super::driven::DrivenPool;
use super::transaction::Transaction;
use crate::store::ids::now_ms;
use crate::store::kv::{KvError, KvQuota, KvUsage};

/// The KV store of every plugin, in a PostgreSQL database; see the module docs.
#[derive(Clone)]
pub struct PgKv {
    /// The chat database's connections.
    driven: DrivenPool,
}

impl std::fmt::Debug for PgKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKv")
            .field("setting", self.driven.setting())
            .finish_non_exhaustive()
    }
}

/// What a write does to a row's expiry (see the SQLite backend's `kv_quota::Expiry`).
#[derive(Debug, Clone, Copy)]
enum Expiry {
    /// Set it (`None`: never expires).
    Set(Option<i64>),
    /// Keep the row's current expiry (a new row never expires).
    Keep,
}

/// A plugin's usage as locked at the start of a write, kept in step by the write.
#[derive(Debug, Clone, Copy)]
struct Held {
    keys: i64,
    bytes: i64,
}

impl PgKv {
    pub(super) fn new(driven: DrivenPool) -> Self {
        Self { driven }
    }

    /// The live value of `key`.
    pub fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.on_connection(async |client| get_live(client, plugin, key).await)
    }

    /// Stores `value` under `key`, expiring after `ttl_ms` if given, unless that takes `plugin` past
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
        self.write(plugin, async |tx, held| {
            put(tx, plugin, held, quota, key, value, Expiry::Set(expires)).await
        })
    }

    /// What `plugin` keeps now.
    pub fn usage(&self, plugin: &str) -> Result<KvUsage, KvError> {
        self.on_connection(async |client| {
            let stmt = client
                .prepare_cached("SELECT keys, bytes FROM plugin_kv_usage WHERE plugin = $1")
                .await?;
            let Some(row) = client.query_opt(&stmt, &[&plugin]).await? else {
                return Ok(KvUsage::default());
            };
            Ok(KvUsage {
                keys: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
                bytes: u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
            })
        })
    }

    /// Removes `key`; whether a live value was there.
    pub fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        self.write(plugin, async |tx, held| {
            let existed = get_live(tx, plugin, key).await?.is_some();
            remove(tx, plugin, held, key).await?;
            Ok(existed)
        })
    }

    /// Live keys starting with `prefix`, in byte order.
    pub fn list_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        self.on_connection(async |client| {
            let stmt = client
                .prepare_cached(
                    "SELECT key FROM plugin_kv
                     WHERE plugin = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3)
                       AND (expires_at IS NULL OR expires_at > $4)
                     ORDER BY key",
                )
                .await?;
            let prefix = prefix.as_bytes();
            let end = prefix_end(prefix);
            let rows = client
                .query(&stmt, &[&plugin, &prefix, &end, &now_ms()])
                .await?;
            rows.iter().map(|r| Ok(key_of(r.try_get(0)?))).collect()
        })
    }

    /// Every live key and value of `plugin`, in key order.
    pub fn dump(&self, plugin: &str) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        self.on_connection(async |client| {
            let stmt = client
                .prepare_cached(
                    "SELECT key, value FROM plugin_kv
                     WHERE plugin = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY key",
                )
                .await?;
            let rows = client.query(&stmt, &[&plugin, &now_ms()]).await?;
            rows.iter()
                .map(|r| Ok((key_of(r.try_get(0)?), r.try_get(1)?)))
                .collect()
        })
    }

    /// Stores `new` (or deletes, for `None`) if the live value equals `expected`, within `quota`; whether
    /// it did.
    pub fn compare_and_swap_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        self.write(plugin, async |tx, held| {
            if get_live_locked(tx, plugin, key).await?.as_deref() != expected {
                return Ok(false);
            }
            match new {
                Some(value) => put(tx, plugin, held, quota, key, value, Expiry::Set(None)).await?,
                None => {
                    remove(tx, plugin, held, key).await?;
                }
            }
            Ok(true)
        })
    }

    /// Adds `delta` to the decimal integer under `key` (absent counts as 0) within `quota`; the new value.
    /// An existing expiry is kept.
    pub fn increment_within(
        &self,
        plugin: &str,
        quota: KvQuota,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvError> {
        if let Some(next) = self.increment_in_one_trip(plugin, quota, key, delta)? {
            return Ok(next);
        }
        self.write(plugin, async |tx, held| {
            let current = match get_live_locked(tx, plugin, key).await? {
                None => 0,
                Some(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or(KvError::NotANumber)?,
            };
            let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
            let text = next.to_string();
            put(tx, plugin, held, quota, key, text.as_bytes(), Expiry::Keep).await?;
            Ok(next)
        })
    }

    /// The common case of [`increment_within`](Self::increment_within) in one statement, or two for a new
    /// key or a new length (see the module docs); `None` when it is not the common case and the full path
    /// must decide. Like a read, it is not
    /// sent again when the connection breaks under it: unlike a `BEGIN`, the statement may have run.
    fn increment_in_one_trip(
        &self,
        plugin: &str,
        quota: KvQuota,
        key: &str,
        delta: i64,
    ) -> Result<Option<i64>, KvError> {
        let max = |limit: u64| i64::try_from(limit).unwrap_or(i64::MAX);
        let (max_keys, max_bytes) = (max(quota.max_keys), max(quota.max_bytes));
        let key = key.as_bytes();
        let now = now_ms();
        self.on_connection(async |client| {
            // Most increments keep their length: one UPDATE, with no function call at all.
            let same_length = client
                .prepare_cached(
                    "UPDATE plugin_kv SET value = chathooks_kv_bumped(value, $3)
                     WHERE plugin = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $4)
                       AND chathooks_kv_bumped(value, $3) IS NOT NULL
                     RETURNING encode(value, 'escape')::bigint",
                )
                .await?;
            if let Some(row) = client
                .query_opt(&same_length, &[&plugin, &key, &delta, &now])
                .await?
            {
                return Ok(Some(row.try_get(0)?));
            }
            let stmt = client
                .prepare_cached("SELECT chathooks_kv_increment($1, $2, $3, $4, $5, $6)")
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                [&plugin, &key, &delta, &now, &max_keys, &max_bytes];
            Ok(client.query_one(&stmt, &params).await?.try_get(0)?)
        })
    }

    /// Removes expired rows of every plugin; the number removed. One transaction per plugin, each holding
    /// only that plugin's usage row, so a purge never deadlocks with writers.
    pub fn purge_expired(&self) -> Result<usize, KvError> {
        let plugins: Vec<String> = self.on_connection(async |client| {
            let stmt = client
                .prepare_cached(
                    "SELECT DISTINCT plugin FROM plugin_kv
                     WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY plugin",
                )
                .await?;
            let rows = client.query(&stmt, &[&now_ms()]).await?;
            Ok::<_, KvError>(
                rows.iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?,
            )
        })?;
        let mut total = 0;
        for plugin in &plugins {
            total += self.write(plugin, async |tx, held| purge_rows(tx, plugin, held).await)?;
        }
        Ok(total)
    }

    /// Runs `query` on a connection outside a transaction, on this thread (which drives the
    /// connection's I/O, [`super::driven`]). Called from async code, it moves off the async worker first,
    /// as [`PgDb`](super::PgDb)'s calls do.
    fn on_connection<T>(
        &self,
        query: impl AsyncFnOnce(&ClientWrapper) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        tokio::task::block_in_place(|| {
            let mut conn = self.driven.get()?;
            let (rt, client) = conn.parts();
            rt.block_on(query(client))
        })
    }

    /// Runs `op` in one READ COMMITTED transaction that first locks `plugin`'s usage row (see the module
    /// docs), and commits if it returns `Ok`. The transaction's `BEGIN` goes out with that lock
    /// ([`Transaction::on_first_statement`]); a pooled connection found closed there is replaced, as the
    /// chat database does: `op` has not run yet.
    fn write<T>(
        &self,
        plugin: &str,
        op: impl AsyncFnOnce(&Transaction<'_>, &mut Held) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        tokio::task::block_in_place(|| {
            let mut stale = 0;
            loop {
                let mut conn = self.driven.get()?;
                let (rt, client) = conn.parts();
                let tx =
                    Transaction::on_first_statement(client, IsolationLevel::ReadCommitted, false);
                let mut held = match rt.block_on(lock_usage(&tx, plugin)) {
                    Ok(held) => held,
                    Err(_) if tx.lost_at_begin() && stale < self.driven.options().size => {
                        stale += 1;
                        drop(tx);
                        conn.discard();
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                return rt.block_on(async {
                    let value = op(&tx, &mut held).await?;
                    tx.commit().await?;
                    Ok(value)
                });
            }
        })
    }
}

/// Locks `plugin`'s usage row, creating it if needed, and returns the usage it holds.
async fn lock_usage(tx: &Transaction<'_>, plugin: &str) -> Result<Held, KvError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO plugin_kv_usage (plugin, keys, bytes) VALUES ($1, 0, 0)
             ON CONFLICT (plugin) DO UPDATE SET keys = plugin_kv_usage.keys
             RETURNING keys, bytes",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&plugin]).await?;
    Ok(Held {
        keys: row.try_get(0)?,
        bytes: row.try_get(1)?,
    })
}

/// The statement of [`get_live`]: `$1` the plugin, `$2` the key, `$3` now.
macro_rules! live_value_sql {
    () => {
        "SELECT value FROM plugin_kv WHERE plugin = $1 AND key = $2
           AND (expires_at IS NULL OR expires_at > $3)"
    };
}

/// The live value of `key` (on a transaction or a bare connection).
async fn get_live(
    client: &impl super::statements::Statements,
    plugin: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, KvError> {
    live_value(client, live_value_sql!(), plugin, key).await
}

/// [`get_live`] in a write that replaces the value it read: the key's row stays locked until the
/// transaction ends, so that an increment of the key waits instead of being lost (see the module docs).
async fn get_live_locked(
    tx: &Transaction<'_>,
    plugin: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, KvError> {
    live_value(tx, concat!(live_value_sql!(), " FOR UPDATE"), plugin, key).await
}

/// Runs `sql`, a `live_value_sql!` statement, for `key`.
async fn live_value(
    client: &impl super::statements::Statements,
    sql: &str,
    plugin: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, KvError> {
    let stmt = client.prepare_cached(sql).await?;
    let row = client
        .query_opt(&stmt, &[&plugin, &key.as_bytes(), &now_ms()])
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Bytes a row takes against the quota.
fn row_bytes(key: &str, value: &[u8]) -> i64 {
    i64::try_from(key.len().saturating_add(value.len())).unwrap_or(i64::MAX)
}

/// The size of the row under `key` (live or expired), if there is one.
async fn stored_size(
    tx: &Transaction<'_>,
    plugin: &str,
    key: &str,
) -> Result<Option<i64>, KvError> {
    let stmt = tx
        .prepare_cached(
            "SELECT octet_length(key)::bigint + octet_length(value) FROM plugin_kv
             WHERE plugin = $1 AND key = $2",
        )
        .await?;
    let row = tx.query_opt(&stmt, &[&plugin, &key.as_bytes()]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Adds to `plugin`'s usage row (locked by this transaction) and to `held`.
async fn add_usage(
    tx: &Transaction<'_>,
    plugin: &str,
    held: &mut Held,
    keys: i64,
    bytes: i64,
) -> Result<(), KvError> {
    if keys == 0 && bytes == 0 {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE plugin_kv_usage SET keys = keys + $2, bytes = bytes + $3 WHERE plugin = $1",
        )
        .await?;
    tx.execute(&stmt, &[&plugin, &keys, &bytes]).await?;
    held.keys = held.keys.saturating_add(keys);
    held.bytes = held.bytes.saturating_add(bytes);
    Ok(())
}

/// Whether adding `keys` and `bytes` to `held` keeps the plugin within `quota` (growth only).
fn check_quota(held: Held, quota: KvQuota, keys: i64, bytes: i64) -> Result<(), KvError> {
    let over = |held: i64, delta: i64, max: u64| {
        delta > 0 && u64::try_from(held.saturating_add(delta)).unwrap_or(0) > max
    };
    if over(held.keys, keys, quota.max_keys) {
        return Err(KvError::QuotaExceeded {
            what: "keys",
            limit: quota.max_keys,
        });
    }
    if over(held.bytes, bytes, quota.max_bytes) {
        return Err(KvError::QuotaExceeded {
            what: "bytes",
            limit: quota.max_bytes,
        });
    }
    Ok(())
}

/// Writes `key` = `value` within `quota`, keeping the usage row in step. Over the quota, the plugin's
/// expired rows are purged first and the check made again, as in SQLite.
async fn put(
    tx: &Transaction<'_>,
    plugin: &str,
    held: &mut Held,
    quota: KvQuota,
    key: &str,
    value: &[u8],
    expiry: Expiry,
) -> Result<(), KvError> {
    loop {
        let old = stored_size(tx, plugin, key).await?;
        let keys = i64::from(old.is_none());
        let bytes = row_bytes(key, value) - old.unwrap_or(0);
        if let Err(err) = check_quota(*held, quota, keys, bytes) {
            if purge_rows(tx, plugin, held).await? == 0 {
                return Err(err);
            }
            continue;
        }
        let stmt = match expiry {
            Expiry::Set(_) => {
                tx.prepare_cached(
                    "INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (plugin, key)
                     DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                )
                .await?
            }
            Expiry::Keep => {
                tx.prepare_cached(
                    "INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
                )
                .await?
            }
        };
        let expires = match expiry {
            Expiry::Set(at) => at,
            Expiry::Keep => None,
        };
        tx.execute(&stmt, &[&plugin, &key.as_bytes(), &value, &expires])
            .await?;
        return add_usage(tx, plugin, held, keys, bytes).await;
    }
}

/// Deletes the row under `key` (live or expired), keeping the usage row in step; whether there was one.
async fn remove(
    tx: &Transaction<'_>,
    plugin: &str,
    held: &mut Held,
    key: &str,
) -> Result<bool, KvError> {
    let stmt = tx
        .prepare_cached(
            "DELETE FROM plugin_kv WHERE plugin = $1 AND key = $2
             RETURNING octet_length(key)::bigint + octet_length(value)",
        )
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&plugin, &key.as_bytes()]).await? else {
        return Ok(false);
    };
    let size: i64 = row.try_get(0)?;
    add_usage(tx, plugin, held, -1, -size).await?;
    Ok(true)
}

/// Deletes `plugin`'s expired rows, keeping its usage row (locked) in step; how many.
async fn purge_rows(tx: &Transaction<'_>, plugin: &str, held: &mut Held) -> Result<usize, KvError> {
    let stmt = tx
        .prepare_cached(
            "WITH d AS (DELETE FROM plugin_kv
                        WHERE plugin = $1 AND expires_at IS NOT NULL AND expires_at <= $2
                        RETURNING octet_length(key)::bigint + octet_length(value) AS size)
             SELECT count(*), coalesce(sum(size), 0)::bigint FROM d",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&plugin, &now_ms()]).await?;
    let (keys, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    add_usage(tx, plugin, held, -keys, -bytes).await?;
    Ok(usize::try_from(keys).unwrap_or(0))
}

/// The smallest byte string greater than every string starting with `prefix`, if there is one: the
/// exclusive end of the prefix's key range (`None` for an empty prefix, or one of 0xFF bytes only).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A stored key as the `String` it was written from (always UTF-8, unless edited by hand).
fn key_of(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_end_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
