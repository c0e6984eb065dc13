//! Timers through `reminder`: a reminder set before a restart fires after it, when it is due and not
//! before. The servers run on one manual clock, so the reminder's delay passes when the test moves it.

use std::sync::Arc;
use std::time::Duration;

use chathooks::clock::{Clock, ManualClock};
use chathooks::config::Config;
use chathooks::powers::scheduler::fire_due;
use chathooks::store::Timer;
use chathooks_tests::{example, temp_dir};
use serde_json::json;

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::sandbox_support::eventually_advancing;
use crate::server_support::{TestServer, must, str_field};

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
    let clock = ManualClock::new();
    let server = server_on(dir.path(), on(&clock)).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let mut ws = server.ws(&alice, None).await;
    server.send(&alice, &conv, "/remind 3s stand up").await;
    let ack = next_from_bot(&mut ws).await;
    assert_eq!(
        ack["payload"]["message"]["body"],
        json!("⏰ OK, I'll remind you in 3s")
    );
    drop(ws);
    server.stop().await;

    let server = server_on(dir.path(), on(&clock)).await;
    // The users and the conversation are in the database; alice's token still works.
    // From the acknowledgement on: whatever happened since is replayed, then live events follow.
    let mut ws = server.ws(&alice, ack["id"].as_i64()).await;
    let [timer] = <[Timer; 1]>::try_from(reminders(&server)).expect("one timer");

    // A millisecond before it is due, a round of the server's timer loop leaves it waiting.
    let early =
        Duration::from_millis(u64::try_from(timer.due_at - clock.now_ms() - 1).unwrap_or(0));
    clock.advance(early);
    let (db, registry) = (
        server.running.state.db().clone(),
        server.running.state.chat.registry().clone(),
    );
    let round_clock = clock.clone();
    let round = tokio::task::spawn_blocking(move || fire_due(&db, &registry, &round_clock));
    must(must(round.await, "timer round"), "timer round");
    assert_eq!(reminders(&server).len(), 1, "fired too early");
    let messages = server
        .get_ok(&format!("/v1/conversations/{conv}/messages"), &alice)
        .await;
    assert!(
        messages
            .as_array()
            .into_iter()
            .flatten()
            .all(|m| m["sender"]["id"] != "bot.reminder"
                || m["id"] == ack["payload"]["message"]["id"]),
        "only the acknowledgement is from the bot: {messages}"
    );

    // Then it comes due; the loop, asleep on the clock, wakes and fires it.
    // One-shot: gone once fired (the row is removed right after the call returns).
    eventually_advancing(&clock, Duration::from_millis(1), "the reminder", || async {
        reminders(&server).is_empty().then_some(())
    })
    .await;
    let reminder = next_from_bot(&mut ws).await;
    assert_eq!(
        reminder["payload"]["message"]["body"],
        json!("⏰ Reminder for @alice: stand up")
    );
    assert_eq!(
        str_field(&reminder["payload"]["message"], "conversation_id"),
        conv
    );
    server.stop().await;
}

/// Puts a server on `clock`.
fn on(clock: &ManualClock) -> impl FnOnce(&mut Config) + use<> {
    let clock = clock.clone();
    move |config| config.clock = Arc::new(clock)
}

/// The reminder plugin's timers.
fn reminders(server: &TestServer) -> Vec<Timer> {
    must(
        server
            .running
            .state
            .chat
            .db()
            .read(|c| c.timers_of("reminder")),
        "timers of reminder",
    )
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
