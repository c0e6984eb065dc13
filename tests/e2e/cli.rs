//! The author tools as a user runs them: `chathooks check` and `chathooks test`.

use chathooks_tests::{example, fixture, repo_root, temp_dir};
use std::path::Path;
use std::process::{Command, Output};

fn chathooks(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args(args)
        .output()
        .expect("run chathooks")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every case file of the example plugins and fixtures passes through `chathooks test`.
#[test]
fn every_case_file_passes() {
    let root = repo_root();
    let suites = [
        (
            example("logger"),
            root.join("plugins-examples/rust/logger/cases.json"),
        ),
        (
            example("profanity_filter"),
            root.join("plugins-examples/rust/profanity-filter/cases.json"),
        ),
        (
            example("message_stats"),
            root.join("plugins-examples/rust/message-stats/cases.json"),
        ),
        (
            example("push_notify"),
            root.join("plugins-examples/rust/push-notify/cases.json"),
        ),
        (
            fixture("only_sent"),
            root.join("tests/fixtures/only-sent/cases.json"),
        ),
        (
            fixture("kv_probe"),
            root.join("tests/fixtures/kv-probe/cases.json"),
        ),
    ];
    // The recorder's case files: every hook's arguments as a plugin receives them, the 0.3.0 ones included.
    let recorder = [
        "messages",
        "conversations",
        "receipts-reactions-mentions",
        "defaults-and-retries",
        "added-in-0.3.0",
    ]
    .map(|name| {
        (
            fixture("recorder"),
            root.join(format!("tests/fixtures/recorder/cases/{name}.json")),
        )
    });
    for (plugin, cases) in suites.into_iter().chain(recorder) {
        let output = chathooks(&[Path::new("test"), &plugin, &cases]);
        let text = stdout(&output);
        assert!(
            output.status.success(),
            "{} failed:\n{text}",
            cases.display()
        );
        assert!(text.contains(" passed, 0 failed"), "{text}");
    }
}

/// A wrong expectation makes `chathooks test` fail, name the case and exit non-zero.
#[test]
fn a_failing_case_is_reported() {
    let dir = temp_dir();
    let cases = dir.path().join("cases.json");
    let text = r#"{ "cases": [
        { "name": "right", "events": [ { "hook": "before-message-sent",
            "input": { "draft": { "body": "hello" }, "conversation": { "id": "c1" } },
            "expect": { "decision": "allow" } } ] },
        { "name": "wrong on purpose", "events": [ { "hook": "before-message-sent",
            "input": { "draft": { "body": "hello" }, "conversation": { "id": "c1" } },
            "expect": { "decision": { "reject": "nope" } } } ] },
        { "name": "wrong kv on purpose", "events": [], "expect": { "kv": { "missing": 1 } } }
    ] }"#;
    std::fs::write(&cases, text).expect("write cases");
    let output = chathooks(&[Path::new("test"), &example("profanity_filter"), &cases]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("PASS right"), "{text}");
    assert!(text.contains("FAIL wrong on purpose"), "{text}");
    assert!(text.contains("FAIL wrong kv on purpose"), "{text}");
    assert!(text.contains("1 passed, 2 failed"), "{text}");
}

#[test]
fn check_lists_the_hooks_and_refuses_garbage() {
    let output = chathooks(&[Path::new("check"), &fixture("only_sent")]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("chathooks:plugin@0.3.0"), "{text}");
    assert!(text.contains("after-message-sent"), "{text}");
    assert!(!text.contains("before-message-sent"), "{text}");

    let dir = temp_dir();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"garbage").expect("write");
    let output = chathooks(&[Path::new("check"), &junk]);
    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("not a WebAssembly file"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_malformed_case_file_names_the_problem() {
    let dir = temp_dir();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        r#"{ "cases": [ { "name": "x", "events": [], "expcet": {} } ] }"#,
    )
    .expect("write");
    let output = chathooks(&[Path::new("test"), &example("logger"), &cases]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("expcet"), "{err}");
}

/// `check` and `test` keep compiled plugins in the user's cache folder (`CHATHOOKS_CACHE_DIR` here) and
/// load them from there the next time: an entry swapped for another plugin's code is what the next
/// `check` reports, so it was not compiled again.
#[test]
fn a_second_check_loads_the_compiled_plugin_from_the_cache() {
    let cache = temp_dir();
    let check = |plugin: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
            .arg("check")
            .arg(plugin)
            .env("CHATHOOKS_CACHE_DIR", cache.path())
            .output()
            .expect("run chathooks");
        assert!(output.status.success(), "{}", stdout(&output));
        stdout(&output)
    };
    let entries = || {
        let mut names: Vec<_> = std::fs::read_dir(cache.path())
            .expect("the cache folder exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        names.sort();
        names
    };
    check(&fixture("only_sent"));
    let first = entries();
    assert_eq!(first.len(), 1, "one entry per plugin checked: {first:?}");
    let logger = example("logger");
    assert!(check(&logger).contains("before-message-sent"));
    let second: Vec<_> = entries()
        .into_iter()
        .filter(|e| !first.contains(e))
        .collect();
    assert_eq!(second.len(), 1, "{second:?}");

    std::fs::copy(&first[0], &second[0]).expect("swap the entry");
    let text = check(&logger);
    assert!(
        !text.contains("before-message-sent") && text.contains("after-message-sent"),
        "the logger's entry now holds only_sent's code, and check reads it:\n{text}"
    );
}
