//! The Extism comparison. Extism pulls its own wasmtime (43), so it lives in its own workspace
//! (`bench/extism`, the host, and `bench/extism/guest`, for `wasm32-unknown-unknown`) that the default build
//! never compiles. With `--with-extism` this builds both and starts the host as a child process; the
//! dispatch section then asks it for slices of events in turn with the other variants (`run <n>` on its
//! stdin), and it answers each with one JSON line of per-event times, merged here.

use crate::guests::{cargo_build_guest, repo_root, target_dir};
use crate::stats::Samples;
use anyhow::{Context, bail};
use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// What the Extism host answers to `run <n>`.
#[derive(Debug, Deserialize)]
struct Slice {
    /// Per-event times in microseconds.
    micros: Vec<f64>,
    /// Events that failed.
    failed: usize,
    /// Why the first one failed.
    first_failure: Option<String>,
}

/// The running Extism host.
pub struct Extism {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Extism {
    /// Builds the guest and the host (the first time: a second wasmtime, several minutes) and starts it.
    pub fn start() -> anyhow::Result<Self> {
        eprintln!(
            "  building the Extism comparison (bench/extism: extism 1.30 and its own wasmtime) ..."
        );
        let added = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .output();
        if !added.is_ok_and(|o| o.status.success()) {
            eprintln!(
                "  (could not run `rustup target add wasm32-unknown-unknown`; trying anyway)"
            );
        }
        let guest_dir = cargo_build_guest(
            "bench/extism/guest/Cargo.toml",
            "wasm32-unknown-unknown",
            &[],
        )?;
        let guest = guest_dir.join("bench_extism_guest.wasm");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out_dir = target_dir().join("extism");
        let built = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(repo_root().join("bench/extism/Cargo.toml"))
            .arg("--target-dir")
            .arg(&out_dir)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .context("running cargo for bench/extism")?;
        if !built.status.success() {
            bail!(
                "building bench/extism failed:\n{}",
                String::from_utf8_lossy(&built.stderr)
            );
        }
        let mut child = Command::new(out_dir.join("release").join("chathooks-bench-extism"))
            .arg(&guest)
            // With backtraces on, Extism captures one on every call and its cost nearly doubles.
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the Extism benchmark host")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(Extism {
            child,
            stdin,
            stdout,
        })
    }

    /// Runs `n` events in the Extism host; their times.
    pub fn run(&mut self, n: usize) -> anyhow::Result<Samples> {
        self.command(&format!("run {n}"))
    }

    /// Runs `n` KV increments alone in the Extism host (to check that its KV costs what ours does).
    pub fn kv(&mut self, n: usize) -> anyhow::Result<Samples> {
        self.command(&format!("kv {n}"))
    }

    fn command(&mut self, command: &str) -> anyhow::Result<Samples> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the Extism host exited");
        }
        let slice: Slice = serde_json::from_str(&line)
            .with_context(|| format!("the Extism host answered {line:?}"))?;
        let mut samples = Samples::from_micros(slice.micros);
        samples.failed = slice.failed;
        samples.first_failure = slice.first_failure;
        Ok(samples)
    }
}

impl Drop for Extism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
