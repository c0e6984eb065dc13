//! The dispatcher's memory of its queues: order, retries, backlogs, and calls made straight from the outbox.

use super::*;

fn row(plugin: &str, conversation: &str, event_id: i64, due: Millis) -> QueuedDelivery {
    QueuedDelivery {
        event_id,
        plugin: plugin.to_owned(),
        conversation: conversation.to_owned(),
        next_attempt_at: due,
        in_flight: false,
    }
}

fn ids(heads: &[Head]) -> Vec<(i64, &str)> {
    heads
        .iter()
        .map(|h| (h.event_id, h.conversation.as_str()))
        .collect()
}

#[test]
fn one_head_per_queue_oldest_first_and_the_next_only_after_the_head_ends() {
    let mut q = Queues::load(vec![row("p", "b", 2, 0), row("p", "a", 1, 0)], 0);
    q.insert(row("p", "a", 3, 0), 0);
    q.insert(row("p", "b", 4, 0), 0);
    q.insert(row("q", "a", 3, 0), 0);
    assert_eq!(ids(&q.ready("p", 10)), [(1, "a"), (2, "b")]);
    assert_eq!(ids(&q.ready("q", 10)), [(3, "a")]);
    assert_eq!(q.len(), 5);

    let head = q.ready("p", 1).remove(0);
    q.start(&head, 0);
    assert_eq!(ids(&q.ready("p", 10)), [(2, "b")], "a runs: 3 waits");
    q.insert(row("p", "a", 1, 0), 0);
    assert_eq!(q.len(), 5, "a known delivery is not added twice");
    q.finish("p", "a", 1, None, 0);
    assert_eq!(ids(&q.ready("p", 10)), [(2, "b"), (3, "a")]);
}

#[test]
fn a_retry_waits_for_its_time_and_holds_back_only_its_own_queue() {
    let mut q = Queues::load(vec![row("p", "a", 1, 0), row("p", "a", 2, 0)], 0);
    q.insert(row("p", "b", 3, 0), 0);
    let head = q.ready("p", 1).remove(0);
    q.start(&head, 0);
    q.finish("p", "a", 1, Some(50), 10);
    assert_eq!(ids(&q.ready("p", 10)), [(3, "b")]);
    assert_eq!(q.next_due(), Some(50));
    q.promote(49);
    assert_eq!(ids(&q.ready("p", 10)), [(3, "b")]);
    for event_id in 4..100 {
        q.insert(row("p", "a", event_id, 10), 10);
    }
    assert_eq!(q.waiting.len(), 1, "one timer for the waiting head");
    q.promote(50);
    assert_eq!(ids(&q.ready("p", 10)), [(1, "a"), (3, "b")]);
    assert_eq!(q.next_due(), None);
}

#[test]
fn a_replaced_queue_takes_the_stores_order_and_state() {
    let mut q = Queues::load(vec![row("p", "a", 5, 0)], 0);
    // A dead letter replayed meanwhile: event 2 goes first; event 1 is in flight elsewhere.
    let mut running = row("p", "a", 1, 0);
    running.in_flight = true;
    q.replace_queue(
        "p",
        "a",
        vec![running, row("p", "a", 2, 0), row("p", "a", 5, 0)],
        0,
    );
    assert!(!q.has_ready("p"));
    q.finish("p", "a", 1, None, 0);
    assert_eq!(ids(&q.ready("p", 10)), [(2, "a")]);
    q.replace_queue("p", "a", Vec::new(), 0);
    assert_eq!((q.len(), q.has_ready("p")), (0, false));
    assert!(q.plugins.is_empty(), "empty queues are forgotten");
}

