//! The sandbox through a real server: the hostile fixture misbehaves in its before- and after-hooks (an
//! infinite loop, a memory bomb, deep recursion, a panic, a huge answer, a log flood in lines and one in
//! bytes, a KV flood). For each: the server keeps answering, the recorder next to it receives every event,
//! and the offender's failure is visible in `GET /v1/admin/plugins`. Then the circuit breaker: a plugin that keeps failing
//! is disabled (before-hooks skipped, deliveries waiting), and comes back after its cool-down, on a manual
//! clock that the test moves past it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chathooks::clock::ManualClock;
use serde_json::Value;

use crate::sandbox_support::{
    DEADLINE, backlog, dead_letters, healthy, plugin, plugin_until, recorded_all, settled,
    write_manifest,
};
use crate::server_support::{TestServer, str_field};

/// One misbehaviour: the message body that asks for it and how the admin API shows it.
struct Case {
    body: &'static str,
    /// What the hostile plugin's `last_error` contains after it (`None`: it does not fail).
    error: Option<&'static str>,
    /// Checks the hostile plugin's admin entry once the misbehaviour has happened.
    visible: fn(&Value) -> bool,
}

fn failed_with(p: &Value, text: &str) -> bool {
    p["failures"].as_u64().is_some_and(|n| n >= 2)
        && p["last_error"].as_str().is_some_and(|e| e.contains(text))
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            body: "loop",
            error: Some("timed out"),
            visible: |p| failed_with(p, "timed out") && p["timeouts"].as_u64() >= Some(2),
        },
        Case {
            body: "alloc",
            error: Some("memory cap"),
            visible: |p| failed_with(p, "memory cap"),
        },
        Case {
            body: "recurse",
            error: Some("trapped"),
            visible: |p| failed_with(p, "trapped"),
        },
        Case {
            body: "trap",
            error: Some("hostile: trap requested"),
            visible: |p| failed_with(p, "hostile: trap requested"),
        },
        Case {
            body: "huge",
            error: Some("more than its limit of 65536 bytes"),
            visible: |p| failed_with(p, "more than its limit of 65536 bytes"),
        },
        Case {
            // 50 MiB: the answer the attack used; refused, and the plugin goes on.
            body: "huge:50",
            error: Some("returned 52428800 bytes"),
            visible: |p| failed_with(p, "returned 52428800 bytes"),
        },
        Case {
            // Bigger than the plugin's memory: it cannot even be built, so the copy the host makes of an
            // answer is bounded by the memory cap.
            body: "huge:100",
            error: Some("memory cap"),
            visible: |p| failed_with(p, "memory cap"),
        },
        Case {
            body: "logflood",
            error: None,
            visible: |p| p["log_lines_dropped"].as_u64().is_some_and(|n| n > 5000),
        },
        Case {
            // 1,000 lines of 4,000 bytes in each hook: the line limit lets the first hook's through
            // (they are its burst); the byte burst (160 KiB) keeps all but about forty of the 2,000.
            body: "logbytes",
            error: None,
            visible: |p| {
                p["log_lines_dropped"].as_u64().is_some_and(|n| n > 1900)
                    && p["log_bytes_dropped"]
                        .as_u64()
                        .is_some_and(|n| n > 7_600_000)
            },
        },
        Case {
            body: "kvflood",
            error: Some("quota"),
            visible: |p| failed_with(p, "quota") && p["kv"]["keys"] == 100,
        },
    ]
}

/// Manifest for the hostile plugin in these tests: no circuit breaker (each case fails it repeatedly),
/// a small KV quota (so the flood is quick), and before- and after-hook budgets that a busy machine never
/// exhausts by accident but that make loops end soon.
const HOSTILE_MANIFEST: &str = "[limits]\nbreaker_failures = 0\nkv_max_keys = 100\n\
                                before_hook_ms = 1000\nafter_hook_ms = 1000\n";

