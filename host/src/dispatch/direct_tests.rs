//! First attempts straight from the outbox ([`super::direct`]), round by round against a real SQLite file
//! and real compiled plugins: what the store holds while the calls run, after they end, and after a
//! crash in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::arrivals::Handed;
use super::deliver::{DeliveryOutcome, run_delivery};
use super::round::{Deps, Finished, Memory, Room, RoundResult, round};
use super::stats::DispatchStats;
use super::tests::send;
use crate::chat::CreateConversation;
use crate::chat::testkit::{Kit, fast_config, fixture};

/// Runs one round with `room` on `kit`, recording `finished`, counting into `stats`.
fn round_with(
    kit: &Kit,
    stats: &DispatchStats,
    memory: &mut Memory,
    finished: &mut Vec<Finished>,
    room: &Room,
    reload: bool,
) -> RoundResult {
    let config = fast_config();
    let deps = Deps {
        db: &kit.db,
        registry: &kit.registry,
        config: &config,
        stats,
        handed: &Handed::default(),
    };
    round(&deps, memory, finished, room, reload).unwrap()
}

/// Runs one round with room for every plugin.
fn one_round(
    kit: &Kit,
    memory: &mut Memory,
    finished: &mut Vec<Finished>,
    reload: bool,
) -> RoundResult {
    let room = Room {
        default: 4,
        ..Room::default()
    };
    round_with(
        kit,
        &DispatchStats::default(),
        memory,
        finished,
        &room,
        reload,
    )
}

/// Runs the last round before a shutdown: it starts nothing and settles what memory alone holds.
fn settle(kit: &Kit, memory: &mut Memory, finished: &mut Vec<Finished>) -> RoundResult {
    let room = Room {
        settle: true,
        ..Room::default()
    };
    round_with(
        kit,
        &DispatchStats::default(),
        memory,
        finished,
        &room,
        false,
    )
}

/// Makes the calls `started` holds, as the runner does; their reports.
fn call(started: &RoundResult) -> Vec<Finished> {
    let config = fast_config();
    started
        .started
        .iter()
        .map(|s| s.finished(run_delivery(&config, s), true))
        .collect()
}

/// The (plugin, event) of every delivery row, sorted.
fn rows(kit: &Kit) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = kit
        .db
        .read(|c| c.queued_deliveries())
        .unwrap()
        .into_iter()
        .map(|d| (d.plugin, d.event_id))
        .collect();
    rows.sort();
    rows
}

fn started(result: &RoundResult) -> Vec<(String, i64, u32, bool)> {
    let mut started: Vec<(String, i64, u32, bool)> = result
        .started
        .iter()
        .map(|s| {
            (
                s.plugin.name().to_owned(),
                s.event_id,
                s.attempt,
                s.from_outbox,
            )
        })
        .collect();
    started.sort();
    started
}

#[tokio::test]
async fn a_first_attempt_from_the_outbox_leaves_a_row_only_if_it_fails_and_a_crash_repeats_it() {
    let kit = Kit::new(&[fixture("recorder"), fixture("hostile")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit
        .chat
        .create_conversation(&a, CreateConversation::default())
        .await
        .unwrap();
    kit.drain();
    let failing = send(&kit.chat, &a, &conv.id, "error").await;
    let (r, h) = ("recorder".to_owned(), "hostile".to_owned());

    // Both calls start straight from the outbox: no delivery row, the event held in the outbox.
    let mut memory = Memory::default();
    let mut finished = Vec::new();
    let first = one_round(&kit, &mut memory, &mut finished, true);
    assert_eq!(
        started(&first),
        [(h.clone(), failing, 1, true), (r.clone(), failing, 1, true)]
    );
    assert_eq!(rows(&kit), []);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 1);

    // The recorder succeeds and hostile fails: only hostile's delivery gets a row, with its attempt
    // counted; no plugin is owed the event from the outbox any more (it is removed from there with the
    // next removals, see the end).
    finished.extend(call(&first));
    assert!(matches!(
        finished.iter().find(|f| f.plugin == h).map(|f| &f.outcome),
        Some(DeliveryOutcome::Retry { .. })
    ));
    let second = one_round(&kit, &mut memory, &mut finished, false);
    assert_eq!(rows(&kit), [(h.clone(), failing)]);
    // The retry (due at once with no backoff) starts from that row, as attempt 2: the row kept the
    // attempt made from the outbox.
    assert_eq!(started(&second), [(h.clone(), failing, 2, false)]);
    finished.extend(call(&second));
    one_round(&kit, &mut memory, &mut finished, false);

    // The next event: the recorder's call straight from the outbox; hostile, with a retry waiting in
    // that conversation, gets a row behind it, and nothing of hostile's starts out of order.
    let next = send(&kit.chat, &a, &conv.id, "fine").await;
    let third = one_round(&kit, &mut memory, &mut finished, false);
    assert_eq!(started(&third), [(r.clone(), next, 1, true)]);
    assert_eq!(rows(&kit), [(h.clone(), failing), (h.clone(), next)]);

    // The server dies during the recorder's call: the event is still in the outbox, and a new
    // dispatcher's first round calls the recorder with it again (at least once; so with the first
    // event, which died released but not yet removed from the outbox).
    let mut memory = Memory::default();
    let mut finished = Vec::new();
    let after_crash = one_round(&kit, &mut memory, &mut finished, true);
    assert!(started(&after_crash).contains(&(r.clone(), failing, 1, true)));
    finished.extend(call(&after_crash));
    let then = one_round(&kit, &mut memory, &mut finished, false);
    assert!(started(&then).contains(&(r.clone(), next, 1, true)));
    finished.extend(call(&then));
    one_round(&kit, &mut memory, &mut finished, false);
    settle(&kit, &mut memory, &mut finished);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 0);
    assert!(kit.record(&format!("after-message-sent:{next}")).is_some());
}

