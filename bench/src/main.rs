//! `chathooks-bench`: the benchmark program of chathooks. It prints figures; it is never a timed test.
//!
//! ## Overview
//! `cargo run --release -p chathooks-bench` runs every section and prints one Markdown report (the table
//! in `BENCHMARKS.md` is a copy of it):
//! 1. hook dispatch per event, side by side with a native function, a bare wasmtime call, a webhook and
//!    (with `--with-extism`) Extism, then the example plugins in each language that is built;
//! 2. end to end: messages/s and latency of `POST .../messages` with and without five plugins, on SQLite
//!    and (with `--backends sqlite,postgres`) on PostgreSQL;
//! 3. fan-out to 1,000 WebSocket members;
//! 4. hot reload;
//! 5. cold start with 20 plugins, compile cache cold and warm, and resident memory;
//! 6. only when asked (`--cluster` or `--only 6`): cluster mode, several nodes on one PostgreSQL with NATS
//!    (throughput on 1 and 3 nodes, fan-out across nodes, the sequencer killed).
//!
//! ## Layout
//! - `hooks/`: section 1 (`bare.rs`: the bare wasmtime call, `webhook.rs`, `extism.rs`, `wit.rs`).
//! - `e2e/`, `fanout.rs`, `reload.rs`, `coldstart.rs`, `cluster/`: sections 2 to 6; `backend.rs`: the chat database
//!   of section 2's servers (SQLite, or a throwaway PostgreSQL cluster).
//! - `server.rs`: the server under test in a child process, and an API client; `proc.rs`: child processes.
//! - `guests.rs`: building and finding plugins; `logic.rs` and `payload.rs`: the work and the event every
//!   dispatch variant shares (also compiled into `bench/guest` and `bench/extism`).
//! - `stats.rs`, `report.rs`: percentiles and the Markdown report.
//!
//! Child processes are this binary again, with a hidden subcommand: `serve` (the server, as `chathooks
//! serve`), `webhook-server`, `load` (the load generator) and `fanout` (the WebSocket clients).

mod backend;
mod calibration;
mod cluster;
mod coldstart;
mod e2e;
mod fanout;
mod guests;
mod hooks;
mod logic;
mod payload;
mod proc;
mod reload;
mod report;
mod server;
mod stats;

use clap::{Parser, Subcommand};
use report::Section;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The server's allocator: the bench runs the server as itself, so it allocates as `chathooks` does
/// (see `chathooks::allocator`).
#[global_allocator]
static ALLOCATOR: chathooks::allocator::Allocator = chathooks::allocator::Allocator;

/// Benchmarks of chathooks: prints a Markdown report of every section.
#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Child>,
    /// Also build and run the Extism comparison (bench/extism; compiles a second wasmtime, ~4 minutes).
    #[arg(long)]
    with_extism: bool,
    /// Folder of the Python/JavaScript/C components from `scripts/build-plugins.sh` [default: ./plugins].
    #[arg(long)]
    lang_dir: Option<PathBuf>,
    /// Run only these sections (e.g. `--only 1,3`; `--only 6` for the cluster section alone).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// A fast, rough run (short measurements, fewer repeats) to check that everything works.
    #[arg(long)]
    quick: bool,
    /// A plugin component of your own to run in the end-to-end section instead of the five copies of the
    /// bench guest: one copy, called on what it exports of `before-message-sent` and
    /// `after-message-sent` (e.g. `--only 2 --plugin plugins/python_profanity_filter.wasm`).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Concurrent clients of the end-to-end section, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    clients: Vec<usize>,
    /// Messages per run of the end-to-end section, split between its clients [default: 6000, 1000 with
    /// --quick]. More keeps the server under load long enough to profile it.
    #[arg(long)]
    messages: Option<usize>,
    /// Chat database backends of the end-to-end section, each running the same load: `sqlite` (the
    /// server's default) and `postgres` (single node, a throwaway cluster the benchmark starts; needs
    /// PostgreSQL's server programs installed).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sqlite")]
    backends: Vec<backend::Backend>,
    /// Also run section 6, cluster mode (needs PostgreSQL's server programs and nats-server; a few minutes).
    #[arg(long)]
    cluster: bool,
    /// Concurrent clients of section 6's throughput runs, spread evenly over the nodes, one run each.
    #[arg(long, value_delimiter = ',', default_value = "12")]
    cluster_clients: Vec<usize>,
    /// Messages per throughput run of section 6 [default: 2000, 600 with --quick].
    #[arg(long)]
    cluster_messages: Option<usize>,
    /// Members of section 6's fan-out conversation.
    #[arg(long, default_value_t = 1000)]
    cluster_members: usize,
    /// Times section 6 kills the sequencer node [default: 5, 1 with --quick].
    #[arg(long)]
    failovers: Option<usize>,
    /// Also write the report to this file [default: <target>/chathooks-bench/latest.md].
    // `--help` text, which clap prints as written: backticks around `<target>` would show there.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The child processes of the benchmark (hidden: the benchmark starts them itself).
