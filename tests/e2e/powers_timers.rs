//! Timers through `reminder`: a reminder set before a restart fires after it.

use std::time::Duration;

use chathooks_tests::{example, temp_dir};
use serde_json::json;

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::server_support::str_field;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_fires_after_a_restart() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("reminder"),
            name: "reminder",
            manifest: Some(
                "[grants]\nscheduler = true\nchat_post = true\nchat_join = true\n".to_owned(),
            ),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let mut ws = server.ws(&alice, None).await;
    server.send(&alice, &conv, "/remind 3s stand up").await;
    let ack = next_from_bot(&mut ws).await;
    assert_eq!(
        ack["payload"]["message"]["body"],
        json!("⏰ OK, I'll remind you in 3s")
    );
    let stopped_at = std::time::Instant::now();
    drop(ws);
    server.stop().await;

    let server = server_on(dir.path(), |_| {}).await;
    // The users and the conversation are in the database; alice's token still works.
    // From the acknowledgement on: whatever happened since is replayed, then live events follow.
    let mut ws = server.ws(&alice, ack["id"].as_i64()).await;
    let reminder = next_from_bot(&mut ws).await;
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(2),
        "fired too early"
    );
    assert_eq!(
        reminder["payload"]["message"]["body"],
        json!("⏰ Reminder for @alice: stand up")
    );
    assert_eq!(
        str_field(&reminder["payload"]["message"], "conversation_id"),
        conv
    );
    // One-shot: gone once fired (the row is removed right after the call returns).
    let deadline = tokio::time::Instant::now() + crate::server_support::PATIENCE;
    loop {
        let timers = server
            .running
            .state
            .chat
            .db()
            .read(|c| c.timers_of("reminder"));
        if timers.map(|t| t.len()).ok() == Some(0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the timer stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

/// The next `message.new` from the reminder's bot.
async fn next_from_bot(ws: &mut crate::server_support::WsClient) -> serde_json::Value {
    loop {
        let event = ws.next_of_kind("message.new").await;
        if event["payload"]["message"]["sender"]["id"] == "bot.reminder" {
            return event;
        }
    }
}
