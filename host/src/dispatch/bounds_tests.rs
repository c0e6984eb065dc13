//! The dispatcher's bounds and warnings against real SQLite files and real compiled plugins, on the
//! dispatcher's clock (a [`ManualClock`] the test sets): a plugin failing on every event warns once, then once
//! per interval; a disabled plugin's backlog stops at its cap and the rest become dead letters with the
//! reason; an unloaded plugin's deliveries wait out the grace period (a reload within it keeps them), then
//! become dead letters that a replay delivers once the plugin is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::test_log::{capture_warnings, capture_warnings_with};
use super::warnings::WARNING_INTERVAL;
use super::*;
use crate::chat::testkit::{Kit, copy_plugin, fast_config, fixture};
use crate::chat::{CreateConversation, SendMessage};
use crate::clock::ManualClock;
use crate::model::User;
use crate::store::DeadLetter;

async fn conversation(kit: &Kit, user: &User) -> String {
    let create = CreateConversation::default();
    kit.chat.create_conversation(user, create).await.unwrap().id
}

async fn send(kit: &Kit, user: &User, conversation: &str, body: &str) -> i64 {
    let message = SendMessage {
        body: body.into(),
        ..Default::default()
    };
    kit.chat
        .send_message(user, conversation, message)
        .await
        .unwrap();
    kit.db.read(|c| c.latest_event_id()).unwrap()
}

fn letters(kit: &Kit) -> Vec<DeadLetter> {
    kit.db.read(|c| c.dead_letters(0, 1000)).unwrap()
}

fn backlog_of(kit: &Kit, plugin: &str) -> u64 {
    let backlog = kit.db.read(|c| c.backlog()).unwrap();
    backlog
        .into_iter()
        .find(|(name, _)| name == plugin)
        .map_or(0, |(_, n)| n)
}

fn counted(drainer: &Drainer, plugin: &str, cause: DeadLetterCause) -> u64 {
    let counts = drainer.stats().dead_lettered_counts();
    counts
        .into_iter()
        .find(|(p, c, _)| p == plugin && *c == cause)
        .map_or(0, |(_, _, n)| n)
}

#[tokio::test]
async fn a_plugin_failing_on_every_event_warns_at_once_then_once_per_interval() {
    // Never disabled: it fails every attempt of every event.
    let hostile = fixture("hostile").with_manifest("[limits]\nbreaker_failures = 0\n");
    let kit = Kit::new(&[fixture("recorder"), hostile]);
    let time = ManualClock::new();
    let config = DispatchConfig {
        clock: Arc::new(time.clone()),
        ..fast_config()
    };
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let mut drainer = Drainer::default();
    let mut failing = Vec::new();
    for _ in 0..3 {
        let conv = conversation(&kit, &a).await;
        failing.push(send(&kit, &a, &conv, "error").await);
    }

    // Three events, three attempts each: six retries and three dead letters, at the level operators
    // run at (warn), but one line so far.
    let (outcomes, lines) =
        capture_warnings_with(|| drainer.drain(&kit.db, &kit.registry, &config).unwrap());
    let failed = outcomes
        .iter()
        .filter(|o| !matches!(o, DeliveryOutcome::Delivered))
        .count();
    assert_eq!(failed, 9, "{outcomes:?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("WARN")
            && lines[0].contains("plugin=\"hostile\"")
            && lines[0].contains(&format!(
                "after-hook delivery of event {} failed (attempt 1 of 3); retrying in 0ns: hostile: \
                 error requested",
                failing[0]
            )),
        "{}",
        lines[0]
    );

    // Within the interval: nothing more. Once it is over: one summary of what was held back.
    time.set(WARNING_INTERVAL - Duration::from_millis(1));
    let quiet = capture_warnings(|| drainer.drain(&kit.db, &kit.registry, &config).unwrap());
    assert!(quiet.is_empty(), "{quiet:#?}");
    time.set(WARNING_INTERVAL);
    let summary = capture_warnings(|| drainer.drain(&kit.db, &kit.registry, &config).unwrap());
    assert_eq!(summary.len(), 1, "{summary:#?}");
    assert!(
        summary[0].contains("plugin=\"hostile\"")
            && summary[0].contains("8 more delivery warnings in the last 60 s")
            && summary[0].contains("5 failed attempts retried")
            && summary[0].contains("3 deliveries dead-lettered after their last attempt")
            && summary[0].contains(&format!(
                "the last: after-hook delivery of event {} failed for the last time (attempt 3 of 3) \
                 and is now a dead letter",
                failing[2]
            )),
        "{}",
        summary[0]
    );
    assert_eq!(counted(&drainer, "hostile", DeadLetterCause::Attempts), 3);
}

