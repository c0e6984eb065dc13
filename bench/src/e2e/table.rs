//! The report of section 2: one table per backend (the SQLite one as it always was, so that the default
//! report does not change), each with plugins compared to none, and PostgreSQL compared to SQLite.

use super::{Options, Run};
use crate::backend::{Backend, Cluster};
use crate::hooks::target;
use crate::report::Section;
use crate::server::DURABILITY;
use crate::stats::fmt_ms;

/// The columns every backend's table has.
const COLUMNS: [&str; 10] = [
    "plugins",
    "clients",
    "messages/s",
    "p50 ms",
    "p99 ms",
    "server CPU per message",
    "after-hooks caught up",
    "messages/s incl. after-hooks",
    "server CPU per message incl. after-hooks",
    "errors",
];

/// The column PostgreSQL's table adds: the database's own processes, which the server's CPU leaves out.
const DB_CPU_COLUMN: &str = "PostgreSQL CPU per message";

/// The title of PostgreSQL's table.
const POSTGRES_TITLE: &str =
    "2. End to end on PostgreSQL (single node): POST /v1/conversations/{id}/messages";

/// What the load is, the same for every backend.
fn load_text(options: &Options) -> String {
    format!(
        "Closed loop: each client posts a message (with a blocked word) to its own new 3-person conversation, \
         the next as soon as the answer arrives; {} messages per run in all, split between the clients (the \
         same count with and without plugins, because a send's cost grows with its conversation's unread \
         messages). messages/s = messages / time from the first request to the last answer.",
        options.messages
    )
}

/// What the runs with plugins install.
fn plugins_text(options: &Options) -> String {
    match &options.plugin {
        None => {
            "The 5 plugins are copies of the bench guest subscribed to every hook: per message, 5 \
                 before-hook calls inline and 5 after-hook deliveries from the outbox."
                .to_owned()
        }
        Some(path) => format!(
            "The plugin is `{}` (`--plugin`), called on what it exports of `before-message-sent` \
             (inline) and `after-message-sent` (from the outbox).",
            path.display()
        ),
    }
}

/// The SQLite table: the server's default backend.
pub fn sqlite(runs: &[Run], options: &Options) -> Section {
    let mut s = Section::new(
        "2. End to end: POST /v1/conversations/{id}/messages",
        &COLUMNS,
    );
    s.intro.push(format!(
        "{} Server: `chathooks serve`, durability `{DURABILITY}` (WAL, no fsync per commit). {} The load \
         generator shares the cores with the server.",
        load_text(options),
        plugins_text(options)
    ));
    let runs = of(runs, Backend::Sqlite);
    for r in &runs {
        s.row(row(r, false, options));
    }
    plugin_notes(&mut s, &runs, options);
    s
}

/// The PostgreSQL table, with PostgreSQL's throughput compared to SQLite's when both ran.
pub fn postgres(runs: &[Run], options: &Options, cluster: &Cluster) -> Section {
    let mut columns = COLUMNS.to_vec();
    columns.insert(6, DB_CPU_COLUMN);
    let mut s = Section::new(POSTGRES_TITLE, &columns);
    s.intro.push(format!(
        "{} The same load, clients and plugins as SQLite's table, on servers started with `--database \
         postgres://...`: a fresh database per run (the plugins' KV store in it too) in a throwaway \
         PostgreSQL {} cluster the benchmark starts once (chathooks-testservers), on a Unix socket on the \
         same machine, the server's default pool of 16 connections. Durability `{DURABILITY}` as for \
         SQLite: `synchronous_commit = off`, a commit does not wait for its WAL flush. The cluster also \
         runs with `fsync=off` and `full_page_writes=off`, which flatters PostgreSQL's commit cost: on a \
         real server the WAL writer and checkpoints pay for every flush. Server CPU is the chathooks \
         process alone; PostgreSQL CPU is the postmaster and every process it started (a backend per \
         connection, WAL writer, checkpointer, autovacuum). Runs of both backends alternate for each \
         client count. The load generator, the server and PostgreSQL share the cores.",
        load_text(options),
        cluster.version(),
    ));
    let pg_runs = of(runs, Backend::Postgres);
    for r in &pg_runs {
        s.row(row(r, true, options));
    }
    plugin_notes(&mut s, &pg_runs, options);
    comparison_notes(&mut s, runs, options);
    s
}

/// PostgreSQL's table when its runs could not happen: one row saying why.
pub fn postgres_skipped(why: &str) -> Section {
    let mut columns = COLUMNS.to_vec();
    columns.insert(6, DB_CPU_COLUMN);
    let mut s = Section::new(POSTGRES_TITLE, &columns);
    let mut cells = vec![why.to_owned()];
    cells.resize(columns.len(), "—".to_owned());
    s.row(cells);
    s
}

/// The runs of `backend`, in the order they ran.
fn of(runs: &[Run], backend: Backend) -> Vec<&Run> {
    runs.iter().filter(|r| r.backend == backend).collect()
}