#[tokio::test]
async fn deliveries_owed_from_the_outbox_wait_for_room_without_rows_through_a_reload_until_shutdown()
 {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let mut conversations = Vec::new();
    for _ in 0..3 {
        let conv = kit
            .chat
            .create_conversation(&a, CreateConversation::default())
            .await
            .unwrap();
        conversations.push(conv.id);
    }
    kit.drain();
    let mut events = Vec::new();
    for conv in &conversations {
        events.push(send(&kit.chat, &a, conv, "hello").await);
    }
    // Room for one run per round: the oldest event starts, the other two wait, all without rows.
    let room = Room {
        default: 1,
        ..Room::default()
    };
    let mut memory = Memory::default();
    let mut finished = Vec::new();
    let first = round_with(
        &kit,
        &DispatchStats::default(),
        &mut memory,
        &mut finished,
        &room,
        true,
    );
    let r = "recorder".to_owned();
    assert_eq!(started(&first), [(r.clone(), events[0], 1, true)]);
    assert_eq!(rows(&kit), []);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 3);

    // A new event of the first conversation waits behind the running call, without a row either, and a
    // reload of the queues meanwhile (which sees no rows at all) keeps all of it in mind: the new event
    // does not start before the call ends; the next oldest does.
    let behind = send(&kit.chat, &a, &conversations[0], "again").await;
    let second = round_with(
        &kit,
        &DispatchStats::default(),
        &mut memory,
        &mut finished,
        &room,
        true,
    );
    assert_eq!(started(&second), [(r.clone(), events[1], 1, true)]);
    assert_eq!(rows(&kit), []);
    finished.extend(call(&first));
    finished.extend(call(&second));
    let third = round_with(
        &kit,
        &DispatchStats::default(),
        &mut memory,
        &mut finished,
        &room,
        false,
    );
    assert_eq!(started(&third), [(r.clone(), events[2], 1, true)]);

    // A shutdown starts nothing: what is still owed and not started gets its row, so the next start
    // finds it in the deliveries; the events no plugin is owed leave the outbox, and the running
    // call's event stays there until its outcome is recorded.
    let last = settle(&kit, &mut memory, &mut finished);
    assert!(last.started.is_empty());
    assert_eq!(rows(&kit), [(r.clone(), behind)]);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 1);
    finished.extend(call(&third));
    settle(&kit, &mut memory, &mut finished);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 0);
}

#[tokio::test]
async fn deliveries_owed_from_the_outbox_count_as_pending_for_their_plugin() {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit
        .chat
        .create_conversation(&a, CreateConversation::default())
        .await
        .unwrap();
    kit.drain();
    send(&kit.chat, &a, &conv.id, "one").await;
    send(&kit.chat, &a, &conv.id, "two").await;
    let stats = DispatchStats::default();
    let room = Room {
        default: 4,
        ..Room::default()
    };
    let pending = || stats.pending_with(kit.db.read(|c| c.backlog()).unwrap());
    let (mut memory, mut finished) = (Memory::default(), Vec::new());
    // One call runs and one waits behind it, neither with a row: both are pending (`/metrics`, the
    // admin's plugin list).
    let first = round_with(&kit, &stats, &mut memory, &mut finished, &room, true);
    assert_eq!(rows(&kit), []);
    assert_eq!(pending(), [("recorder".to_owned(), 2)]);
    finished.extend(call(&first));
    let second = round_with(&kit, &stats, &mut memory, &mut finished, &room, false);
    assert_eq!(pending(), [("recorder".to_owned(), 1)]);
    finished.extend(call(&second));
    round_with(&kit, &stats, &mut memory, &mut finished, &room, false);
    assert_eq!(pending(), []);
}

#[tokio::test]
async fn the_outbox_is_read_on_from_the_last_event_taken_and_a_reload_takes_no_event_twice() {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conv = kit
        .chat
        .create_conversation(&a, CreateConversation::default())
        .await
        .unwrap();
    kit.drain();
    let (mut memory, mut finished) = (Memory::default(), Vec::new());
    let mut calls: Vec<(String, i64, u32, bool)> = Vec::new();
    let mut sent = Vec::new();
    for (body, reload) in [
        ("one", true),
        ("two", false),
        ("three", true),
        ("four", false),
    ] {
        sent.push(send(&kit.chat, &a, &conv.id, body).await);
        // The events held while their calls run are the ones read before; the outbox is read on from
        // the newest of them, and a reload (as after a failed round) reads it from the start again.
        let round = one_round(&kit, &mut memory, &mut finished, reload);
        assert_eq!(memory.read_after, *sent.last().unwrap(), "after {body}");
        calls.extend(started(&round));
        finished.extend(call(&round));
    }
    for _ in 0..4 {
        let round = one_round(&kit, &mut memory, &mut finished, false);
        calls.extend(started(&round));
        finished.extend(call(&round));
    }
    settle(&kit, &mut memory, &mut finished);
    // Each event called once, in order, all straight from the outbox; nothing left there.
    let expected: Vec<_> = sent
        .iter()
        .map(|id| ("recorder".to_owned(), *id, 1, true))
        .collect();
    assert_eq!(calls, expected);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 0);
}
