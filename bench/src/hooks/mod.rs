//! Section 1, hook dispatch: what one event costs (a before-hook that masks a word, then an after-hook
//! that bumps a KV counter), p50/p99 over many events, through each way of running a hook.
//!
//! Every variant does the same work from the same source (`logic.rs`) and keeps its counter in the same
//! SQLite KV store (in memory, so that no variant pays for a disk write the others skip):
//! - `native`: a Rust function, the floor;
//! - `bare`: the bench guest component through wasmtime's component API, nothing else (the runtime floor);
//! - the chathooks runtime (`Plugin::call`), with warm instances and with a fresh instance per call;
//! - a webhook: the same work behind HTTP on loopback, keep-alive;
//! - Extism: the same work as an Extism plugin (only with `--with-extism`; see `extism.rs`).
//!
//! A second table runs the example plugins (profanity-filter + message-stats: a mask, then a
//! compare-and-swap, two increments and a set) in Rust, C, Python and JavaScript.

mod bare;
mod cold;
pub mod extism;
mod interleave;
mod parts;
pub mod webhook;
mod wit;

use crate::guests::{LangPair, RustGuests, lang_pair};
use crate::report::Section;
use crate::stats::{Samples, fmt_ratio, fmt_us};
use crate::{logic, payload};
use anyhow::{Context, bail};
use chathooks::plugins::bindings::types::Decision;
use chathooks::plugins::{
    HookCall, HookOutput, LogLevel, LogSink, Plugin, PluginLimits, Runtime, RuntimeConfig,
};
use chathooks::store::kv::KvStore;
use interleave::{Variant, interleave};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the dispatch section needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// Wall time spent measuring each variant (after warm-up); the event count follows from it.
    pub budget: Duration,
    /// Build and run the Extism comparison (`bench/extism`).
    pub with_extism: bool,
    /// Where the Python/JavaScript/C components are (default `<repo>/plugins`).
    pub lang_dir: Option<PathBuf>,
}

/// `, 2 failed: <why>` when some events failed.
pub fn failures(samples: &Samples) -> String {
    match &samples.first_failure {
        Some(why) => format!(", {} failed, first: {why}", samples.failed),
        None => String::new(),
    }
}

/// Plugin logs go nowhere: the benchmark measures dispatch, not a log backend.
struct NullSink;
impl LogSink for NullSink {
    fn log(&self, _plugin: &str, _level: LogLevel, _message: &str) {}
}

/// A runtime with an in-memory KV store and no compile cache, compiling with Cranelift.
fn runtime() -> anyhow::Result<Runtime> {
    runtime_on(chathooks::plugins::Compilers::Cranelift)
}

/// [`runtime`] with `compilers`.
fn runtime_on(compilers: chathooks::plugins::Compilers) -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig {
        compilers,
        cache_dir: None,
        kv: Arc::new(KvStore::open_in_memory()?),
        logs: Arc::new(NullSink),
    })
}

/// The two calls of an event, ready to run through the runtime.
struct Calls {
    before: HookCall,
    after: HookCall,
}

impl Calls {
    fn new() -> Self {
        Calls {
            before: wit::before_call(&payload::sample_before()),
            after: wit::after_call(&payload::sample_after(0)),
        }
    }
}

/// Runs one event through a before-plugin and an after-plugin (`fresh`: each on a new instance).
fn runtime_event(
    calls: &mut Calls,
    filter: &Plugin,
    counter: &Plugin,
    fresh: bool,
    id: u64,
) -> anyhow::Result<()> {
    if fresh {
        filter.discard_idle_instances();
    }
    match filter.call(&calls.before)? {
        HookOutput::Decision(Decision::Modify(_)) => {}
        other => bail!("{} did not mask the message: {other:?}", filter.name()),
    }
    wit::set_event_id(&mut calls.after, id);
    if fresh {
        counter.discard_idle_instances();
    }
    match counter.call(&calls.after)? {
        HookOutput::Done(Ok(())) => Ok(()),
        other => bail!("{} failed: {other:?}", counter.name()),
    }
}

/// The native floor: the same work as a Rust function over the same WIT values.
fn native_event(calls: &Calls, kv: &KvStore) -> anyhow::Result<()> {
    let HookCall::BeforeMessageSent { draft, .. } = &calls.before else {
        bail!("not a before-message-sent call")
    };
    let decision = match logic::mask(&draft.body) {
        Some(body) => Decision::Modify(chathooks::plugins::bindings::types::Modification {
            body: Some(body),
            metadata: None,
        }),
        None => Decision::Allow,
    };
    black_box(decision);
    let HookCall::AfterMessageSent { message, .. } = &calls.after else {
        bail!("not an after-message-sent call")
    };
    kv.increment("native", &logic::counter_key(&message.conversation_id), 1)?;
    Ok(())
}

