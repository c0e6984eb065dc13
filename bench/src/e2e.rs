//! Section 2, end to end: messages per second and latency of `POST /v1/conversations/{id}/messages` over
//! real HTTP, with N concurrent clients (each its own keep-alive connection and conversation) in a load
//! generator process of its own (`chathooks-bench load`), against a server with no plugins and with five
//! plugins subscribed to every hook.

use crate::guests::{RustGuests, install};
use crate::hooks::target;
use crate::proc;
use crate::report::Section;
use crate::server::{Api, Dirs, Server, users};
use crate::stats::{Samples, fmt_ms};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How section 2 runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent clients, one measurement each.
    pub clients: Vec<usize>,
    /// Messages per run, split evenly between the clients.
    pub messages: usize,
}

/// Plugins in the "with plugins" configuration.
const PLUGINS: usize = 5;

/// One client of the load generator: who it is and where it writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Target {
    /// Bearer token.
    pub token: String,
    /// Its conversation.
    pub conversation: String,
}

/// What the load generator prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadResult {
    /// Successful requests (how many messages the server stored).
    pub sent: u64,
    /// Failed requests.
    pub errors: u64,
    /// From the first request to the last answer, seconds.
    pub seconds: f64,
    /// Latencies, µs (each client's first requests left out).
    pub micros: Vec<f64>,
}

/// Requests of each client left out of the latency figures (connection set-up, caches warming).
const WARMUP_PER_CLIENT: usize = 20;

/// `chathooks-bench load`: N clients each posting `messages` messages, the next as soon as the answer to
/// the last arrives.
pub fn load(args: &LoadArgs) -> anyhow::Result<()> {
    let targets: Vec<Target> = serde_json::from_str(&std::fs::read_to_string(&args.targets)?)?;
    anyhow::ensure!(targets.len() >= args.clients, "fewer targets than clients");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (base, messages) = (args.base.clone(), args.messages);
    let result = runtime.block_on(async move {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (c, target) in targets.into_iter().take(args.clients).enumerate() {
            let url = format!("{base}/v1/conversations/{}/messages", target.conversation);
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
                let (mut sent, mut errors, mut micros) = (0u64, 0u64, Vec::new());
                for k in 0..messages {
                    let t = Instant::now();
                    let body = serde_json::json!({"body": format!("message {k} from client {c}: what the heck")});
                    let ok = match http.post(&url).bearer_auth(&target.token).json(&body).send().await {
                        Ok(r) => {
                            let ok = r.status().is_success();
                            r.bytes().await.is_ok() && ok
                        }
                        Err(_) => false,
                    };
                    if !ok {
                        errors += 1;
                        continue;
                    }
                    sent += 1;
                    if k >= WARMUP_PER_CLIENT {
                        micros.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                Ok::<_, anyhow::Error>((sent, errors, micros))
            }));
        }
        let mut total = LoadResult {
            sent: 0,
            errors: 0,
            seconds: 0.0,
            micros: Vec::new(),
        };
        for task in tasks {
            let (sent, errors, micros) = task.await??;
            total.sent += sent;
            total.errors += errors;
            total.micros.extend(micros);
        }
        total.seconds = started.elapsed().as_secs_f64();
        Ok::<_, anyhow::Error>(total)
    })?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

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
    plugins: usize,
    clients: usize,
    rps: f64,
    latency: Samples,
    errors: u64,
    cpu_per_msg_us: Option<f64>,
    drain: Option<Drain>,
    /// Messages per second counting until the last after-hook delivery finished (an upper bound when
    /// the wait ended first).
    sustained: f64,
}

/// How long to wait for the after-hooks to catch up after the load.
const DRAIN_PATIENCE: Duration = Duration::from_secs(60);

/// Section 2.
pub fn run(guests: &RustGuests, options: &Options) -> anyhow::Result<Section> {
    eprintln!("[2] end to end: POST messages over HTTP, load generator in its own process");
    let mut runs = Vec::new();
    // With and without plugins one after the other for each client count, so that a change in the
    // machine's load during the section affects both sides of each comparison alike.
    for &clients in &options.clients {
        for plugins in [0, PLUGINS] {
            runs.push(run_once(guests, options, plugins, clients)?);
        }
    }
    Ok(section(&runs, options))
}

