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
