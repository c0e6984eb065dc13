//! Rate limits of plugin powers, through the `flood` fixture (one after-hook call that calls a power
//! thousands of times) on a real server whose rate limits read a manual clock, so every count is exact:
//! a flood of posts stores the burst and no more, ends within its budget and shows in the admin API and
//! `/metrics`; the clock's second brings exactly the rate; every other power is refused past its burst;
//! a manifest's `[limits]` override; a bad value named with its key and line; a loop hammering a refused
//! power stopped by its time budget.

use std::sync::Arc;
use std::time::Duration;

use chathooks::clock::ManualClock;
use chathooks::plugins::limits::{
    DEFAULT_EVENTS_BURST, DEFAULT_POSTS_BURST, DEFAULT_POSTS_PER_SECOND, DEFAULT_PUSHES_BURST,
    DEFAULT_TIMERS_BURST,
};
use chathooks_tests::{fixture, temp_dir};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::powers_support::{PluginFile, Recorder, plugins_folder, server_on};
use crate::sandbox_support::{eventually, plugin, plugin_until};
use crate::server_support::{TestServer, must};

/// Every grant `flood` may be asked to use, except HTTP (which names a host).
const GRANTS: &str = "[grants]\nchat_post = true\nchat_join = true\nevents = true\npush = true\n\
                      scheduler = true\n";

/// A server running `flood` with `manifest`, its rate limits on a manual clock that only the test moves.
async fn flood_server(manifest: &str) -> (TempDir, TestServer, ManualClock) {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: fixture("flood"),
            name: "flood",
            manifest: Some(manifest.to_owned()),
        }],
    );
    let clock = ManualClock::new();
    let server_clock = clock.clone();
    let server = server_on(dir.path(), move |config| {
        config.clock = Arc::new(server_clock);
    })
    .await;
    (dir, server, clock)
}

/// `flood`'s counts of a run for `power` (`ok`, `limited`), once its run stored `limited` as `expected`.
async fn run_counts(server: &TestServer, power: &str, limited: u64) -> (u64, u64) {
    let key = format!("{power}:limited");
    eventually(&format!("flood reports {limited} refused {power}"), || {
        let got = server.kv("flood", &key);
        async move { (got == Some(json!(limited))).then_some(()) }
    })
    .await;
    let ok = server.kv("flood", &format!("{power}:ok"));
    assert_eq!(
        server.kv("flood", &format!("{power}:other")),
        None,
        "{power}: an error other than rate-limited"
    );
    (ok.and_then(|v| v.as_u64()).unwrap_or_default(), limited)
}

/// How many messages of `conv` the bot `bot.flood` posted, as `token` sees them.
async fn bot_messages(server: &TestServer, token: &str, conv: &str) -> usize {
    let page = server
        .get_ok(
            &format!("/v1/conversations/{conv}/messages?limit=100"),
            token,
        )
        .await;
    page.as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["sender"]["id"] == "bot.flood")
        .count()
}

/// The `/metrics` document.
async fn metrics(server: &TestServer) -> String {
    let response = must(
        server
            .http
            .request(Method::GET, format!("{}/metrics", server.base))
            .send()
            .await,
        "GET /metrics",
    );
    must(response.text().await, "read /metrics")
}

