//! Plugins in Python, JavaScript and C: the example kits, built by `scripts/build-plugins.sh` as a user
//! builds them, pass the very case files of their Rust twins through `chathooks test`.
//!
//! A language whose toolchain is missing is skipped with a message, unless `CHATHOOKS_REQUIRE_ALL_LANGS=1`
//! (CI sets it after installing every toolchain): then a missing toolchain fails the test.

use chathooks_tests::{guest_out, repo_root, temp_dir};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Whether every guest language must be tested (CI), rather than skipped when its toolchain is missing.
pub(crate) fn require_all() -> bool {
    std::env::var("CHATHOOKS_REQUIRE_ALL_LANGS").is_ok_and(|v| v == "1" || v == "true")
}

/// `PATH` after the folder where `cargo install --root ~/.cache/chathooks/tools` puts the pinned
/// wit-bindgen and wasm-tools (as `.ci/run` and `scripts/build-plugins.sh` do).
pub(crate) fn tools_path() -> OsString {
    let tools = std::env::var_os("CHATHOOKS_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/chathooks/tools")))
        .unwrap_or_default()
        .join("bin");
    let mut paths = vec![tools];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// Whether `program --version` runs (with [`tools_path`]).
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .env("PATH", tools_path())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why the toolchain of `lang` (`python`, `js`, `c`; Rust is always there) cannot be used, if it cannot.
pub(crate) fn missing_toolchain(lang: &str) -> Option<String> {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang-19".into());
    let sysroot = std::env::var("WASI_SYSROOT").unwrap_or_else(|_| "/usr".into());
    let needs: Vec<&str> = match lang {
        "python" => vec!["componentize-py"],
        "js" => vec!["node", "npm"],
        "c" => vec![clang.as_str(), "wit-bindgen", "wasm-tools"],
        _ => vec![],
    };
    if let Some(tool) = needs.iter().find(|tool| !runs(tool)) {
        return Some(format!("{tool} is not installed"));
    }
    if lang == "c" && !Path::new(&sysroot).join("lib/wasm32-wasi/libc.a").exists() {
        return Some(format!("wasi-libc is not in {sysroot}"));
    }
    None
}

/// Skip (returning true) or fail for a language whose toolchain is missing.
pub(crate) fn skip(lang: &str) -> bool {
    let Some(why) = missing_toolchain(lang) else {
        return false;
    };
    assert!(
        !require_all(),
        "CHATHOOKS_REQUIRE_ALL_LANGS is set but the {lang} toolchain is missing: {why}"
    );
    eprintln!("skipping {lang}: {why} (set CHATHOOKS_REQUIRE_ALL_LANGS=1 to make this an error)");
    true
}

/// The JavaScript kit's `node_modules` (the jco pinned by its lock file), installed once per test run, so
/// that tests building JavaScript in parallel never race on it. `npm install`, not `npm ci`: `npm ci`
/// refuses the lock file because a few of jco's optional per-platform packages were never published.
pub(crate) fn js_node_modules() -> PathBuf {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let kit = repo_root().join("plugins-examples/js");
        if !kit.join("node_modules/.bin/jco").exists() {
            let output = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&kit)
                .output()
                .map_err(|e| format!("cannot run npm: {e}"))?;
            if !output.status.success() {
                return Err(format!("npm install failed:\n{}", text(&output)));
            }
        }
        Ok(kit.join("node_modules"))
    });
    match result {
        Ok(dir) => dir.clone(),
        Err(err) => panic!("{err}"),
    }
}

