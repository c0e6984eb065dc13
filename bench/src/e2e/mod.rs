//! Section 2, end to end: messages per second and latency of `POST /v1/conversations/{id}/messages` over
//! real HTTP, with N concurrent clients (each its own keep-alive connection and conversation) in a load
//! generator process of its own (`chathooks-bench load`), against a server with no plugins and with five
//! plugins subscribed to every hook (or one plugin of your own, `--plugin`), once per chat database
//! backend asked for (`--backends`: SQLite by default, PostgreSQL single node in a throwaway cluster).
//!
//! ## Layout
//! - this file: the runs, each on a fresh server;
//! - `load.rs`: the load generator process;
//! - `table.rs`: the report, one table per backend and PostgreSQL compared with SQLite.

mod load;
mod table;

pub use load::{LoadArgs, LoadResult, Target, WARMUP_PER_CLIENT, load};

use crate::backend::{Availability, Backend, Cluster, Store};
use crate::guests::{RustGuests, install};
use crate::proc;
use crate::report::Section;
use crate::server::{ADMIN_KEY, Api, Dirs, MessageHookSeconds, Server, users};
use crate::stats::{Samples, fmt_ms};
use anyhow::Context;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How section 2 runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent clients, one measurement each.
    pub clients: Vec<usize>,
    /// Messages per run, split evenly between the clients.
    pub messages: usize,
    /// The chat database backends to run on, each the same runs.
    pub backends: Vec<Backend>,
    /// A component to measure instead of the [`PLUGINS`] copies of the bench guest (one copy).
    pub plugin: Option<PathBuf>,
}

impl Options {
    /// How many plugins the runs with plugins install.
    pub fn plugins(&self) -> usize {
        if self.plugin.is_some() { 1 } else { PLUGINS }
    }
}

/// Longest wait for the plugins' optimized code after a server starts (it takes well under a second).
const OPTIMIZED_PATIENCE: Duration = Duration::from_secs(120);

/// Plugins in the "with plugins" configuration.
const PLUGINS: usize = 5;

/// How far the after-hooks got once the load stopped.
#[derive(Debug, Clone, Copy)]
struct Drain {
    /// Every delivery done.
    done: bool,
    /// After-hook deliveries the run created.
    expected: u64,
    /// Those still outstanding when the wait ended.
    outstanding: u64,
    /// From the last answer to the end of the wait.
    waited: Duration,
}

/// One measured configuration.
struct Run {
    backend: Backend,
    plugins: usize,
    clients: usize,
    rps: f64,
    latency: Samples,
    errors: u64,
    cpu_per_msg_us: Option<f64>,
    /// The server's CPU per message until the after-hooks caught up (what a message costs in all).
    cpu_all_per_msg_us: Option<f64>,
    /// The load generator's CPU per message.
    loadgen_cpu_per_msg_us: Option<f64>,
    /// CPU of the database server per message, when it is a process of its own (PostgreSQL).
    db_cpu_per_msg_us: Option<f64>,
    drain: Option<Drain>,
    /// With plugins: µs per message the server spent inside the message hooks' calls, as it timed them.
    calls_per_msg_us: Option<MessageHookSeconds>,
    /// The store's writer (SQLite's, or a PostgreSQL node's writer mutex), from the first request until
    /// the after-hooks were done: µs held per message, and the share of that time it was held.
    writer: Option<(f64, f64)>,
    /// Messages per second counting until the last after-hook delivery finished (an upper bound when
    /// the wait ended first).
    sustained: f64,
}

/// How long to wait for the after-hooks to catch up after the load.
const DRAIN_PATIENCE: Duration = Duration::from_secs(60);

