//! The servers of one cluster-section run: one PostgreSQL single-node server, or N `chathooks serve` nodes
//! of one cluster, all on a fresh database of the section's throwaway PostgreSQL and (cluster) its
//! nats-server. Each node has its own data folder, log and plugins folder (the same plugin files in each:
//! every node loads its own copy, SCALE-OUT.md 2.8's "each node watching its own folder").

use super::Infra;
use crate::guests::{RustGuests, install};
use crate::server::{ADMIN_KEY, Api, Dirs, Server};
use anyhow::{Context, bail};
use std::path::Path;
use std::time::{Duration, Instant};

/// The log line of the node that holds the sequencer role (`host/src/cluster/sequencer.rs`).
const SEQUENCER_LINE: &str = "this node is the cluster's sequencer";

/// How the servers of a run are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// `chathooks serve --database postgres://...` without `--nats`: one server that takes the database
    /// for itself (single-node writer mutex, events published by the writer).
    Alone,
    /// `nodes` servers with `--nats`: drafts sequenced by the node holding the role, events reaching
    /// every node's clients through NATS.
    Cluster {
        /// How many nodes.
        nodes: usize,
    },
}

impl Topology {
    /// How many servers run.
    pub fn count(self) -> usize {
        match self {
            Topology::Alone => 1,
            Topology::Cluster { nodes } => nodes,
        }
    }

    /// Its name in the report.
    pub fn name(self) -> String {
        match self {
            Topology::Alone => "PostgreSQL single node (no NATS)".to_owned(),
            Topology::Cluster { nodes: 1 } => "cluster, 1 node".to_owned(),
            Topology::Cluster { nodes } => format!("cluster, {nodes} nodes"),
        }
    }
}

/// One server of a run.
pub struct Node {
    /// `n1`, `n2`, ...: its `--node-id` in a cluster, its name in the report either way.
    pub id: String,
    /// Its folders.
    dirs: Dirs,
    /// Its `serve` flags beyond the folders and the database.
    extra: Vec<String>,
    /// The running process; `None` once killed.
    server: Option<Server>,
    /// `http://127.0.0.1:<port>` of its last start.
    pub base: String,
}

impl Node {
    fn start(dirs: &Dirs, database: &str, extra: &[String]) -> anyhow::Result<Server> {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        Server::start_with(dirs, Some(database), &extra)
    }

    /// Whether its process is running.
    pub fn alive(&self) -> bool {
        self.server.is_some()
    }

    /// Whether its log says it holds the sequencer role (its log restarts with each start).
    fn logged_sequencer(&self) -> bool {
        std::fs::read_to_string(&self.dirs.log).is_ok_and(|log| log.contains(SEQUENCER_LINE))
    }
}

/// The servers of one run, stopped (killed) and their folders deleted on drop.
pub struct Nodes {
    /// The servers, `n1` first.
    pub nodes: Vec<Node>,
    /// The chat database they share.
    database: String,
    /// Holds every node's folders; deleted on drop, after the nodes (fields drop in order).
    root: tempfile::TempDir,
}

