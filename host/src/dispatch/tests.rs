//! The dispatcher against real SQLite files and real compiled plugins: retries with growing attempt
//! numbers, dead letters and replay, per-conversation order under the real loop, restart recovery.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::chat::testkit::{Kit, copy_plugin, event_id_of, eventually, fast_config, fixture};
use crate::chat::{Chat, CreateConversation, SendMessage};
use crate::clock::ManualClock;
use crate::live::Hub;
use crate::model::User;

pub(super) fn create(ids: &[&str]) -> CreateConversation {
    CreateConversation {
        participant_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// Sends `body` and returns the id of its `message.new` event (these sends mention nobody, so it is the
/// newest event).
pub(super) async fn send(chat: &Chat, user: &User, conversation: &str, body: &str) -> i64 {
    chat.send_message(
        user,
        conversation,
        SendMessage {
            body: body.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    chat.db().read(|c| c.latest_event_id()).unwrap()
}

#[tokio::test]
async fn failures_retry_with_growing_attempts_then_dead_letter_and_replay() {
    let kit = Kit::new(&[fixture("recorder"), fixture("hostile")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit.chat.create_conversation(&a, create(&[])).await.unwrap();
    let failing = send(&kit.chat, &a, &conv.id, "error").await;
    let outcomes = kit.drain();

    // hostile: attempts 1 and 2 are retried, attempt 3 (the last of fast_config) is dead-lettered;
    // recorder got each event once, unaffected.
    let hostile_outcomes: Vec<&DeliveryOutcome> = outcomes
        .iter()
        .filter(|o| !matches!(o, DeliveryOutcome::Delivered))
        .collect();
    assert!(matches!(
        hostile_outcomes.as_slice(),
        [
            DeliveryOutcome::Retry { .. },
            DeliveryOutcome::Retry { .. },
            DeliveryOutcome::DeadLettered { .. }
        ]
    ));
    let recorded = kit
        .record(&format!("after-message-sent:{failing}"))
        .unwrap();
    assert_eq!(recorded["context"]["attempt"], 1);
    let letters = kit.db.read(|c| c.dead_letters(0, 10)).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (
            letters[0].event.id,
            letters[0].plugin.as_str(),
            letters[0].attempts
        ),
        (failing, "hostile", 3)
    );
    assert!(letters[0].last_error.contains("hostile: error requested"));
    let status = kit.registry.plugins_status();
    let hostile = status.iter().find(|s| s.name == "hostile").unwrap();
    assert_eq!(
        (hostile.calls, hostile.failures),
        (4, 3),
        "1 before-hook call + 3 after-hook attempts"
    );

    // The dead letter no longer holds back the conversation's queue.
    let fine = send(&kit.chat, &a, &conv.id, "fine").await;
    assert!(kit.drain().iter().all(|o| *o == DeliveryOutcome::Delivered));
    assert!(kit.record(&format!("after-message-sent:{fine}")).is_some());

    // A fixed plugin (here: the recorder under hostile's name) gets the replayed event, attempt 4.
    copy_plugin(&fixture("recorder"), &kit.plugins_dir());
    std::fs::rename(
        kit.plugins_dir().join("recorder.wasm"),
        kit.plugins_dir().join("hostile.wasm"),
    )
    .unwrap();
    let reloaded = kit
        .registry
        .load_file(&kit.plugins_dir().join("hostile.wasm"));
    assert_eq!(
        reloaded.change,
        crate::plugins::reload::Change::Replaced,
        "{reloaded:?}"
    );
    let info = kit.chat.replay_dead_letter(letters[0].id).await.unwrap();
    assert_eq!(info.event_id, failing);
    assert_eq!(kit.drain(), vec![DeliveryOutcome::Delivered]);
    let replayed = kit
        .kv
        .get("hostile", &format!("after-message-sent:{failing}"))
        .unwrap()
        .unwrap();
    let replayed: serde_json::Value = serde_json::from_slice(&replayed).unwrap();
    assert_eq!(replayed["context"]["attempt"], 4);
    assert_eq!(replayed["message"]["body"], "error");
    assert!(kit.chat.dead_letters(0, 10).await.unwrap().is_empty());
}

/// A delivery's KV writes wait for one commit per row of calls, made before the outcomes are reported:
/// a delivered event's writes are on file, and a delivery whose writes a failed commit rolled back is
/// retried, not recorded as done with its writes gone.
#[tokio::test]
async fn a_delivery_is_done_only_once_its_kv_writes_are_committed() {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit.chat.create_conversation(&a, create(&[])).await.unwrap();
    kit.drain();
    let first = send(&kit.chat, &a, &conv.id, "one").await;
    let crate::store::kv::KvStore::Sqlite(kv) = &*kit.kv else {
        panic!("the kit's KV store is SQLite")
    };
    kv.fail_next_commit().unwrap();
    let outcomes = kit.drain();
    assert!(
        matches!(
            outcomes.as_slice(),
            [DeliveryOutcome::Retry { error, .. }, DeliveryOutcome::Delivered]
                if error.contains("KV writes were rolled back")
        ),
        "{outcomes:?}"
    );
    let recorded = kit.record(&format!("after-message-sent:{first}")).unwrap();
    assert_eq!(
        recorded["context"]["attempt"], 2,
        "the first attempt's write is gone"
    );

    let second = send(&kit.chat, &a, &conv.id, "two").await;
    assert_eq!(kit.drain(), vec![DeliveryOutcome::Delivered]);
    // Another connection to the file sees only what was committed.
    let on_file = crate::store::kv::KvStore::open(&kit.dir.path().join("kv.db")).unwrap();
    assert!(
        on_file
            .get("recorder", &format!("after-message-sent:{second}"))
            .unwrap()
            .is_some(),
        "a delivered event's writes are committed"
    );
}

#[test]
fn backoff_doubles_and_is_capped() {
    let config = DispatchConfig::default();
    let secs: Vec<u64> = (1..=9).map(|n| backoff(&config, n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
}

#[tokio::test]
async fn the_loop_delivers_in_order_per_conversation_and_stops_on_shutdown() {
    let kit = Kit::new(&[
        fixture("recorder"),
        fixture("hostile").with_manifest("[limits]\nafter_hook_ms = 100\n"),
    ]);
    let (stop, stopped) = oneshot::channel::<()>();
    let (handle, task) = Dispatcher::spawn_with(
        kit.db.clone(),
        kit.registry.clone(),
        fast_config(),
        async move {
            let _ = stopped.await;
        },
    );
    let chat = Chat::new(kit.db.clone(), kit.registry.clone(), Hub::new(), handle);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let one = chat.create_conversation(&a, create(&[])).await.unwrap();
    let two = chat.create_conversation(&a, create(&[])).await.unwrap();
    // hostile hangs on "loop" in conversation one; the rest must still flow.
    let mut conversation_of: HashMap<i64, String> = HashMap::new();
    conversation_of.insert(send(&chat, &a, &one.id, "loop").await, one.id.clone());
    for i in 0..10 {
        let conv = if i % 2 == 0 { &one.id } else { &two.id };
        let id = send(&chat, &a, conv, &format!("m{i}")).await;
        conversation_of.insert(id, conv.clone());
    }
    eventually("the recorder got every message", || {
        kit.keys("after-message-sent:").len() == conversation_of.len()
    })
    .await;
    eventually("hostile gave up on the loop", || {
        kit.db.read(|c| c.dead_letters(0, 10)).unwrap().len() == 1
    })
    .await;
    eventually("hostile got every other message", || {
        kit.db.read(|c| c.backlog()).unwrap().is_empty()
    })
    .await;

    // Each plugin saw each conversation's events in id order.
    let lines = kit.logs.snapshot();
    let recorder_order: Vec<i64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("recorder: recorder: after-message-sent:"))
        .filter_map(|id| id.parse().ok())
        .collect();
    assert_eq!(recorder_order.len(), conversation_of.len());
    for conv in [&one.id, &two.id] {
        let ids: Vec<i64> = recorder_order
            .iter()
            .copied()
            .filter(|id| conversation_of.get(id) == Some(conv))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "recorder order in {conv}");
    }

    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_restart_delivers_what_was_pending_or_in_flight() {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit.chat.create_conversation(&a, create(&[])).await.unwrap();
    let first = send(&kit.chat, &a, &conv.id, "one").await;
    send(&kit.chat, &a, &conv.id, "two").await;
    // The server dies in the middle of calling the recorder with the conversation's first event.
    let created = first - 1;
    kit.db
        .write(|tx| {
            tx.fan_out(created, &["recorder".to_owned()], 0)?;
            tx.start_delivery(created, "recorder")
        })
        .unwrap();
    let kit = kit.reopen(DispatchHandle::detached());
    let (stop, stopped) = oneshot::channel::<()>();
    let (_handle, task) = Dispatcher::spawn_with(
        kit.db.clone(),
        kit.registry.clone(),
        fast_config(),
        async move {
            let _ = stopped.await;
        },
    );
    eventually("every event reached the recorder", || {
        kit.after_keys().len() == 3
    })
    .await;
    let keys = kit.after_keys();
    assert_eq!(event_id_of(&keys[0]), created);
    let recovered = kit.record(&keys[0]).unwrap();
    assert_eq!(
        recovered["context"]["attempt"], 2,
        "the interrupted call counts"
    );
    assert_eq!(kit.record(&keys[1]).unwrap()["context"]["attempt"], 1);
    assert_eq!(
        kit.record(&keys[2]).unwrap()["message"]["body"],
        json!("two")
    );
    let _ = stop.send(());
    task.await.unwrap();
}

/// Starts the loop on `kit` with `config`; the returned sender stops it.
pub(super) fn start(
    kit: &Kit,
    config: DispatchConfig,
) -> (DispatchHandle, oneshot::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let (handle, task) =
        Dispatcher::spawn_with(kit.db.clone(), kit.registry.clone(), config, async move {
            let _ = stopped.await;
        });
    (handle, stop, task)
}

/// The event ids of the recorder's `after-message-sent` calls, in the order it got them.
pub(super) fn recorder_calls(kit: &Kit) -> Vec<i64> {
    kit.logs
        .snapshot()
        .iter()
        .filter_map(|l| l.strip_prefix("recorder: recorder: after-message-sent:"))
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// Undelivered deliveries of `plugin` in `conversation`.
fn queued(kit: &Kit, plugin: &str, conversation: &str) -> i64 {
    kit.db
        .as_sqlite()
        .unwrap()
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM deliveries WHERE plugin = ?1 AND conversation_id = ?2",
                [plugin, conversation],
                |r| r.get(0),
            )?)
        })
        .unwrap()
}

/// Sends `per_conversation` messages to each of `conversations` new conversations, interleaved, with no
/// dispatcher running: a backlog. Returns each message event's conversation.
async fn backlog(kit: &Kit, conversations: usize, per_conversation: usize) -> HashMap<i64, String> {
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let mut convs = Vec::new();
    for _ in 0..conversations {
        convs.push(
            kit.chat
                .create_conversation(&a, create(&[]))
                .await
                .unwrap()
                .id,
        );
    }
    let mut conversation_of = HashMap::new();
    for i in 0..per_conversation {
        for conv in &convs {
            let id = send(&kit.chat, &a, conv, &format!("m{i}")).await;
            conversation_of.insert(id, conv.clone());
        }
    }
    conversation_of
}

/// Asserts the recorder got each of `conversation_of`'s events exactly once, in id order per conversation.
fn assert_once_in_order(calls: &[i64], conversation_of: &HashMap<i64, String>) {
    let mut seen = std::collections::HashSet::new();
    let mut last: HashMap<&String, i64> = HashMap::new();
    for id in calls {
        assert!(seen.insert(*id), "event {id} delivered twice");
        let conv = &conversation_of[id];
        if let Some(prev) = last.insert(conv, *id) {
            assert!(prev < *id, "{conv}: {id} delivered after {prev}");
        }
    }
    assert_eq!(seen.len(), conversation_of.len(), "every event delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_over_many_conversations_drains_once_each_in_order_and_resumes_after_a_stop()
 {
    let kit = Kit::new(&[fixture("recorder")]);
    let conversation_of = backlog(&kit, 24, 25).await;
    assert_eq!(conversation_of.len(), 600);

    // Stop the loop part-way through; a restart carries on where it stopped, delivering nothing twice.
    let (_, stop, task) = start(&kit, fast_config());
    eventually("some deliveries done", || recorder_calls(&kit).len() >= 100).await;
    let _ = stop.send(());
    task.await.unwrap();
    let kit = kit.reopen(DispatchHandle::detached());
    let (_, stop, task) = start(&kit, fast_config());
    eventually("the backlog drained", || {
        kit.db.read(|c| c.backlog()).unwrap().is_empty()
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    // The logs of the first run went with the first kit: check this run's calls, then all through KV.
    let second = recorder_calls(&kit);
    assert!(
        second.len() < 600,
        "the restart resumed, it did not start over"
    );
    let delivered: Vec<i64> = kit
        .keys("after-message-sent:")
        .iter()
        .map(|k| event_id_of(k))
        .collect();
    assert_eq!(delivered.len(), 600);
    let resumed: HashMap<i64, String> = second
        .iter()
        .map(|id| (*id, conversation_of[id].clone()))
        .collect();
    assert_once_in_order(&second, &resumed);
    for id in delivered {
        assert_eq!(
            kit.record(&format!("after-message-sent:{id}")).unwrap()["context"]["attempt"],
            1,
            "{id} was delivered once: a graceful stop records what it delivered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_delivered_in_order_per_conversation_by_the_running_loop() {
    let kit = Kit::new(&[fixture("recorder")]);
    let conversation_of = backlog(&kit, 40, 10).await;
    let (_, stop, task) = start(&kit, fast_config());
    eventually("the backlog drained", || {
        recorder_calls(&kit).len() >= conversation_of.len()
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_once_in_order(&recorder_calls(&kit), &conversation_of);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrying_delivery_holds_back_only_its_own_conversation() {
    let kit = Kit::new(&[fixture("recorder"), fixture("hostile")]);
    // Retries 4 s apart on a clock only the test moves: conversation one is still retrying when
    // conversation two has flowed, however slow the machine.
    let backoff = Duration::from_secs(4);
    let time = ManualClock::new();
    let config = DispatchConfig {
        first_backoff: backoff,
        max_backoff: backoff,
        clock: Arc::new(time.clone()),
        ..fast_config()
    };
    let (handle, stop, task) = start(&kit, config);
    // The chat layer on the same clock: a replayed dead letter is due by the dispatcher's time.
    let chat = Chat::new(kit.db.clone(), kit.registry.clone(), Hub::new(), handle)
        .with_clock(Arc::new(time.clone()));
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let one = chat.create_conversation(&a, create(&[])).await.unwrap().id;
    let two = chat.create_conversation(&a, create(&[])).await.unwrap().id;
    let failing = send(&chat, &a, &one, "error").await;
    let behind = send(&chat, &a, &one, "after the error").await;
    for i in 0..5 {
        send(&chat, &a, &two, &format!("m{i}")).await;
    }
    // Conversation two flows to hostile while conversation one waits for its retries (once fanned out:
    // before that, nothing is queued for either).
    eventually("hostile got conversation two", || {
        kit.db.read(|c| c.outbox_depth()).unwrap() == 0 && queued(&kit, "hostile", &two) == 0
    })
    .await;
    assert_eq!(
        queued(&kit, "hostile", &one),
        2,
        "the failing head and the one behind it"
    );
    let letters = kit.db.read(|c| c.dead_letters(0, 10)).unwrap();
    assert!(letters.is_empty(), "still retrying");

    // Each look that finds it still retrying moves the clock on by a backoff: the loop, asleep on that
    // clock, wakes and makes the next attempt (a step taken while an attempt runs costs one more step).
    eventually("hostile gave up and moved on", || {
        let done = queued(&kit, "hostile", &one) == 0;
        if !done {
            time.advance(backoff);
        }
        done
    })
    .await;
    let letters = kit.db.read(|c| c.dead_letters(0, 10)).unwrap();
    assert_eq!(
        letters
            .iter()
            .map(|l| (l.event.id, l.attempts))
            .collect::<Vec<_>>(),
        [(failing, 3)]
    );
    assert!(
        kit.record(&format!("after-message-sent:{behind}"))
            .is_some()
    );

    // Replayed while the loop runs, the dead letter is delivered again (hostile fails it again, and
    // attempt 4 is past the last).
    chat.replay_dead_letter(letters[0].id).await.unwrap();
    eventually("the replay was delivered and failed again", || {
        kit.db
            .read(|c| c.dead_letters(0, 10))
            .unwrap()
            .first()
            .is_some_and(|l| l.attempts == 4)
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stops_at_a_failed_or_slow_call_and_the_rest_wait_with_their_attempts_given_back() {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    // A backlog in one conversation, with a call that fails once far enough in that the queue starts
    // runs by then (its first runner::FAST_WINDOW calls are made one per round, the rest as runs), and a
    // slow call (about a tenth of a second of arithmetic, over runner::STOPS_RUN) in the run after it.
    let conv = kit.chat.create_conversation(&a, create(&[])).await.unwrap();
    let failing = usize::try_from(runner::FAST_WINDOW).unwrap() + 14;
    let mut ids = Vec::new();
    for i in 0..failing + 10 {
        let body = if i == failing {
            "fail-once".to_owned()
        } else if i == failing + 4 {
            "slow:100000000".to_owned()
        } else {
            format!("m{i}")
        };
        ids.push(send(&kit.chat, &a, &conv.id, &body).await);
    }
    let (_, stop, task) = start(&kit, fast_config());
    eventually("the conversation was delivered", || {
        kit.db.read(|c| c.backlog()).unwrap().is_empty()
            && kit.db.read(|c| c.outbox_depth()).unwrap() == 0
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();

    let calls: Vec<i64> = recorder_calls(&kit)
        .into_iter()
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(
        calls, ids,
        "each once, in order: none behind the failure ran before its retry"
    );
    for (i, id) in ids.iter().enumerate() {
        let record = kit.record(&format!("after-message-sent:{id}")).unwrap();
        let expected = if i == failing { 2 } else { 1 };
        assert_eq!(
            record["context"]["attempt"], expected,
            "message {i} (event {id}): a call not made is not an attempt"
        );
    }
}
