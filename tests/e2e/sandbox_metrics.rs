//! `GET /metrics` of a real server: the Prometheus text format with HTTP requests by route and status,
//! hook calls, failures, timeouts and latency histograms by plugin and hook, queue sizes, dead letters
//! and WebSocket connections.

use reqwest::Method;

use crate::sandbox_support::{dead_letters, eventually, plugin_until, write_manifest};
use crate::server_support::{TestServer, must};

/// The `/metrics` document.
async fn scrape(server: &TestServer) -> String {
    let response = must(
        server
            .http
            .request(Method::GET, format!("{}/metrics", server.base))
            .send()
            .await,
        "GET /metrics",
    );
    assert!(response.status().is_success());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    must(response.text().await, "read /metrics")
}

/// The value of the sample `line_start` (name and labels exactly), if present.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_hooks_queues_and_websockets() {
    let plugins = [
        chathooks_tests::fixture("recorder"),
        chathooks_tests::fixture("hostile"),
    ];
    let server = TestServer::with_config(&plugins, |config| {
        // Budgets a busy machine does not exhaust by accident (only the loop times out).
        write_manifest(
            &config.plugins_dir,
            "hostile",
            "[limits]\nbreaker_failures = 0\nbefore_hook_ms = 500\n",
        );
        write_manifest(
            &config.plugins_dir,
            "recorder",
            "[limits]\nbefore_hook_ms = 5000\n",
        );
    })
    .await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let ws = server.ws(&alice, None).await;
    server.send(&alice, &conv, "hello").await;
    server.send(&alice, &conv, "loop").await;
    let (status, _) = server.call(Method::GET, "/v1/nope", None, None).await;
    assert_eq!(status.as_u16(), 404);

    let text = eventually("metrics show the hooks' calls", || async {
        let text = scrape(&server).await;
        let calls = sample(
            &text,
            "chathooks_hook_calls_total{plugin=\"recorder\",hook=\"after-message-sent\"}",
        );
        (calls >= Some(2.0)).then_some(text)
    })
    .await;
    for expected in [
        "# TYPE chathooks_http_requests_total counter",
        "chathooks_http_requests_total{method=\"POST\",route=\"/v1/conversations/{id}/messages\",status=\"201\"} 2",
        "chathooks_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "# TYPE chathooks_hook_duration_seconds histogram",
        "chathooks_hook_duration_seconds_bucket{plugin=\"recorder\",hook=\"before-message-sent\",le=\"+Inf\"} 2",
        "chathooks_hook_failures_total{plugin=\"hostile\",hook=\"before-message-sent\"} 1",
        "chathooks_hook_timeouts_total{plugin=\"hostile\",hook=\"before-message-sent\"} 1",
        "chathooks_plugin_state{plugin=\"recorder\",state=\"active\"} 1",
        "chathooks_websocket_connections 1",
        "chathooks_websocket_connections_total 1",
        "chathooks_dead_letters 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        sample(&text, "chathooks_outbox_depth").is_some(),
        "no outbox depth in\n{text}"
    );
    // The store's one writer was held for the writes above: SQLite's, or on PostgreSQL the writer mutex
    // of a server on its own.
    let busy = sample(&text, "chathooks_store_writer_busy_seconds_total");
    assert!(busy > Some(0.0), "no writer busy time in\n{text}");
    assert!(
        sample(
            &text,
            "chathooks_hook_duration_seconds_count{plugin=\"hostile\",hook=\"before-message-sent\"}"
        ) == Some(2.0),
        "{text}"
    );
    // The looping after-hook times out and its delivery waits for a retry: pending for hostile.
    eventually("hostile's failed delivery shows as pending", || async {
        let text = scrape(&server).await;
        let timeouts = sample(
            &text,
            "chathooks_hook_timeouts_total{plugin=\"hostile\",hook=\"after-message-sent\"}",
        );
        let pending = sample(&text, "chathooks_deliveries_pending{plugin=\"hostile\"}");
        (timeouts >= Some(1.0) && pending >= Some(1.0)).then_some(())
    })
    .await;

    ws.close().await;
    eventually("the closed WebSocket is no longer counted", || async {
        let text = scrape(&server).await;
        (sample(&text, "chathooks_websocket_connections") == Some(0.0)).then_some(())
    })
    .await;
    server.stop().await;
}

