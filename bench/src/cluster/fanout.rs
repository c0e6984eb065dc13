//! Section 6b: section 3's fan-out across nodes. 1,000 members (`--cluster-members`) of one conversation connected over
//! WebSocket, member `i` to node `i mod N` (a third on each of 3 nodes), the sender posting to node 1;
//! the time from the POST until the last member has the message. The same clients (section 3's
//! `chathooks-bench fanout` process) against one server on SQLite (section 3's set-up), one on PostgreSQL,
//! a 1-node cluster and a 3-node cluster, in one run so that they compare.
//!
//! On a cluster no writer publishes: every node, the sender's included, gets the event from the
//! sequencer through NATS, so even the sender's own node pays the sequencer's hop (SCALE-OUT.md 2.4).

use super::nodes::{Nodes, Topology};
use super::{Infra, Options, machine_note};
use crate::fanout::{Audience, FanoutResult, measure};
use crate::guests::RustGuests;
use crate::report::Section;
use crate::server::{Api, Dirs, Server, users};
use crate::stats::{Samples, fmt_ms};

/// A server set-up of the fan-out runs.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// One server on SQLite: section 3 as it is.
    Sqlite,
    /// Servers on the section's PostgreSQL.
    Postgres(Topology),
}

impl Setup {
    fn name(self) -> String {
        match self {
            Setup::Sqlite => "SQLite single node (section 3)".to_owned(),
            Setup::Postgres(t) => t.name(),
        }
    }
}

/// The set-ups, in the order they run.
const SETUPS: [Setup; 4] = [
    Setup::Sqlite,
    Setup::Postgres(Topology::Alone),
    Setup::Postgres(Topology::Cluster { nodes: 1 }),
    Setup::Postgres(Topology::Cluster { nodes: 3 }),
];

/// One measured set-up.
struct Run {
    setup: Setup,
    result: FanoutResult,
    /// Resident memory of the server(s), summed, MiB.
    rss_mib: Option<f64>,
}

/// Section 6b.
pub fn run(infra: &Infra, guests: &RustGuests, options: &Options) -> anyhow::Result<Section> {
    eprintln!(
        "  6b: fan-out to {} members spread over the nodes",
        options.members
    );
    let mut runs = Vec::new();
    for setup in SETUPS {
        runs.push(run_once(infra, guests, options, setup)?);
    }
    Ok(table(infra, options, &runs))
}

fn run_once(
    infra: &Infra,
    guests: &RustGuests,
    options: &Options,
    setup: Setup,
) -> anyhow::Result<Run> {
    // The SQLite server lives in its own folder; the PostgreSQL ones in `Nodes`'.
    let sqlite_dir = tempfile::tempdir()?;
    let (sqlite, nodes) = match setup {
        Setup::Sqlite => {
            let dirs = Dirs::under(sqlite_dir.path())?;
            (Some(Server::start(&dirs)?), None)
        }
        Setup::Postgres(topology) => (None, Some(Nodes::start(infra, guests, topology, 0)?)),
    };
    let bases = match (&sqlite, &nodes) {
        (Some(server), _) => vec![server.base.clone()],
        (_, Some(nodes)) => nodes.bases(),
        _ => anyhow::bail!("no server started"),
    };
    let api = Api::new(&bases[0])?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let members = options.members;
    let audience = rt.block_on(async {
        let tokens = users(&api, "member", members).await?;
        let others: Vec<String> = (1..members).map(|i| format!("member{i}")).collect();
        let conversation = api.conversation(&tokens[0], &others).await?;
        Ok::<_, anyhow::Error>(Audience {
            tokens,
            conversation,
            bases: bases.clone(),
        })
    })?;
    let result = measure(
        &bases[0],
        &audience,
        sqlite_dir.path(),
        options.fanout_repeats,
    )?;
    let rss_kib = match (&sqlite, &nodes) {
        (Some(server), _) => server.child.rss_kib(),
        (_, Some(nodes)) => nodes.rss_kib(),
        _ => None,
    };
    let last = Samples::from_micros(result.last.clone());
    eprintln!(
        "    {}: {} members, last member p50 {} ms, p99 {} ms",
        setup.name(),
        result.receivers,
        fmt_ms(last.p50()),
        fmt_ms(last.p99())
    );
    Ok(Run {
        setup,
        result,
        rss_mib: rss_kib.map(|k| k as f64 / 1024.0),
    })
}

fn table(infra: &Infra, options: &Options, runs: &[Run]) -> Section {
    let mut s = Section::new(
        &format!(
            "6b. Cluster: fan-out to {} members over the nodes",
            options.members
        ),
        &[
            "set-up",
            "members connected",
            "repeats",
            "last member p50 ms",
            "last member p99 ms",
            "first member p50 ms",
            "POST p50 ms",
            "servers' memory",
        ],
    );
    s.intro.push(format!(
        "Section 3's measurement: one conversation of {} members all connected over WebSocket, member i to \
         node i mod N (on 3 nodes a third each), the sender (member 0) posting to node 1; time from the \
         POST until the last (and the first) member has the `message.new` frame, {} messages. All clients \
         are one process. {}",
        options.members,
        options.fanout_repeats,
        machine_note(infra)
    ));
    for r in runs {
        let (last, first, post) = (
            Samples::from_micros(r.result.last.clone()),
            Samples::from_micros(r.result.first.clone()),
            Samples::from_micros(r.result.post.clone()),
        );
        s.row(vec![
            r.setup.name(),
            r.result.receivers.to_string(),
            last.len().to_string(),
            fmt_ms(last.p50()),
            fmt_ms(last.p99()),
            fmt_ms(first.p50()),
            fmt_ms(post.p50()),
            r.rss_mib
                .map_or_else(|| "?".to_owned(), |m| format!("{m:.0} MiB")),
        ]);
    }
    s
}