/// One row of a dispatch table.
enum Outcome {
    Measured(Samples),
    Skipped(String),
}

impl From<anyhow::Result<Samples>> for Outcome {
    fn from(result: anyhow::Result<Samples>) -> Self {
        match result {
            Ok(samples) => Outcome::Measured(samples),
            Err(e) => Outcome::Skipped(format!("failed: {e:#}")),
        }
    }
}

/// KV keys each plugin may hold in the benchmark: far above what a run writes (message-stats claims a
/// key per event, up to 50,000 events per variant and more in warm-up), so the quota is checked on every
/// write, as in the server, without ever being reached.
const BENCH_KV_MAX_KEYS: u64 = 10_000_000;

fn load(runtime: &Runtime, path: &Path) -> anyhow::Result<Plugin> {
    let limits = PluginLimits {
        kv_max_keys: BENCH_KV_MAX_KEYS,
        kv_max_bytes: BENCH_KV_MAX_KEYS * 64,
        ..PluginLimits::default()
    };
    runtime
        .load_file(path, limits)
        .with_context(|| format!("loading {}", path.display()))
}

/// Section 1: tables 1a, 1b and 1c, each on its own (one failing does not lose the others).
pub fn run(guests: &RustGuests, options: &Options) -> anyhow::Result<Vec<Section>> {
    let mut out = Vec::new();
    let native_p50 = match mechanisms(guests, options) {
        Ok((section, native_p50)) => {
            out.push(section);
            Some(native_p50)
        }
        Err(e) => {
            out.push(failed(
                "1a. Hook dispatch: the same work through each mechanism",
                &e,
            ));
            None
        }
    };
    match languages(guests, options, native_p50) {
        Ok(section) => out.push(section),
        Err(e) => out.push(failed(
            "1b. Hook dispatch: the example plugins in each language",
            &e,
        )),
    }
    match parts::run(guests, options.budget) {
        Ok(section) => out.push(section),
        Err(e) => out.push(failed("1c. Where an event's time goes", &e)),
    }
    Ok(out)
}

fn failed(title: &str, e: &anyhow::Error) -> Section {
    eprintln!("  {title} failed: {e:#}");
    let mut s = Section::new(title, &[]);
    s.note(format!("failed: {e:#}"));
    s
}