#[tokio::test]
async fn a_disabled_plugins_backlog_stops_at_its_cap_and_the_rest_become_dead_letters() {
    // One failure disables hostile for ten minutes: its deliveries are not attempted meanwhile.
    let hostile = fixture("hostile")
        .with_manifest("[limits]\nbreaker_failures = 1\nbreaker_cooldown_ms = 600000\n");
    let kit = Kit::new(&[fixture("recorder"), hostile]);
    let config = DispatchConfig {
        max_backlog_per_plugin: 3,
        clock: Arc::new(ManualClock::new()),
        ..fast_config()
    };
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = conversation(&kit, &a).await;
    let mut drainer = Drainer::default();
    send(&kit, &a, &conv, "error").await;
    drainer.drain(&kit.db, &kit.registry, &config).unwrap();
    assert_eq!(backlog_of(&kit, "hostile"), 1, "the failed event waits");

    // One at a time, so the recorder keeps up: only hostile's backlog fills.
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(send(&kit, &a, &conv, &format!("m{i}")).await);
        drainer.drain(&kit.db, &kit.registry, &config).unwrap();
    }
    assert_eq!(backlog_of(&kit, "hostile"), 3, "capped");
    let letters = letters(&kit);
    let got: Vec<(i64, &str, u32)> = letters
        .iter()
        .map(|l| (l.event.id, l.plugin.as_str(), l.attempts))
        .collect();
    let expected: Vec<(i64, &str, u32)> = sent[2..].iter().map(|id| (*id, "hostile", 0)).collect();
    assert_eq!(got, expected, "the newest events, never attempted");
    assert!(letters.iter().all(|l| l.last_error
        == "not queued: plugin hostile already had 3 deliveries waiting, the most a plugin may have \
            (--max-plugin-backlog), while disabled by its circuit breaker"));
    assert_eq!(
        counted(&drainer, "hostile", DeadLetterCause::BacklogFull),
        8
    );
    // The other plugin got everything.
    assert_eq!(kit.keys("after-message-sent:").len(), 11);
}

#[tokio::test]
async fn an_unloaded_plugins_deliveries_wait_out_the_grace_then_become_replayable_dead_letters() {
    let hostile = fixture("hostile").with_manifest("[limits]\nbreaker_failures = 0\n");
    let kit = Kit::new(&[fixture("recorder"), hostile]);
    let time = ManualClock::new();
    let grace = Duration::from_secs(600);
    let config = DispatchConfig {
        first_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        unloaded_grace: grace,
        clock: Arc::new(time.clone()),
        ..fast_config()
    };
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = conversation(&kit, &a).await;
    let first = send(&kit, &a, &conv, "error").await;
    let second = send(&kit, &a, &conv, "two").await;
    let mut drainer = Drainer::default();
    // hostile fails the first and retries in an hour; the second waits behind it.
    drainer.drain(&kit.db, &kit.registry, &config).unwrap();
    assert_eq!(backlog_of(&kit, "hostile"), 2);
    let wasm = kit.plugins_dir().join("hostile.wasm");
    let saved = kit.dir.path().join("hostile.wasm.saved");
    std::fs::rename(&wasm, &saved).unwrap();
    let drain = |drainer: &mut Drainer| drainer.drain(&kit.db, &kit.registry, &config).unwrap();

    // Unloaded, then back within the grace (a redeploy): nothing is given up.
    assert!(kit.registry.unload("hostile").is_some());
    drain(&mut drainer);
    time.set(Duration::from_secs(300));
    drain(&mut drainer);
    std::fs::copy(&saved, &wasm).unwrap();
    kit.registry.load_file(&wasm);
    drain(&mut drainer);
    assert_eq!(backlog_of(&kit, "hostile"), 2);

    // Unloaded for good at 6 minutes: its deliveries wait a full grace from then.
    time.set(Duration::from_secs(360));
    std::fs::remove_file(&wasm).unwrap();
    assert!(kit.registry.unload("hostile").is_some());
    drain(&mut drainer);
    time.set(Duration::from_secs(360) + grace - Duration::from_millis(1));
    let quiet = capture_warnings(|| drain(&mut drainer));
    assert!(quiet.is_empty(), "{quiet:#?}");
    assert_eq!((backlog_of(&kit, "hostile"), letters(&kit).len()), (2, 0));
    time.set(Duration::from_secs(360) + grace);
    let lines = capture_warnings(|| drain(&mut drainer));
    assert_eq!(backlog_of(&kit, "hostile"), 0);
    let letters = letters(&kit);
    let got: Vec<(i64, u32)> = letters.iter().map(|l| (l.event.id, l.attempts)).collect();
    assert_eq!(got, [(first, 1), (second, 0)]);
    let reason = "given up: plugin hostile was not loaded for 600 s (its file was removed, or fails to \
                  load with no earlier version serving); replay once it is back";
    assert!(
        letters.iter().all(|l| l.last_error == reason),
        "{letters:?}"
    );
    assert_eq!(counted(&drainer, "hostile", DeadLetterCause::Unloaded), 2);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("plugin=\"hostile\"")
            && lines[0].contains(&format!("2 waiting deliveries are dead letters: {reason}")),
        "{}",
        lines[0]
    );

    // Back (fixed: the recorder under hostile's name), the replayed dead letters are delivered in order.
    copy_plugin(&fixture("recorder"), &kit.plugins_dir());
    std::fs::rename(kit.plugins_dir().join("recorder.wasm"), &wasm).unwrap();
    kit.registry.load_file(&wasm);
    for letter in &letters {
        kit.chat.replay_dead_letter(letter.id).await.unwrap();
    }
    let outcomes = drain(&mut drainer);
    assert_eq!(
        outcomes,
        [DeliveryOutcome::Delivered, DeliveryOutcome::Delivered]
    );
    let replayed = kit.kv.list_keys("hostile", "after-message-sent:").unwrap();
    assert_eq!(replayed.len(), 2, "{replayed:?}");
}
