//! Plugins are warmed before they serve (issue 11, defect 6): a plugin whose first call into a fresh
//! instance is slow (an interpreter starting up, a word list built on first use) used to make the first
//! message after a load or a reload its slowest, so under a budget its later calls meet easily that
//! message went through unfiltered. And the warm-up calls run with the plugin's own configuration, so
//! what a lazy start reads from it, and keeps, is what the plugin's later calls use.
//!
//! The slow-start fixture's first call in an instance costs [`START`] of CPU time, ten times the
//! before-hook budget; its later calls take microseconds. Measured on this project's machines, the
//! interpreted examples' first calls sit much closer to their warm ones: the Python profanity filter's
//! first call into an instance took 2.0-3.7 ms of CPU time, the first message after the warm-up 0.6-1.0
//! ms, the steady state 0.2-0.3 ms (a debug host on Winch's code), too close for a test on a shared
//! machine to tell apart.

use std::time::Duration;

use serde_json::json;

use crate::sandbox_support::{
    hash_of, install, plugin, plugin_until, rounds_for_work, serving, variant, write_manifest,
};
use crate::server_support::{ADMIN_KEY, TestServer, must};

/// The before-hook budget, in milliseconds.
const BUDGET_MS: u64 = 10;

/// What the fixture's lazy start costs in CPU time (on an idle thread, on Cranelift's code): ten times
/// the budget, so the first call in a cold instance would run out of time on any machine.
const START: Duration = Duration::from_millis(100);

/// The message each test sends, and what the filter makes of it.
const SENT: (&str, &str) = ("what the heck", "what the ****");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_message_after_a_load_or_a_reload_is_filtered_with_the_plugins_config() {
    let Some(rounds) = rounds_for_work(START).await else {
        eprintln!("skipping: no thread CPU clock on this platform");
        return;
    };
    let wasm = chathooks_tests::fixture("slow_start");
    let server = TestServer::with_config(std::slice::from_ref(&wasm), |config| {
        // The rounds were measured on Cranelift's code (see `rounds_for_work`).
        config.compilers = chathooks::plugins::Compilers::Cranelift;
        write_manifest(
            &config.plugins_dir,
            "slow_start",
            &format!(
                "[limits]\nbefore_hook_ms = {BUDGET_MS}\nbreaker_failures = 0\n\n\
                 [config]\nwords = [\"heck\"]\nstart_rounds = {rounds}\n"
            ),
        );
    })
    .await;
    plugin_until(&server, "slow_start", "loaded", |p| p["state"] == "active").await;

    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let first = server.send(&alice, &conv, SENT.0).await;
    let status = plugin(&server, "slow_start").await.unwrap_or_default();
    assert_eq!(
        first["body"], SENT.1,
        "the first message after a load: {status}"
    );

    // A new version (same code, another hash), under the same manifest.
    let next = variant(&must(std::fs::read(&wasm), "read the fixture"), 1);
    install(&server, "slow_start.wasm", &next);
    server
        .post_ok("/v1/admin/plugins/reload", ADMIN_KEY, json!({}))
        .await;
    serving(&server, "slow_start", &hash_of(&next)).await;
    let first = server.send(&alice, &conv, SENT.0).await;
    let status = plugin(&server, "slow_start").await.unwrap_or_default();
    assert_eq!(
        first["body"], SENT.1,
        "the first message after a reload: {status}"
    );

    assert_eq!(
        status["calls"], 2,
        "the warm-up calls are not counted: {status}"
    );
    assert_eq!(status["failures"], 0, "{status}");
    assert_eq!(status["before_hook_timeouts"], 0, "{status}");
    server.stop().await;
}