/// Section 1a; also returns the native floor's p50.
fn mechanisms(guests: &RustGuests, options: &Options) -> anyhow::Result<(Section, f64)> {
    eprintln!(
        "[1] hook dispatch: one event = before-message-sent (mask) + after-message-sent (KV increment)"
    );
    let kv = KvStore::open_in_memory()?;
    let native_calls = Calls::new();
    let mut bare = bare::Bare::load(&guests.bench_hooks)?;
    let rt = runtime()?;
    let bench = load(&rt, &guests.bench_hooks)?;
    let winch_rt = runtime_on(chathooks::plugins::Compilers::Winch)?;
    let winch = load(&winch_rt, &guests.bench_hooks)?;
    let (mut warm_calls, mut fresh_calls, mut winch_calls) =
        (Calls::new(), Calls::new(), Calls::new());
    let mut webhook = webhook::Webhook::start();
    let mut extism = if options.with_extism {
        Some(extism::Extism::start())
    } else {
        None
    };

    let mut variants = vec![
        Variant::per_event("native", |_| native_event(&native_calls, &kv)),
        Variant::per_event("bare wasmtime", |id| bare.event(id)),
        Variant::per_event("runtime", |id| {
            runtime_event(&mut warm_calls, &bench, &bench, false, id)
        }),
        Variant::per_event("runtime, fresh instance", |id| {
            runtime_event(&mut fresh_calls, &bench, &bench, true, id)
        }),
        Variant::per_event("runtime, Winch", |id| {
            runtime_event(&mut winch_calls, &winch, &winch, false, id)
        }),
    ];
    if let Ok(hook) = &mut webhook {
        variants.push(Variant::per_event("webhook", |id| hook.event(id)));
    }
    if let Some(Ok(child)) = &mut extism {
        variants.push(Variant::batched("extism", |n| child.run(n)));
    }
    let mut results = interleave(variants, options.budget).into_iter();
    let mut next = || {
        Outcome::from(
            results
                .next()
                .unwrap_or_else(|| Err(anyhow::anyhow!("not run"))),
        )
    };
    let (native, bare_outcome, runtime_warm, runtime_fresh, runtime_winch) =
        (next(), next(), next(), next(), next());
    let webhook_outcome = match &webhook {
        Ok(_) => next(),
        Err(e) => Outcome::Skipped(format!("the webhook server did not start: {e:#}")),
    };
    let extism_outcome = match &extism {
        Some(Ok(_)) => next(),
        Some(Err(e)) => Outcome::Skipped(format!("failed: {e:#}")),
        None => Outcome::Skipped(
            "not run: add `--with-extism` (builds bench/extism, a second wasmtime)".to_owned(),
        ),
    };
    let p50 = |o: &Outcome| match o {
        Outcome::Measured(s) => Some(s.p50()),
        Outcome::Skipped(_) => None,
    };
    let (Some(native_p50), Some(bare_p50), Some(runtime_p50)) =
        (p50(&native), p50(&bare_outcome), p50(&runtime_warm))
    else {
        bail!("the native, bare or runtime variant failed");
    };
    let (webhook_p50, extism_p50) = (p50(&webhook_outcome), p50(&extism_outcome));
    anyhow::ensure!(
        bare.counter()?.is_some(),
        "the bare variant never incremented its counter"
    );
    let rows: Vec<(String, Outcome)> = vec![
        ("native Rust function (the floor)".into(), native),
        (
            "bare wasmtime call of the bench component (the runtime floor)".into(),
            bare_outcome,
        ),
        (
            "**chathooks runtime** (`Plugin::call`, warm instance)".into(),
            runtime_warm,
        ),
        (
            "chathooks runtime, fresh instance per call".into(),
            runtime_fresh,
        ),
        (
            "chathooks runtime on Winch's code (a new version's first seconds, tiered)".into(),
            runtime_winch,
        ),
        (
            "HTTP webhook (axum on loopback, keep-alive, JSON)".into(),
            webhook_outcome,
        ),
        ("Extism 1.30 plugin (reused, JSON)".into(), extism_outcome),
    ];

    // The Extism host keeps its counter with a copy of the KV store's statements: check that it costs
    // the same, measured alone, here and there.
    let kv_parity = match &mut extism {
        Some(Ok(child)) => {
            let theirs = child.kv(20_000)?;
            let store = KvStore::open_in_memory()?;
            let mut ours = Samples::with_capacity(20_000);
            for _ in 0..20_000 {
                let start = std::time::Instant::now();
                store.increment("native", "messages:c-kv", 1)?;
                ours.push(start.elapsed());
            }
            Some((theirs.p50(), ours.p50()))
        }
        _ => None,
    };
    let mut a = Section::new(
        "1a. Hook dispatch: the same work through each mechanism",
        &[
            "variant",
            "p50 µs",
            "p99 µs",
            "× native",
            "× bare wasmtime",
            "µs above native",
            "events",
        ],
    );
    a.intro.push(
        "One event = `before-message-sent` (mask a blocked word, answer `modify`) + `after-message-sent` \
         (increment a KV counter in SQLite, in memory). Same source for every variant (`bench/src/logic.rs`)."
            .to_owned(),
    );
    table(&mut a, rows, native_p50, Some(bare_p50));
    for row in &mut a.rows {
        let above = row[1].parse::<f64>().map_or_else(
            |_| "—".to_owned(),
            |p50| fmt_us((p50 - native_p50).max(0.0)),
        );
        row.insert(5, above);
    }
    a.note(target(
        "hook dispatch within 1.5x of the bare wasmtime call",
        runtime_p50 / bare_p50,
        |r| r <= 1.5,
    ));
    if let Some(extism) = extism_p50 {
        a.note(target(
            "at least 3x faster than Extism",
            extism / runtime_p50,
            |r| r >= 3.0,
        ));
    } else {
        a.note(
            "target: at least 3x faster than Extism — not measured in this run (`--with-extism`)",
        );
    }
    a.note(target(
        "one event at most 6 µs through the runtime (shown: p50 / 6 µs)",
        runtime_p50 / 6.0,
        |r| r <= 1.0,
    ));
    if let Some(webhook) = webhook_p50 {
        a.note(target(
            "at least 40x faster than the webhook",
            webhook / runtime_p50,
            |r| r >= 40.0,
        ));
    }
    let above = |p50: f64| p50 - native_p50;
    let mut mechanism = format!(
        "the mechanism alone (µs above the native floor, which includes the same KV increment): runtime {} µs, \
         bare wasmtime {} µs",
        fmt_us(above(runtime_p50)),
        fmt_us(above(bare_p50))
    );
    for (name, p50) in [("webhook", webhook_p50), ("Extism", extism_p50)] {
        if let Some(p50) = p50 {
            mechanism.push_str(&format!(
                ", {name} {} µs ({} the runtime's)",
                fmt_us(above(p50)),
                fmt_ratio(above(p50) / above(runtime_p50))
            ));
        }
    }
    a.note(mechanism);
    if let Some((theirs, ours)) = kv_parity {
        a.note(format!(
            "KV parity: the Extism host's copy of the increment costs {} µs alone, `KvStore::increment` {} µs",
            fmt_us(theirs),
            fmt_us(ours)
        ));
    }

    Ok((a, native_p50))
}

