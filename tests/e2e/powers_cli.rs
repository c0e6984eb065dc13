//! The author tools with plugin powers: every new example's case file passes `chathooks test`; `chathooks
//! check` shows what a plugin imports and what its manifest grants; a bad manifest is refused with the
//! key and line, and the running version keeps serving.

use std::path::Path;
use std::process::{Command, Output};

use chathooks_tests::{example, repo_root, temp_dir};

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::server_support::{ADMIN_KEY, str_field};

fn chathooks(args: &[&Path]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args(args)
        .output();
    output.unwrap_or_else(|e| panic!("cannot run chathooks: {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_power_examples_pass_their_case_files() {
    let root = repo_root();
    for (wasm, folder) in [
        ("welcome_bot", "welcome-bot"),
        ("command_bot", "command-bot"),
        ("reminder", "reminder"),
        ("webhook_bridge", "webhook-bridge"),
        ("push_notify", "push-notify"),
    ] {
        let cases = root.join(format!("plugins-examples/rust/{folder}/cases.json"));
        let output = chathooks(&[Path::new("test"), &example(wasm), &cases]);
        assert!(
            output.status.success(),
            "{wasm}:\n{}{}",
            stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout(&output).contains(" 0 failed"), "{}", stdout(&output));
    }
}

#[test]
fn check_shows_imports_and_grants_from_the_manifest() {
    let dir = temp_dir();
    let wasm = dir.path().join("reminder.wasm");
    std::fs::copy(example("reminder"), &wasm).expect("copy");
    let bare = stdout(&chathooks(&[Path::new("check"), &wasm]));
    assert!(bare.contains("on-timer (timer)"), "{bare}");
    assert!(
        bare.contains("chathooks:plugin/scheduler@0.3.0  (not granted: its calls will be denied)"),
        "{bare}"
    );
    assert!(bare.contains("manifest: none"), "{bare}");
    std::fs::copy(
        repo_root().join("plugins-examples/rust/reminder/reminder.toml"),
        dir.path().join("reminder.toml"),
    )
    .expect("copy manifest");
    let granted = stdout(&chathooks(&[Path::new("check"), &wasm]));
    assert!(
        granted.contains("chathooks:plugin/scheduler@0.3.0  (granted: scheduler)"),
        "{granted}"
    );
    assert!(
        granted.contains("chathooks:plugin/chat@0.3.0  (granted: chat_post, chat_join)"),
        "{granted}"
    );
    assert!(granted.contains("  scheduler\n"), "{granted}");
    // A manifest mistake names the key and its line.
    std::fs::write(
        dir.path().join("reminder.toml"),
        "[grants]\nscheduler = true\nschedular = true\n",
    )
    .expect("write");
    let output = chathooks(&[Path::new("check"), &wasm]);
    assert!(!output.status.success());
    let text = stdout(&output);
    assert!(
        text.contains("schedular") && text.contains("line 3"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_is_refused_and_the_old_version_keeps_its_grants() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("command_bot"),
            name: "command_bot",
            manifest: Some("[grants]\nchat_post = true\nchat_join = true\n".to_owned()),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    std::fs::write(
        dir.path().join("plugins/command_bot.toml"),
        "[grants]\nchat_post = true\n\nhttp_hosts = [\"https://x.test/\"]\n",
    )
    .expect("write manifest");
    server
        .post_ok("/v1/admin/plugins/reload", ADMIN_KEY, serde_json::json!({}))
        .await;
    let plugins = server.get_ok("/v1/admin/plugins", ADMIN_KEY).await;
    let bot = &plugins[0];
    assert_eq!(bot["state"], "load-error", "{bot}");
    assert_eq!(bot["serving"], true, "{bot}");
    let error = bot["load_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("http_hosts") && error.contains("line 4"),
        "{error}"
    );
    // The running version still has its grants: it answers.
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let mut ws = server.ws(&alice, None).await;
    server.send(&alice, &conv, "/help").await;
    loop {
        let event = ws.next_of_kind("message.new").await;
        if event["payload"]["message"]["sender"]["id"] == "bot.command_bot" {
            assert!(str_field(&event["payload"]["message"], "body").starts_with("Commands"));
            break;
        }
    }
    server.stop().await;
}
