//! Section 6, cluster mode (PostgreSQL + NATS): what running several `chathooks serve` nodes on one
//! database costs, and that it works. One throwaway PostgreSQL and one nats-server for the whole section;
//! a fresh database (and cluster name) for every run:
//! - throughput and latency of `POST .../messages` through section 2's load generator, on a PostgreSQL
//!   single-node server, a 1-node cluster and a 3-node cluster (clients spread evenly over the nodes),
//!   each with no plugins and with five;
//! - fan-out to 1,000 WebSocket members spread over the nodes, the sender on node 1, beside the same on
//!   one server (SQLite as in section 3, and PostgreSQL);
//! - fail-over: SIGKILL the sequencer while a client on another node watches messages sent every 50 ms
//!   through a surviving node; the time until messages arrive live again, and none missing or repeated.
//!
//! Everything runs on the same machine: PostgreSQL (`fsync=off`), NATS, every node and the load
//! generator share its cores, so three nodes here cannot be faster than one; the figures say what the
//! cluster's extra hops cost on one machine, not how it scales on several.
//!
//! ## Layout
//! - this file: the section's options, its servers ([`Infra`]) and the order of the parts;
//! - `nodes.rs`: the `chathooks serve` processes of one run;
//! - `throughput.rs`, `fanout.rs`, `failover.rs`: the three parts, each with its table.

mod failover;
mod fanout;
mod nodes;
mod throughput;

use crate::backend::{self, Availability};
use crate::guests::RustGuests;
use crate::report::Section;
use chathooks_testservers::Nats;
use std::cell::Cell;

/// How section 6 runs (each part scales with its own option).
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent clients of the throughput runs, one measurement each.
    pub clients: Vec<usize>,
    /// Messages per throughput run, split evenly between the clients.
    pub messages: usize,
    /// Members of the fan-out conversation.
    pub members: usize,
    /// Messages timed in each fan-out set-up.
    pub fanout_repeats: usize,
    /// Sequencer kills.
    pub failovers: usize,
}

/// The section's database and message bus, started once.
pub struct Infra {
    /// The throwaway PostgreSQL (a fresh database per run).
    pg: backend::Cluster,
    /// The throwaway nats-server (a fresh cluster name per run, so runs never hear each other).
    nats: Nats,
    /// The nats-server's process id, for its CPU time (found by its port on its command line).
    nats_pid: Option<u32>,
    /// Runs started so far, for the cluster names.
    runs: Cell<u32>,
}

impl Infra {
    /// CPU time the nats-server has used so far.
    fn nats_cpu_time(&self) -> Option<std::time::Duration> {
        crate::proc::cpu_time(self.nats_pid?)
    }

    /// A cluster name no earlier run of this section used.
    fn next_cluster_name(&self) -> String {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        format!("bench{n}")
    }
}

/// Section 6: its tables (or one saying why it could not run).
pub fn run(guests: &RustGuests, options: &Options) -> anyhow::Result<Vec<Section>> {
    eprintln!("[6] cluster mode: PostgreSQL + NATS, 1 and 3 nodes on this machine");
    let skipped = |why: String| {
        let mut s = Section::new("6. Cluster (PostgreSQL + NATS)", &[]);
        s.note(why);
        Ok(vec![s])
    };
    let pg = match backend::Cluster::start() {
        Availability::Ready(pg) => pg,
        Availability::Skipped(why) => return skipped(why),
    };
    let nats = match Nats::start() {
        Ok(nats) => nats,
        Err(err) => return skipped(format!("skipped: nats-server did not start: {err}")),
    };
    let port = nats.port().to_string();
    let infra = Infra {
        pg,
        nats_pid: crate::proc::find_by_args(&["-p", &port]),
        nats,
        runs: Cell::new(0),
    };
    let mut sections = Vec::new();
    // Each part on its own: one failing still leaves the others' tables.
    let parts: [(&str, &dyn Fn() -> anyhow::Result<Section>); 3] = [
        ("6a. Cluster: POST /v1/conversations/{id}/messages", &|| {
            throughput::run(&infra, guests, options)
        }),
        ("6b. Cluster: fan-out over the nodes", &|| {
            fanout::run(&infra, guests, options)
        }),
        ("6c. Cluster: the sequencer killed", &|| {
            failover::run(&infra, guests, options)
        }),
    ];
    for (title, part) in parts {
        match part() {
            Ok(section) => sections.push(section),
            Err(err) => {
                eprintln!("  {title} failed: {err:#}");
                let mut s = Section::new(title, &[]);
                s.note(format!("failed: {err:#}"));
                sections.push(s);
            }
        }
    }
    Ok(sections)
}

/// The sentence every table of the section carries: what shares the machine.
fn machine_note(infra: &Infra) -> String {
    format!(
        "Everything on this one machine: PostgreSQL {} (throwaway, Unix socket, `fsync=off`, \
         `synchronous_commit=off`, `full_page_writes=off`, as in section 2), one nats-server, every \
         node and the clients share its cores, so more nodes cannot be faster here: the figures are \
         what the cluster's extra hops cost and that it works, not how it scales over machines.",
        infra.pg.version()
    )
}
