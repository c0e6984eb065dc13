//! The Extism variant of the dispatch benchmark: the same event (`../../src/payload.rs`), the same work in
//! the guest (`../../src/logic.rs`), the same KV counter (SQLite in memory, the same statements as the
//! chathooks KV store), through an Extism plugin that is created once and reused.
//!
//! `chathooks-bench-extism <guest.wasm>` reads commands on stdin, one per line: `run <n>` runs `n` events
//! (`kv <n>`: `n` KV increments alone) and prints one JSON line
//! `{"micros": [...], "failed": 0, "first_failure": null}`. The main benchmark
//! sends them in turn with its other variants; by hand: `echo "run 1000" | chathooks-bench-extism guest.wasm`.

#[path = "../../src/payload.rs"]
#[allow(dead_code)]
mod payload;
#[path = "../../src/stats.rs"]
#[allow(dead_code)]
mod stats;

use anyhow::Context;
use extism::{PTR, PluginBuilder, UserData, ValType, Wasm, host_fn};
use rusqlite::{Connection, OptionalExtension, params};
use std::io::{BufRead, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The KV tables and statements of `host/src/store/kv.rs`, namespace `extism`. Kept statement for
/// statement in step with `KvStore::increment` (no quota: the native floor's calls have none either);
/// `kv <n>` times it alone so the main benchmark can check that it costs what `KvStore::increment` does.
struct Kv {
    conn: Connection,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Kv {
    fn open() -> anyhow::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE plugin_kv (
                plugin TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at INTEGER,
                PRIMARY KEY (plugin, key)
            ) WITHOUT ROWID;
            CREATE TABLE plugin_kv_usage (
                plugin TEXT PRIMARY KEY, keys INTEGER NOT NULL, bytes INTEGER NOT NULL
            ) WITHOUT ROWID;",
        )?;
        Ok(Kv { conn })
    }

    /// `KvStore::increment`: read the live value, read the stored row's size, upsert, update the usage
    /// row when the size changed; one immediate transaction.
    fn increment(&mut self, key: &str, delta: i64) -> anyhow::Result<i64> {
        let plugin = "extism";
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let sql = format!(
            "SELECT value FROM plugin_kv WHERE plugin = :plugin AND key = :key AND {}",
            "(expires_at IS NULL OR expires_at > :now)"
        );
        let current: Option<Vec<u8>> = tx
            .prepare_cached(&sql)?
            .query_row(
                rusqlite::named_params! { ":plugin": plugin, ":key": key, ":now": now_ms() },
                |r| r.get(0),
            )
            .optional()?;
        let current = match current {
            None => 0,
            Some(bytes) => std::str::from_utf8(&bytes)?.trim().parse::<i64>()?,
        };
        let next = current + delta;
        let value = next.to_string();
        let old: Option<i64> = tx
            .prepare_cached(
                "SELECT length(CAST(key AS BLOB)) + length(value) FROM plugin_kv WHERE plugin = ?1 AND key = ?2",
            )?
            .query_row(params![plugin, key], |r| r.get(0))
            .optional()?;
        let keys = i64::from(old.is_none());
        let bytes = i64::try_from(key.len() + value.len())? - old.unwrap_or(0);
        tx.prepare_cached(
            "INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![plugin, key, value.as_bytes()])?;
        if keys != 0 || bytes != 0 {
            tx.prepare_cached(
                "INSERT INTO plugin_kv_usage (plugin, keys, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT (plugin) DO UPDATE SET keys = keys + excluded.keys, bytes = bytes + excluded.bytes",
            )?
            .execute(params![plugin, keys, bytes])?;
        }
        tx.commit()?;
        Ok(next)
    }
}

host_fn!(kv_increment(user_data: Kv; key: String) -> i64 {
    let kv = user_data.get()?;
    let mut kv = kv.lock().map_err(|_| extism::Error::msg("kv lock poisoned"))?;
    kv.increment(&key, 1)
});

fn main() -> anyhow::Result<()> {
    let guest = std::env::args()
        .nth(1)
        .context("usage: chathooks-bench-extism <guest.wasm>  (then `run <n>` lines on stdin)")?;
    let mut plugin = PluginBuilder::new(extism::Manifest::new([Wasm::file(&guest)]))
        .with_wasi(false)
        .with_function(
            "kv_increment",
            [PTR],
            [ValType::I64],
            UserData::new(Kv::open()?),
            kv_increment,
        )
        .build()?;
    let before = payload::sample_before();
    let mut after = payload::sample_after(0);
    let mut event = |id: u64| -> anyhow::Result<()> {
        let input = serde_json::to_vec(&before)?;
        let output = plugin.call::<&[u8], &[u8]>("before_message_sent", &input)?;
        let decision: payload::Decision = serde_json::from_slice(output)?;
        anyhow::ensure!(
            matches!(decision, payload::Decision::Modify { .. }),
            "the Extism guest did not mask the message: {decision:?}"
        );
        after.event_id = id;
        let input = serde_json::to_vec(&after)?;
        let output = plugin.call::<&[u8], &[u8]>("after_message_sent", &input)?;
        let done: payload::Done = serde_json::from_slice(output)?;
        anyhow::ensure!(done.ok, "the Extism guest's increment failed");
        Ok(())
    };
    let mut id = 0;
    let mut alone = Kv::open()?;
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (kv_only, n) = match (line.strip_prefix("run "), line.strip_prefix("kv ")) {
            (Some(n), _) => (false, n),
            (None, Some(n)) => (true, n),
            _ => anyhow::bail!("unknown command {line:?} (expected `run <n>` or `kv <n>`)"),
        };
        let n: usize = n.trim().parse()?;
        let mut samples = stats::Samples::with_capacity(n);
        for _ in 0..n {
            id += 1;
            let start = Instant::now();
            let result = if kv_only {
                alone.increment("messages:c-kv", 1).map(|_| ())
            } else {
                event(id)
            };
            samples.push(start.elapsed());
            if let Err(e) = result {
                samples.failed += 1;
                samples
                    .first_failure
                    .get_or_insert_with(|| format!("{e:#}"));
            }
        }
        let slice = serde_json::json!({
            "micros": samples.micros(),
            "failed": samples.failed,
            "first_failure": samples.first_failure,
        });
        writeln!(out, "{slice}")?;
        out.flush()?;
    }
    Ok(())
}
