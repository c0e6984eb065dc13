//! Section 1c: where an event's time goes. The pieces of section 1a measured one by one: the mask alone,
//! the KV increment alone (as the chathooks KV store does it, and with its statements prepared once), and
//! each hook alone through the bare wasmtime call and through the runtime.

use super::{Calls, bare::Bare, load, measure, runtime};
use crate::guests::RustGuests;
use crate::report::Section;
use crate::stats::{Samples, fmt_us};
use crate::{logic, payload};
use anyhow::bail;
use chathooks::plugins::{HookOutput, Plugin};
use chathooks::store::kv::KvStore;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::hint::black_box;
use std::time::Duration;

/// `KvStore::increment`'s statements, prepared once and reused (`prepare_cached`), without building the
/// SQL text per call: what the KV store would cost with cached statements.
struct CachedKv {
    conn: Connection,
}

impl CachedKv {
    fn open() -> anyhow::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE plugin_kv (plugin TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                expires_at INTEGER, PRIMARY KEY (plugin, key)) WITHOUT ROWID;",
        )?;
        Ok(CachedKv { conn })
    }

    fn increment(&mut self, plugin: &str, key: &str, delta: i64) -> anyhow::Result<i64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<Vec<u8>> = tx
            .prepare_cached(
                "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2
                 AND (expires_at IS NULL OR expires_at > ?3)",
            )?
            .query_row(params![plugin, key, 0], |r| r.get(0))
            .optional()?;
        let current = match current {
            None => 0,
            Some(bytes) => std::str::from_utf8(&bytes)?.trim().parse::<i64>()?,
        };
        let next = current + delta;
        tx.prepare_cached(
            "INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![plugin, key, next.to_string().into_bytes()])?;
        tx.commit()?;
        Ok(next)
    }
}

fn before(plugin: &Plugin, calls: &Calls) -> anyhow::Result<()> {
    match plugin.call(&calls.before)? {
        HookOutput::Decision(_) => Ok(()),
        other => bail!("unexpected {other:?}"),
    }
}

fn after(plugin: &Plugin, calls: &mut Calls, id: u64) -> anyhow::Result<()> {
    super::wit::set_event_id(&mut calls.after, id);
    match plugin.call(&calls.after)? {
        HookOutput::Done(Ok(())) => Ok(()),
        other => bail!("unexpected {other:?}"),
    }
}

/// Section 1c.
pub fn run(guests: &RustGuests, budget: Duration) -> anyhow::Result<Section> {
    eprintln!("[1c] where the time goes");
    let key = logic::counter_key("c-bench");
    let mut rows: Vec<(&str, Samples)> = Vec::new();
    rows.push((
        "mask alone (native)",
        measure("mask", budget, |_| {
            black_box(logic::mask(black_box(payload::BODY)));
            Ok(())
        })?,
    ));
    let kv = KvStore::open_in_memory()?;
    rows.push((
        "KV increment alone: `KvStore::increment` (SQLite in memory)",
        measure("KvStore::increment", budget, |_| {
            kv.increment("native", &key, 1)?;
            Ok(())
        })?,
    ));
    let mut cached = CachedKv::open()?;
    rows.push((
        "KV increment alone, the same statements prepared once",
        measure("cached increment", budget, |_| {
            cached.increment("native", &key, 1)?;
            Ok(())
        })?,
    ));
    let mut bare = Bare::load(&guests.bench_hooks)?;
    rows.push((
        "bare wasmtime: before-hook alone",
        measure("bare before", budget, |_| bare.before_only())?,
    ));
    rows.push((
        "bare wasmtime: after-hook alone (includes the KV increment)",
        measure("bare after", budget, |id| bare.after_only(id))?,
    ));
    let rt = runtime()?;
    let plugin = load(&rt, &guests.bench_hooks)?;
    let mut calls = Calls::new();
    rows.push((
        "runtime: before-hook alone",
        measure("runtime before", budget, |_| before(&plugin, &calls))?,
    ));
    rows.push((
        "runtime: after-hook alone (includes the KV increment)",
        measure("runtime after", budget, |id| after(&plugin, &mut calls, id))?,
    ));
    rows.push((
        "runtime: before-hook alone, fresh instance (instantiate + call + drop)",
        measure("runtime before fresh", budget, |_| {
            plugin.discard_idle_instances();
            before(&plugin, &calls)
        })?,
    ));
    let mut s = Section::new(
        "1c. Where an event's time goes",
        &["piece", "p50 µs", "p99 µs"],
    );
    s.intro.push(
        "The pieces of 1a one by one, on the same inputs (bench guest, 3 participants).".to_owned(),
    );
    for (label, samples) in &rows {
        s.row(vec![
            (*label).to_owned(),
            fmt_us(samples.p50()),
            fmt_us(samples.p99()),
        ]);
    }
    let p50 = |i: usize| rows[i].1.p50();
    s.note(format!(
        "the KV increment is {:.0}% of the native floor; with its statements prepared once it would cost {} µs \
         instead of {} µs (`host/src/store/kv.rs`: `increment`, `set`, `delete` and `compare_and_swap` \
         re-prepare their writes with `execute` on every call, and `get_live` formats its SQL every call)",
        100.0 * p50(1) / (p50(0) + p50(1)),
        fmt_us(p50(2)),
        fmt_us(p50(1)),
    ));
    Ok(s)
}
