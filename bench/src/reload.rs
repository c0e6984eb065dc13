//! Section 4, hot reload: the time from a replaced `.wasm` landing in the plugins folder (renamed into
//! place, as a deploy does) to the first message served by the new version. Version 1 is the `logger`
//! example (allows every message unchanged), version 2 the bench guest (masks "heck"), both Rust; a
//! message shows which version served it. Once with `--compiler cranelift` (wait for optimized code), once
//! tiered (the default: Winch's code first), where it also times the optimized code taking over. Then,
//! when `scripts/build-plugins.sh python js` built them, a Python and a JavaScript profanity filter land
//! once each the same way (megabytes of interpreter: the case tiering is for).
//!
//! Without a watcher (`--no-watch`, or a server without hot reload) the new version never serves and the
//! section says so.

use crate::guests::{LangPair, RustGuests, distinct_copy, install, lang_pair};
use crate::hooks::target;
use crate::report::Section;
use crate::server::{Api, Dirs, Server};
use crate::stats::{Samples, fmt_ms};
use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long to wait for the new version before concluding the server does not reload.
const PATIENCE: Duration = Duration::from_secs(5);

/// The times of one compiler setting's swaps.
#[derive(Default)]
struct Times {
    /// New versions (compiled on arrival): until the new version serves.
    compiled: Samples,
    /// Versions seen before (compile cache hit).
    cached: Samples,
    /// New versions, tiered: until the optimized code serves.
    optimized: Samples,
}

/// Section 4.
pub fn run(
    guests: &RustGuests,
    repeats: usize,
    lang_dir: Option<&Path>,
) -> anyhow::Result<Section> {
    eprintln!("[4] hot reload: replace a plugin's .wasm, time until the new version serves");
    let mut s = Section::new(
        "4. Hot reload",
        &[
            "new version",
            "compiler",
            "swaps",
            "p50 ms",
            "max ms",
            "optimized code serving p50 ms",
        ],
    );
    let mut tiered_p50 = None;
    for (compiler, flags) in [
        ("cranelift", &["--compiler", "cranelift"][..]),
        ("tiered", &[]),
    ] {
        let Some(times) = swaps(guests, repeats, flags)? else {
            s.note(format!(
                "not available: the server did not serve a replaced .wasm within {PATIENCE:?} \
                 (is hot reload, issue 4, built and the watcher on?)"
            ));
            return Ok(s);
        };
        for (label, samples, optimized) in [
            (
                "Rust, new version (compiled on arrival)",
                &times.compiled,
                &times.optimized,
            ),
            (
                "Rust, version seen before (compile cache hit)",
                &times.cached,
                &Samples::default(),
            ),
        ] {
            s.row(vec![
                label.to_owned(),
                compiler.to_owned(),
                samples.len().to_string(),
                fmt_ms(samples.p50()),
                fmt_ms(samples.percentile(100.0)),
                if optimized.is_empty() {
                    "—".to_owned()
                } else {
                    fmt_ms(optimized.p50())
                },
            ]);
        }
        if compiler == "tiered" {
            tiered_p50 = Some(times.compiled.p50());
        }
    }
    s.note(
        "from the rename that lands the new file to the first API answer produced by the new version \
         (a message is posted every millisecond or so until one comes back changed); includes the watcher's \
         debounce, compiling or loading the component and the swap. Tiered: the new version serves on \
         Winch's code; \"optimized code serving\" is until `GET /v1/admin/plugins` shows it on Cranelift's",
    );
    let mut interpreted_worst: Option<Duration> = None;
    for (lang, label) in [("python", "Python"), ("js", "JavaScript")] {
        let LangPair::Found {
            profanity_filter, ..
        } = lang_pair(lang, lang_dir)
        else {
            s.note(format!(
                "{label}: skipped (not built; see BENCHMARKS.md, Run it)"
            ));
            continue;
        };
        for (compiler, flags) in [
            ("cranelift", &["--compiler", "cranelift"][..]),
            ("tiered", &[]),
        ] {
            eprintln!("  {label}, {compiler}");
            let (served, optimized) = match interpreted(guests, &profanity_filter, flags) {
                Ok(times) => times,
                Err(e) => {
                    s.note(format!("{label}, {compiler}: failed: {e:#}"));
                    continue;
                }
            };
            let ms = |d: Option<Duration>| {
                d.map_or_else(
                    || format!("not within {INTERPRETER_PATIENCE:?}"),
                    |d| fmt_ms(d.as_secs_f64() * 1e6),
                )
            };
            if compiler == "tiered" {
                let worst = served.unwrap_or(INTERPRETER_PATIENCE);
                interpreted_worst = Some(interpreted_worst.map_or(worst, |w| w.max(worst)));
            }
            s.row(vec![
                format!("{label} profanity filter, new version"),
                compiler.to_owned(),
                "1".to_owned(),
                ms(served),
                ms(served),
                if flags.is_empty() {
                    ms(optimized)
                } else {
                    "—".to_owned()
                },
            ]);
        }
    }
    if let Some(worst) = interpreted_worst {
        s.note(target(
            "a new Python or JavaScript plugin serves within 1.5 s of landing (tiered, the slower of the \
             two; shown: time / 1.5 s)",
            worst.as_secs_f64() / 1.5,
            |r| r < 1.0,
        ));
    }
    if let Some(p50) = tiered_p50 {
        s.note(target(
            "a new Rust plugin serves within 30 ms of landing (tiered; shown: p50 / 30 ms)",
            p50 / 30_000.0,
            |r| r < 1.0,
        ));
    }
    Ok(s)
}

