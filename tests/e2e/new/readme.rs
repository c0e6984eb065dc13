//! The README's plugin-author sections run as written: each section's fenced `sh` blocks, in order, as one
//! bash script (so a `cd` or an `export` carries on to the next block), with the files its fenced blocks
//! marked `file=PATH` (```` ```rust file=src/lib.rs ````) written where the script stands at that point,
//! and the `chathooks` binary under test on `PATH`. A command that fails fails the test, with the trace.
//!
//! - "Your first plugin in Rust" starts in a stand-in for the clone (a link to this checkout inside a
//!   temporary folder), so its `cd ..` makes the plugin outside the checkout, as a reader's does.
//! - "Writing plugins in other languages" runs in an empty temporary folder and needs the Python,
//!   JavaScript and C toolchains (skipped without them unless `CHATHOOKS_REQUIRE_ALL_LANGS=1`).

use super::super::languages::{skip, text, tools_path};
use super::guest_target_dir;
use chathooks_tests::{repo_root, temp_dir};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The text of the README's `## heading` section, up to the next `## ` heading (its `###` subsections
/// included).
fn section(readme: &str, heading: &str) -> String {
    let start = format!("## {heading}");
    let mut lines = readme.lines().skip_while(|line| line.trim_end() != start);
    assert!(
        lines.next().is_some(),
        "the README has no section `## {heading}`"
    );
    let body: Vec<&str> = lines.take_while(|line| !line.starts_with("## ")).collect();
    body.join("\n")
}

/// The section as a bash script: `sh` blocks as they are, `file=PATH` blocks as here-documents writing
/// PATH. Other blocks (a harness test, a WIT world) are not commands and are left out.
fn script(section: &str) -> String {
    let mut script = String::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or("");
        let file = words.find_map(|word| word.strip_prefix("file="));
        if let Some(file) = file {
            let _ = writeln!(
                script,
                "mkdir -p \"$(dirname '{file}')\"\ncat > '{file}' <<'README_FILE_END'\n{}\nREADME_FILE_END",
                body.join("\n")
            );
        } else if lang == "sh" {
            script.push_str(&body.join("\n"));
            script.push('\n');
        }
    }
    script
}

/// A folder with a `chathooks` link to the binary under test, to put first on `PATH`.
fn bin_dir(root: &Path) -> std::path::PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_chathooks"), bin.join("chathooks"))
        .expect("link chathooks");
    bin
}

/// Runs `script` with bash in `dir` (given as `pwd`, which may be a link) with `bin` first on `PATH`.
fn run(script: &str, dir: &Path, bin: &Path) {
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(&tools_path()));
    let output = Command::new("bash")
        .args(["-x", "-e", "-u", "-o", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PWD", dir)
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        // Only a cache for the compiled dependencies, shared with the other tests' Rust guests.
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CHATHOOKS_SDK_PATH")
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "the README's commands failed:\n{script}\n{}",
        text(&output)
    );
}

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md")
}

#[test]
fn your_first_plugin_in_rust_runs_as_written() {
    let script = script(&section(&readme(), "Your first plugin in Rust"));
    for needed in [
        "chathooks new my-filter",
        "cat > 'src/lib.rs'",
        "cat > 'cases.json'",
        "chathooks test my_filter.wasm cases.json",
    ] {
        assert!(script.contains(needed), "no `{needed}` in:\n{script}");
    }
    let tmp = temp_dir();
    let clone = tmp.path().join("chathooks");
    std::os::unix::fs::symlink(repo_root(), &clone).expect("link the checkout");
    run(&script, &clone, &bin_dir(tmp.path()));
    let plugin = tmp.path().join("my-filter");
    assert!(plugin.join("my_filter.wasm").is_file(), "no my_filter.wasm");
    assert!(
        std::fs::read_to_string(plugin.join("src/lib.rs"))
            .is_ok_and(|s| s.contains("struct Shout")),
        "src/lib.rs is not the README's"
    );
}

#[test]
fn writing_plugins_in_other_languages_runs_as_written() {
    if ["python", "js", "c"].iter().any(|lang| skip(lang)) {
        return;
    }
    let script = script(&section(&readme(), "Writing plugins in other languages"));
    for lang in ["python", "js", "c"] {
        assert!(script.contains(&format!("--lang {lang}")), "{script}");
    }
    let tmp = temp_dir();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    run(&script, &work, &bin_dir(tmp.path()));
    for wasm in [
        "py-filter/py_filter.wasm",
        "js-filter/js_filter.wasm",
        "c-filter/c_filter.wasm",
    ] {
        assert!(work.join(wasm).is_file(), "no {wasm}");
    }
}

/// The script keeps `sh` blocks and writes `file=` blocks; other blocks are not commands.
#[test]
fn blocks_become_one_script() {
    let section = "text\n```sh\ncd x\n```\n```rust file=src/lib.rs\nfn f() {}\n```\n```rust\nnot run\n```\n\
                   ```json\n{}\n```\n```sh\nls\n```\n";
    assert_eq!(
        script(section),
        "cd x\nmkdir -p \"$(dirname 'src/lib.rs')\"\ncat > 'src/lib.rs' <<'README_FILE_END'\nfn f() {}\n\
         README_FILE_END\nls\n"
    );
}