/// Stdout and stderr of a finished command, for assertion messages.
pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Run `chathooks test` and assert that every case passed.
///
/// These tests check behaviour, not speed (the benchmark measures speed), so a plugin without a manifest
/// gets one with time budgets a busy CI machine cannot exhaust: the first call into a fresh Python or
/// JavaScript instance warms the interpreter and, at a load average of 8 on two cores, can outlast the
/// default 50 ms before-hook budget.
pub(crate) fn assert_cases_pass(plugin: &Path, cases: &Path) {
    let manifest = plugin.with_extension("toml");
    if !manifest.exists() {
        std::fs::write(
            &manifest,
            "[limits]\nbefore_hook_ms = 5000\nafter_hook_ms = 10000\n",
        )
        .expect("write a manifest beside the plugin");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .arg("test")
        .arg(plugin)
        .arg(cases)
        .output()
        .expect("run chathooks test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(" passed, 0 failed"),
        "{} on {}:\n{}",
        plugin.display(),
        cases.display(),
        text(&output)
    );
}

/// The example plugins of `lang` (`rust`, `python`, `js`, `c`), built once per test run with the build
/// script as a user builds them; the folder holding them (`<lang>_<example>.wasm`, Rust ones without the
/// prefix). `None` when the language's toolchain is missing and may be skipped.
pub(crate) fn built_examples(lang: &str) -> Option<PathBuf> {
    static BUILDS: [OnceLock<Option<Result<PathBuf, String>>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = match lang {
        "rust" => 0,
        "python" => 1,
        "js" => 2,
        "c" => 3,
        other => panic!("no such guest language: {other}"),
    };
    let result = BUILDS[slot].get_or_init(|| {
        if lang != "rust" && skip(lang) {
            return None;
        }
        Some(build_examples(lang))
    });
    match result {
        None => None,
        Some(Ok(dir)) => Some(dir.clone()),
        Some(Err(err)) => panic!("{err}"),
    }
}

/// Runs `scripts/build-plugins.sh --out <guest target>/langs/<lang> <lang>`.
fn build_examples(lang: &str) -> Result<PathBuf, String> {
    if lang == "js" {
        js_node_modules();
    }
    let out = guest_out("langs").join(lang);
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("scripts/build-plugins.sh"))
        .arg("--out")
        .arg(&out)
        .arg(lang)
        .env("PATH", tools_path());
    if require_all() {
        // Also insists on the pinned toolchain versions.
        command.arg("--require-all");
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run scripts/build-plugins.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "build-plugins.sh {lang} failed:\n{}",
            text(&output)
        ));
    }
    Ok(out)
}

/// The built `example` (`profanity-filter`, `message-stats`) of `lang` in `dir` from [`built_examples`].
pub(crate) fn example_file(dir: &Path, lang: &str, example: &str) -> PathBuf {
    let prefix = if lang == "rust" {
        String::new()
    } else {
        format!("{lang}_")
    };
    dir.join(format!("{prefix}{}.wasm", example.replace('-', "_")))
}

/// Build one language's examples with the build script, then run each against its Rust twin's cases (the
/// Rust ones against their own).
fn kit_passes_the_rust_case_files(lang: &str) {
    let Some(dir) = built_examples(lang) else {
        return;
    };
    for example in ["profanity-filter", "message-stats"] {
        let wasm = example_file(&dir, lang, example);
        let cases = repo_root().join(format!("plugins-examples/rust/{example}/cases.json"));
        assert_cases_pass(&wasm, &cases);
    }
}

#[test]
fn rust_examples_build_with_the_script() {
    kit_passes_the_rust_case_files("rust");
}

#[test]
fn python_examples_pass_the_rust_case_files() {
    kit_passes_the_rust_case_files("python");
}

#[test]
fn js_examples_pass_the_rust_case_files() {
    kit_passes_the_rust_case_files("js");
}

#[test]
fn c_examples_pass_the_rust_case_files() {
    kit_passes_the_rust_case_files("c");
}

/// Without `--require-all`, a language whose toolchain is missing is skipped with a message that says what
/// to install; with it, the script fails.
#[test]
fn a_missing_toolchain_is_skipped_or_fails() {
    let out = temp_dir();
    let script = repo_root().join("scripts/build-plugins.sh");
    let run = |require: bool| {
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .arg("--out")
            .arg(out.path())
            .arg("python")
            .env("PATH", "/usr/bin:/bin")
            .env("CHATHOOKS_TOOLS", out.path())
            .env_remove("CHATHOOKS_REQUIRE_ALL_LANGS");
        if require {
            command.arg("--require-all");
        }
        command.output().expect("run scripts/build-plugins.sh")
    };
    // Only meaningful where componentize-py is not in /usr/bin (it is a pip install, usually elsewhere).
    if Path::new("/usr/bin/componentize-py").exists() {
        return;
    }
    let skipped = run(false);
    assert!(skipped.status.success(), "{}", text(&skipped));
    assert!(
        text(&skipped).contains("skipping python: needs componentize-py"),
        "{}",
        text(&skipped)
    );
    let failed = run(true);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(
        text(&failed).contains("FAILED  python (toolchain)"),
        "{}",
        text(&failed)
    );
}
