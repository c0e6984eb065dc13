//! Outbound HTTP through `webhook-bridge`: a granted local server gets the CometChat-shaped, signed
//! payload; a server the manifest does not grant gets nothing and the plugin's call is denied.

use std::time::Duration;

use chathooks::powers::hmac::signature;
use chathooks_tests::{example, temp_dir};
use serde_json::json;

use crate::powers_support::{PluginFile, Recorder, plugins_folder, server_on};
use crate::server_support::{ADMIN_KEY, PATIENCE};

fn manifest(url: &str, granted: &str) -> String {
    format!(
        "[config]\nurl = \"{url}\"\nsecret = \"s3cret\"\napp_id = \"app1\"\n\n[grants]\nhttp_hosts = [\"{granted}\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_a_granted_host_works_and_to_another_is_denied() {
    let granted = Recorder::start().await;
    let other = Recorder::start().await;
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[
            PluginFile {
                wasm: example("webhook_bridge"),
                name: "webhook_bridge",
                manifest: Some(manifest(&granted.url("/hook"), &granted.addr.to_string())),
            },
            PluginFile {
                wasm: example("webhook_bridge"),
                name: "sneaky_bridge",
                manifest: Some(manifest(&other.url("/steal"), &granted.addr.to_string())),
            },
        ],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let sent = server.send(&alice, &conv, "hello webhook").await;

    // The granted consumer gets message_sent (after conversation_created), signed.
    let received = granted.wait_for(2).await;
    let hook = received
        .iter()
        .find(|r| r.header("x-chathooks-trigger") == "message_sent")
        .cloned()
        .unwrap_or_else(|| panic!("no message_sent among {received:?}"));
    assert_eq!(hook.uri, "/hook");
    assert_eq!(hook.header("content-type"), "application/json");
    assert_eq!(
        hook.header("x-chathooks-signature"),
        signature("s3cret", &hook.body)
    );
    let body = hook.json();
    assert_eq!(body["trigger"], json!("message_sent"));
    assert_eq!(body["appId"], json!("app1"));
    let message = &body["data"]["message"];
    assert_eq!(message["id"], sent["id"]);
    assert_eq!(message["sender"], json!("alice"));
    assert_eq!(message["receiverType"], json!("group"));
    assert_eq!(message["receiver"], json!(conv));
    assert_eq!(message["data"]["text"], json!("hello webhook"));
    assert_eq!(
        message["data"]["entities"]["sender"]["entity"]["uid"],
        json!("alice")
    );

    // The other one was never called: the plugin's requests were denied (and its events retried).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let plugins = server.get_ok("/v1/admin/plugins", ADMIN_KEY).await;
        let sneaky = plugins
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "sneaky_bridge")
            .cloned()
            .unwrap_or_default();
        let error = sneaky["last_error"].as_str().unwrap_or_default().to_owned();
        if error.contains("http: denied") {
            assert!(error.contains(&other.addr.to_string()), "{error}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no denial recorded: {sneaky}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(other.received().is_empty(), "{:?}", other.received());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_an_answer_does_not_count_against_the_time_budget() {
    let slow = Recorder::start().await;
    slow.delay(700);
    let dir = temp_dir();
    let mut text = manifest(&slow.url("/slow"), &slow.addr.to_string());
    text.push_str("\n[limits]\nafter_hook_ms = 200\n");
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("webhook_bridge"),
            name: "webhook_bridge",
            manifest: Some(text),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let alice = server.user("alice").await;
    server.conversation(&alice, &[]).await;
    // group_created: the answer takes 700 ms, the budget is 200 ms, the delivery still succeeds.
    slow.wait_for(1).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let plugins = server.get_ok("/v1/admin/plugins", ADMIN_KEY).await;
        let bridge = &plugins[0];
        assert_eq!(bridge["timeouts"], json!(0), "{bridge}");
        assert_eq!(bridge["failures"], json!(0), "{bridge}");
        if bridge["calls"].as_u64() >= Some(1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{bridge}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slow.received().len(), 1, "delivered once, not retried");
    server.stop().await;
}
