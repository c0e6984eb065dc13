//! Hot reload through a real server watching its plugins folder: a plugin dropped in loads, a replaced
//! one changes behaviour, a deleted one unloads, a changed manifest reapplies its settings, garbage
//! leaves the old version serving (and says why), a slow piecewise copy is never loaded half-way, and
//! `--no-watch` leaves it to `POST /v1/admin/plugins/reload`.

use std::io::Write;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::sandbox_support::{
    backlog, eventually, fixture_bytes, hash_of, install, plugin, plugin_until, plugins,
    plugins_dir, serving,
};
use crate::server_support::{ADMIN_KEY, TestServer, must, str_field};

/// `plugin`'s KV value `key` as JSON.
fn kv(server: &TestServer, plugin: &str, key: &str) -> Option<Value> {
    server.kv(plugin, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_load_change_behaviour_and_unload_as_their_files_change() {
    let server = TestServer::with_plugins(&[chathooks_tests::fixture("recorder")]).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    // A before-hook budget a busy machine does not exhaust by accident, for both versions of `x`.
    install(&server, "x.toml", b"[limits]\nbefore_hook_ms = 5000\n");

    // Dropped in (renamed into place): `x` counts messages.
    let counter = fixture_bytes("only_sent");
    install(&server, "x.wasm", &counter);
    let x = serving(&server, "x", &hash_of(&counter)).await;
    assert_eq!(x["state"], "active");
    assert_eq!(x["hooks"], serde_json::json!(["after-message-sent"]));
    server.send(&alice, &conv, "one").await;
    eventually("x counts the message", || async {
        (kv(&server, "x", "sent") == Some(Value::from(1))).then_some(())
    })
    .await;

    // Replaced in place by another plugin: `x` now records instead of counting.
    let recorder = fixture_bytes("recorder");
    must(
        std::fs::write(plugins_dir(&server).join("x.wasm"), &recorder),
        "overwrite x.wasm",
    );
    serving(&server, "x", &hash_of(&recorder)).await;
    let two = server.send(&alice, &conv, "two").await;
    server.wait_kv("x", "before-message-sent:two").await;
    eventually("x records the message", || async {
        crate::sandbox_support::recorded_messages(&server, "x")
            .contains(&str_field(&two, "id"))
            .then_some(())
    })
    .await;
    assert_eq!(
        kv(&server, "x", "sent"),
        Some(Value::from(1)),
        "no longer counts"
    );

    // Deleted: unloaded; later events are not owed to it.
    must(
        std::fs::remove_file(plugins_dir(&server).join("x.wasm")),
        "delete x.wasm",
    );
    eventually("x is unloaded", || async {
        plugin(&server, "x").await.is_none().then_some(())
    })
    .await;
    let three = server.send(&alice, &conv, "three").await;
    let ids = [str_field(&three, "id")].into();
    crate::sandbox_support::recorded_all(&server, "recorder", &ids).await;
    assert!(
        !crate::sandbox_support::recorded_messages(&server, "x").contains(&str_field(&three, "id"))
    );
    assert!(backlog(&server).0.iter().all(|(p, _)| p != "x"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_manifest_reapplies_settings_and_limits() {
    let server = TestServer::with_plugins(&[chathooks_tests::fixture("hostile")]).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let messages = format!("/v1/conversations/{conv}/messages");
    let before = plugin(&server, "hostile").await.unwrap_or_default();
    assert_eq!(before["fail"], "open");

    let manifest = plugins_dir(&server).join("hostile.toml");
    must(
        std::fs::write(
            &manifest,
            "fail = \"closed\"\n[limits]\nbefore_hook_ms = 20\nkv_max_keys = 7\n",
        ),
        "write manifest",
    );
    let after = plugin_until(&server, "hostile", "fail closed", |p| p["fail"] == "closed").await;
    assert_eq!(after["limits"]["before_hook_ms"], 20);
    assert_eq!(after["limits"]["kv_max_keys"], 7);
    assert_eq!(after["hash"], before["hash"], "same bytes, new settings");
    let (status, answer) = server
        .call(
            Method::POST,
            &messages,
            Some(&alice),
            Some(serde_json::json!({"body": "trap"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "fail closed now: {answer}");

    // A manifest that cannot be read is a load error; the running version keeps its settings.
    must(
        std::fs::write(&manifest, "fail = \"sideways\"\n"),
        "write bad manifest",
    );
    let broken = plugin_until(&server, "hostile", "load error", |p| {
        p["state"] == "load-error"
    })
    .await;
    assert!(
        broken["load_error"]
            .as_str()
            .is_some_and(|e| e.contains("hostile.toml")),
        "{broken}"
    );
    assert_eq!(
        (broken["serving"].clone(), broken["fail"].clone()),
        (Value::from(true), Value::from("closed"))
    );

    must(std::fs::remove_file(&manifest), "remove manifest");
    let open = plugin_until(&server, "hostile", "back to defaults", |p| {
        p["fail"] == "open" && p["state"] != "load-error"
    })
    .await;
    assert_eq!(open["limits"]["before_hook_ms"], 50);
    let sent = server.send(&alice, &conv, "trap").await;
    assert_eq!(sent["body"], "trap", "fail open again");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_fails_to_load_leaves_the_old_version_serving() {
    let counter = fixture_bytes("only_sent");
    let server = TestServer::start().await;
    install(&server, "x.wasm", &counter);
    let good = hash_of(&counter);
    serving(&server, "x", &good).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let path = plugins_dir(&server).join("x.wasm");

    let recorder = fixture_bytes("recorder");
    let bad: [(&str, Vec<u8>, &str); 3] = [
        (
            "garbage",
            b"this is not WebAssembly".to_vec(),
            "not a WebAssembly file",
        ),
        (
            "a core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module",
        ),
        (
            "a truncated component",
            recorder[..recorder.len() / 2].to_vec(),
            "invalid component",
        ),
    ];
    for (n, (what, bytes, reason)) in bad.into_iter().enumerate() {
        must(std::fs::write(&path, &bytes), "write bad plugin");
        let x = plugin_until(&server, "x", what, |p| {
            p["state"] == "load-error"
                && p["load_error"].as_str().is_some_and(|e| e.contains(reason))
        })
        .await;
        assert_eq!(
            (x["serving"].clone(), x["hash"].clone()),
            (Value::from(true), Value::from(good.as_str())),
            "{what}: {x}"
        );
        server.send(&alice, &conv, what).await;
        let sent = u64::try_from(n + 1).unwrap_or_default();
        eventually(&format!("{what}: the old version still counts"), || async {
            (server.kv("x", "sent") == Some(Value::from(sent))).then_some(())
        })
        .await;
    }

    // A good file again: loaded, and the load error is gone.
    install(&server, "x.wasm", &recorder);
    let x = serving(&server, "x", &hash_of(&recorder)).await;
    assert_eq!(
        (x["state"].clone(), x["load_error"].clone()),
        (Value::from("active"), Value::Null)
    );
    server.stop().await;
}

/// Writes `bytes` into `path` in `chunks` pieces with `pause` between them (truncating first), as a slow
/// copy does; checks after each piece that the plugin `name` still serves `old_hash` and has no load
/// error.
async fn slow_copy(
    server: &TestServer,
    name: &str,
    old_hash: &str,
    bytes: &[u8],
    chunks: usize,
    pause: Duration,
) {
    let path = plugins_dir(server).join(format!("{name}.wasm"));
    let mut file = must(std::fs::File::create(&path), "truncate");
    let pieces: Vec<&[u8]> = bytes.chunks(bytes.len().div_ceil(chunks)).collect();
    for (i, piece) in pieces.iter().enumerate() {
        must(file.write_all(piece), "write piece");
        must(file.flush(), "flush");
        if i + 1 == pieces.len() {
            break;
        }
        tokio::time::sleep(pause).await;
        let p = plugin(server, name).await.unwrap_or_default();
        assert_eq!(p["hash"], old_hash, "never loaded half-way: {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_piecewise_copy_is_never_loaded_half_way() {
    let counter = fixture_bytes("only_sent");
    let recorder = fixture_bytes("recorder");
    let server = TestServer::start().await;
    install(&server, "x.wasm", &counter);
    serving(&server, "x", &hash_of(&counter)).await;

    // Pieces closer together than the debounce window: nothing is even tried until the copy is done.
    slow_copy(
        &server,
        "x",
        &hash_of(&counter),
        &recorder,
        20,
        Duration::from_millis(40),
    )
    .await;
    let x = serving(&server, "x", &hash_of(&recorder)).await;
    assert_eq!(
        (x["state"].clone(), x["load_error"].clone()),
        (Value::from("active"), Value::Null)
    );

    // Pieces far apart: a half file may be tried and refused, but the running version keeps serving
    // and the finished file loads.
    let next = crate::sandbox_support::variant(&counter, 1);
    slow_copy(
        &server,
        "x",
        &hash_of(&recorder),
        &next,
        3,
        Duration::from_millis(800),
    )
    .await;
    let x = serving(&server, "x", &hash_of(&next)).await;
    assert_eq!(
        (x["state"].clone(), x["load_error"].clone()),
        (Value::from("active"), Value::Null)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_watching_the_admin_reload_rescans() {
    let server = TestServer::with_config(&[], |config| config.watch = false).await;
    let watching = TestServer::start().await;
    let counter = fixture_bytes("only_sent");
    install(&server, "x.wasm", &counter);
    install(&watching, "x.wasm", &counter);
    // Not watched: the file sits there, for as long as a watching server takes to load the same file.
    serving(&watching, "x", &hash_of(&counter)).await;
    watching.stop().await;
    assert!(plugins(&server).await.is_empty());

    let reload = || async {
        let (status, body) = server
            .call(
                Method::POST,
                "/v1/admin/plugins/reload",
                Some(ADMIN_KEY),
                None,
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
        body
    };
    let body = reload().await;
    assert_eq!(body["changes"][0]["name"], "x");
    assert_eq!(body["changes"][0]["change"], "loaded");
    assert_eq!(body["plugins"][0]["hash"], hash_of(&counter));
    assert_eq!(reload().await["changes"][0]["change"], "unchanged");

    must(
        std::fs::write(plugins_dir(&server).join("x.wasm"), b"junk"),
        "write junk",
    );
    let body = reload().await;
    assert_eq!(body["changes"][0]["change"], "failed");
    assert_eq!(body["plugins"][0]["state"], "load-error");
    assert_eq!(body["plugins"][0]["serving"], true);

    must(
        std::fs::remove_file(plugins_dir(&server).join("x.wasm")),
        "remove",
    );
    let body = reload().await;
    assert_eq!(body["changes"][0]["change"], "unloaded");
    assert_eq!(body["plugins"], serde_json::json!([]));
    server.stop().await;
}