/// Section 2: a table per backend.
pub fn run(guests: &RustGuests, options: &Options) -> anyhow::Result<Vec<Section>> {
    eprintln!("[2] end to end: POST messages over HTTP, load generator in its own process");
    let backends: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| options.backends.contains(b))
        .collect();
    let postgres = backends.contains(&Backend::Postgres).then(Cluster::start);
    let mut stores = Vec::new();
    if backends.contains(&Backend::Sqlite) {
        stores.push(Store::Sqlite);
    }
    if let Some(Availability::Ready(cluster)) = &postgres {
        stores.push(Store::Postgres(cluster));
    }
    let mut runs = Vec::new();
    // For each client count, every backend with and without plugins one after the other, so that a
    // change in the machine's load during the section affects both sides of each comparison alike.
    for &clients in &options.clients {
        for &store in &stores {
            for plugins in [0, options.plugins()] {
                runs.push(run_once(guests, options, store, plugins, clients)?);
            }
        }
    }
    let mut sections = Vec::new();
    for backend in backends {
        sections.push(match (backend, &postgres) {
            (Backend::Sqlite, _) => table::sqlite(&runs, options),
            (Backend::Postgres, Some(Availability::Ready(cluster))) => {
                table::postgres(&runs, options, cluster)
            }
            (Backend::Postgres, Some(Availability::Skipped(why))) => table::postgres_skipped(why),
            (Backend::Postgres, None) => continue,
        });
    }
    Ok(sections)
}

/// One configuration on a fresh server: new database, new conversations (the cost of a send grows with
/// the unread messages of its conversation, see BENCHMARKS.md), no backlog from an earlier run.
fn run_once(
    guests: &RustGuests,
    options: &Options,
    store: Store<'_>,
    plugins: usize,
    clients: usize,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let dirs = Dirs::under(dir.path())?;
    for i in 1..=plugins {
        install(
            options.plugin.as_deref().unwrap_or(&guests.bench_hooks),
            &dirs.plugins,
            &format!("bench_hooks_{i}"),
        )?;
    }
    let database = store.new_database()?;
    let server = Server::start_on(&dirs, database.as_deref())?;
    let api = Api::new(&server.base)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Plugins are measured on their optimized code: the fresh data folder compiles them at start, and
    // that one-time background compile must not share the cores with the load (section 4 times it).
    if plugins > 0 && !rt.block_on(api.all_optimized(plugins, OPTIMIZED_PATIENCE))? {
        anyhow::bail!(
            "the plugins were not all on Cranelift's code {OPTIMIZED_PATIENCE:?} after the server \
             started; see the server's log"
        );
    }
    let targets = rt.block_on(setup(&api, clients))?;
    let targets_file = dir.path().join("targets.json");
    std::fs::write(&targets_file, serde_json::to_string(&targets)?)?;
    // Let the after-conversation-created deliveries of the set-up finish first.
    let calls_before = rt.block_on(settle(&api))?;
    let metrics_before = rt.block_on(api.metrics())?;
    let cpu_before = server.cpu_time();
    let db_cpu_before = store.cpu_time();
    let per_client = (options.messages / clients).max(WARMUP_PER_CLIENT * 5);
    let child = proc::Child::spawn_self(
        &[
            "load",
            "--base",
            &server.base,
            "--targets",
            &targets_file.display().to_string(),
            "--clients",
            &clients.to_string(),
            "--messages",
            &per_client.to_string(),
        ],
        &[],
    )?;
    let lines = child.finish(Duration::from_secs(900))?;
    let load_done = Instant::now();
    let line = lines.last().context("the load generator printed nothing")?;
    let result: LoadResult = serde_json::from_str(line)?;
    let used = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let cpu = used(cpu_before, server.cpu_time());
    let db_cpu = used(db_cpu_before, store.cpu_time());
    // Every message makes each plugin run on what it exports of before-message-sent (inline) and
    // after-message-sent (from the outbox); the bench guest exports both. Wait (a while) for the
    // dispatcher to catch up.
    let drain = if plugins > 0 {
        let per_message = rt.block_on(message_hooks(&api))?;
        let deliveries = result.sent * plugins as u64 * u64::from(per_message.after);
        let target = calls_before
            + result.sent * plugins as u64 * u64::from(per_message.before)
            + deliveries;
        let calls = rt.block_on(wait_for_calls(&api, target, DRAIN_PATIENCE))?;
        Some(Drain {
            done: calls >= target,
            expected: deliveries,
            outstanding: target.saturating_sub(calls),
            waited: load_done.elapsed(),
        })
    } else {
        None
    };
    let cpu_all = used(cpu_before, server.cpu_time());
    let metrics_after = rt.block_on(api.metrics())?;
    let latency = Samples::from_micros(result.micros);
    let rps = result.sent as f64 / result.seconds;
    let until_done = result.seconds + drain.map_or(0.0, |d| d.waited.as_secs_f64());
    let per_message_us = |seconds: f64| seconds * 1e6 / result.sent.max(1) as f64;
    let calls_per_msg_us = (plugins > 0).then(|| {
        let spent = metrics_after.hooks.since(metrics_before.hooks);
        MessageHookSeconds {
            before: per_message_us(spent.before),
            after: per_message_us(spent.after),
        }
    });
    let writer = match (metrics_before.writer_busy, metrics_after.writer_busy) {
        (Some(before), Some(after)) => {
            let held = after - before;
            Some((per_message_us(held), held / until_done))
        }
        _ => None,
    };
    eprintln!(
        "  {}, {plugins} plugins, {clients} clients: {rps:.0} msg/s, p50 {} ms, p99 {} ms, {} errors{}",
        store.backend().name(),
        fmt_ms(latency.p50()),
        fmt_ms(latency.p99()),
        result.errors,
        drain.map_or_else(String::new, |d| format!(
            "; after-hooks {} {:.1} s after the last answer",
            if d.done { "done" } else { "still behind" },
            d.waited.as_secs_f64()
        ))
    );
    let per_message = |c: Duration| per_message_us(c.as_secs_f64());
    Ok(Run {
        backend: store.backend(),
        plugins,
        clients,
        rps,
        sustained: result.sent as f64 / until_done,
        cpu_per_msg_us: cpu.map(per_message),
        cpu_all_per_msg_us: cpu_all.map(per_message),
        db_cpu_per_msg_us: db_cpu.map(per_message),
        loadgen_cpu_per_msg_us: result.cpu_seconds.map(per_message_us),
        latency,
        errors: result.errors,
        drain,
        calls_per_msg_us,
        writer,
    })
}

