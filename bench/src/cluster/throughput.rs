//! Section 6a: messages/s and latency of `POST /v1/conversations/{id}/messages` on a PostgreSQL single
//! node, a 1-node cluster and a 3-node cluster, with no plugins and with five, through section 2's load
//! generator (its clients spread evenly over the nodes: client `i` posts to node `i mod N`). CPU per
//! message of the nodes (summed) and of PostgreSQL, and how long after the load the after-hooks were done
//! on all nodes together.

use super::nodes::{Nodes, Topology, plugin_calls, wait_for_plugins};
use super::{Infra, Options, machine_note};
use crate::e2e::{LoadResult, Target, WARMUP_PER_CLIENT};
use crate::guests::RustGuests;
use crate::proc;
use crate::report::Section;
use crate::server::{Api, users};
use crate::stats::{Samples, fmt_ms};
use anyhow::Context;
use std::time::{Duration, Instant};

/// Plugins in the "with plugins" runs, as in section 2.
const PLUGINS: usize = 5;

/// How long to wait for the after-hooks to catch up after the load.
const DRAIN_PATIENCE: Duration = Duration::from_secs(90);

/// The set-ups compared, in the order they run.
const TOPOLOGIES: [Topology; 3] = [
    Topology::Alone,
    Topology::Cluster { nodes: 1 },
    Topology::Cluster { nodes: 3 },
];

/// How far the after-hooks got once the load stopped.
#[derive(Debug, Clone, Copy)]
struct Drain {
    /// Plugin calls the run should make in all (a before-hook and an after-hook per message and plugin).
    expected: u64,
    /// Plugin calls counted over every node when the wait ended, less those before the run.
    counted: u64,
    /// From the last answer to the end of the wait.
    waited: Duration,
}

/// Plugin calls of the run on each node, `n1` first (before-hooks where the request landed, after-hooks
/// where a dispatcher took the delivery).
type PerNode = Vec<u64>;

/// Plugin calls so far on each node, `n1` first.
async fn per_node_calls(apis: &[Api]) -> anyhow::Result<PerNode> {
    let mut calls = Vec::new();
    for api in apis {
        calls.push(api.plugin_calls().await?);
    }
    Ok(calls)
}

impl Drain {
    fn done(&self) -> bool {
        self.counted >= self.expected
    }
}

/// One measured configuration.
struct Run {
    topology: Topology,
    plugins: usize,
    clients: usize,
    rps: f64,
    latency: Samples,
    errors: u64,
    /// CPU of every node, summed, per message (µs).
    cpu_per_msg_us: Option<f64>,
    /// CPU of PostgreSQL's processes per message (µs).
    db_cpu_per_msg_us: Option<f64>,
    /// CPU of the nats-server per message (µs).
    nats_cpu_per_msg_us: Option<f64>,
    drain: Option<Drain>,
    /// The run's plugin calls on each node (with plugins and several nodes).
    per_node: PerNode,
    /// Messages per second counting until the after-hooks were done (an upper bound when not done).
    sustained: f64,
}

/// Section 6a: every topology with and without plugins, for each client count.
pub fn run(infra: &Infra, guests: &RustGuests, options: &Options) -> anyhow::Result<Section> {
    eprintln!(
        "  6a: POST messages, load generator in its own process, clients spread over the nodes"
    );
    let mut runs = Vec::new();
    for &clients in &options.clients {
        for topology in TOPOLOGIES {
            for plugins in [0, PLUGINS] {
                runs.push(run_once(
                    infra, guests, options, topology, plugins, clients,
                )?);
            }
        }
    }
    Ok(table(infra, options, &runs))
}