#[derive(Subcommand)]
enum Child {
    /// The chat server, exactly as `chathooks serve`.
    #[command(hide = true)]
    Serve(Box<chathooks::config::ServeArgs>),
    /// The webhook server of section 1.
    #[command(hide = true)]
    WebhookServer,
    /// The load generator of section 2.
    #[command(hide = true)]
    Load(e2e::LoadArgs),
    /// The WebSocket clients of section 3.
    #[command(hide = true)]
    Fanout(fanout::FanoutArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Child::Serve(args)) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            chathooks::cli::serve(args)
        }
        Some(Child::WebhookServer) => hooks::webhook::serve(),
        Some(Child::Load(a)) => e2e::load(a),
        Some(Child::Fanout(a)) => fanout::clients(a),
        None => run(&cli),
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let load_before = report::load_average();
    // Before any section, and again after the last.
    let speed_at_start = calibration::Calibration::measure();
    if std::env::var("RUST_BACKTRACE").is_ok_and(|v| v != "0") {
        eprintln!(
            "note: RUST_BACKTRACE is set; unset it or set it to 0 for representative figures"
        );
    }
    let wanted = |n: u8| cli.only.is_empty() || cli.only.contains(&n);
    let quick = cli.quick;
    let guests = guests::RustGuests::build()?;
    let mut sections: Vec<Section> = Vec::new();
    let mut attempt = |n: u8, title: &str, f: &mut dyn FnMut() -> anyhow::Result<Vec<Section>>| {
        if !wanted(n) {
            return;
        }
        match f() {
            Ok(mut s) => sections.append(&mut s),
            Err(e) => {
                eprintln!("  section {n} failed: {e:#}");
                let mut s = Section::new(title, &[]);
                s.note(format!("failed: {e:#}"));
                sections.push(s);
            }
        }
    };
    let dispatch = hooks::Options {
        budget: Duration::from_millis(if quick { 300 } else { 2_500 }),
        with_extism: cli.with_extism,
        lang_dir: cli.lang_dir.clone(),
    };
    attempt(1, "1. Hook dispatch", &mut || {
        hooks::run(&guests, &dispatch)
    });
    let e2e = e2e::Options {
        clients: cli.clients.clone(),
        messages: cli.messages.unwrap_or(if quick { 1_000 } else { 6_000 }),
        backends: cli.backends.clone(),
        plugin: cli.plugin.clone(),
    };
    attempt(2, "2. End to end", &mut || e2e::run(&guests, &e2e));
    let repeats = if quick { 10 } else { 50 };
    attempt(3, "3. Fan-out", &mut || {
        Ok(vec![fanout::run(1_000, repeats)?])
    });
    attempt(4, "4. Hot reload", &mut || {
        Ok(vec![reload::run(
            &guests,
            if quick { 2 } else { 6 },
            cli.lang_dir.as_deref(),
        )?])
    });
    attempt(5, "5. Cold start", &mut || {
        Ok(vec![coldstart::run(&guests, if quick { 1 } else { 3 })?])
    });
    // Section 6 only when asked: it needs PostgreSQL and nats-server, and takes minutes.
    if cli.cluster || cli.only.contains(&6) {
        let options = cluster::Options {
            clients: cli.cluster_clients.clone(),
            messages: cli
                .cluster_messages
                .unwrap_or(if quick { 600 } else { 2_000 }),
            members: cli.cluster_members,
            fanout_repeats: repeats,
            failovers: cli.failovers.unwrap_or(if quick { 1 } else { 5 }),
        };
        match cluster::run(&guests, &options) {
            Ok(mut s) => sections.append(&mut s),
            Err(e) => {
                eprintln!("  section 6 failed: {e:#}");
                let mut s = Section::new("6. Cluster (PostgreSQL + NATS)", &[]);
                s.note(format!("failed: {e:#}"));
                sections.push(s);
            }
        }
    }

    let speed =
        calibration::Calibration::markdown(&speed_at_start, &calibration::Calibration::measure());
    let mut out = format!(
        "## Results\n\n{}\n{speed}\nRun: `cargo run --release -p chathooks-bench{}`, {:.0} s. 1-minute load average \
         {} at the start and {} at the end (above the core count means other work competed for the CPU).\n\n",
        report::machine_header(),
        command_line_options(),
        started.elapsed().as_secs_f64(),
        load_before,
        report::load_average(),
    );
    for section in &sections {
        out.push_str(&section.markdown());
    }
    println!("{out}");
    let path = cli.out.clone().unwrap_or_else(|| {
        guests::target_dir()
            .join("chathooks-bench")
            .join("latest.md")
    });
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, &out)?;
    eprintln!("report written to {}", path.display());
    Ok(())
}

/// ` -- <the options of this run>` for the report's header, or nothing when it ran without any.
fn command_line_options() -> String {
    let options: Vec<String> = std::env::args().skip(1).collect();
    if options.is_empty() {
        String::new()
    } else {
        format!(" -- {}", options.join(" "))
    }
}