/// The HTTP request series a client can reach without any credentials: invented methods and paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_add_no_metric_series() {
    let server = TestServer::start().await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("chathooks_http_requests_total{"))
            .count()
    };
    invent(&server, 0..3).await;
    // Twice: the first scrape is counted (`GET /metrics`) only once it is answered.
    scrape(&server).await;
    let before = series(&scrape(&server).await);
    invent(&server, 3..23).await;
    let text = scrape(&server).await;
    assert!(
        !text.contains("XFOO") && !text.contains("nowhere"),
        "a label value a client chose:\n{text}"
    );
    assert_eq!(
        series(&text),
        before,
        "new series from invented requests:\n{text}"
    );
    for expected in [
        "chathooks_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 23",
        "chathooks_http_requests_total{method=\"other\",route=\"/v1/me\",status=\"405\"} 23",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    server.stop().await;
}

/// Requests with made-up methods `XFOO<i>`, to a made-up path and to a real route.
async fn invent(server: &TestServer, range: std::ops::Range<usize>) {
    for i in range {
        let method = must(Method::from_bytes(format!("XFOO{i}").as_bytes()), "method");
        for path in [format!("/nowhere/{i}"), "/v1/me".to_owned()] {
            let response = server
                .http
                .request(method.clone(), format!("{}{path}", server.base))
                .send()
                .await;
            assert!(
                must(response, "invented request")
                    .status()
                    .is_client_error()
            );
        }
    }
}

/// A plugin disabled by its circuit breaker keeps at most `max_plugin_backlog` deliveries; the events
/// beyond become dead letters an admin sees with the reason, and `/metrics` counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_plugins_backlog_is_capped_and_the_excess_is_visible_as_dead_letters() {
    let plugins = [chathooks_tests::fixture("hostile")];
    let server = TestServer::with_config(&plugins, |config| {
        config.max_plugin_backlog = 2;
        write_manifest(
            &config.plugins_dir,
            "hostile",
            "[limits]\nbreaker_failures = 1\nbreaker_cooldown_ms = 600000\n",
        );
    })
    .await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    server.send(&alice, &conv, "error").await;
    plugin_until(&server, "hostile", "disabled by its breaker", |p| {
        p["state"] == "disabled"
    })
    .await;
    for i in 0..4 {
        server.send(&alice, &conv, &format!("m{i}")).await;
    }
    // One scrape reads the database (the gauges) before the dispatcher's counters, so a dead letter
    // committed in between shows in the counter and not yet in the gauge: wait for a scrape with all three.
    let expected = [
        "chathooks_deliveries_dead_lettered_total{plugin=\"hostile\",reason=\"backlog\"} 3",
        "chathooks_dead_letters 3",
        "chathooks_deliveries_pending{plugin=\"hostile\"} 2",
    ];
    eventually(
        "three deliveries counted as dead letters, two pending",
        || async {
            let text = scrape(&server).await;
            expected.iter().all(|e| text.contains(e)).then_some(())
        },
    )
    .await;
    let letters = dead_letters(&server).await;
    assert_eq!(letters.len(), 3, "{letters:?}");
    for letter in &letters {
        assert_eq!(
            (letter["plugin"].clone(), letter["attempts"].clone()),
            ("hostile".into(), 0.into())
        );
        assert_eq!(
            letter["last_error"],
            "not queued: plugin hostile already had 2 deliveries waiting, the most a plugin may have \
             (--max-plugin-backlog), while disabled by its circuit breaker"
        );
    }
    let hostile = plugin_until(&server, "hostile", "2 pending", |p| {
        p["pending_deliveries"] == 2
    })
    .await;
    assert_eq!(hostile["state"], "disabled");
    server.stop().await;
}
