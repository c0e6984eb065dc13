//! Outbound HTTP through `webhook-bridge`: a granted local server gets the CometChat-shaped, signed
//! payload; a server the manifest does not grant gets nothing and the plugin's call is denied; a
//! before-hook (`flood`'s `fetch`) makes its request inline with the send and gets the answer. The same
//! over HTTPS with a certificate authority made in the test: trusted through `http_ca`, a certificate
//! from an unknown issuer or for another name is refused and the plugin is told it was the certificate;
//! the push gateway over HTTPS; a bad CA file stops the server.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chathooks::powers::hmac::signature;
use chathooks_tests::{example, fixture, temp_dir};
use serde_json::json;

use crate::powers_support::{PluginFile, Recorder, TestCa, plugins_folder, server_on};
use crate::sandbox_support::plugin_until;
use crate::server_support::{ADMIN_KEY, PATIENCE, must};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_before_hook_gets_its_answer_inline_with_the_send() {
    let target = Recorder::start().await;
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: fixture("flood"),
            name: "flood",
            manifest: Some(format!("[grants]\nhttp_hosts = [\"{}\"]\n", target.addr)),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    // The request is spawned on the server's runtime from the send's blocking work, which waits for it:
    // a send running on an async worker that kept the spawned task to itself would wait out the timeout.
    for i in 0..3 {
        let url = target.url(&format!("/inline/{i}"));
        let sent = server.send(&alice, &conv, &format!("fetch {url}")).await;
        assert_eq!(sent["body"], json!("fetched 200"), "{sent}");
    }
    let paths: Vec<String> = target.received().into_iter().map(|r| r.uri).collect();
    assert_eq!(paths, ["/inline/0", "/inline/1", "/inline/2"]);
    server.stop().await;
}