/// A run's row; with the database's CPU column when `db_cpu`.
fn row(r: &Run, db_cpu: bool, options: &Options) -> Vec<String> {
    let cpu = |us: Option<f64>| us.map_or_else(|| "?".to_owned(), |us| format!("{us:.0} µs"));
    let file = options.plugin.as_ref().and_then(|p| p.file_name());
    let mut cells = vec![
        match (r.plugins, file) {
            (0, _) => "none".to_owned(),
            (n, Some(file)) => format!("{n} (`{}`)", file.to_string_lossy()),
            (n, None) => format!("{n} (every hook)"),
        },
        r.clients.to_string(),
        format!("{:.0}", r.rps),
        fmt_ms(r.latency.p50()),
        fmt_ms(r.latency.p99()),
        cpu(r.cpu_per_msg_us),
    ];
    if db_cpu {
        cells.push(cpu(r.db_cpu_per_msg_us));
    }
    cells.extend([
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
        cpu(r.cpu_all_per_msg_us),
        r.errors.to_string(),
    ]);
    cells
}

/// With plugins against without, per client count, and the target.
fn plugin_notes(s: &mut Section, runs: &[&Run], options: &Options) {
    for &clients in &options.clients {
        let find = |p: usize| runs.iter().find(|r| r.plugins == p && r.clients == clients);
        if let Some(none) = find(0).filter(|_| clients == 1 || clients == 16) {
            let want = if clients == 1 { 3_500.0 } else { 6_000.0 };
            let p99_ms = none.latency.p99() / 1_000.0;
            s.note(target(
                &format!(
                    "without plugins, at least {want:.0} messages/s with {clients} client(s), p99 under \
                     10 ms (shown: messages/s / {want:.0}; p99 {p99_ms:.1} ms)"
                ),
                none.rps / want,
                |r| r >= 1.0 && p99_ms < 10.0,
            ));
        }
        let plugins = options.plugins();
        if let (Some(none), Some(with)) = (find(0), find(plugins)) {
            let ratio = with.rps / none.rps;
            let sustained = with.sustained / none.sustained;
            let behind = with.drain.is_some_and(|d| !d.done);
            s.note(format!(
                "{clients} client(s): with {}, {:.0}% of the request throughput without them \
                 ({:.0} vs {:.0} msg/s); counting until the after-hooks are done, {}{:.0}% ({}{:.0} vs {:.0} msg/s)",
                count_of(plugins),
                ratio * 100.0,
                with.rps,
                none.rps,
                if behind { "under " } else { "" },
                sustained * 100.0,
                if behind { "< " } else { "" },
                with.sustained,
                none.sustained,
            ));
            if let Some(note) = bound_note(clients, none, with) {
                s.note(note);
            }
            if let Some(note) = writer_note(clients, none, with) {
                s.note(note);
            }
            // The target is set for the five bench guests, not for a plugin of one's own.
            if options.plugin.is_none() {
                s.note(target(
                    &format!(
                        "plugins cost at most 20% end to end ({clients} client(s), after-hooks included; \
                         shown: with/without; stretch 90%)"
                    ),
                    sustained,
                    |r| r >= 0.8,
                ));
            }
        }
    }
}

/// What 80% of the no-plugin rate leaves the plugins, against what they add. Two budgets: a quarter more
/// of a request's time, because a closed loop's clients wait for each answer and the before-hooks run on
/// its path; and the CPU per message the cores have at 80% of the rate, less what the server, the load
/// generator (and a database server of its own) used per message without plugins, because they all share
/// the cores with the after-hooks. The cores are not full in these runs (the clients wait for each
/// answer), so the CPU budget is given at the share of the cores the run with plugins keeps busy, which
/// is what it can use, and with them full, which no run reaches (BENCHMARKS.md, problems 33 and 34).
fn bound_note(clients: usize, none: &Run, with: &Run) -> Option<String> {
    let calls = with.calls_per_msg_us?;
    let path = 0.25 * clients as f64 * 1e6 / none.sustained;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let machine = match (
        machine_cpu_per_msg_us(none),
        machine_cpu_per_msg_us(with),
        none.cpu_all_per_msg_us,
        with.cpu_all_per_msg_us,
    ) {
        (Some(used0), Some(used), Some(server0), Some(server)) => {
            let at_80 = cores * 1e6 / (0.8 * none.sustained);
            let busy0 = used0 * none.sustained / (cores * 1e6);
            let busy = (used * with.sustained / (cores * 1e6)).min(1.0);
            let budget = busy * at_80 - used0;
            Some(format!(
                "; plugins added {:.0} µs of the server's CPU per message ({server0:.0} without them, \
                 {server:.0} with); the {cores:.0} cores were {:.0}% busy without plugins and {:.0}% \
                 with them (server, load generator{}), not full, as the clients wait for each answer: at \
                 80% of the no-plugin rate and as busy as with plugins now, plugins may add {budget:.0} µs \
                 of CPU per message ({:.0} with the cores full){}",
                server - server0,
                busy0 * 100.0,
                busy * 100.0,
                if none.db_cpu_per_msg_us.is_some() {
                    ", database"
                } else {
                    ""
                },
                at_80 - used0,
                if calls.before + calls.after > budget {
                    ": the calls' wall time alone is more"
                } else {
                    ""
                }
            ))
        }
        _ => None,
    };
    Some(format!(
        "{clients} client(s), what bounds it: the plugins' own calls took {:.0} µs per message, {:.0} in \
         the before-hooks (on each request's path) and {:.0} in the after-hooks (wall time inside the \
         calls, `chathooks_hook_duration_seconds`); at 80% of the no-plugin rate plugins may add \
         {path:.0} µs to a request{}{}",
        calls.before + calls.after,
        calls.before,
        calls.after,
        if calls.before > path {
            ": the before-hooks alone take more"
        } else {
            ""
        },
        machine.unwrap_or_default(),
    ))
}

