//! One running server with a plugin pair in every guest language at once: the profanity filter and the
//! message counter of Rust, Python, JavaScript and C, all loaded side by side from one plugins folder,
//! each acting on the same message sent over HTTP.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use crate::languages::{built_examples, example_file};
use crate::sandbox_support::{eventually, plugin, plugin_until, plugins_dir};
use crate::server_support::{ADMIN_KEY, TestServer, str_field};

/// The guest languages, each with the name its plugins get in the plugins folder.
const LANGS: [&str; 4] = ["rust", "python", "js", "c"];

/// The plugin name (file stem) of `example` built in `lang`.
fn plugin_name(lang: &str, example: &str) -> String {
    let stem = example.replace('-', "_");
    if lang == "rust" {
        stem
    } else {
        format!("{lang}_{stem}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_plugin_pair_per_language_each_acts_on_the_same_message() {
    // Every language is needed here: a missing toolchain skips the whole test (or fails it in CI).
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for lang in LANGS {
        let Some(dir) = built_examples(lang) else {
            eprintln!("skipping: the {lang} toolchain is missing");
            return;
        };
        for example in ["profanity-filter", "message-stats"] {
            files.push((
                plugin_name(lang, example),
                example_file(&dir, lang, example),
            ));
        }
    }
    let server = TestServer::start().await;
    let plugins_dir = plugins_dir(&server);
    for (name, wasm) in &files {
        // Budgets a busy CI machine cannot exhaust: the first call into a fresh Python or JavaScript
        // interpreter warms it. Priorities (lowest first) run the filters as C, JavaScript, Python, Rust.
        let priority = ["c_", "js_", "python_"]
            .iter()
            .position(|prefix| name.starts_with(prefix))
            .unwrap_or(3);
        let manifest = format!(
            "priority = {priority}\n[limits]\nbefore_hook_ms = 5000\nafter_hook_ms = 10000\n"
        );
        std::fs::write(plugins_dir.join(format!("{name}.toml")), manifest).expect("write manifest");
        std::fs::copy(wasm, plugins_dir.join(format!("{name}.wasm"))).expect("copy plugin");
    }
    server
        .post_ok("/v1/admin/plugins/reload", ADMIN_KEY, json!({}))
        .await;
    for (name, _) in &files {
        plugin_until(&server, name, "active", |p| p["state"] == "active").await;
    }

    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let sent = server
        .post_ok(
            &format!("/v1/conversations/{conv}/messages"),
            &alice,
            json!({"body": "what the HECK is this"}),
        )
        .await;
    // The first filter to run (C) masked the word; the others saw the masked text and allowed it.
    assert_eq!(str_field(&sent, "body"), "what the **** is this", "{sent}");

    for lang in LANGS {
        // Each language's counter counted this one message in its own KV namespace.
        let counter = plugin_name(lang, "message-stats");
        let counted = server
            .wait_kv(&counter, &format!("conversation:{conv}"))
            .await;
        assert_eq!(counted, json!(1), "{counter} for conversation {conv}");
        // The two counters are two KV calls: the sender's may land a moment after the conversation's.
        let by_alice = server.wait_kv(&counter, "user:alice").await;
        assert_eq!(by_alice, json!(1), "{counter} by alice");
        // Each language's filter was called for it, and did not fail.
        let filter = plugin_name(lang, "profanity-filter");
        let status: Value = plugin(&server, &filter).await.expect("filter listed");
        assert_eq!(status["calls"], json!(1), "{filter}: {status}");
        assert_eq!(status["failures"], json!(0), "{filter}: {status}");
    }

    // A message made only of blocked words is rejected by the first filter: nothing is stored, so no
    // counter counts it; the next message is each counter's second.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/v1/conversations/{conv}/messages"),
            Some(&alice),
            Some(json!({"body": "darn!"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{body}");
    assert!(
        body.to_string()
            .contains("message contains only blocked words"),
        "{body}"
    );
    server.send(&alice, &conv, "hello").await;
    for lang in LANGS {
        let counter = plugin_name(lang, "message-stats");
        eventually(
            &format!("{counter} counts the second stored message"),
            || async { (server.kv(&counter, "user:alice") == Some(json!(2))).then_some(()) },
        )
        .await;
        let key = format!("conversation:{conv}");
        assert_eq!(server.kv(&counter, &key), Some(json!(2)), "{counter}");
    }
    server.stop().await;
}
