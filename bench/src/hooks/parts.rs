//! Section 1c: where an event's time goes. The pieces of section 1a measured one by one: the mask alone,
//! the KV increment alone (as the chathooks KV store does it, and with its statements prepared once), and
//! each hook alone through the bare wasmtime call and through the runtime, in a loop and with the core's
//! caches cold ([`super::cold`]).

use super::cold::Evictor;
use super::interleave::{Variant, interleave};
use super::{Calls, bare::Bare, load, runtime};
use crate::guests::RustGuests;
use crate::report::Section;
use crate::stats::{Samples, fmt_us};
use crate::{logic, payload};
use anyhow::bail;
use chathooks::plugins::{HookOutput, Plugin};
use chathooks::store::kv::KvStore;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

/// An increment as two statements prepared once (`prepare_cached`): a select and an upsert, no quota
/// bookkeeping and no SQL text built per call. What the KV store's own increment is measured against.
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

/// Plugins loaded from the same file as separate versions, like the end-to-end section's copies of the
/// bench guest: each has its own compiled code, instances and memory.
const IN_TURN: usize = 5;

/// Section 1c.
pub fn run(guests: &RustGuests, budget: Duration) -> anyhow::Result<Section> {
    eprintln!("[1c] where the time goes");
    let key = logic::counter_key("c-bench");
    let kv = KvStore::open_in_memory()?;
    let mut cached = CachedKv::open()?;
    let bare = RefCell::new(Bare::load(&guests.bench_hooks)?);
    let rt = runtime()?;
    let plugin = load(&rt, &guests.bench_hooks)?;
    let in_turn = (0..IN_TURN)
        .map(|_| load(&rt, &guests.bench_hooks))
        .collect::<anyhow::Result<Vec<Plugin>>>()?;
    let evictor = RefCell::new(Evictor::new());
    let evict = || evictor.borrow_mut().evict();
    let (before_calls, mut after_calls, fresh_calls) = (Calls::new(), Calls::new(), Calls::new());
    let mut cold_after_calls = Calls::new();
    let (mut before_turn, mut after_turn) = (0, 0);
    let variants = vec![
        Variant::per_event("mask", |_| {
            black_box(logic::mask(black_box(payload::BODY)));
            Ok(())
        }),
        Variant::per_event("KvStore::increment", |_| {
            kv.increment("native", &key, 1)?;
            Ok(())
        }),
        Variant::per_event("cached increment", |_| {
            cached.increment("native", &key, 1)?;
            Ok(())
        }),
        Variant::per_event("bare before", |_| bare.borrow_mut().before_only()),
        Variant::per_event("bare after", |id| bare.borrow_mut().after_only(id)),
        Variant::per_event("runtime before", |_| before(&plugin, &before_calls)),
        Variant::per_event("runtime after", |id| after(&plugin, &mut after_calls, id)),
        Variant::per_event_prepared("bare before cold", evict, |_| {
            bare.borrow_mut().before_only()
        }),
        Variant::per_event_prepared("runtime before cold", evict, |_| {
            before(&plugin, &before_calls)
        }),
        Variant::per_event_prepared("runtime before cold, in turn", evict, |_| {
            before_turn = (before_turn + 1) % IN_TURN;
            before(&in_turn[before_turn], &before_calls)
        }),
        Variant::per_event_prepared("runtime after cold, in turn", evict, |id| {
            after_turn = (after_turn + 1) % IN_TURN;
            after(&in_turn[after_turn], &mut cold_after_calls, id)
        }),
        Variant::per_event("runtime before fresh", |_| {
            plugin.discard_idle_instances();
            before(&plugin, &fresh_calls)
        }),
    ];
    let labels = [
        "mask alone (native)",
        "KV increment alone: `KvStore::increment` (SQLite in memory)",
        "KV increment alone, bare statements (select + upsert, prepared once)",
        "bare wasmtime: before-hook alone",
        "bare wasmtime: after-hook alone (includes the KV increment)",
        "runtime: before-hook alone",
        "runtime: after-hook alone (includes the KV increment)",
        "bare wasmtime: before-hook alone, caches cold",
        "runtime: before-hook alone, caches cold",
        "runtime: before-hook, caches cold, five plugins in turn",
        "runtime: after-hook, caches cold, five plugins in turn (includes the KV increment)",
        "runtime: before-hook alone, fresh instance (instantiate + call + drop)",
    ];
    let results = interleave(variants, budget);
    let mut rows: Vec<(&str, Samples)> = Vec::new();
    for (label, result) in labels.into_iter().zip(results) {
        rows.push((label, result?));
    }
    let mut s = Section::new(
        "1c. Where an event's time goes",
        &["piece", "p50 µs", "p99 µs"],
    );
    s.intro.push(
        "The pieces of 1a one by one, on the same inputs (bench guest, 3 participants).".to_owned(),
    );
    s.intro.push(
        "\"Caches cold\": 8 MiB written before each call (outside its time), as in a server, where a \
         request's HTTP, SQLite and the other plugins run between two calls to one plugin; \"five \
         plugins in turn\": five copies of the bench guest, each with its own code and memory, called one \
         after the other, as the end-to-end section's plugins are."
            .to_owned(),
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
        "the KV increment is {:.0}% of the native floor; `KvStore::increment` costs {} µs, the bare \
         statements (a select and an upsert, prepared once, no quota bookkeeping) {} µs",
        100.0 * p50(1) / (p50(0) + p50(1)),
        fmt_us(p50(1)),
        fmt_us(p50(2)),
    ));
    s.note(format!(
        "with caches cold a before-hook call costs {} µs on the bare call and {} µs through the runtime \
         ({:.1}x its {} µs in a loop), {} µs with five plugins in turn ({:.1}x); an after-hook {} µs \
         ({:.1}x): in a server, the work between two calls to one plugin leaves its caches as cold \
         (BENCHMARKS.md, problem 25)",
        fmt_us(p50(7)),
        fmt_us(p50(8)),
        p50(8) / p50(5),
        fmt_us(p50(5)),
        fmt_us(p50(9)),
        p50(9) / p50(5),
        fmt_us(p50(10)),
        p50(10) / p50(6),
    ));
    Ok(s)
}