/// One configuration on a fresh server: new database, new conversations (the cost of a send grows with
/// the unread messages of its conversation, see BENCHMARKS.md), no backlog from an earlier run.
fn run_once(
    guests: &RustGuests,
    options: &Options,
    plugins: usize,
    clients: usize,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let dirs = Dirs::under(dir.path())?;
    for i in 1..=plugins {
        install(
            &guests.bench_hooks,
            &dirs.plugins,
            &format!("bench_hooks_{i}"),
        )?;
    }
    let server = Server::start(&dirs)?;
    let api = Api::new(&server.base)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let targets = rt.block_on(setup(&api, clients))?;
    let targets_file = dir.path().join("targets.json");
    std::fs::write(&targets_file, serde_json::to_string(&targets)?)?;
    // Let the after-conversation-created deliveries of the set-up finish first.
    let calls_before = rt.block_on(settle(&api))?;
    let cpu_before = server.cpu_time();
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
    let cpu = match (cpu_before, server.cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // Every message makes each plugin run twice: before-message-sent inline, then after-message-sent
    // from the outbox. Wait (a while) for the dispatcher to catch up.
    let drain = if plugins > 0 {
        let deliveries = result.sent * plugins as u64;
        let target = calls_before + 2 * deliveries;
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
    let latency = Samples::from_micros(result.micros);
    let rps = result.sent as f64 / result.seconds;
    let until_done = result.seconds + drain.map_or(0.0, |d| d.waited.as_secs_f64());
    eprintln!(
        "  {plugins} plugins, {clients} clients: {rps:.0} msg/s, p50 {} ms, p99 {} ms, {} errors{}",
        fmt_ms(latency.p50()),
        fmt_ms(latency.p99()),
        result.errors,
        drain.map_or_else(String::new, |d| format!(
            "; after-hooks {} {:.1} s after the last answer",
            if d.done { "done" } else { "still behind" },
            d.waited.as_secs_f64()
        ))
    );
    Ok(Run {
        plugins,
        clients,
        rps,
        sustained: result.sent as f64 / until_done,
        cpu_per_msg_us: cpu.map(|c| c.as_secs_f64() * 1e6 / result.sent.max(1) as f64),
        latency,
        errors: result.errors,
        drain,
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

fn section(runs: &[Run], options: &Options) -> Section {
    let mut s = Section::new(
        "2. End to end: POST /v1/conversations/{id}/messages",
        &[
            "plugins",
            "clients",
            "messages/s",
            "p50 ms",
            "p99 ms",
            "server CPU per message",
            "after-hooks caught up",
            "messages/s incl. after-hooks",
            "errors",
        ],
    );
    s.intro.push(format!(
        "Closed loop: each client posts a message (with a blocked word) to its own new 3-person conversation, \
         the next as soon as the answer arrives; {} messages per run in all, split between the clients (the \
         same count with and without plugins, because a send's cost grows with its conversation's unread \
         messages). messages/s = messages / time from the first request to the last answer. Server: \
         `chathooks serve`, durability `process` (WAL, no fsync per commit). The 5 plugins are copies of \
         the bench guest subscribed to every hook: per message, 5 before-hook calls inline and 5 \
         after-hook deliveries from the outbox. The load generator shares the cores with the server.",
        options.messages
    ));
    for r in runs {
        s.row(vec![
            if r.plugins == 0 {
                "none".to_owned()
            } else {
                format!("{} (every hook)", r.plugins)
            },
            r.clients.to_string(),
            format!("{:.0}", r.rps),
            fmt_ms(r.latency.p50()),
            fmt_ms(r.latency.p99()),
            r.cpu_per_msg_us
                .map_or_else(|| "?".to_owned(), |us| format!("{us:.0} µs")),
            r.drain.map_or_else(
                || "—".to_owned(),
                |d| {
                    if d.done {
                        format!("{:.1} s after the last answer", d.waited.as_secs_f64())
                    } else {
                        format!(
                            "no: {} of {} deliveries still queued {:.0} s after the last answer",
                            d.outstanding,
                            d.expected,
                            d.waited.as_secs_f64()
                        )
                    }
                },
            ),
            match r.drain {
                Some(d) if !d.done => format!("< {:.0}", r.sustained),
                _ => format!("{:.0}", r.sustained),
            },
            r.errors.to_string(),
        ]);
    }
    for &clients in &options.clients {
        let find = |p: usize| runs.iter().find(|r| r.plugins == p && r.clients == clients);
        if let (Some(none), Some(with)) = (find(0), find(PLUGINS)) {
            let ratio = with.rps / none.rps;
            let sustained = with.sustained / none.sustained;
            let behind = with.drain.is_some_and(|d| !d.done);
            s.note(format!(
                "{clients} client(s): with {PLUGINS} plugins, {:.0}% of the request throughput without them \
                 ({:.0} vs {:.0} msg/s); counting until the after-hooks are done, {}{:.0}% ({}{:.0} vs {:.0} msg/s)",
                ratio * 100.0,
                with.rps,
                none.rps,
                if behind { "under " } else { "" },
                sustained * 100.0,
                if behind { "< " } else { "" },
                with.sustained,
                none.sustained,
            ));
            s.note(target(
                &format!(
                    "plugins cost under 10% of end-to-end throughput ({clients} client(s), after-hooks \
                     included; shown: with/without)"
                ),
                sustained,
                |r| r >= 0.9,
            ));
        }
    }
    s
}

/// The arguments of the `load` subcommand.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The server, `http://host:port`.
    #[arg(long)]
    pub base: String,
    /// JSON file of `{token, conversation}` per client.
    #[arg(long)]
    pub targets: PathBuf,
    /// Concurrent clients.
    #[arg(long)]
    pub clients: usize,
    /// Messages each client sends.
    #[arg(long)]
    pub messages: usize,
}
