//! Tiered compilation through a real server: a plugin dropped into the folder serves at once from
//! Winch's code, then Cranelift's code for the same version takes over without a failed request or a
//! lost after-hook delivery; `--compiler cranelift` serves optimized code from the start.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chathooks::plugins::Compilers;

use crate::sandbox_support::{fixture_bytes, hash_of, install, plugin, recorded_all, serving};
use crate::server_support::{TestServer, str_field};

/// How long the optimized code may take to arrive: seconds for a Rust fixture on a busy machine.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_serves_on_winch_then_on_cranelift_losing_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let recorder = fixture_bytes("recorder");
    install(&server, "x.wasm", &recorder);
    serving(&server, "x", &hash_of(&recorder)).await;

    // Messages keep coming while the optimized code is compiled and swapped in.
    let mut sent = BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    let promoted = loop {
        let message = server.send(&alice, &conv, "during the swap").await;
        sent.insert(str_field(&message, "id"));
        if let Some(p) = plugin(&server, "x")
            .await
            .filter(|p| p["compiler"] == "cranelift")
        {
            break p;
        }
        assert!(Instant::now() < deadline, "x never ran on Cranelift's code");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    for _ in 0..3 {
        let message = server.send(&alice, &conv, "after the swap").await;
        sent.insert(str_field(&message, "id"));
    }
    recorded_all(&server, "x", &sent).await;
    // It started on Winch: the swap's timing is there, and the version is the one dropped in.
    assert!(promoted["optimized_after_ms"].is_u64(), "{promoted}");
    assert_eq!(promoted["hash"], hash_of(&recorder));
    assert_eq!(promoted["failures"], 0, "{promoted}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiler_cranelift_serves_optimized_code_from_the_start() {
    let server = TestServer::with_config(&[chathooks_tests::fixture("recorder")], |config| {
        config.compilers = Compilers::Cranelift;
    })
    .await;
    let recorder = plugin(&server, "recorder").await;
    let recorder = recorder.unwrap_or_default();
    assert_eq!(recorder["compiler"], "cranelift", "{recorder}");
    assert!(recorder["optimized_after_ms"].is_null(), "{recorder}");
    server.stop().await;
}