/// A language's profanity-filter and message-stats, loaded.
type Pair = (Plugin, Plugin);

/// Section 1b: the example pair in every language that is built.
fn languages(
    guests: &RustGuests,
    options: &Options,
    native_p50: Option<f64>,
) -> anyhow::Result<Section> {
    eprintln!("[1b] the example plugins in each language");
    let rt = runtime()?;
    let filter = load(&rt, &guests.profanity_filter)?;
    let stats = load(&rt, &guests.message_stats)?;
    let (mut warm_calls, mut fresh_calls) = (Calls::new(), Calls::new());
    let mut others: Vec<(&str, Result<Pair, String>)> = Vec::new();
    for (lang, label) in [("c", "C"), ("python", "Python"), ("js", "JavaScript")] {
        let pair = match lang_pair(lang, options.lang_dir.as_deref()) {
            LangPair::Skipped(why) => Err(why),
            LangPair::Found {
                profanity_filter,
                message_stats,
            } => load(&rt, &profanity_filter)
                .and_then(|f| Ok((f, load(&rt, &message_stats)?)))
                .map_err(|e| format!("failed: {e:#}")),
        };
        others.push((label, pair));
    }
    let mut variants = vec![
        Variant::per_event("rust examples", |id| {
            runtime_event(&mut warm_calls, &filter, &stats, false, id)
        }),
        Variant::per_event("rust examples, fresh instance", |id| {
            runtime_event(&mut fresh_calls, &filter, &stats, true, id)
        }),
    ];
    for (label, pair) in &others {
        if let Ok((f, s)) = pair {
            let mut calls = Calls::new();
            variants.push(Variant::per_event(
                &format!("{label} examples"),
                move |id| runtime_event(&mut calls, f, s, false, id),
            ));
        }
    }
    let mut results = interleave(variants, options.budget).into_iter();
    let mut next = || {
        Outcome::from(
            results
                .next()
                .unwrap_or_else(|| Err(anyhow::anyhow!("not run"))),
        )
    };
    let (rust, rust_fresh) = (next(), next());
    let rust_p50 = match &rust {
        Outcome::Measured(samples) => samples.p50(),
        Outcome::Skipped(why) => bail!("the Rust examples: {why}"),
    };
    let mut rows = vec![
        ("Rust (warm instance)".to_owned(), rust),
        ("Rust (fresh instance per call)".to_owned(), rust_fresh),
    ];
    for (label, pair) in others {
        let outcome = match pair {
            Ok(_) => next(),
            Err(why) => Outcome::Skipped(why),
        };
        rows.push((format!("{label} (warm instance)"), outcome));
    }
    let mut b = Section::new(
        "1b. Hook dispatch: the example plugins in each language",
        &[
            "language",
            "p50 µs",
            "p99 µs",
            "× native",
            "× Rust",
            "events",
        ],
    );
    b.intro.push(
        "One event = `profanity-filter` on `before-message-sent` + `message-stats` on `after-message-sent` \
         (compare-and-swap, two increments, a set with TTL, a log line) through the chathooks runtime. \
         `× native` is against the native row of 1a, which does less KV work."
            .to_owned(),
    );
    table(&mut b, rows, native_p50.unwrap_or(f64::NAN), Some(rust_p50));
    Ok(b)
}

fn table(section: &mut Section, rows: Vec<(String, Outcome)>, native: f64, second: Option<f64>) {
    for (label, outcome) in rows {
        match outcome {
            Outcome::Measured(s) => section.row(vec![
                label,
                fmt_us(s.p50()),
                fmt_us(s.p99()),
                fmt_ratio(s.p50() / native),
                second.map_or_else(String::new, |b| fmt_ratio(s.p50() / b)),
                format!("{}{}", s.len(), failures(&s)),
            ]),
            Outcome::Skipped(why) => section.row(vec![
                label,
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                format!("skipped: {why}"),
            ]),
        }
    }
}

/// `target: <what> — met (1.23x)` or `— MISSED (...)`.
pub fn target(what: &str, ratio: f64, met: impl Fn(f64) -> bool) -> String {
    let verdict = if met(ratio) { "met" } else { "**missed**" };
    format!("target: {what} — {verdict} ({})", fmt_ratio(ratio))
}
