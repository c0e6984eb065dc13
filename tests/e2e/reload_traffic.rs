//! Reloading under continuous traffic: two senders post messages without pause while both plugins are
//! replaced again and again (atomic renames and in-place rewrites). Every request succeeds, every
//! after-hook event is delivered exactly once (the counter plugin's count equals the number of messages;
//! the recorder has every message and every before-hook call), and the outbox ends empty.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::sandbox_support::{
    backlog, dead_letters, eventually, fixture_bytes, hash_of, install, plugins_dir, recorded_all,
    serving, variant,
};
use crate::server_support::{TestServer, must, str_field};

/// Replacements of each plugin during the traffic.
const SWAPS: u32 = 4;

/// Messages each sender posts at least.
const MIN_MESSAGES: usize = 20;

/// Sends messages `<prefix>-<n>` to `conv` until `stop` is set (and at least [`MIN_MESSAGES`]); returns
/// (id, body) of each. Every request must succeed and come back unmodified.
async fn sender(
    server: &TestServer,
    token: &str,
    conv: &str,
    prefix: &str,
    stop: &AtomicBool,
) -> Vec<(String, String)> {
    let mut sent = Vec::new();
    while sent.len() < MIN_MESSAGES || !stop.load(Ordering::Relaxed) {
        let body = format!("{prefix}-{}", sent.len());
        let message = server.send(token, conv, &body).await;
        assert_eq!(message["body"], body.as_str());
        sent.push((str_field(&message, "id"), body));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_under_traffic_loses_and_repeats_nothing() {
    let counter = fixture_bytes("only_sent");
    let recorder = fixture_bytes("recorder");
    let server = TestServer::start().await;
    // Budgets a busy machine never exhausts: a timed-out call would be retried, and counted twice.
    let generous = b"[limits]\nbefore_hook_ms = 5000\nafter_hook_ms = 10000\n";
    install(&server, "counter.toml", generous);
    install(&server, "rec.toml", generous);
    install(&server, "counter.wasm", &counter);
    install(&server, "rec.wasm", &recorder);
    serving(&server, "counter", &hash_of(&counter)).await;
    serving(&server, "rec", &hash_of(&recorder)).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let other = server.conversation(&bob, &[]).await;

    let stop = AtomicBool::new(false);
    let reloads = async {
        for n in 1..=SWAPS {
            // Alternate atomic renames and in-place rewrites, and the two plugins.
            for (name, bytes) in [("counter", &counter), ("rec", &recorder)] {
                let next = variant(bytes, n);
                if n % 2 == 0 {
                    install(&server, &format!("{name}.wasm"), &next);
                } else {
                    let path = plugins_dir(&server).join(format!("{name}.wasm"));
                    must(std::fs::write(path, &next), "rewrite plugin");
                }
                serving(&server, name, &hash_of(&next)).await;
            }
        }
        stop.store(true, Ordering::Relaxed);
    };
    let (a, b, ()) = tokio::join!(
        sender(&server, &alice, &conv, "a", &stop),
        sender(&server, &bob, &other, "b", &stop),
        reloads
    );
    let sent: Vec<(String, String)> = a.into_iter().chain(b).collect();

    eventually("every delivery is done", || async {
        (backlog(&server) == (Vec::new(), 0)).then_some(())
    })
    .await;
    let ids: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    recorded_all(&server, "rec", &ids).await;
    for (_, body) in &sent {
        assert!(
            server
                .kv("rec", &format!("before-message-sent:{body}"))
                .is_some(),
            "the before-hook saw {body}"
        );
    }
    let total = u64::try_from(sent.len()).unwrap_or_default();
    assert_eq!(
        server.kv("counter", "sent"),
        Some(Value::from(total)),
        "each of {total} events delivered exactly once"
    );
    assert!(dead_letters(&server).await.is_empty());
    server.stop().await;
}