/// `webhook_bridge` as plugin `name`, posting to `url` with `granted` in its `http_hosts`.
fn bridge<'a>(name: &'a str, url: &str, granted: &str) -> PluginFile<'a> {
    PluginFile {
        wasm: example("webhook_bridge"),
        name,
        manifest: Some(manifest(url, granted)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_reaches_a_granted_host_when_the_server_trusts_its_ca() {
    let ca = TestCa::new("chathooks test CA");
    let granted = Recorder::start_tls(ca.server(&["127.0.0.1"])).await;
    let other = Recorder::start_tls(ca.server(&["127.0.0.1"])).await;
    let dir = temp_dir();
    let ca_file = ca.write_pem(dir.path(), "test-ca.pem");
    let allowed = granted.addr.to_string();
    plugins_folder(
        dir.path(),
        &[
            bridge("webhook_bridge", &granted.url("/hook"), &allowed),
            bridge("sneaky_bridge", &other.url("/steal"), &allowed),
        ],
    );
    let server = server_on(dir.path(), |config| config.http_ca = Some(ca_file)).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let sent = server.send(&alice, &conv, "hello over tls").await;

    let received = granted.wait_for(2).await;
    let hook = received
        .iter()
        .find(|r| r.header("x-chathooks-trigger") == "message_sent")
        .cloned()
        .unwrap_or_else(|| panic!("no message_sent among {received:?}"));
    assert_eq!(hook.uri, "/hook");
    assert_eq!(
        hook.header("x-chathooks-signature"),
        signature("s3cret", &hook.body)
    );
    assert_eq!(hook.json()["data"]["message"]["id"], sent["id"]);

    // Trusting the certificate does not widen the host list.
    let sneaky = plugin_until(&server, "sneaky_bridge", "an http denial", |p| {
        p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("http: denied"))
    })
    .await;
    let error = sneaky["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(&other.addr.to_string()), "{error}");
    assert!(other.received().is_empty(), "{:?}", other.received());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_certificate_failures_tell_the_plugin_it_was_the_certificate() {
    let trusted = TestCa::new("chathooks test CA");
    let stranger = TestCa::new("a stranger's CA");
    // Signed by an authority the server was not told about.
    let unknown = Recorder::start_tls(stranger.server(&["127.0.0.1"])).await;
    // Signed by the trusted authority, for another name.
    let misnamed = Recorder::start_tls(trusted.server(&["example.invalid"])).await;
    // Plain HTTP addressed as https://: never downgraded.
    let plain = Recorder::start().await;
    let plain_https = format!("https://{}/hook", plain.addr);
    let dir = temp_dir();
    let ca_file = trusted.write_pem(dir.path(), "test-ca.pem");
    plugins_folder(
        dir.path(),
        &[
            bridge(
                "unknown_issuer",
                &unknown.url("/hook"),
                &unknown.addr.to_string(),
            ),
            bridge(
                "name_mismatch",
                &misnamed.url("/hook"),
                &misnamed.addr.to_string(),
            ),
            bridge("no_downgrade", &plain_https, &plain.addr.to_string()),
        ],
    );
    let server = server_on(dir.path(), |config| config.http_ca = Some(ca_file)).await;
    let alice = server.user("alice").await;
    server.conversation(&alice, &[]).await;

    let failed = |p: &serde_json::Value| {
        p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("http: failed"))
    };
    let error = |p: serde_json::Value| p["last_error"].as_str().unwrap_or_default().to_owned();
    let issuer = error(plugin_until(&server, "unknown_issuer", "a failure", failed).await);
    assert!(
        issuer.contains(&format!("the certificate of {} was refused", unknown.addr))
            && issuer.contains("unknown issuer")
            && issuer.contains("--http-ca"),
        "{issuer}"
    );
    let name = error(plugin_until(&server, "name_mismatch", "a failure", failed).await);
    assert!(
        name.contains(&format!("the certificate of {} was refused", misnamed.addr))
            && name.contains("name mismatch")
            && name.contains("example.invalid"),
        "{name}"
    );
    let plain_error = error(plugin_until(&server, "no_downgrade", "a failure", failed).await);
    assert!(
        plain_error.contains(&format!("the TLS handshake with {} failed", plain.addr))
            && plain_error.contains("not TLS"),
        "{plain_error}"
    );
    assert!(unknown.received().is_empty() && misnamed.received().is_empty());
    assert!(plain.received().is_empty(), "{:?}", plain.received());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_gateway_over_https_trusts_the_operator_ca() {
    let ca = TestCa::new("chathooks test CA");
    let gateway = Recorder::start_tls(ca.server(&["127.0.0.1"])).await;
    let dir = temp_dir();
    let ca_file = ca.write_pem(dir.path(), "test-ca.pem");
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("push_notify"),
            name: "push_notify",
            manifest: Some("[grants]\npush = true\n".to_owned()),
        }],
    );
    let url = gateway.url("/push");
    let server = server_on(dir.path(), move |config| {
        config.push_gateway_url = Some(url);
        config.push_gateway_secret = Some("gateway-secret".to_owned());
        config.http_ca = Some(ca_file);
    })
    .await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    server.send(&alice, &conv, "lunch?").await;
    let delivery = gateway.wait_for(1).await.remove(0);
    assert_eq!(delivery.uri, "/push");
    assert_eq!(
        delivery.header("x-chathooks-signature"),
        signature("gateway-secret", &delivery.body)
    );
    assert_eq!(
        delivery.json()["notification"]["body"],
        json!("ALICE: lunch?")
    );
    server.stop().await;
}

/// Runs `chathooks serve` with `args` and the environment `env` in `dir`; returns its exit code and
/// standard error. Fails the test if it is still running after [`PATIENCE`] (it should not start).
fn serve_refused(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chathooks"));
    command
        .arg("serve")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-key",
            ADMIN_KEY,
            "--no-watch",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--plugins-dir")
        .arg(dir.join("plugins"))
        .args(args)
        .env_remove("CHATHOOKS_HTTP_CA")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = must(command.spawn(), "start chathooks serve");
    let deadline = std::time::Instant::now() + PATIENCE;
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chathooks serve started despite a bad CA file");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = must(child.wait_with_output(), "wait for chathooks serve");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_ca_file_stops_the_server_naming_the_file() {
    let dir = temp_dir();
    let junk = dir.path().join("junk-ca.pem");
    must(
        std::fs::write(&junk, "this is not a certificate\n"),
        "write the junk CA file",
    );
    let (code, stderr) =
        serve_refused(dir.path(), &["--http-ca", &junk.display().to_string()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the CA file {} holds no certificate",
            junk.display()
        )),
        "{stderr}"
    );

    let missing = dir.path().join("missing-ca.pem");
    let (code, stderr) = serve_refused(dir.path(), &[], &[("CHATHOOKS_HTTP_CA", &missing)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read the CA file {}", missing.display())),
        "{stderr}"
    );
}