#[test]
fn a_plugins_backlog_counts_waiting_and_running_and_its_waiting_can_be_dropped() {
    let mut q = Queues::load(
        vec![
            row("p", "a", 1, 0),
            row("p", "a", 2, 0),
            row("p", "b", 3, 0),
        ],
        0,
    );
    q.insert(row("q", "a", 1, 0), 0);
    let head = q.ready("p", 1).remove(0);
    q.start(&head, 0);
    assert_eq!(
        (q.plugin_len("p"), q.plugin_len("q"), q.plugin_len("x")),
        (3, 1, 0)
    );
    assert!(q.has_waiting("p") && q.has_waiting("q") && !q.has_waiting("x"));
    q.drop_waiting("p", 0);
    assert_eq!(q.plugin_len("p"), 1, "the running call stays");
    assert!(!q.has_waiting("p") && q.has_waiting("q"));
    assert!(!q.has_ready("p"));
    q.finish("p", "a", 1, None, 0);
    assert_eq!((q.plugin_len("p"), q.len()), (0, 1));
}

#[test]
fn a_large_backlog_drains_in_order_per_queue() {
    let rows: Vec<QueuedDelivery> = (0..20_000)
        .map(|i| row(["p", "q"][i % 2], &format!("c{}", i % 37), i as i64, 0))
        .collect();
    let mut q = Queues::load(rows, 0);
    let mut last: HashMap<(String, String), i64> = HashMap::new();
    let mut delivered = 0;
    loop {
        let heads: Vec<Head> = ["p", "q"].iter().flat_map(|p| q.ready(p, 4)).collect();
        if heads.is_empty() {
            break;
        }
        for head in &heads {
            q.start(head, 0);
        }
        for head in heads {
            let key = (head.plugin.clone(), head.conversation.clone());
            assert!(last.get(&key).is_none_or(|prev| *prev < head.event_id));
            last.insert(key, head.event_id);
            q.finish(&head.plugin, &head.conversation, head.event_id, None, 0);
            delivered += 1;
        }
        assert_eq!(
            q.plugin_len("p") + q.plugin_len("q"),
            q.len(),
            "backlogs kept"
        );
    }
    assert_eq!((delivered, q.len()), (20_000, 0));
}

#[test]
fn deliveries_from_the_outbox_hold_their_queue_and_outlive_a_replaced_queue() {
    let mut q = Queues::default();
    assert!(q.may_start_from_outbox("p", "a"), "an empty queue");
    q.insert_from_outbox("p", "a", 1, 0);
    q.insert_from_outbox("p", "a", 2, 0);
    let head = q.ready("p", 1).remove(0);
    q.start(&head, 0);
    assert!(q.is_from_outbox("p", "a", 1) && q.is_from_outbox("p", "a", 2));
    assert!(
        q.may_start_from_outbox("p", "a"),
        "a call runs, but no row holds the queue"
    );
    assert!(!q.has_ready("p"), "2 waits for 1");
    // Event 2 gets a row: a later event must queue behind it with a row too.
    q.written("p", "a", 2);
    assert!(!q.is_from_outbox("p", "a", 2));
    assert!(!q.may_start_from_outbox("p", "a"));
    q.finish("p", "a", 1, None, 0);
    assert_eq!(ids(&q.ready("p", 10)), [(2, "a")]);

    // The store knows nothing of a call from the outbox: replacing the queue with its rows keeps it.
    q.insert_from_outbox("p", "b", 7, 0);
    let head = q.ready("p", 10).remove(1);
    q.start(&head, 0);
    q.replace_queue("p", "b", vec![row("p", "b", 9, 0)], 0);
    assert!(q.is_from_outbox("p", "b", 7));
    assert_eq!(ids(&q.ready("p", 10)), [(2, "a")], "9 waits for 7");
    // And a reload puts it back in flight.
    let mut reloaded = Queues::load(vec![row("p", "b", 9, 0)], 0);
    reloaded.restore_from_outbox("p", "b", 7, 0);
    assert!(!reloaded.has_ready("p"));
    reloaded.finish("p", "b", 7, Some(5), 0);
    assert!(
        !reloaded.is_from_outbox("p", "b", 7),
        "a failed call has its row"
    );
    reloaded.promote(5);
    assert_eq!(ids(&reloaded.ready("p", 10)), [(7, "b")]);
}
