//! `chathooks new` as an author runs it: for each language, write a starter with every hook in an empty
//! temporary folder outside the checkout, build it there with its own `build.sh`, and pass its own
//! `cases.json` through `chathooks test`. The Rust starter depends on `chathooks-sdk` by version and
//! reaches this checkout's SDK the documented way, `--sdk-path` (a `[patch.crates-io]` in its
//! `.cargo/config.toml`), never a path written into it. `readme` runs the README's plugin sections.
//!
//! A language whose toolchain is missing is skipped with a message, unless `CHATHOOKS_REQUIRE_ALL_LANGS=1`
//! (CI): see `languages.rs`.

mod readme;

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
        .env_remove("CHATHOOKS_SDK_PATH")
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
    assert_outside_the_checkout(tmp.path());
    let sdk = repo_root().to_string_lossy().into_owned();
    let mut args = vec!["new", "demo", "--lang", lang];
    if let Some(hooks) = hooks {
        args.extend(["--hooks", hooks]);
    }
    if lang == "rust" {
        args.extend(["--sdk-path", &sdk]);
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
            // The examples' lock file pins the SDK's dependencies to versions already built (a lock file
            // records a patched crate as it does a path dependency).
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

/// The starters are really made outside the checkout (not under a `TMPDIR` inside it, say).
fn assert_outside_the_checkout(dir: &Path) {
    let dir = std::fs::canonicalize(dir).expect("canonicalize the temp folder");
    let root = std::fs::canonicalize(repo_root()).expect("canonicalize the checkout");
    assert!(
        !dir.starts_with(&root),
        "{} is inside the checkout {}: set TMPDIR elsewhere",
        dir.display(),
        root.display()
    );
}

/// Every file under `dir`, by its path relative to `dir`, with its text.
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(folder) = todo.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                files.push((relative, text));
            }
        }
    }
    files
}

/// Without `--sdk-path` no starter names a path of the machine `chathooks` was built on: the Rust one
/// depends on `chathooks-sdk` by version and has no `.cargo/config.toml`, and `chathooks new` says how to
/// point it at a local SDK. With `--sdk-path`, the patch names the SDK crate folder.
#[test]
fn starters_name_no_path_of_the_build_machine() {
    let root = std::fs::canonicalize(repo_root()).expect("canonicalize the checkout");
    let root = root.to_string_lossy().into_owned();
    let tmp = temp_dir();
    for lang in ["rust", "python", "js", "c"] {
        let output = chathooks(&["new", "demo", "--lang", lang, "--dir", lang], tmp.path());
        assert!(output.status.success(), "{}", text(&output));
        if lang == "rust" {
            assert!(text(&output).contains("--sdk-path"), "{}", text(&output));
        }
        for (path, text) in files_under(&tmp.path().join(lang)) {
            assert!(
                !text.contains(&root),
                "{lang}: {} names a local path:\n{text}",
                path.display()
            );
        }
    }
    let cargo = std::fs::read_to_string(tmp.path().join("rust/Cargo.toml")).expect("Cargo.toml");
    assert!(cargo.contains("chathooks-sdk = \"0.1\""), "{cargo}");
    assert!(!tmp.path().join("rust/.cargo").exists());

    let output = chathooks(
        &[
            "new",
            "demo",
            "--lang",
            "rust",
            "--dir",
            "patched",
            "--sdk-path",
            &root,
        ],
        tmp.path(),
    );
    assert!(output.status.success(), "{}", text(&output));
    let config = std::fs::read_to_string(tmp.path().join("patched/.cargo/config.toml"))
        .expect(".cargo/config.toml");
    assert!(
        config.contains("[patch.crates-io]")
            && config.contains(&format!("chathooks-sdk = {{ path = \"{root}/sdk/rust\" }}")),
        "{config}"
    );
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
    refused(
        &["new", "demo", "--lang", "rust", "--sdk-path", "."],
        "no chathooks-sdk crate there",
    );
    std::fs::create_dir(tmp.path().join("used")).expect("mkdir");
    std::fs::write(tmp.path().join("used/file"), "x").expect("write");
    refused(
        &["new", "demo", "--lang", "c", "--dir", "used"],
        "exists and is not empty",
    );
    assert!(!tmp.path().join("demo").exists());
}