/// The CPU per message of everything a run keeps busy: the server until the after-hooks caught up, the
/// load generator and, when it is a process of its own, the database server.
fn machine_cpu_per_msg_us(run: &Run) -> Option<f64> {
    Some(
        run.cpu_all_per_msg_us?
            + run.loadgen_cpu_per_msg_us?
            + run.db_cpu_per_msg_us.unwrap_or(0.0),
    )
}

/// How long the store's one writer (SQLite's, or a PostgreSQL node's writer mutex) was held per message with plugins and without, and what that alone
/// allows: every write waits for the writer, so a message that holds it `x` µs cannot be sent more than
/// 1/`x` times a second however many cores there are. Where the writer is held most of the time with
/// plugins and without, the rates follow those caps, and when their ratio is under 80% the writer's
/// time alone keeps the plugins from the target; where it is held less than half the time, something
/// else bounds the rate.
fn writer_note(clients: usize, none: &Run, with: &Run) -> Option<String> {
    let ((x0, share0), (x, share)) = (none.writer?, with.writer?);
    let (cap0, cap) = (1e6 / x0, 1e6 / x);
    // Held nearly all the time, the writer is what bounds the rate; most of the time, one bound of
    // several (BENCHMARKS.md, problems 32 and 33).
    let (bound, busy) = (share0 >= 0.8 && share >= 0.8, share0 >= 0.5 && share >= 0.5);
    Some(format!(
        "{clients} client(s), the store's one writer was held {:.0}% of the time until \
         the after-hooks were done, {x:.0} µs per message, against {:.0}% and {x0:.0} µs without \
         plugins (`chathooks_store_writer_busy_seconds_total`); held all the time it would allow \
         {cap:.0} msg/s with plugins, {:.0}% of the {cap0:.0} it would allow without{}",
        share * 100.0,
        share0 * 100.0,
        cap / cap0 * 100.0,
        match (bound, busy, cap / cap0 < 0.8) {
            (true, _, true) =>
                ": held nearly all the time, the writer alone keeps plugins under 80%",
            (false, true, true) => {
                ": held most of the time, it is one bound of several: on its own it would keep \
                 plugins under 80%"
            }
            (_, true, false) => "",
            (_, false, _) => ": held less than half the time, it is not what bounds the rate",
        }
    ))
}

/// "5 plugins", "1 plugin".
fn count_of(plugins: usize) -> String {
    if plugins == 1 {
        "1 plugin".to_owned()
    } else {
        format!("{plugins} plugins")
    }
}

/// PostgreSQL's throughput against SQLite's, per client count, when both ran.
fn comparison_notes(s: &mut Section, runs: &[Run], options: &Options) {
    for &clients in &options.clients {
        let find = |backend: Backend, plugins: usize| {
            runs.iter()
                .find(|r| r.backend == backend && r.plugins == plugins && r.clients == clients)
        };
        let pair = |plugins: usize| {
            Some((
                find(Backend::Postgres, plugins)?,
                find(Backend::Sqlite, plugins)?,
            ))
        };
        let plugins = options.plugins();
        let (Some((pg_none, sq_none)), Some((pg_with, sq_with))) = (pair(0), pair(plugins)) else {
            continue;
        };
        let behind = [pg_with, sq_with]
            .iter()
            .any(|r| r.drain.is_some_and(|d| !d.done));
        s.note(format!(
            "{clients} client(s): PostgreSQL at {:.0}% of SQLite's throughput without plugins ({:.0} vs {:.0} \
             msg/s), {:.0}% with {} ({:.0} vs {:.0} msg/s), {:.0}% counting until the \
             after-hooks are done ({:.0} vs {:.0} msg/s{})",
            pg_none.rps / sq_none.rps * 100.0,
            pg_none.rps,
            sq_none.rps,
            pg_with.rps / sq_with.rps * 100.0,
            count_of(plugins),
            pg_with.rps,
            sq_with.rps,
            pg_with.sustained / sq_with.sustained * 100.0,
            pg_with.sustained,
            sq_with.sustained,
            if behind {
                "; after-hooks still behind when the wait ended, so these are upper bounds"
            } else {
                ""
            },
        ));
    }
}