/// Lands `repeats` new versions, then `repeats` seen before, on a server started with `flags`; `None`
/// if one never served.
fn swaps(guests: &RustGuests, repeats: usize, flags: &[&str]) -> anyhow::Result<Option<Times>> {
    let dir = tempfile::tempdir()?;
    let dirs = Dirs::under(dir.path())?;
    install(&guests.logger, &dirs.plugins, "filter")?;
    let server = Server::start_with(&dirs, None, flags)?;
    let api = Api::new(&server.base)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (token, path) = rt.block_on(sender(&api))?;
    // Every version of the first half is new to the server (a distinct copy: compiled on arrival); the
    // second half brings back the first two (their compiled form is in the compile cache). Even swaps
    // install the masking bench guest, odd ones the allowing logger.
    let sources = [
        std::fs::read(&guests.bench_hooks)?,
        std::fs::read(&guests.logger)?,
    ];
    let fresh: Vec<Vec<u8>> = (0..repeats)
        .map(|i| distinct_copy(&sources[i % 2], &format!("reload-{i}")))
        .collect();
    let swaps: Vec<(&[u8], bool)> = (0..repeats * 2)
        .map(|i| {
            let bytes = if i < repeats {
                &fresh[i]
            } else {
                &fresh[i % 2]
            };
            (bytes.as_slice(), i % 2 == 0)
        })
        .collect();
    let mut times = Times::default();
    let tiered = flags.is_empty();
    for (i, (bytes, masks)) in swaps.into_iter().enumerate() {
        // Written under a hidden name, then renamed into place: how a deploy lands a file whole.
        let staged = dirs.plugins.join(".filter.wasm.part");
        std::fs::write(&staged, bytes)?;
        std::fs::rename(&staged, dirs.plugins.join("filter.wasm"))?;
        let landed = Instant::now();
        let served = rt.block_on(first_served(&api, &path, &token, masks, landed, PATIENCE))?;
        match served {
            Some(d) if i < repeats => times.compiled.push(d),
            Some(d) => times.cached.push(d),
            None => return Ok(None),
        }
        if tiered && i < repeats {
            let optimized = rt.block_on(optimized_at(&api, "filter", landed, PATIENCE * 4))?;
            if let Some(d) = optimized {
                times.optimized.push(d);
            }
        }
        // Let the swap settle (the watcher's second look) before the next one lands.
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    Ok(Some(times))
}

/// Posts a message with a blocked word every millisecond or so until the answer shows the version that
/// masks (`masks`) or allows it served; the time since `landed`, `None` past `patience`.
async fn first_served(
    api: &Api,
    path: &str,
    token: &str,
    masks: bool,
    landed: Instant,
    patience: Duration,
) -> anyhow::Result<Option<Duration>> {
    loop {
        let message = api
            .post(path, token, &serde_json::json!({"body": "what the heck"}))
            .await?;
        let masked = message["body"].as_str().is_some_and(|b| b.contains("****"));
        if masked == masks {
            return Ok(Some(landed.elapsed()));
        }
        if landed.elapsed() > patience {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls `GET /v1/admin/plugins` until `plugin` runs on Cranelift's code; the time since `landed`, `None`
/// past `patience`.
async fn optimized_at(
    api: &Api,
    plugin: &str,
    landed: Instant,
    patience: Duration,
) -> anyhow::Result<Option<Duration>> {
    loop {
        let compilers = api.compilers().await?;
        if compilers
            .iter()
            .any(|(n, c)| n == plugin && c == "cranelift")
        {
            return Ok(Some(landed.elapsed()));
        }
        if landed.elapsed() > patience {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How long an interpreter plugin (megabytes of code) may take to serve, and to move to optimized code:
/// Cranelift compiles Python's 18 MB for seconds on all cores, longer on the one low-priority thread.
const INTERPRETER_PATIENCE: Duration = Duration::from_secs(120);

/// The manifest of an interpreted filter: the time budgets the language tests give Python and JavaScript
/// (a first call on Winch's code runs the interpreter's own start-up).
const INTERPRETER_MANIFEST: &str = "[limits]\nbefore_hook_ms = 5000\nafter_hook_ms = 10000\n";

/// A new interpreted plugin landing: `filter` (the allowing Rust logger) replaced by the language's
/// profanity filter (masks "heck"), as a distinct copy so that nothing is cached, with a manifest giving
/// it the interpreters' time budgets ([`INTERPRETER_MANIFEST`]). On a fresh server started with `flags`: the time until it serves, and
/// until it serves on Cranelift's code.
pub fn interpreted(
    guests: &RustGuests,
    filter: &Path,
    flags: &[&str],
) -> anyhow::Result<(Option<Duration>, Option<Duration>)> {
    let dir = tempfile::tempdir()?;
    let dirs = Dirs::under(dir.path())?;
    install(&guests.logger, &dirs.plugins, "filter")?;
    std::fs::write(dirs.plugins.join("filter.toml"), INTERPRETER_MANIFEST)
        .context("writing the filter's manifest")?;
    let server = Server::start_with(&dirs, None, flags)?;
    let api = Api::new(&server.base)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (token, path) = rt.block_on(sender(&api))?;
    let bytes = distinct_copy(&std::fs::read(filter)?, "reload-interpreted");
    let staged = dirs.plugins.join(".filter.wasm.part");
    std::fs::write(&staged, &bytes)?;
    std::fs::rename(&staged, dirs.plugins.join("filter.wasm"))?;
    let landed = Instant::now();
    let served = rt.block_on(first_served(
        &api,
        &path,
        &token,
        true,
        landed,
        INTERPRETER_PATIENCE,
    ))?;
    let optimized = match (served, flags.is_empty()) {
        (Some(_), true) => {
            rt.block_on(optimized_at(&api, "filter", landed, INTERPRETER_PATIENCE))?
        }
        _ => None,
    };
    drop(server);
    Ok((served, optimized))
}

/// A user `alice` in a conversation with `bob`: her token and the conversation's messages path.
async fn sender(api: &Api) -> anyhow::Result<(String, String)> {
    let token = api.user("alice").await?;
    api.user("bob").await?;
    let conversation = api.conversation(&token, &["bob".to_owned()]).await?;
    Ok((token, format!("/v1/conversations/{conversation}/messages")))
}
