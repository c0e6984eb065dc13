//! A plugin built against the frozen WIT 0.2.0 keeps loading and working on a 0.3.0 server:
//! `v0-2-filter`, built with `wit-bindgen` against `wit/versions/0.2.0/`, still gets the `participants`
//! list 0.3.0 hooks no longer take, and conversations that still list `participant-ids` and `admin-ids`;
//! the server fills them in from the conversation's members (`host/src/plugins/downgrade.rs`).

use std::path::Path;
use std::process::Command;

use chathooks_tests::{fixture, temp_dir};
use reqwest::Method;
use serde_json::{Value, json};

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::sandbox_support::plugin;
use crate::server_support::{TestServer, str_field};

/// What the fixture's after-hook stored for `message`: the ids it was given.
async fn ids_seen(server: &TestServer, message: &Value) -> Value {
    let key = format!("ids:{}", str_field(message, "id"));
    server.wait_kv("v0_2_filter", &key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_wit_0_2_0_gets_participants_and_admin_ids() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: fixture("v0_2_filter"),
            name: "v0_2_filter",
            manifest: None,
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let status = plugin(&server, "v0_2_filter").await.expect("listed");
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(
        status["hooks"],
        json!(["before-message-sent", "after-message-sent"]),
        "{status}"
    );

    let alice = server.user("alice").await;
    for other in ["bob", "carol", "dave"] {
        server.user(other).await;
    }
    let conv = server.conversation(&alice, &["bob", "carol"]).await;
    let messages = format!("/v1/conversations/{conv}/messages");

    // Its before-hook rejects ...
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
        str_field(&answer["error"], "message").contains("v0-2-filter: forbidden"),
        "{answer}"
    );

    // ... and modifies, counting the participants list it was given.
    let sent = server.send(&alice, &conv, "hello").await;
    assert_eq!(sent["body"], "hello [3]", "{sent}");

    // Its after-hook got the conversation's participant and admin ids, and the same participants.
    assert_eq!(
        ids_seen(&server, &sent).await,
        json!({
            "participant_ids": ["alice", "bob", "carol"],
            "admin_ids": ["alice"],
            "participants": ["alice", "bob", "carol"],
            "admins": ["alice"],
        })
    );

    // A member who joins shows up in both hooks' arguments from then on.
    server
        .post_ok(
            &format!("/v1/conversations/{conv}/participants"),
            &alice,
            json!({"user_ids": ["dave"]}),
        )
        .await;
    let again = server.send(&alice, &conv, "again").await;
    assert_eq!(again["body"], "again [4]", "{again}");
    assert_eq!(
        ids_seen(&server, &again).await,
        json!({
            "participant_ids": ["alice", "bob", "carol", "dave"],
            "admin_ids": ["alice"],
            "participants": ["alice", "bob", "carol", "dave"],
            "admins": ["alice"],
        })
    );

    let status = plugin(&server, "v0_2_filter").await.expect("listed");
    assert_eq!(status["failures"], 0, "{status}");
    server.stop().await;
}

#[test]
fn check_names_wit_0_2_0_as_an_earlier_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args([Path::new("check"), &fixture("v0_2_filter")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run chathooks: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("wit:     chathooks:plugin@0.2.0 (an earlier version, still loaded; the newest is 0.3.0)"),
        "{text}"
    );
    assert!(text.contains("chathooks:plugin/kv@0.2.0"), "{text}");
}