/// The value of `chathooks_plugin_rate_limited_total` for `flood` and `power`.
fn rate_limited_metric(text: &str, power: &str) -> Option<u64> {
    let series =
        format!("chathooks_plugin_rate_limited_total{{plugin=\"flood\",power=\"{power}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_posts_stores_only_the_burst_and_is_counted() {
    let (_dir, server, clock) = flood_server(GRANTS).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;

    server.send(&alice, &conv, "posts 20000").await;
    // The join takes one of the burst's tokens; every post after the burst is refused.
    let allowed = u64::from(DEFAULT_POSTS_BURST) - 1;
    let (ok, limited) = run_counts(&server, "posts", 20_000 - allowed).await;
    assert_eq!(ok, allowed);
    assert_eq!(
        server.kv("flood", "posts:retry_ms"),
        Some(json!(1000 / DEFAULT_POSTS_PER_SECOND))
    );
    assert_eq!(bot_messages(&server, &alice, &conv).await as u64, allowed);

    // The call that tried 20,000 posts ended within its budget: no failure, no timeout.
    let status = plugin(&server, "flood").await.expect("flood is listed");
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["failures"], 0, "{status}");
    assert_eq!(status["timeouts"], 0, "{status}");
    assert_eq!(status["rate_limited"]["posts"], json!(limited), "{status}");
    assert_eq!(status["rate_limited"]["events"], 0, "{status}");
    assert_eq!(
        status["limits"]["posts_burst"], DEFAULT_POSTS_BURST,
        "{status}"
    );
    let text = metrics(&server).await;
    assert_eq!(rate_limited_metric(&text, "posts"), Some(limited), "{text}");
    assert_eq!(rate_limited_metric(&text, "timers"), Some(0), "{text}");

    // A second later there is room for exactly one second's worth again.
    clock.advance(Duration::from_secs(1));
    server.send(&alice, &conv, "posts 20").await;
    let refill = u64::from(DEFAULT_POSTS_PER_SECOND) - 1;
    let (ok, _) = run_counts(&server, "posts", 20 - refill).await;
    assert_eq!(ok, refill);
    assert_eq!(
        bot_messages(&server, &alice, &conv).await as u64,
        allowed + refill
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_power_answers_rate_limited_past_its_burst_and_a_manifest_sets_its_own() {
    let webhook = Recorder::start().await;
    let manifest = format!(
        "{GRANTS}http_hosts = [\"{}\"]\n\n[limits]\nhttp_requests_burst = 3\n",
        webhook.addr
    );
    let (_dir, server, _clock) = flood_server(&manifest).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let mut ws = server.ws(&alice, None).await;

    // Events: the burst reaches alice's connection, nothing more.
    let burst = u64::from(DEFAULT_EVENTS_BURST);
    server
        .send(&alice, &conv, &format!("events {}", burst + 100))
        .await;
    assert_eq!(run_counts(&server, "events", 100).await, (burst, 100));
    let mut received = 0;
    while received < burst {
        ws.next_of_kind("plugin.flood.flood").await;
        received += 1;
    }
    // The run is over (its counts are stored), so its events were published before this message's.
    server.send(&alice, &conv, "marker").await;
    let extra = loop {
        let event = ws.next_event().await;
        if event["kind"] == "plugin.flood.flood" {
            break Some(event);
        }
        if event["kind"] == "message.new" && event["payload"]["message"]["body"] == "marker" {
            break None;
        }
    };
    assert_eq!(extra, None, "more events than the burst");

    // HTTP: the manifest's burst of 3, not the default.
    let url = webhook.url("/hook");
    server.send(&alice, &conv, &format!("http 10 {url}")).await;
    assert_eq!(run_counts(&server, "http", 7).await, (3, 7));
    assert_eq!(webhook.wait_for(3).await.len(), 3);

    // Pushes and timers.
    let burst = u64::from(DEFAULT_PUSHES_BURST);
    server
        .send(&alice, &conv, &format!("pushes {}", burst + 30))
        .await;
    assert_eq!(run_counts(&server, "pushes", 30).await, (burst, 30));
    let burst = u64::from(DEFAULT_TIMERS_BURST);
    server
        .send(&alice, &conv, &format!("timers {}", burst + 10))
        .await;
    assert_eq!(run_counts(&server, "timers", 10).await, (burst, 10));
    let timers = server
        .running
        .state
        .chat
        .db()
        .read(|c| c.timers_of("flood"));
    assert_eq!(must(timers, "timers of flood").len() as u64, burst);

    let status = plugin(&server, "flood").await.expect("flood is listed");
    assert_eq!(
        status["rate_limited"],
        json!({"posts": 0, "events": 100, "http_requests": 7, "pushes": 30, "timers": 10}),
        "{status}"
    );
    assert_eq!(status["limits"]["http_requests_burst"], 3, "{status}");
    let text = metrics(&server).await;
    for (power, count) in [("events", 100), ("http_requests", 7), ("pushes", 30)] {
        assert_eq!(rate_limited_metric(&text, power), Some(count), "{text}");
    }
    assert_eq!(webhook.received().len(), 3, "a refused request was sent");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rate_limit_is_refused_with_its_key_and_line() {
    let manifest = format!("{GRANTS}\n[limits]\nposts_per_second = 5\nposts_burst = 0\n");
    let (_dir, server, _clock) = flood_server(&manifest).await;
    let status = plugin(&server, "flood").await.expect("flood is listed");
    assert_eq!(status["state"], "load-error", "{status}");
    let error = status["load_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("line 10: limits.posts_burst must be at least 1"),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_hammering_a_refused_power_is_stopped_by_its_time_budget() {
    // A burst of one goes to the join: every post is refused, and the loop never stops by itself.
    let manifest =
        format!("{GRANTS}\n[limits]\nposts_burst = 1\nafter_hook_ms = 300\nbreaker_failures = 0\n");
    let (_dir, server, _clock) = flood_server(&manifest).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    server.send(&alice, &conv, "forever posts").await;
    let status = plugin_until(&server, "flood", "a timeout", |p: &Value| {
        p["timeouts"].as_u64() >= Some(1)
    })
    .await;
    let last_error = status["last_error"].as_str().unwrap_or_default();
    assert!(last_error.contains("timed out"), "{status}");
    assert!(
        status["rate_limited"]["posts"].as_u64() > Some(0),
        "{status}"
    );
    assert_eq!(bot_messages(&server, &alice, &conv).await, 0);
    server.stop().await;
}
