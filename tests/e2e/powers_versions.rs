//! The WIT is versioned (DESIGN decision 12): `v0-1-bot`, built with `wit-bindgen` against the frozen
//! `wit/versions/0.1.0/`, keeps loading and working on a server whose current version is 0.3.0: its
//! before-hook filters, its after-hook keeps KV and posts as its bot, and past the rate limit of posts it
//! gets 0.1.0's nearest error, `failed("rate limited: ... retry in N ms")`. `chathooks check` names its
//! version.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use chathooks::clock::ManualClock;
use chathooks::plugins::limits::{DEFAULT_POSTS_BURST, DEFAULT_POSTS_PER_SECOND};
use chathooks_tests::{fixture, temp_dir};
use reqwest::Method;
use serde_json::json;

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::sandbox_support::{eventually, plugin};
use crate::server_support::str_field;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_wit_0_1_0_filters_posts_and_sees_rate_limits() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: fixture("v0_1_bot"),
            name: "v0_1_bot",
            manifest: Some("[grants]\nchat_post = true\nchat_join = true\n".to_owned()),
        }],
    );
    let clock = ManualClock::new();
    let server = server_on(dir.path(), move |config| {
        config.clock = Arc::new(clock);
    })
    .await;
    let status = plugin(&server, "v0_1_bot").await.expect("listed");
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(
        status["hooks"],
        json!(["before-message-sent", "after-message-sent"]),
        "{status}"
    );

    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let messages = format!("/v1/conversations/{conv}/messages");

    // Its before-hook filters.
    let (status, answer) = server
        .call(
            Method::POST,
            &messages,
            Some(&alice),
            Some(json!({"body": "this is forbidden"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{answer}");
    assert!(
        str_field(&answer["error"], "message").contains("v0-1-bot: forbidden"),
        "{answer}"
    );
    let sent = server.send(&alice, &conv, "hello").await;
    assert_eq!(sent["body"], "hello");

    // Its after-hook keeps KV and posts, and is refused past the burst with 0.1.0's `failed`.
    server.send(&alice, &conv, "posts 60").await;
    let allowed = u64::from(DEFAULT_POSTS_BURST) - 1;
    // `limited_text` is the last key the call writes: once it is there, so are the others.
    let limited = eventually("v0-1-bot reports its posts", || {
        let limited = server
            .kv("v0_1_bot", "limited_text")
            .and_then(|_| server.kv("v0_1_bot", "limited"));
        async move { limited }
    })
    .await;
    assert_eq!(limited, json!(60 - allowed));
    assert_eq!(server.kv("v0_1_bot", "posted"), Some(json!(allowed)));
    assert_eq!(server.kv("v0_1_bot", "seen"), Some(json!(2)));
    let retry_ms = 1000 / DEFAULT_POSTS_PER_SECOND;
    assert_eq!(
        server.kv("v0_1_bot", "limited_text"),
        Some(json!(format!(
            "rate limited: too many posts; retry in {retry_ms} ms"
        )))
    );
    let page = server
        .get_ok(&format!("{messages}?limit=100"), &alice)
        .await;
    let from_bot = page
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["sender"]["id"] == "bot.v0_1_bot")
        .count();
    assert_eq!(from_bot as u64, allowed);
    let status = plugin(&server, "v0_1_bot").await.expect("listed");
    assert_eq!(status["failures"], 0, "{status}");
    assert_eq!(status["rate_limited"]["posts"], 60 - allowed, "{status}");
    server.stop().await;
}

#[test]
fn check_names_the_version_a_plugin_was_built_against() {
    let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args([Path::new("check"), &fixture("v0_1_bot")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run chathooks: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("wit:     chathooks:plugin@0.1.0 (an earlier version, still loaded; the newest is 0.3.0)"),
        "{text}"
    );
    assert!(text.contains("chathooks:plugin/chat@0.1.0"), "{text}");
}
