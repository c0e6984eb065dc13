//! Section 4, hot reload: the time from a replaced `.wasm` landing in the plugins folder (renamed into
//! place, as a deploy does) to the first message served by the new version. Version 1 is the `logger`
//! example (allows every message unchanged), version 2 the bench guest (masks "heck"), both Rust; a
//! message shows which version served it.
//!
//! Hot reload (issue 4) may not be built: then the new version never serves and the section says so.

use crate::guests::{RustGuests, install};
use crate::hooks::target;
use crate::report::Section;
use crate::server::{Api, Dirs, Server};
use crate::stats::{Samples, fmt_ms};
use std::time::{Duration, Instant};

/// How long to wait for the new version before concluding the server does not reload.
const PATIENCE: Duration = Duration::from_secs(5);

/// Section 4.
pub fn run(guests: &RustGuests, repeats: usize) -> anyhow::Result<Section> {
    eprintln!("[4] hot reload: replace a plugin's .wasm, time until the new version serves");
    let dir = tempfile::tempdir()?;
    let dirs = Dirs::under(dir.path())?;
    install(&guests.logger, &dirs.plugins, "filter")?;
    let server = Server::start(&dirs)?;
    let api = Api::new(&server.base)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (token, conversation) = rt.block_on(async {
        let token = api.user("alice").await?;
        api.user("bob").await?;
        let conversation = api.conversation(&token, &["bob".to_owned()]).await?;
        Ok::<_, anyhow::Error>((token, conversation))
    })?;
    let path = format!("/v1/conversations/{conversation}/messages");
    let versions = [&guests.bench_hooks, &guests.logger];
    let mut samples = Samples::default();
    let mut s = Section::new(
        "4. Hot reload",
        &["new version", "swaps", "p50 ms", "max ms"],
    );
    for repeat in 0..repeats {
        // Even repeats install the masking version, odd ones the allowing one.
        let new = versions[repeat % 2];
        let masks = repeat % 2 == 0;
        let staged = dirs.plugins.join("filter.wasm.part");
        std::fs::copy(new, &staged)?;
        std::fs::rename(&staged, dirs.plugins.join("filter.wasm"))?;
        let landed = Instant::now();
        let served = rt.block_on(async {
            loop {
                let message = api
                    .post(&path, &token, &serde_json::json!({"body": "what the heck"}))
                    .await?;
                let masked = message["body"].as_str().is_some_and(|b| b.contains("****"));
                if masked == masks {
                    return Ok::<_, anyhow::Error>(Some(landed.elapsed()));
                }
                if landed.elapsed() > PATIENCE {
                    return Ok(None);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })?;
        match served {
            Some(d) => samples.push(d),
            None => {
                s.note(format!(
                    "not available yet: the server did not serve a replaced .wasm within {PATIENCE:?} \
                     (hot reload, issue 4, is not built)"
                ));
                return Ok(s);
            }
        }
    }
    // The first two swaps bring versions the server has never compiled; later ones come back to
    // versions whose compiled form is in the compile cache.
    let (compiled, cached): (Vec<f64>, Vec<f64>) = {
        let all = samples.micros();
        (
            all.iter().take(2).copied().collect(),
            all.iter().skip(2).copied().collect(),
        )
    };
    for (label, times) in [
        ("Rust, new version (compiled on arrival)", compiled),
        ("Rust, version seen before (compile cache hit)", cached),
    ] {
        if times.is_empty() {
            continue;
        }
        let times = Samples::from_micros(times);
        s.row(vec![
            label.to_owned(),
            times.len().to_string(),
            fmt_ms(times.p50()),
            fmt_ms(times.percentile(100.0)),
        ]);
    }
    s.note(
        "from the rename that lands the new file to the first API answer produced by the new version \
         (a message is posted every millisecond or so until one comes back changed); includes the watcher's \
         debounce, compiling or loading the component and the swap",
    );
    s.note(target(
        "hot reload under 100 ms for a Rust plugin (shown: slowest / 100 ms)",
        samples.percentile(100.0) / 100_000.0,
        |r| r < 1.0,
    ));
    drop(server);
    Ok(s)
}
