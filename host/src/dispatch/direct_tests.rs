//! First attempts straight from the outbox ([`super::direct`]), round by round against a real SQLite file
//! and real compiled plugins: what the store holds while the calls run, after they end, and after a
//! crash in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::deliver::{DeliveryOutcome, run_delivery};
use super::round::{Deps, Finished, Memory, Room, RoundResult, round};
use super::stats::DispatchStats;
use crate::chat::testkit::{Kit, fast_config, fixture};
use crate::chat::{CreateConversation, SendMessage};
use crate::model::User;

/// Runs one round with room for every plugin, recording `finished`.
fn one_round(
    kit: &Kit,
    memory: &mut Memory,
    finished: &mut Vec<Finished>,
    reload: bool,
) -> RoundResult {
    let config = fast_config();
    let stats = DispatchStats::default();
    let deps = Deps {
        db: &kit.db,
        registry: &kit.registry,
        config: &config,
        stats: &stats,
    };
    let room = Room {
        default: 4,
        ..Room::default()
    };
    round(&deps, memory, finished, &room, reload).unwrap()
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

async fn send(kit: &Kit, user: &User, conversation: &str, body: &str) -> i64 {
    kit.chat
        .send_message(
            user,
            conversation,
            SendMessage {
                body: body.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    kit.db.read(|c| c.latest_event_id()).unwrap()
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
    let failing = send(&kit, &a, &conv.id, "error").await;
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
    // counted, and the event leaves the outbox.
    finished.extend(call(&first));
    assert!(matches!(
        finished.iter().find(|f| f.plugin == h).map(|f| &f.outcome),
        Some(DeliveryOutcome::Retry { .. })
    ));
    let second = one_round(&kit, &mut memory, &mut finished, false);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 0);
    assert_eq!(rows(&kit), [(h.clone(), failing)]);
    // The retry (due at once with no backoff) starts from that row, as attempt 2: the row kept the
    // attempt made from the outbox.
    assert_eq!(started(&second), [(h.clone(), failing, 2, false)]);
    finished.extend(call(&second));
    one_round(&kit, &mut memory, &mut finished, false);

    // The next event: the recorder's call straight from the outbox; hostile, with a retry waiting in
    // that conversation, gets a row behind it, and nothing of hostile's starts out of order.
    let next = send(&kit, &a, &conv.id, "fine").await;
    let third = one_round(&kit, &mut memory, &mut finished, false);
    assert_eq!(started(&third), [(r.clone(), next, 1, true)]);
    assert_eq!(rows(&kit), [(h.clone(), failing), (h.clone(), next)]);

    // The server dies during the recorder's call: the event is still in the outbox, and a new
    // dispatcher's first round calls the recorder with it again (at least once).
    let mut memory = Memory::default();
    let mut finished = Vec::new();
    let after_crash = one_round(&kit, &mut memory, &mut finished, true);
    assert!(started(&after_crash).contains(&(r.clone(), next, 1, true)));
    finished.extend(call(&after_crash));
    one_round(&kit, &mut memory, &mut finished, false);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 0);
    assert!(kit.record(&format!("after-message-sent:{next}")).is_some());
}

#[tokio::test]
async fn a_call_from_the_outbox_not_started_for_want_of_room_gets_its_row_at_once() {
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
        events.push(send(&kit, &a, conv, "hello").await);
    }
    // Room for one run: the oldest event starts from the outbox, the other two wait in rows.
    let config = fast_config();
    let stats = DispatchStats::default();
    let deps = Deps {
        db: &kit.db,
        registry: &kit.registry,
        config: &config,
        stats: &stats,
    };
    let room = Room {
        default: 1,
        ..Room::default()
    };
    let mut memory = Memory::default();
    let mut finished = Vec::new();
    let first = round(&deps, &mut memory, &mut finished, &room, true).unwrap();
    let r = "recorder".to_owned();
    assert_eq!(started(&first), [(r.clone(), events[0], 1, true)]);
    assert_eq!(rows(&kit), [(r.clone(), events[1]), (r.clone(), events[2])]);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 1);
    // A new event of the first conversation waits in a row behind the running call, and a reload of
    // the queues meanwhile (which sees no row for that call) keeps it in mind: the new event does not
    // start before the call ends; the next oldest row does.
    let behind = send(&kit, &a, &conversations[0], "again").await;
    let second = round(&deps, &mut memory, &mut finished, &room, true).unwrap();
    assert_eq!(started(&second), [(r.clone(), events[1], 1, false)]);
    assert!(rows(&kit).contains(&(r.clone(), behind)));
    finished.extend(call(&first));
    finished.extend(call(&second));
    let third = round(&deps, &mut memory, &mut finished, &room, false).unwrap();
    assert_eq!(started(&third), [(r.clone(), events[2], 1, false)]);
    assert_eq!(kit.db.read(|c| c.outbox_depth()).unwrap(), 0);
    finished.extend(call(&third));
    let fourth = round(&deps, &mut memory, &mut finished, &room, false).unwrap();
    assert_eq!(started(&fourth), [(r.clone(), behind, 1, false)]);
}
