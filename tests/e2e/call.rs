//! `chathooks call` as a user runs it, and the author tools' compile cache (`check` twice).

use chathooks_tests::{example, temp_dir};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `chathooks` with a compile cache in `cache`, feeding `stdin`.
fn chathooks(cache: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args(args)
        .env("CHATHOOKS_CACHE_DIR", cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chathooks");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for chathooks")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SENT: &str = r#"{
  "message": {"id": "m1", "conversation_id": "c1", "sender": {"id": "alice", "name": "Alice"},
              "body": "hi", "seq": 1},
  "conversation": {"id": "c1", "participant_count": 2, "owner_id": "alice"}
}"#;

#[test]
fn an_after_hook_shows_its_kv_writes_and_logs() {
    let dir = temp_dir();
    let input = dir.path().join("event.json");
    std::fs::write(&input, SENT).expect("write the event");
    let plugin = example("message_stats");
    let plugin = plugin.to_str().expect("utf-8 path");
    let input = input.to_str().expect("utf-8 path");
    let cache = dir.path().join("cache");

    let output = chathooks(
        &cache,
        &[
            "call",
            plugin,
            "after-message-sent",
            "--input",
            input,
            "--kv",
            "user:alice=4",
        ],
        "",
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.starts_with("after-message-sent -> ok"), "{stdout}");
    assert!(
        stdout.contains("set    user:alice = 5"),
        "the seed was read: {stdout}"
    );
    assert!(stdout.contains("set    conversation:c1 = 1"), "{stdout}");
    assert!(
        stdout.contains("[info] counted message m1: conversation c1 has 1, user alice has 5"),
        "{stdout}"
    );

    // The same from stdin, for machines.
    let output = chathooks(
        &cache,
        &[
            "call",
            plugin,
            "after-message-sent",
            "--input",
            "-",
            "--json",
        ],
        SENT,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(json["answer"], serde_json::json!({"ok": true}));
    assert_eq!(json["kv"]["user:alice"], 1);
    assert_eq!(json["logs"][0]["level"], "info");
    assert_eq!(json["powers"], serde_json::json!([]));
}

#[test]
fn a_before_hook_prints_its_decision() {
    let dir = temp_dir();
    let plugin = example("profanity_filter");
    let output = chathooks(
        dir.path(),
        &[
            "call",
            plugin.to_str().expect("utf-8 path"),
            "before-message-sent",
            "-i",
            "-",
            "--json",
        ],
        r#"{"draft": {"body": "darn it"}, "conversation": {"id": "c1"}}"#,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        json["answer"],
        serde_json::json!({"decision": {"modify": {"body": "**** it"}}})
    );
}

#[test]
fn a_wrong_hook_or_event_is_named() {
    let dir = temp_dir();
    let plugin = example("message_stats");
    let plugin = plugin.to_str().expect("utf-8 path");
    let call =
        |hook: &str, input: &str| chathooks(dir.path(), &["call", plugin, hook, "-i", "-"], input);

    let output = call("after-mesage-sent", SENT);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "there is no hook \"after-mesage-sent\"; message_stats implements: after-message-sent"
        ),
        "{stderr}"
    );

    let output = call("before-message-sent", SENT);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("does not implement the hook \"before-message-sent\"")
            && stderr.contains("implements: after-message-sent"),
        "{stderr}"
    );

    let output = call("after-message-sent", r#"{"message": {"id": 5}}"#);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "does not fit after-message-sent: input.message.id: expected a string, found 5"
        ),
        "{stderr}"
    );

    let output = call("after-message-sent", "{ not json");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("(stdin) is not JSON"));
}

/// `check` compiles into the cache folder, and a second run loads from it and says the same.
#[test]
fn check_compiles_once_into_the_cache() {
    let dir = temp_dir();
    let cache = dir.path().join("compiled");
    let plugin = example("message_stats");
    let plugin = plugin.to_str().expect("utf-8 path");
    let first = chathooks(&cache, &["check", plugin], "");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let entries = || -> Vec<_> {
        std::fs::read_dir(&cache)
            .expect("the cache folder was made")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect()
    };
    let cached = entries();
    assert_eq!(cached.len(), 1, "one compile, one entry: {cached:?}");
    let size = std::fs::metadata(&cached[0])
        .map(|m| m.len())
        .expect("entry");

    let second = chathooks(&cache, &["check", plugin], "");
    assert!(second.status.success());
    assert_eq!(text(&first.stdout), text(&second.stdout));
    assert_eq!(entries(), cached, "nothing new compiled");
    assert_eq!(
        std::fs::metadata(&cached[0]).map(|m| m.len()).ok(),
        Some(size)
    );

    // --no-cache keeps nothing.
    let none = dir.path().join("none");
    let output = chathooks(&none, &["check", "--no-cache", plugin], "");
    assert!(output.status.success());
    assert!(!none.exists());
}