/// One configuration on fresh servers and a fresh database.
fn run_once(
    infra: &Infra,
    guests: &RustGuests,
    options: &Options,
    topology: Topology,
    plugins: usize,
    clients: usize,
) -> anyhow::Result<Run> {
    let nodes = Nodes::start(infra, guests, topology, plugins)?;
    let apis = nodes.apis()?;
    let bases = nodes.bases();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(wait_for_plugins(&apis, plugins, Duration::from_secs(60)))?;
    let targets = rt.block_on(setup(&apis[0], &bases, clients))?;
    let targets_file = nodes.root().join("targets.json");
    std::fs::write(&targets_file, serde_json::to_string(&targets)?)?;
    let calls_before = rt.block_on(settle(&apis))?;
    let per_node_before = rt.block_on(per_node_calls(&apis))?;
    let cpu_before = nodes.cpu_time();
    let db_cpu_before = infra.pg.cpu_time();
    let nats_cpu_before = infra.nats_cpu_time();
    let per_client = (options.messages / clients).max(WARMUP_PER_CLIENT * 5);
    let child = proc::Child::spawn_self(
        &[
            "load",
            "--base",
            &bases[0],
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
    let used =
        |before: Option<Duration>, after: Option<Duration>| Some(after?.saturating_sub(before?));
    let cpu = used(cpu_before, nodes.cpu_time());
    let db_cpu = used(db_cpu_before, infra.pg.cpu_time());
    let nats_cpu = used(nats_cpu_before, infra.nats_cpu_time());
    let drain = if plugins > 0 {
        let expected = 2 * result.sent * plugins as u64;
        let calls = rt.block_on(wait_for_calls(
            &apis,
            calls_before + expected,
            DRAIN_PATIENCE,
        ))?;
        Some(Drain {
            expected,
            counted: calls.saturating_sub(calls_before),
            waited: load_done.elapsed(),
        })
    } else {
        None
    };
    let per_node: PerNode = rt
        .block_on(per_node_calls(&apis))?
        .into_iter()
        .zip(per_node_before)
        .map(|(after, before)| after.saturating_sub(before))
        .collect();
    let latency = Samples::from_micros(result.micros);
    let rps = result.sent as f64 / result.seconds;
    let until_done = result.seconds + drain.map_or(0.0, |d| d.waited.as_secs_f64());
    eprintln!(
        "    {}, {plugins} plugins, {clients} clients: {rps:.0} msg/s, p50 {} ms, p99 {} ms, {} errors{}",
        topology.name(),
        fmt_ms(latency.p50()),
        fmt_ms(latency.p99()),
        result.errors,
        drain.map_or_else(String::new, |d| format!(
            "; plugin calls {} of {} {:.1} s after the last answer",
            d.counted,
            d.expected,
            d.waited.as_secs_f64()
        ))
    );
    let per_message = |c: Duration| c.as_secs_f64() * 1e6 / result.sent.max(1) as f64;
    Ok(Run {
        topology,
        plugins,
        clients,
        rps,
        latency,
        errors: result.errors,
        cpu_per_msg_us: cpu.map(per_message),
        db_cpu_per_msg_us: db_cpu.map(per_message),
        nats_cpu_per_msg_us: nats_cpu.map(per_message),
        drain,
        per_node,
        sustained: result.sent as f64 / until_done,
    })
}

/// bob, carol, one user per client and a conversation of each client with bob and carol, all made
/// through node 1 (the database is shared); client `i` then posts to node `i mod N`.
async fn setup(api: &Api, bases: &[String], clients: usize) -> anyhow::Result<Vec<Target>> {
    api.user("bob").await?;
    api.user("carol").await?;
    let tokens = users(api, "client", clients).await?;
    let others = vec!["bob".to_owned(), "carol".to_owned()];
    let mut targets = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let conversation = api.conversation(&token, &others).await?;
        targets.push(Target {
            token,
            conversation,
            base: Some(bases[i % bases.len()].clone()),
        });
    }
    Ok(targets)
}

/// Waits until the plugins' call count over every node stops changing; the count.
async fn settle(apis: &[Api]) -> anyhow::Result<u64> {
    let mut last = plugin_calls(apis).await?;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = plugin_calls(apis).await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Waits until the plugins have been called `target` times over every node, or `patience` ran out; then
/// a little longer, so that calls beyond the target (a delivery made twice) are counted too.
async fn wait_for_calls(apis: &[Api], target: u64, patience: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + patience;
    loop {
        let calls = plugin_calls(apis).await?;
        if calls >= target || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return plugin_calls(apis).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The table: one row per run, then each cluster set-up against the single node.
fn table(infra: &Infra, options: &Options, runs: &[Run]) -> Section {
    let mut s = Section::new(
        "6a. Cluster: POST /v1/conversations/{id}/messages",
        &[
            "set-up",
            "plugins",
            "clients",
            "messages/s",
            "p50 ms",
            "p99 ms",
            "nodes' CPU per message",
            "PostgreSQL CPU per message",
            "NATS CPU per message",
            "after-hooks done",
            "messages/s incl. after-hooks",
            "errors",
        ],
    );
    s.intro.push(format!(
        "Section 2's closed loop: each client posts to its own new 3-person conversation, the next message \
         as soon as the answer arrives, {} messages per run split between the clients; client i posts to \
         node i mod N (all users and conversations made through node 1). A fresh database per run. The 5 \
         plugins are section 2's bench guest, the same files in every node's plugins folder: per message 5 \
         before-hook calls on the node that took it and 5 after-hook deliveries on whichever node's \
         dispatcher takes them; \"after-hooks done\" is when the plugin calls counted over all nodes \
         reached 2 per message and plugin. Nodes' CPU is every node process summed; PostgreSQL's is the \
         postmaster and its children; NATS's the nats-server process (idle for the single node, which \
         does not use it). {}",
        options.messages,
        machine_note(infra)
    ));
    let cpu = |us: Option<f64>| us.map_or_else(|| "?".to_owned(), |us| format!("{us:.0} µs"));
    for r in runs {
        s.row(vec![
            r.topology.name(),
            if r.plugins == 0 {
                "none".to_owned()
            } else {
                format!("{} (every hook)", r.plugins)
            },
            r.clients.to_string(),
            format!("{:.0}", r.rps),
            fmt_ms(r.latency.p50()),
            fmt_ms(r.latency.p99()),
            cpu(r.cpu_per_msg_us),
            cpu(r.db_cpu_per_msg_us),
            cpu(r.nats_cpu_per_msg_us),
            r.drain.map_or_else(|| "—".to_owned(), drain_cell),
            match r.drain {
                Some(d) if !d.done() => format!("< {:.0}", r.sustained),
                _ => format!("{:.0}", r.sustained),
            },
            r.errors.to_string(),
        ]);
    }
    for r in runs {
        if let Some(d) = r.drain
            && d.counted > d.expected
        {
            s.note(format!(
                "{}, {} clients: {} plugin calls counted for {} expected: {} made more than once",
                r.topology.name(),
                r.clients,
                d.counted,
                d.expected,
                d.counted - d.expected
            ));
        }
    }
    for r in runs {
        if r.plugins > 0 && r.per_node.len() > 1 {
            let calls: Vec<String> = r
                .per_node
                .iter()
                .enumerate()
                .map(|(i, c)| format!("n{} {c}", i + 1))
                .collect();
            s.note(format!(
                "{}, {} client(s), {} plugins: plugin calls by node (before-hooks where the request \
                 landed, after-hooks where a dispatcher took them): {}",
                r.topology.name(),
                r.clients,
                r.plugins,
                calls.join(", ")
            ));
        }
    }
    comparison_notes(&mut s, runs, options);
    s
}

/// An after-hook drain as its cell.
fn drain_cell(d: Drain) -> String {
    if d.done() {
        format!("{:.1} s after the last answer", d.waited.as_secs_f64())
    } else {
        format!(
            "no: {} of {} plugin calls {:.0} s after the last answer",
            d.counted,
            d.expected,
            d.waited.as_secs_f64()
        )
    }
}

/// Each cluster set-up's throughput against the single node's, per client count and plugins.
fn comparison_notes(s: &mut Section, runs: &[Run], options: &Options) {
    for &clients in &options.clients {
        for plugins in [0, PLUGINS] {
            let find = |t: Topology| {
                runs.iter()
                    .find(|r| r.topology == t && r.plugins == plugins && r.clients == clients)
            };
            let Some(alone) = find(Topology::Alone) else {
                continue;
            };
            let others: Vec<String> = TOPOLOGIES[1..]
                .iter()
                .filter_map(|&t| find(t))
                .map(|r| {
                    format!(
                        "{} {:.0}% ({:.0} msg/s; {:.0}% counting until the after-hooks were done)",
                        r.topology.name(),
                        r.rps / alone.rps * 100.0,
                        r.rps,
                        r.sustained / alone.sustained * 100.0
                    )
                })
                .collect();
            s.note(format!(
                "{clients} client(s), {plugins} plugins: against the single node's {:.0} msg/s: {}",
                alone.rps,
                others.join(", ")
            ));
        }
    }
}