/// A server with the recorder and the hostile plugin ([`HOSTILE_MANIFEST`]), alice's token and her
/// conversation with bob.
async fn hostile_beside_recorder() -> (TestServer, String, String) {
    let plugins = [
        chathooks_tests::fixture("recorder"),
        chathooks_tests::fixture("hostile"),
    ];
    let server = TestServer::with_config(&plugins, |config| {
        write_manifest(&config.plugins_dir, "hostile", HOSTILE_MANIFEST);
    })
    .await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    (server, alice, conv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaviour_fails_only_the_offender() {
    for case in cases() {
        let (server, alice, conv) = hostile_beside_recorder().await;

        // The misbehaving before-hook fails open: the message is stored as sent.
        let sent = server.send(&alice, &conv, case.body).await;
        assert_eq!(sent["body"], case.body, "{}: fail open", case.body);
        let hostile = plugin_until(&server, "hostile", case.body, case.visible).await;
        if let Some(error) = case.error {
            assert_ne!(hostile["state"], "active", "{}: {hostile}", case.body);
            assert!(
                hostile["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(error))
            );
        }

        // The server answers, the offender works again on a fresh instance, and the recorder got both
        // messages.
        assert!(healthy(&server).await, "{}", case.body);
        let fine = server.send(&alice, &conv, "fine").await;
        assert_eq!(fine["body"], "ok:fine", "{}: hostile recovers", case.body);
        let ids: BTreeSet<String> = [str_field(&sent, "id"), str_field(&fine, "id")].into();
        recorded_all(&server, "recorder", &ids).await;
        server.stop().await;
    }
}

/// A plugin asking WASI for sockets or files is refused each, and asking breaks nothing: the send that
/// ran the hook (on the request's worker, in place) stores what the plugin made of the refusals.
/// wasmtime-wasi runs these functions on a runtime of their own, which panicked on a worker in place
/// before they were wrapped (`plugins/host/wasi/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_reach_outside_its_sandbox_and_trying_breaks_nothing() {
    let (server, alice, conv) = hostile_beside_recorder().await;
    for _ in 0..2 {
        // Nothing else running, so the send runs its hooks in place.
        settled(&server).await;
        let sent = server.send(&alice, &conv, "escape").await;
        assert_eq!(
            sent["body"],
            "escape: udp refused, tcp refused, connect refused, file refused"
        );
        let ids: BTreeSet<String> = [str_field(&sent, "id")].into();
        recorded_all(&server, "recorder", &ids).await;
    }
    let hostile = plugin(&server, "hostile").await.expect("hostile is loaded");
    assert_eq!(hostile["state"], "active", "{hostile}");
    assert_eq!(hostile["failures"], 0, "{hostile}");
    server.stop().await;
}

/// The breaker's cool-down in the circuit breaker test.
const COOLDOWN: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_disables_a_failing_plugin_then_tries_it_again() {
    let plugins = [
        chathooks_tests::fixture("recorder"),
        chathooks_tests::fixture("hostile"),
    ];
    let clock = ManualClock::new();
    let server_clock = clock.clone();
    let server = TestServer::with_config(&plugins, |config| {
        write_manifest(
            &config.plugins_dir,
            "hostile",
            &format!(
                "[limits]\nbreaker_failures = 2\nbreaker_cooldown_ms = {}\nbefore_hook_ms = 1000\n",
                COOLDOWN.as_millis()
            ),
        );
        config.clock = Arc::new(server_clock);
    })
    .await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let broken = server.conversation(&alice, &["bob"]).await;
    let healthy_conv = server.conversation(&alice, &[]).await;

    // Its before-hook and after-hook both trap: two failures in a row disable it.
    let trap = server.send(&alice, &broken, "trap").await;
    let disabled = plugin_until(&server, "hostile", "disabled", |p| p["state"] == "disabled").await;
    assert_eq!(disabled["breaker_trips"], 1, "{disabled}");
    assert!(disabled["disabled_for_ms"].as_u64().is_some(), "{disabled}");
    let calls = disabled["calls"].clone();

    // While disabled (the clock stands still, so it stays disabled), its before-hook is skipped (fail
    // open) and its deliveries wait: nothing is dead-lettered, nothing is called.
    let skipped = server.send(&alice, &healthy_conv, "while-disabled").await;
    assert_eq!(skipped["body"], "while-disabled");
    let waiting = plugin(&server, "hostile").await.unwrap_or_default();
    assert_eq!(waiting["state"], "disabled", "{waiting}");
    assert_eq!(
        waiting["calls"], calls,
        "no calls while disabled: {waiting}"
    );
    assert!(
        waiting["pending_deliveries"].as_u64() >= Some(1),
        "{waiting}"
    );
    assert!(dead_letters(&server).await.is_empty());

    // After the cool-down a trial call is let through; a message it handles shows it is back. Each try
    // first moves the clock past a cool-down: a trial spent by the dispatcher on the trapping event's
    // retry only disables it for another one.
    let mut sent = vec![str_field(&trap, "id"), str_field(&skipped, "id")];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    for n in 0.. {
        clock.advance(COOLDOWN);
        let body = format!("ping-{n}");
        let message = server.send(&alice, &healthy_conv, &body).await;
        sent.push(str_field(&message, "id"));
        if message["body"] == format!("ok:{body}") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hostile never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Every event reached the recorder; hostile's deliveries in the healthy conversation all arrive.
    recorded_all(&server, "recorder", &sent.iter().cloned().collect()).await;
    crate::sandbox_support::eventually("only hostile may have deliveries waiting", || async {
        backlog(&server)
            .0
            .iter()
            .all(|(p, _)| p == "hostile")
            .then_some(())
    })
    .await;
    assert!(healthy(&server).await);
    server.stop().await;
}