/// Which of the message hooks the installed plugins export (every plugin of a run is the same file).
#[derive(Debug, Clone, Copy)]
struct MessageHooks {
    /// `before-message-sent`: 1 or 0.
    before: u8,
    /// `after-message-sent`: 1 or 0.
    after: u8,
}

/// What the first installed plugin exports of the message hooks (`GET /v1/admin/plugins`).
async fn message_hooks(api: &Api) -> anyhow::Result<MessageHooks> {
    let plugins = api.get("/v1/admin/plugins", ADMIN_KEY).await?;
    let hooks = plugins
        .get(0)
        .and_then(|p| p["hooks"].as_array())
        .context("the server lists no plugin with its hooks")?;
    let has = |name: &str| u8::from(hooks.iter().any(|h| h == name));
    Ok(MessageHooks {
        before: has("before-message-sent"),
        after: has("after-message-sent"),
    })
}

/// bob, carol, one user per client, and a new conversation of each client with bob and carol.
async fn setup(api: &Api, clients: usize) -> anyhow::Result<Vec<Target>> {
    api.user("bob").await?;
    api.user("carol").await?;
    let tokens = users(api, "client", clients).await?;
    let others = vec!["bob".to_owned(), "carol".to_owned()];
    let mut targets = Vec::new();
    for token in tokens {
        let conversation = api.conversation(&token, &others).await?;
        targets.push(Target {
            token,
            conversation,
            base: None,
        });
    }
    Ok(targets)
}

/// Waits until the plugins' call count stops changing; the count.
async fn settle(api: &Api) -> anyhow::Result<u64> {
    let mut last = api.plugin_calls().await?;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = api.plugin_calls().await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Waits until the plugins have been called `target` times in all, or `patience` ran out; the count.
async fn wait_for_calls(api: &Api, target: u64, patience: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + patience;
    loop {
        let calls = api.plugin_calls().await?;
        if calls >= target || Instant::now() > deadline {
            return Ok(calls);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
