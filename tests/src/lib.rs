//! Helpers for the end-to-end tests: build the guest plugins from source (never committed as binaries),
//! give each test a fresh temporary folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root: the nearest folder above the package whose tests cargo runs (`host/`, `tests/`,
/// `sdk/harness/`) that holds this crate. Found when the tests run, not compiled in: cargo does not
/// rebuild a crate whose checkout moved, so with a shared target folder a compiled-in path would name
/// whichever checkout built it first (a CI clone would run a developer checkout's scripts).
pub fn repo_root() -> PathBuf {
    let compiled = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|package| {
            package
                .ancestors()
                .find(|dir| dir.join("tests/src/lib.rs").is_file())
                .map(Path::to_path_buf)
        })
        .or_else(|| compiled.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// Where guest plugins are built: beside the host's own target folder, so CI's cached target dir keeps
/// them too. The test binary lives in `<target>/<profile>/deps/`.
fn guest_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("guest")
}

/// A folder under the guest target folder for builds the tests make in other ways (e.g. with
/// `scripts/build-plugins.sh`), kept between runs like the rest of the target folder.
pub fn guest_out(name: &str) -> PathBuf {
    guest_target_dir().join(name)
}

/// Build one guest workspace for `wasm32-wasip2` (release) and return its output folder.
fn build_guests(workspace: &str) -> Result<PathBuf, String> {
    let manifest = repo_root().join(workspace).join("Cargo.toml");
    let target_dir = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join("wasm32-wasip2").join("release"))
}

fn built(cell: &'static OnceLock<Result<PathBuf, String>>, workspace: &str, wasm: &str) -> PathBuf {
    match cell.get_or_init(|| build_guests(workspace)) {
        Ok(dir) => dir.join(format!("{wasm}.wasm")),
        Err(err) => panic!("{err}"),
    }
}

/// An example plugin from `plugins-examples/`, built on first use (e.g. `profanity_filter`).
pub fn example(wasm: &str) -> PathBuf {
    static EXAMPLES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(&EXAMPLES, "plugins-examples", wasm)
}

/// A test-only plugin from `tests/fixtures/`, built on first use (e.g. `hostile`).
pub fn fixture(wasm: &str) -> PathBuf {
    static FIXTURES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(&FIXTURES, "tests/fixtures", wasm)
}

/// A fresh temporary folder, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("cannot create a temporary folder: {err}"),
    }
}
