//! `chathooks new` as an author runs it: for each language, write a starter with every hook, build it with
//! its own `build.sh`, and pass its own `cases.json` through `chathooks test`.
//!
//! A language whose toolchain is missing is skipped with a message, unless `CHATHOOKS_REQUIRE_ALL_LANGS=1`
//! (CI): see `languages.rs`.

use super::languages::{assert_cases_pass, js_node_modules, skip, text, tools_path};
use chathooks::plugins::Hook;
use chathooks_tests::{repo_root, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every chat hook of the WIT, as `--hooks` takes them: the host's table, so a hook added to the WIT is
/// built and tested in every language without touching this file.
fn all_hooks() -> String {
    let names: Vec<&str> = Hook::ALL.iter().map(|hook| hook.name()).collect();
    names.join(",")
}

fn chathooks(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run chathooks")
}

/// The guest target folder the other end-to-end tests build Rust plugins in (beside the host's), so a
/// starter reuses the SDK's compiled dependencies.
fn guest_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("guest"))
        .unwrap_or_else(|| repo_root().join("target/guest"))
}

/// `chathooks new demo --lang LANG [--hooks HOOKS]` in a fresh folder, `./build.sh`, `chathooks check` and
/// `chathooks test demo.wasm cases.json`.
fn starter_builds_and_passes(lang: &str, hooks: Option<&str>) {
    if lang != "rust" && skip(lang) {
        return;
    }
    let tmp = temp_dir();
    let mut args = vec!["new", "demo", "--lang", lang];
    if let Some(hooks) = hooks {
        args.extend(["--hooks", hooks]);
    }
    let output = chathooks(&args, tmp.path());
    assert!(output.status.success(), "chathooks new: {}", text(&output));
    let dir = tmp.path().join("demo");

    let mut build = Command::new("bash");
    build
        .arg(dir.join("build.sh"))
        .current_dir(&dir)
        .env("PATH", tools_path())
        .env("CFLAGS", "-Werror");
    match lang {
        "rust" => {
            // The examples' lock file pins the SDK's dependencies to versions already built.
            std::fs::copy(
                repo_root().join("plugins-examples/Cargo.lock"),
                dir.join("Cargo.lock"),
            )
            .expect("copy Cargo.lock");
            build
                .env("CARGO_TARGET_DIR", guest_target_dir())
                .env_remove("RUSTFLAGS");
        }
        "js" => {
            // The kit's pinned jco, instead of an `npm install` per test.
            std::os::unix::fs::symlink(js_node_modules(), dir.join("node_modules"))
                .expect("link node_modules");
        }
        _ => {}
    }
    let output = build.output().expect("run build.sh");
    assert!(
        output.status.success(),
        "{lang} build.sh: {}",
        text(&output)
    );

    let check = chathooks(&["check", "demo.wasm"], &dir);
    assert!(check.status.success(), "chathooks check: {}", text(&check));
    assert_cases_pass(&dir.join("demo.wasm"), &dir.join("cases.json"));
}

#[test]
fn rust_starter_with_every_hook() {
    starter_builds_and_passes("rust", Some(&all_hooks()));
}

#[test]
fn python_starter_with_every_hook() {
    starter_builds_and_passes("python", Some(&all_hooks()));
}

#[test]
fn js_starter_with_every_hook() {
    starter_builds_and_passes("js", Some(&all_hooks()));
}

#[test]
fn c_starter_with_every_hook() {
    starter_builds_and_passes("c", Some(&all_hooks()));
}

/// Without `--hooks`, a starter has one hook of each kind.
#[test]
fn c_starter_with_the_default_hooks() {
    starter_builds_and_passes("c", None);
}

/// A bad name, an unknown hook or a folder in use is refused with a message, and nothing is written.
#[test]
fn bad_requests_are_refused() {
    let tmp = temp_dir();
    let refused = |args: &[&str], says: &str| {
        let output = chathooks(args, tmp.path());
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(says), "{}", text(&output));
    };
    refused(
        &["new", "My_Filter", "--lang", "c"],
        "not a valid plugin name",
    );
    refused(
        &["new", "demo", "--lang", "c", "--hooks", "after-lunch"],
        "unknown hook `after-lunch`",
    );
    refused(&["new", "demo", "--lang", "cobol"], "unknown language");
    std::fs::create_dir(tmp.path().join("used")).expect("mkdir");
    std::fs::write(tmp.path().join("used/file"), "x").expect("write");
    refused(
        &["new", "demo", "--lang", "c", "--dir", "used"],
        "exists and is not empty",
    );
    assert!(!tmp.path().join("demo").exists());
}
