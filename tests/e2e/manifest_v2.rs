//! Manifest v2 with a real server and real plugins: a plugin reads its typed settings' defaults through
//! `config`; the admin list shows its version and description; a required setting without a value and a
//! default of the wrong type refuse the load with the setting's name (and line); `chathooks check`
//! prints the settings; a v1 manifest loads as before.

use std::path::Path;
use std::process::Command;

use chathooks_tests::{example, fixture, temp_dir};
use serde_json::{Value, json};

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::sandbox_support::plugin;
use crate::server_support::{TestServer, WsClient};

/// The welcome bot's manifest as v2: its greeting is a setting.
pub const WELCOME_V2: &str = r#"version = "2.1.0"
description = "Greets people added to a conversation"

[settings.greeting]
type = "string"
default = "Hello {name}, from the default"
description = "What the bot posts; {name} is who was added"

[settings.style]
type = "enum"
values = ["plain", "fancy"]
default = "plain"

[grants]
chat_post = true
chat_join = true
"#;

/// Adds `user` to a new conversation of `owner` and returns the welcome bot's greeting, seen live.
pub async fn greeting_for(server: &TestServer, owner: &str, user: &str) -> String {
    let token = server.user(user).await;
    let mut ws = server.ws(&token, None).await;
    let conv = server.conversation(owner, &[]).await;
    server
        .post_ok(
            &format!("/v1/conversations/{conv}/participants"),
            owner,
            json!({"user_ids": [user]}),
        )
        .await;
    let event = next_message_from(&mut ws, "bot.welcome_bot").await;
    event["payload"]["message"]["body"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn next_message_from(ws: &mut WsClient, sender: &str) -> Value {
    loop {
        let event = ws.next_of_kind("message.new").await;
        if event["payload"]["message"]["sender"]["id"] == sender {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reads_its_settings_defaults_and_the_admin_list_shows_its_version() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("welcome_bot"),
            name: "welcome_bot",
            manifest: Some(WELCOME_V2.to_owned()),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let listed = plugin(&server, "welcome_bot").await.expect("listed");
    assert_eq!(
        (
            &listed["state"],
            &listed["enabled"],
            &listed["version"],
            &listed["description"]
        ),
        (
            &json!("active"),
            &json!(true),
            &json!("2.1.0"),
            &json!("Greets people added to a conversation")
        ),
        "{listed}"
    );
    let alice = server.user("alice").await;
    assert_eq!(
        greeting_for(&server, &alice, "bob").await,
        "Hello BOB, from the default"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_setting_without_a_value_or_a_mistyped_default_refuses_the_load() {
    let dir = temp_dir();
    let only_sent = fixture("only_sent");
    plugins_folder(
        dir.path(),
        &[
            PluginFile {
                wasm: only_sent.clone(),
                name: "needs_token",
                manifest: Some(
                    "version = \"1.0\"\n[settings.token]\ntype = \"secret\"\nrequired = true\n"
                        .to_owned(),
                ),
            },
            PluginFile {
                wasm: only_sent.clone(),
                name: "bad_default",
                manifest: Some(
                    "version = \"1.0\"\n\n[settings.limit]\ntype = \"integer\"\ndefault = 2.5\n"
                        .to_owned(),
                ),
            },
            PluginFile {
                wasm: only_sent,
                name: "v1",
                manifest: Some("priority = 3\n[config]\nanything = [1, 2]\n".to_owned()),
            },
        ],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let needs = plugin(&server, "needs_token").await.expect("listed");
    assert_eq!(
        (&needs["state"], &needs["serving"]),
        (&json!("load-error"), &json!(false)),
        "{needs}"
    );
    let error = needs["load_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("setting `token` of plugin `needs_token` is required"),
        "{error}"
    );
    let bad = plugin(&server, "bad_default").await.expect("listed");
    let error = bad["load_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("line 5: settings.limit.default: must be a whole number"),
        "{error}"
    );
    // A v1 manifest: no version, loads as it always did.
    let v1 = plugin(&server, "v1").await.expect("listed");
    assert_eq!(
        (&v1["state"], &v1["version"], &v1["priority"]),
        (&json!("active"), &Value::Null, &json!(3)),
        "{v1}"
    );
    server.stop().await;
}

#[test]
fn check_prints_the_version_description_and_settings() {
    let dir = temp_dir();
    let wasm = dir.path().join("welcome_bot.wasm");
    std::fs::copy(example("welcome_bot"), &wasm).expect("copy");
    std::fs::write(dir.path().join("welcome_bot.toml"), WELCOME_V2).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args([Path::new("check"), &wasm])
        .output()
        .expect("run chathooks check");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for line in [
        "version:  2.1.0\n",
        "description: Greets people added to a conversation\n",
        "  greeting (string, default \"Hello {name}, from the default\"): What the bot posts; {name} is who was added\n",
        "  style (enum \"plain\", \"fancy\", default \"plain\")\n",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
}
