//! The Extism comparison. Extism pulls its own wasmtime (43), so it lives in its own workspace
//! (`bench/extism`, host, and `bench/extism/guest`, for `wasm32-unknown-unknown`) that the default build
//! never compiles. With `--with-extism` this builds and runs it; it prints its samples as JSON, which are
//! merged here (and kept in `<target>/extism/figures.json`, which `--extism-json` can merge later).

use super::Options;
use crate::guests::{cargo_build_guest, repo_root, target_dir};
use crate::stats::Samples;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::process::Command;

/// What the Extism benchmark prints (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExtismFigures {
    /// The `extism` crate version it ran on.
    pub extism_version: String,
    /// Per-event times in microseconds.
    pub micros: Vec<f64>,
}

/// The Extism samples: from `--extism-json`, from a run (`--with-extism`), or none.
pub fn figures(options: &Options) -> anyhow::Result<Option<Samples>> {
    if let Some(path) = &options.extism_json {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let figures: ExtismFigures = serde_json::from_str(&text)?;
        return Ok(Some(Samples::from_micros(figures.micros)));
    }
    if !options.with_extism {
        return Ok(None);
    }
    eprintln!(
        "  building the Extism comparison (bench/extism: extism 1.30 and its own wasmtime) ..."
    );
    let added = Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .output();
    if !added.is_ok_and(|o| o.status.success()) {
        eprintln!("  (could not run `rustup target add wasm32-unknown-unknown`; trying anyway)");
    }
    let guest_dir = cargo_build_guest(
        "bench/extism/guest/Cargo.toml",
        "wasm32-unknown-unknown",
        &[],
    )?;
    let guest = guest_dir.join("bench_extism_guest.wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out_dir = target_dir().join("extism");
    let output = Command::new(cargo)
        .args(["run", "--release", "--quiet", "--manifest-path"])
        .arg(repo_root().join("bench/extism/Cargo.toml"))
        .arg("--target-dir")
        .arg(&out_dir)
        .arg("--")
        .arg(&guest)
        .arg(options.budget.as_millis().to_string())
        .env_remove("CARGO_TARGET_DIR")
        .env("RUST_BACKTRACE", "0")
        .output()
        .context("running cargo for bench/extism")?;
    if !output.status.success() {
        bail!(
            "the Extism benchmark failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the Extism benchmark printed no JSON")?;
    let figures: ExtismFigures = serde_json::from_str(line)?;
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("figures.json"), line)?;
    let samples = Samples::from_micros(figures.micros);
    eprintln!(
        "  extism {}: p50 {:.2} µs, p99 {:.2} µs ({} events)",
        figures.extism_version,
        samples.p50(),
        samples.p99(),
        samples.len()
    );
    Ok(Some(samples))
}
