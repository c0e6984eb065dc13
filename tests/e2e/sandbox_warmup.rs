//! Interpreted plugins are warmed before they serve (issue 11, defect 6): the first call into a fresh
//! Python or JavaScript instance warms its interpreter, so a new version's first message used to be its
//! slowest. With a before-hook budget that only a warm instance meets (1 ms of CPU time: the Python filter's
//! cold first call takes 1-2 ms, a warm one a few tenths), the very first message after a load and after a
//! reload is filtered.

use serde_json::json;

use crate::languages::{built_examples, example_file};
use crate::sandbox_support::{hash_of, install, plugin_until, plugins_dir, serving, variant};
use crate::server_support::{ADMIN_KEY, TestServer, must};

/// The message each test sends, and what the profanity filter makes of it.
const SENT: (&str, &str) = ("what the heck", "what the ****");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_message_after_a_load_or_a_reload_is_filtered_by_an_interpreted_filter() {
    for lang in ["python", "js"] {
        let Some(dir) = built_examples(lang) else {
            eprintln!("skipping {lang}: its toolchain is missing");
            continue;
        };
        let wasm = must(
            std::fs::read(example_file(&dir, lang, "profanity-filter")),
            "read the filter",
        );
        let name = format!("{lang}_profanity_filter");
        let server = TestServer::start().await;
        let folder = plugins_dir(&server);
        must(
            std::fs::write(
                folder.join(format!("{name}.toml")),
                "[limits]\nbefore_hook_ms = 1\nbreaker_failures = 0\n",
            ),
            "write manifest",
        );
        must(
            std::fs::write(folder.join(format!("{name}.wasm")), &wasm),
            "copy plugin",
        );
        server
            .post_ok("/v1/admin/plugins/reload", ADMIN_KEY, json!({}))
            .await;
        plugin_until(&server, &name, "loaded", |p| p["state"] == "active").await;

        let alice = server.user("alice").await;
        server.user("bob").await;
        let conv = server.conversation(&alice, &["bob"]).await;
        let first = server.send(&alice, &conv, SENT.0).await;
        assert_eq!(
            first["body"], SENT.1,
            "{lang}: the first message after a load"
        );

        // A new version (same code, another hash). Compiling 18 MB of Python can outlast a polling
        // deadline on a busy machine, so the test waits for the rescan rather than for the watcher.
        let next = variant(&wasm, 1);
        install(&server, &format!("{name}.wasm"), &next);
        server
            .post_ok("/v1/admin/plugins/reload", ADMIN_KEY, json!({}))
            .await;
        serving(&server, &name, &hash_of(&next)).await;
        let first = server.send(&alice, &conv, SENT.0).await;
        assert_eq!(
            first["body"], SENT.1,
            "{lang}: the first message after a reload"
        );

        let status = plugin_until(&server, &name, "two calls", |p| p["calls"] == 2).await;
        assert_eq!(status["failures"], 0, "{lang}: {status}");
        server.stop().await;
    }
}