impl Nodes {
    /// Starts `topology`'s servers on a fresh database, one after the other, each with `plugins` copies of
    /// the bench guest in its plugins folder.
    pub fn start(
        infra: &Infra,
        guests: &RustGuests,
        topology: Topology,
        plugins: usize,
    ) -> anyhow::Result<Nodes> {
        let root = tempfile::tempdir()?;
        let database = infra.pg.new_database()?;
        let cluster_name = infra.next_cluster_name();
        let mut nodes = Vec::new();
        for i in 1..=topology.count() {
            let id = format!("n{i}");
            let dirs = Dirs::under(&root.path().join(&id))?;
            for p in 1..=plugins {
                install(
                    &guests.bench_hooks,
                    &dirs.plugins,
                    &format!("bench_hooks_{p}"),
                )?;
            }
            let extra: Vec<String> = match topology {
                Topology::Alone => Vec::new(),
                Topology::Cluster { .. } => [
                    "--nats",
                    &infra.nats.url(),
                    "--node-id",
                    &id,
                    "--cluster-name",
                    &cluster_name,
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            };
            let server = Node::start(&dirs, &database, &extra)
                .with_context(|| format!("starting node {id} ({})", topology.name()))?;
            nodes.push(Node {
                id,
                base: server.base.clone(),
                dirs,
                extra,
                server: Some(server),
            });
        }
        Ok(Nodes {
            nodes,
            database,
            root,
        })
    }

    /// The folder every node's folders are in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Every node's base URL, `n1` first.
    pub fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base.clone()).collect()
    }

    /// An API client for every node, `n1` first.
    pub fn apis(&self) -> anyhow::Result<Vec<Api>> {
        self.nodes.iter().map(|n| Api::new(&n.base)).collect()
    }

    /// CPU time used so far by the running nodes, summed; `None` when one cannot be read.
    pub fn cpu_time(&self) -> Option<Duration> {
        self.nodes
            .iter()
            .filter_map(|n| n.server.as_ref())
            .map(Server::cpu_time)
            .sum()
    }

    /// Resident memory of the running nodes, summed, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|n| n.server.as_ref())
            .map(|s| s.child.rss_kib())
            .sum()
    }

    /// The running node whose log says it holds the sequencer role, waiting up to `patience` for one.
    pub fn sequencer(&self, patience: Duration) -> anyhow::Result<usize> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(i) = self.sequencer_now() {
                return Ok(i);
            }
            if Instant::now() > deadline {
                bail!("no running node logged {SEQUENCER_LINE:?} within {patience:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The running node whose log says it holds the sequencer role, if one does yet.
    pub fn sequencer_now(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.alive() && n.logged_sequencer())
    }

    /// The running nodes whose current log says they hold the sequencer role (one, unless the role moved
    /// without a kill).
    pub fn claims(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.alive() && n.logged_sequencer())
            .map(|n| n.id.clone())
            .collect()
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(i).context("no such node")?;
        if let Some(mut server) = node.server.take() {
            server.child.kill()?;
        }
        Ok(())
    }

    /// Starts node `i` again after [`Nodes::kill`], with the same flags, folders and node id (its log
    /// starts afresh); waits until it listens.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let database = self.database.clone();
        let node = self.nodes.get_mut(i).context("no such node")?;
        if node.server.is_none() {
            // Keep the log of the killed process beside the new one (`server.log.1`, ...).
            let mut n = 1;
            let kept = loop {
                let kept = node.dirs.log.with_extension(format!("log.{n}"));
                if !kept.exists() {
                    break kept;
                }
                n += 1;
            };
            let _ = std::fs::rename(&node.dirs.log, kept);
            let server = Node::start(&node.dirs, &database, &node.extra)
                .with_context(|| format!("restarting node {}", node.id))?;
            node.base = server.base.clone();
            node.server = Some(server);
        }
        Ok(())
    }
}

impl Drop for Nodes {
    /// Before the logs go with the folders: each node's warnings and errors on stderr (the first few),
    /// so that a run that looked fine in its figures but not in its logs says so; with
    /// `CHATHOOKS_BENCH_KEEP_LOGS=<dir>`, every log (a killed process's too) copied to `<dir>/<run>/`.
    fn drop(&mut self) {
        if let Ok(keep) = std::env::var("CHATHOOKS_BENCH_KEEP_LOGS") {
            let run = self.root.path().file_name().unwrap_or_default();
            let to = Path::new(&keep).join(run);
            let _ = std::fs::create_dir_all(&to);
            for node in &self.nodes {
                let from = node.dirs.log.parent().map(Path::to_path_buf);
                if let Some(Ok(entries)) = from.map(std::fs::read_dir) {
                    for e in entries.flatten() {
                        let name = format!("{}-{}", node.id, e.file_name().to_string_lossy());
                        if name.contains("server.log") {
                            let _ = std::fs::copy(e.path(), to.join(name));
                        }
                    }
                }
            }
        }
        for node in &self.nodes {
            let log = std::fs::read_dir(node.dirs.log.parent().unwrap_or(Path::new(".")))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("server.log"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect::<Vec<_>>()
                .join("\n");
            let flagged: Vec<String> = log
                .lines()
                .map(strip_ansi)
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .collect();
            if flagged.is_empty() {
                continue;
            }
            eprintln!(
                "    node {} logged {} warning(s)/error(s){}:",
                node.id,
                flagged.len(),
                if node.alive() {
                    ""
                } else {
                    " (since its last start)"
                }
            );
            for line in flagged.iter().take(3) {
                eprintln!("      {line}");
            }
        }
    }
}

/// `line` without its terminal colour codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until every node in `apis` runs `plugins` plugins (state `active`): a cluster node loads them
/// from the catalog its publishers filled, a moment after it listens (every 3 s, or when poked).
pub async fn wait_for_plugins(
    apis: &[Api],
    plugins: usize,
    patience: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    for (i, api) in apis.iter().enumerate() {
        loop {
            let list = api.get("/v1/admin/plugins", ADMIN_KEY).await?;
            let active = list
                .as_array()
                .map_or(0, |ps| ps.iter().filter(|p| p["state"] == "active").count());
            if active >= plugins {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "node n{} runs {active} of {plugins} plugins after {patience:?}: {list}",
                    i + 1
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Calls so far of every plugin on every node in `apis`, summed (before-hooks run on the node that took
/// the request, after-hook deliveries on whichever node's dispatcher took them).
pub async fn plugin_calls(apis: &[Api]) -> anyhow::Result<u64> {
    let mut calls = 0;
    for api in apis {
        calls += api.plugin_calls().await?;
    }
    Ok(calls)
}
