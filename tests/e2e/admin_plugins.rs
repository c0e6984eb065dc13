//! Operating plugins over the admin API, with a real server and real plugins: settings changed, checked
//! against the manifest's types and read by the plugin; disabled and enabled, both kept across a restart;
//! uploads checked as a load would be (garbage, a manifest mistake, a required setting without a value
//! are refused with the reason and the old version keeps serving) and written into the plugins folder.

use base64::Engine;
use chathooks_tests::{example, fixture, temp_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::manifest_v2::{WELCOME_V2, greeting_for};
use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::sandbox_support::{hash_of, plugin};
use crate::server_support::{ADMIN_KEY, TestServer};

async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.call(method, path, Some(ADMIN_KEY), body).await
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn setting<'a>(controls: &'a Value, name: &str) -> &'a Value {
    controls["settings"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_disabling_are_checked_applied_and_kept_across_a_restart() {
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
    let path = "/v1/admin/plugins/welcome_bot/settings";
    let (status, controls) = admin(&server, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{controls}");
    let greeting = setting(&controls, "greeting");
    assert_eq!(
        (
            &greeting["type"],
            &greeting["overridden"],
            &greeting["effective"]
        ),
        (
            &json!("string"),
            &json!(false),
            &json!("Hello {name}, from the default")
        ),
        "{controls}"
    );

    // A value of the wrong type, a value outside an enum, an undeclared setting: 422 naming it.
    for (patch, named) in [
        (
            json!({"greeting": 5}),
            "setting `greeting` must be a string",
        ),
        (
            json!({"style": "loud"}),
            "setting `style` must be one of \"plain\", \"fancy\"",
        ),
        (json!({"colour": "red"}), "setting `colour` is not declared"),
    ] {
        let (status, body) = admin(&server, Method::PATCH, path, Some(patch.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {body}");
        assert!(message(&body).contains(named), "{patch}: {body}");
    }
    let (status, _) = admin(
        &server,
        Method::PATCH,
        "/v1/admin/plugins/nobody/settings",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A good value is stored and the plugin reloaded with it.
    let (status, controls) = admin(
        &server,
        Method::PATCH,
        path,
        Some(json!({"greeting": "Hey {name}, from the admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{controls}");
    assert_eq!(controls["reload"]["change"], "replaced", "{controls}");
    assert_eq!(
        setting(&controls, "greeting")["value"],
        "Hey {name}, from the admin"
    );
    let alice = server.user("alice").await;
    assert_eq!(
        greeting_for(&server, &alice, "bob").await,
        "Hey BOB, from the admin"
    );

    // Disabled: unloaded, listed as off, its file still there.
    let (status, controls) = admin(
        &server,
        Method::POST,
        "/v1/admin/plugins/welcome_bot/disable",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{controls}");
    assert_eq!(
        (&controls["enabled"], &controls["reload"]["change"]),
        (&json!(false), &json!("disabled"))
    );
    let listed = plugin(&server, "welcome_bot").await.expect("still listed");
    assert_eq!(
        (&listed["state"], &listed["enabled"], &listed["serving"]),
        (&json!("off"), &json!(false), &json!(false)),
        "{listed}"
    );
    assert!(
        server
            .running
            .state
            .chat
            .registry()
            .get("welcome_bot")
            .is_none()
    );
    // A rescan leaves it off.
    let (status, _) = admin(&server, Method::POST, "/v1/admin/plugins/reload", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        server
            .running
            .state
            .chat
            .registry()
            .get("welcome_bot")
            .is_none()
    );
    server.stop().await;

    // After a restart: still off, and the setting still set.
    let server = server_on(dir.path(), |_| {}).await;
    let listed = plugin(&server, "welcome_bot").await.expect("listed");
    assert_eq!(listed["state"], "off", "{listed}");
    let (status, controls) = admin(
        &server,
        Method::POST,
        "/v1/admin/plugins/welcome_bot/enable",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{controls}");
    assert_eq!(
        (&controls["enabled"], &controls["reload"]["change"]),
        (&json!(true), &json!("loaded"))
    );
    let alice = server.user("erin").await;
    assert_eq!(
        greeting_for(&server, &alice, "carol").await,
        "Hey CAROL, from the admin"
    );

    // `null` takes the setting back to its default.
    let (status, controls) = admin(
        &server,
        Method::PATCH,
        path,
        Some(json!({"greeting": null})),
    )
    .await;
    assert_eq!(
        (status, &setting(&controls, "greeting")["overridden"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(
        greeting_for(&server, &alice, "dave").await,
        "Hello DAVE, from the default"
    );
    server.stop().await;
}

fn upload_body(wasm: &[u8], manifest: Option<&str>, settings: Option<Value>) -> Value {
    json!({
        "wasm": base64::engine::general_purpose::STANDARD.encode(wasm),
        "manifest": manifest,
        "settings": settings,
    })
}

const NEEDS_TOKEN: &str =
    "version = \"1.0.0\"\n[settings.token]\ntype = \"secret\"\nrequired = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_like_a_load_and_a_bad_one_leaves_the_old_version_serving() {
    let dir = temp_dir();
    plugins_folder(dir.path(), &[]);
    let server = server_on(dir.path(), |_| {}).await;
    let folder = dir.path().join("plugins");
    let only_sent = std::fs::read(fixture("only_sent")).expect("read fixture");
    let path = "/v1/admin/plugins/counter";

    // Refused, nothing written: garbage, a manifest mistake, a required setting without a value.
    for (body, says) in [
        (
            upload_body(b"garbage", None, None),
            "not a WebAssembly file",
        ),
        (
            upload_body(&only_sent, Some("[grants]\nschedular = true\n"), None),
            "schedular",
        ),
        (
            upload_body(&only_sent, Some(NEEDS_TOKEN), None),
            "setting `token` of plugin `counter` is required",
        ),
        (
            upload_body(&only_sent, Some(NEEDS_TOKEN), Some(json!({"token": 7}))),
            "setting `token` must be a string",
        ),
        (json!({"wasm": "not base64!"}), "wasm: not base64"),
    ] {
        let (status, answer) = admin(&server, Method::PUT, path, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(message(&answer).contains(says), "{says}: {answer}");
    }
    assert!(!folder.join("counter.wasm").exists() && !folder.join("counter.toml").exists());
    assert!(plugin(&server, "counter").await.is_none());

    // A good upload with its secret: written, loaded at once, the secret never shown back.
    let (status, answer) = admin(
        &server,
        Method::PUT,
        path,
        Some(upload_body(
            &only_sent,
            Some(NEEDS_TOKEN),
            Some(json!({"token": "s3cret"})),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (&answer["reload"]["change"], &answer["reload"]["hash"]),
        (&json!("loaded"), &json!(hash_of(&only_sent)))
    );
    let token = setting(&answer, "token");
    assert_eq!(
        (&token["overridden"], &token["value"]),
        (&json!(true), &Value::Null),
        "{answer}"
    );
    assert!(!answer.to_string().contains("s3cret"));
    assert_eq!(
        std::fs::read(folder.join("counter.wasm")).ok(),
        Some(only_sent.clone())
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("counter.toml"))
            .ok()
            .as_deref(),
        Some(NEEDS_TOKEN)
    );
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    server.send(&alice, &conv, "one").await;
    assert_eq!(server.wait_kv("counter", "sent").await, json!(1));

    // A bad upload now: refused, the running version and its files stay.
    let (status, answer) = admin(
        &server,
        Method::PUT,
        path,
        Some(upload_body(b"\0asm\x0d\0\x01\0", Some(NEEDS_TOKEN), None)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let listed = plugin(&server, "counter").await.expect("listed");
    assert_eq!(
        (&listed["state"], &listed["hash"]),
        (&json!("active"), &json!(hash_of(&only_sent))),
        "{listed}"
    );
    assert_eq!(
        std::fs::read(folder.join("counter.wasm")).ok(),
        Some(only_sent.clone())
    );

    // Another component under the same name replaces it, keeping the stored secret. Its body is over
    // the server's usual 64 KiB body limit: the upload route takes up to 64 MiB.
    assert!(
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(fixture("recorder")).expect("read"))
            .len()
            > 64 << 10
    );
    let recorder = std::fs::read(fixture("recorder")).expect("read fixture");
    let (status, answer) = admin(
        &server,
        Method::PUT,
        path,
        Some(upload_body(&recorder, Some(NEEDS_TOKEN), None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["reload"]["change"], "replaced", "{answer}");
    // A bad name is refused.
    let (status, answer) = admin(
        &server,
        Method::PUT,
        "/v1/admin/plugins/.hidden",
        Some(upload_body(&only_sent, None, None)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    server.stop().await;
}
