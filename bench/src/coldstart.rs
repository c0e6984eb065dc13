//! Section 5, cold start: time from starting `chathooks serve` to its first answer (`GET /healthz`), with
//! 20 plugins, with the compile cache cold (a new data folder) and warm (the same folder again), and the
//! server's resident memory right after.

use crate::guests::{RustGuests, distinct_copy};
use crate::proc::Resident;
use crate::report::Section;
use crate::server::{Api, Dirs, Server};
use crate::stats::{Samples, fmt_ms};
use anyhow::Context;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Plugins loaded at start.
pub const PLUGINS: usize = 20;

/// One start: until the first answer, and the memory then.
struct Start {
    serving: Duration,
    memory: Resident,
    /// Tiered: until every plugin ran on Cranelift's code.
    optimized: Option<Duration>,
}

/// `GET /healthz` on a fresh connection; whether it answered 200.
fn healthz(base: &str) -> anyhow::Result<bool> {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

/// Starts a server on `dirs` with `flags`, waits for its first 200 from `/healthz`, reads its memory
/// (and, when `optimized`, waits until every plugin runs on Cranelift's code), stops it.
fn start_once(dirs: &Dirs, flags: &[&str], optimized: bool) -> anyhow::Result<Start> {
    let t0 = Instant::now();
    let server = Server::start_with(dirs, None, flags)?;
    anyhow::ensure!(healthz(&server.base)?, "/healthz did not answer 200");
    let serving = t0.elapsed();
    // Let work that follows the first answer (the dispatcher's first round) settle before reading memory.
    std::thread::sleep(Duration::from_millis(200));
    let memory = server
        .child
        .resident()
        .context("reading the server's memory from /proc")?;
    let optimized = if optimized {
        let api = Api::new(&server.base)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(api.all_optimized(PLUGINS, Duration::from_secs(120)))?
            .then(|| t0.elapsed())
    } else {
        None
    };
    Ok(Start {
        serving,
        memory,
        optimized,
    })
}

/// Section 5.
pub fn run(guests: &RustGuests, rounds: usize) -> anyhow::Result<Section> {
    eprintln!("[5] cold start: {PLUGINS} plugins, compile cache cold and warm");
    let sources: Vec<Vec<u8>> = guests
        .all()
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    let (mut none_new, mut none, mut cold, mut warm, mut cold_cranelift) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let empty = tempfile::tempdir()?;
        let empty = Dirs::under(empty.path())?;
        none_new.push(start_once(&empty, &[], false)?);
        none.push(start_once(&empty, &[], false)?);

        let dir = tempfile::tempdir()?;
        let dirs = Dirs::under(dir.path())?;
        for i in 0..PLUGINS {
            // Distinct bytes per copy (and per round), so nothing is found in any cache.
            let bytes = distinct_copy(&sources[i % sources.len()], &format!("{round}-{i}"));
            std::fs::write(dirs.plugins.join(format!("plugin_{i:02}.wasm")), bytes)?;
        }
        cold.push(start_once(&dirs, &[], true)?);
        warm.push(start_once(&dirs, &[], false)?);
        // The same plugins, new to another folder, with Cranelift alone (the default before tiering).
        let other = tempfile::tempdir()?;
        let other = Dirs::under(other.path())?;
        for i in 0..PLUGINS {
            let bytes = distinct_copy(&sources[i % sources.len()], &format!("c{round}-{i}"));
            std::fs::write(other.plugins.join(format!("plugin_{i:02}.wasm")), bytes)?;
        }
        cold_cranelift.push(start_once(&other, &["--compiler", "cranelift"], false)?);
        eprintln!(
            "  round {round}: no plugins {} ms (new folder) / {} ms, 20 plugins cold {} ms, warm {} ms",
            fmt_ms(none_new[round].serving.as_secs_f64() * 1e6),
            fmt_ms(none[round].serving.as_secs_f64() * 1e6),
            fmt_ms(cold[round].serving.as_secs_f64() * 1e6),
            fmt_ms(warm[round].serving.as_secs_f64() * 1e6)
        );
    }
    let mut s = Section::new(
        "5. Cold start",
        &[
            "start",
            "plugins",
            "to first answer p50 ms",
            "max ms",
            "VmRSS after start MiB",
            "of it private (RssAnon) MiB",
            "all on optimized code p50 ms",
        ],
    );
    s.intro.push(format!(
        "From spawning `chathooks serve` to its first `200` from `GET /healthz`, {rounds} rounds. The {PLUGINS} \
         plugins are the five Rust guests (bench guest and the four examples), four distinct copies of each \
         (a custom section makes every copy a new compile-cache entry). Memory is read 200 ms after the \
         first answer: VmRSS counts the executable's pages mapped in (their number depends on the binary's \
         size and on the page cache: a binary just built or copied maps more), RssAnon only the server's own."
    ));
    for (label, plugins, starts) in [
        ("new data folder (databases created)", 0, &none_new),
        ("existing data folder", 0, &none),
        (
            "new data folder, compile cache cold (every plugin compiled), tiered",
            PLUGINS,
            &cold,
        ),
        (
            "new data folder, compile cache cold, `--compiler cranelift`",
            PLUGINS,
            &cold_cranelift,
        ),
        ("existing data folder, compile cache warm", PLUGINS, &warm),
    ] {
        let times = Samples::from_micros(
            starts
                .iter()
                .map(|s| s.serving.as_secs_f64() * 1e6)
                .collect(),
        );
        let median_mib = |kib: fn(&Resident) -> u64| {
            let mut all: Vec<u64> = starts.iter().map(|s| kib(&s.memory)).collect();
            all.sort_unstable();
            all.get(all.len() / 2).copied().unwrap_or(0) as f64 / 1024.0
        };
        let optimized = Samples::from_micros(
            starts
                .iter()
                .filter_map(|s| s.optimized)
                .map(|d| d.as_secs_f64() * 1e6)
                .collect(),
        );
        s.row(vec![
            label.to_owned(),
            plugins.to_string(),
            fmt_ms(times.p50()),
            fmt_ms(times.percentile(100.0)),
            format!("{:.0}", median_mib(|r| r.total_kib)),
            format!("{:.1}", median_mib(|r| r.private_kib)),
            if optimized.is_empty() {
                "—".to_owned()
            } else {
                fmt_ms(optimized.p50())
            },
        ]);
        if label.ends_with("tiered") {
            s.note(crate::hooks::target(
                "cold start of 20 plugins with an empty cache under 500 ms (tiered; shown: p50 / 500 ms)",
                times.p50() / 500_000.0,
                |r| r < 1.0,
            ));
        }
    }
    Ok(s)
}
