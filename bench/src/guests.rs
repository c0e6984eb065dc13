//! The plugins the benchmark runs: built from source (the bench guest and the Rust examples), found
//! prebuilt (the Python, JavaScript and C examples), and copied with distinct contents.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (`bench/..`): read from cargo's environment when `cargo run` started the bench,
/// else the checkout that built it (cargo does not rebuild a crate whose checkout moved, so a shared
/// target folder can hold a binary built in another checkout).
pub fn repo_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The cargo target folder this binary was built into (`<target>/release/chathooks-bench`).
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(2).map(Path::to_path_buf))
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Where guest plugins are built: `<target>/guest`, shared with the tests (so the examples they built are
/// reused) and separate from the host's own artifacts.
pub fn guest_target_dir() -> PathBuf {
    target_dir().join("guest")
}

/// Builds the guest workspace of `manifest` (relative to the repository root) for `target`, release.
pub fn cargo_build_guest(manifest: &str, target: &str, extra: &[&str]) -> anyhow::Result<PathBuf> {
    let manifest = repo_root().join(manifest);
    let target_dir = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", target, "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(extra)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .with_context(|| format!("running cargo for {}", manifest.display()))?;
    if !output.status.success() {
        bail!(
            "building {} for {target} failed (is the target installed? `rustup target add {target}`):\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(target_dir.join(target).join("release"))
}

/// The built Rust guests: the bench guest and the Rust examples.
#[derive(Debug, Clone)]
pub struct RustGuests {
    /// `bench/guest`: mask + one KV increment, every hook exported.
    pub bench_hooks: PathBuf,
    /// `plugins-examples/rust/profanity-filter`.
    pub profanity_filter: PathBuf,
    /// `plugins-examples/rust/message-stats`.
    pub message_stats: PathBuf,
    /// `plugins-examples/rust/logger`.
    pub logger: PathBuf,
    /// `plugins-examples/rust/push-notify`.
    pub push_notify: PathBuf,
}

impl RustGuests {
    /// Builds (or finds up to date) the bench guest and the Rust examples.
    pub fn build() -> anyhow::Result<Self> {
        eprintln!("building guest plugins (bench/guest, plugins-examples) for wasm32-wasip2 ...");
        let bench = cargo_build_guest("bench/guest/Cargo.toml", "wasm32-wasip2", &[])?;
        let examples = cargo_build_guest("plugins-examples/Cargo.toml", "wasm32-wasip2", &[])?;
        Ok(RustGuests {
            bench_hooks: bench.join("bench_hooks.wasm"),
            profanity_filter: examples.join("profanity_filter.wasm"),
            message_stats: examples.join("message_stats.wasm"),
            logger: examples.join("logger.wasm"),
            push_notify: examples.join("push_notify.wasm"),
        })
    }

    /// Every example, for the cold-start mix.
    pub fn all(&self) -> [&Path; 5] {
        [
            &self.bench_hooks,
            &self.profanity_filter,
            &self.message_stats,
            &self.logger,
            &self.push_notify,
        ]
    }
}

/// One language's profanity-filter + message-stats pair, or why it is not there.
#[derive(Debug)]
pub enum LangPair {
    /// Both components were found.
    Found {
        /// The before-hook plugin.
        profanity_filter: PathBuf,
        /// The after-hook plugin.
        message_stats: PathBuf,
    },
    /// Why the language is skipped.
    Skipped(String),
}

/// Finds `<lang>_profanity_filter.wasm` and `<lang>_message_stats.wasm` as `scripts/build-plugins.sh`
/// names them, in `dir` (default: `<repo>/plugins`, the script's default output).
pub fn lang_pair(lang: &str, dir: Option<&Path>) -> LangPair {
    let dir = dir.map_or_else(|| repo_root().join("plugins"), Path::to_path_buf);
    let filter = dir.join(format!("{lang}_profanity_filter.wasm"));
    let stats = dir.join(format!("{lang}_message_stats.wasm"));
    let missing: Vec<String> = [&filter, &stats]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        LangPair::Found {
            profanity_filter: filter,
            message_stats: stats,
        }
    } else {
        LangPair::Skipped(format!(
            "not built ({} missing; run `scripts/build-plugins.sh {lang}`)",
            missing.join(", ")
        ))
    }
}

/// `wasm` with a custom section appended that holds `tag`: a valid component with the same behaviour and
/// a different content hash, so the compile cache treats each copy as a plugin of its own.
pub fn distinct_copy(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"chathooks-bench";
    let mut payload = Vec::new();
    leb128(&mut payload, name.len() as u64);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, payload.len() as u64);
    out.extend_from_slice(&payload);
    out
}

fn leb128(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Copies `from` into `dir` as `<name>.wasm`.
pub fn install(from: &Path, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let to = dir.join(format!("{name}.wasm"));
    std::fs::copy(from, &to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(to)
}
