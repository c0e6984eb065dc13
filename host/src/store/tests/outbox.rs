//! After-hook deliveries: the outbox and the deliveries survive a restart, keep their order per plugin
//! and conversation, and only the due head of a queue starts.

use super::{TestDb, TestResult, ids};
use crate::store::{QueuedDelivery, RunStart, StartedRow};

backend_tests!(TestDb:
    outbox_and_deliveries_survive_a_restart,
    deliveries_are_ordered_per_plugin_and_conversation,
    start_head_starts_only_the_due_head_of_its_queue,
    start_next_continues_a_run_only_right_behind_the_one_started,
    runs_start_together_each_up_to_its_first_delivery_that_may_not_start,
    an_unqueued_event_is_logged_but_not_in_the_outbox,
    an_event_delivered_from_the_outbox_has_rows_only_for_calls_that_did_not_succeed,
    events_fanned_out_together_are_queued_as_one_by_one,
    deliveries_put_back_together_wait_again_with_their_attempts_given_back,
);

fn deliveries_put_back_together_wait_again_with_their_attempts_given_back(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let (e1, e2) = (t.event(Some("c1"))?, t.event(Some("c1"))?);
    t.fan_out_all(&ids(&["p"]))?;
    let started = t.db.write(|tx| {
        let head = tx.start_head(e1, "p", 10)?.map(|s| s.attempt);
        let next = tx.start_next(e2, "p", e1, 10)?.map(|s| s.attempt);
        Ok((head, next))
    })?;
    assert_eq!(started, (Some(1), Some(1)));
    // Both calls were not made; an unknown delivery is reported as not there.
    let back = t
        .db
        .write(|tx| tx.postpone_deliveries(&[(e1, "p", 20), (e2, "p", 30), (e2 + 100, "p", 1)]))?;
    assert_eq!(back, [true, true, false]);
    let mut waiting: Vec<(i64, i64, bool)> =
        t.db.read(|r| r.queued_deliveries())?
            .into_iter()
            .map(|d| (d.event_id, d.next_attempt_at, d.in_flight))
            .collect();
    waiting.sort();
    assert_eq!(waiting, [(e1, 20, false), (e2, 30, false)]);
    // Not due before 20; then attempt 1 again.
    assert_eq!(t.db.write(|tx| tx.start_head(e1, "p", 19))?, None);
    let again = t.db.write(|tx| tx.start_head(e1, "p", 20))?;
    assert_eq!(again.map(|s| s.attempt), Some(1));
    Ok(())
}

fn events_fanned_out_together_are_queued_as_one_by_one(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    for conversation in [Some("c1"), Some("c1"), None, Some("c2")] {
        t.event(conversation)?;
    }
    let events = t.db.read(|r| r.pending_events(100))?;
    let (both, one, none) = (ids(&["p", "q"]), ids(&["q"]), Vec::new());
    let plan: Vec<(&crate::store::StoredEvent, &[String])> = events
        .iter()
        .zip([&both, &one, &both, &none])
        .map(|(event, plugins)| (event, plugins.as_slice()))
        .collect();
    let created = t.db.write(|tx| tx.fan_out_events(&plan, 7))?;
    let per_event: Vec<Vec<(i64, String, String)>> = created
        .iter()
        .map(|rows| {
            rows.iter()
                .map(|d| (d.event_id, d.plugin.clone(), d.conversation.clone()))
                .collect()
        })
        .collect();
    let row = |i: usize, plugin: &str, conversation: &str| {
        (events[i].id, plugin.to_owned(), conversation.to_owned())
    };
    assert_eq!(
        per_event,
        [
            vec![row(0, "p", "c1"), row(0, "q", "c1")],
            vec![row(1, "q", "c1")],
            vec![row(2, "p", ""), row(2, "q", "")],
            vec![],
        ]
    );
    // Every event left the outbox, the one owed to nobody too; the store holds what was returned.
    assert!(t.db.read(|r| r.pending_events(100))?.is_empty());
    let mut stored: Vec<(i64, String, String, i64)> =
        t.db.read(|r| r.queued_deliveries())?
            .into_iter()
            .map(|d| (d.event_id, d.plugin, d.conversation, d.next_attempt_at))
            .collect();
    stored.sort();
    let mut expected: Vec<(i64, String, String, i64)> = created
        .into_iter()
        .flatten()
        .map(|d| (d.event_id, d.plugin, d.conversation, 7))
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    Ok(())
}

fn an_unqueued_event_is_logged_but_not_in_the_outbox(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let payload = serde_json::json!({});
    let quiet = t.db.write(|tx| {
        tx.append_event_unqueued("message.new", Some("c1"), &ids(&["a"]), &payload, 1)
    })?;
    let queued = t.event(Some("c1"))?;
    let pending: Vec<i64> =
        t.db.read(|r| r.pending_events(100))?
            .iter()
            .map(|e| e.id)
            .collect();
    assert_eq!(pending, vec![queued]);
    assert_eq!(t.db.read(|r| r.outbox_depth())?, 1);
    let logged: Vec<i64> =
        t.db.read(|r| r.events_since("a", 0, 100))?
            .iter()
            .map(|e| e.id)
            .collect();
    assert_eq!(logged, vec![quiet, queued]);
    Ok(())
}

fn outbox_and_deliveries_survive_a_restart(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let e1 = t.event(Some("c1"))?;
    let e2 = t.event(Some("c1"))?;
    let t = t.reopen()?;
    let pending: Vec<i64> =
        t.db.read(|r| r.pending_events(100))?
            .iter()
            .map(|e| e.id)
            .collect();
    assert_eq!(pending, vec![e1, e2]);
    t.db.write(|tx| tx.fan_out(e1, &ids(&["p"]), 0))?;
    assert_eq!(t.db.write(|tx| tx.start_delivery(e1, "p"))?, 1);
    // Crash mid-call: the in-flight delivery and the un-fanned event are still there.
    let t = t.reopen()?;
    assert_eq!(t.db.read(|r| r.pending_events(100))?.len(), 1);
    assert!(t.due(100, &ids(&["p"]))?.is_empty());
    assert_eq!(t.db.write(|tx| tx.recover_in_flight())?, 1);
    assert_eq!(t.due(100, &ids(&["p"]))?, vec![(e1, "p".to_owned())]);
    assert_eq!(t.db.write(|tx| tx.start_delivery(e1, "p"))?, 2);
    Ok(())
}

fn deliveries_are_ordered_per_plugin_and_conversation(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let plugins = ids(&["p", "q"]);
    let a1 = t.event(Some("c1"))?;
    let a2 = t.event(Some("c1"))?;
    let b1 = t.event(Some("c2"))?;
    let n1 = t.event(None)?;
    t.fan_out_all(&plugins)?;
    assert!(t.db.read(|r| r.pending_events(100))?.is_empty());
    let heads = t.due(0, &plugins)?;
    let p = |e: i64, name: &str| (e, name.to_owned());
    assert_eq!(
        heads,
        vec![
            p(a1, "p"),
            p(a1, "q"),
            p(b1, "p"),
            p(b1, "q"),
            p(n1, "p"),
            p(n1, "q")
        ]
    );

    // p fails a1 and retries later: a2 waits for p, not for q.
    t.db.write(|tx| {
        tx.start_delivery(a1, "p")?;
        tx.delivery_failed(a1, "p", "boom", 50)
    })?;
    t.db.write(|tx| {
        tx.start_delivery(a1, "q")?;
        tx.delivery_succeeded(a1, "q")
    })?;
    assert!(
        t.due(10, &ids(&["p"]))?
            .iter()
            .all(|(e, _)| *e != a1 && *e != a2)
    );
    assert!(t.due(10, &ids(&["q"]))?.contains(&p(a2, "q")));
    // The earliest pending delivery is due at once (a2 and the others), though a1 waits for 50.
    let next_due =
        t.db.read(|r| r.queued_deliveries())?
            .iter()
            .filter(|q| !q.in_flight)
            .map(|q| q.next_attempt_at)
            .min();
    assert_eq!(next_due, Some(0));
    let retry = t.db.read(|r| r.next_deliveries(50, &ids(&["p"]), 100))?;
    assert_eq!(
        (
            retry[0].event.id,
            retry[0].attempt,
            retry[0].last_error.as_deref()
        ),
        (a1, 1, Some("boom"))
    );
    Ok(())
}

fn start_head_starts_only_the_due_head_of_its_queue(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let (e1, e2, e3) = (
        t.event(Some("c1"))?,
        t.event(Some("c1"))?,
        t.event(Some("c2"))?,
    );
    t.fan_out_all(&ids(&["p"]))?;
    let queued = t.db.read(|r| r.queued_deliveries())?;
    assert_eq!(queued.len(), 3);
    assert!(queued.iter().all(|q| !q.in_flight && q.plugin == "p"));
    let c1: Vec<i64> =
        t.db.read(|r| r.delivery_queue("p", "c1"))?
            .iter()
            .map(|q| q.event_id)
            .collect();
    assert_eq!(c1, [e1, e2]);

    // Not the head, not due, already in flight: refused.
    assert_eq!(t.db.write(|tx| tx.start_head(e2, "p", 10))?, None);
    t.db.write(|tx| {
        tx.start_delivery(e3, "p")?;
        tx.delivery_failed(e3, "p", "boom", 50)
    })?;
    assert_eq!(t.db.write(|tx| tx.start_head(e3, "p", 49))?, None);
    let started = t.db.write(|tx| tx.start_head(e1, "p", 10))?;
    assert_eq!(started.map(|s| s.attempt), Some(1));
    assert_eq!(t.db.write(|tx| tx.start_head(e1, "p", 10))?, None);
    let retry = t.db.write(|tx| tx.start_head(e3, "p", 50))?;
    assert_eq!(
        retry,
        Some(StartedRow {
            attempt: 2,
            next_attempt_at: 50,
            last_error: Some("boom".into()),
            leased_until: None,
        })
    );

    // e1 is dead-lettered and replayed while e2 waits: e2 is no longer the head.
    let letter = t.db.write(|tx| tx.dead_letter(e1, "p", "x", 10))?;
    t.db.write(|tx| tx.replay_dead_letter(letter, 20))?;
    assert_eq!(t.db.write(|tx| tx.start_head(e2, "p", 30))?, None);
    assert!(t.db.write(|tx| tx.start_head(e1, "p", 30))?.is_some());
    Ok(())
}

fn start_next_continues_a_run_only_right_behind_the_one_started(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let (e1, e2, e3, e4) = (
        t.event(Some("c1"))?,
        t.event(Some("c1"))?,
        t.event(Some("c1"))?,
        t.event(Some("c1"))?,
    );
    let other = t.event(Some("c2"))?;
    t.fan_out_all(&ids(&["p"]))?;
    // e4 waits for a retry: due at 50.
    t.db.write(|tx| {
        tx.start_delivery(e4, "p")?;
        tx.delivery_failed(e4, "p", "boom", 50)
    })?;
    let run = t.db.write(|tx| {
        let head = tx.start_head(e1, "p", 10)?.map(|s| s.attempt);
        // Not right behind e1 (e2 lies between), another conversation's, or before it: refused.
        let skipping = tx.start_next(e3, "p", e1, 10)?;
        let elsewhere = tx.start_next(other, "p", e1, 10)?;
        let backwards = tx.start_next(e1, "p", e2, 10)?;
        let second = tx.start_next(e2, "p", e1, 10)?.map(|s| s.attempt);
        let third = tx.start_next(e3, "p", e2, 10)?.map(|s| s.attempt);
        // Started already, or not due yet: refused.
        let again = tx.start_next(e3, "p", e2, 10)?;
        let early = tx.start_next(e4, "p", e3, 49)?;
        Ok((
            head, skipping, elsewhere, backwards, second, third, again, early,
        ))
    })?;
    assert_eq!(
        run,
        (Some(1), None, None, None, Some(1), Some(1), None, None)
    );
    let in_flight: Vec<i64> =
        t.db.read(|r| r.delivery_queue("p", "c1"))?
            .iter()
            .filter(|q| q.in_flight)
            .map(|q| q.event_id)
            .collect();
    assert_eq!(in_flight, [e1, e2, e3]);
    let retry = t.db.write(|tx| tx.start_next(e4, "p", e3, 50))?;
    assert_eq!(retry.map(|s| s.attempt), Some(2));
    Ok(())
}

fn runs_start_together_each_up_to_its_first_delivery_that_may_not_start(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let c1: Vec<i64> = (0..4)
        .map(|_| t.event(Some("c1")))
        .collect::<Result<_, _>>()?;
    let c2: Vec<i64> = (0..3)
        .map(|_| t.event(Some("c2")))
        .collect::<Result<_, _>>()?;
    let c3: Vec<i64> = (0..2)
        .map(|_| t.event(Some("c3")))
        .collect::<Result<_, _>>()?;
    t.fan_out_all(&ids(&["p"]))?;
    // c1's last waits for a retry: due at 50.
    t.db.write(|tx| {
        tx.start_delivery(c1[3], "p")?;
        tx.delivery_failed(c1[3], "p", "boom", 50)
    })?;
    fn run(head: i64, behind: &[i64]) -> RunStart<'_> {
        RunStart {
            plugin: "p",
            head,
            behind,
        }
    }
    let attempts = |rows: Vec<Vec<StartedRow>>| -> Vec<Vec<u32>> {
        rows.into_iter()
            .map(|run| run.into_iter().map(|r| r.attempt).collect())
            .collect()
    };
    let behind = [
        c1[1..].to_vec(),
        c2[2..].to_vec(),
        vec![c2[2], c2[1]],
        c3[1..].to_vec(),
    ];
    let runs = [
        // Up to the one not due yet.
        run(c1[0], &behind[0]),
        // Not the head of its queue: nothing.
        run(c2[1], &behind[1]),
        // c2[1] skipped: the run ends at its head.
        run(c2[0], &behind[2]),
        run(c3[0], &behind[3]),
    ];
    let started = t.db.write(|tx| tx.start_runs(&runs, 10))?;
    assert_eq!(
        attempts(started),
        vec![vec![1, 1, 1], vec![], vec![1], vec![1, 1]]
    );
    let in_flight = |conversation: &str| -> anyhow::Result<Vec<i64>> {
        Ok(t.db
            .read(|r| r.delivery_queue("p", conversation))?
            .iter()
            .filter(|q| q.in_flight)
            .map(|q| q.event_id)
            .collect())
    };
    assert_eq!(in_flight("c1")?, c1[..3]);
    assert_eq!(in_flight("c2")?, c2[..1]);
    assert_eq!(in_flight("c3")?, c3);

    // Those that succeeded leave together; one that is not there is said so.
    let done = t.db.write(|tx| {
        tx.deliveries_succeeded(&[(c1[0], "p"), (c1[0], "q"), (c3[0], "p"), (c3[1], "p")])
    })?;
    assert_eq!(done, [true, false, true, true]);
    assert_eq!(in_flight("c1")?, c1[1..3]);
    assert!(t.db.read(|r| r.delivery_queue("p", "c3"))?.is_empty());
    // The retry starts once due, as a run of its own once the queue ahead of it is done.
    let early = t.db.write(|tx| tx.start_runs(&[run(c1[3], &[])], 60))?;
    assert_eq!(attempts(early), vec![Vec::<u32>::new()]);
    t.db.write(|tx| tx.deliveries_succeeded(&[(c1[1], "p"), (c1[2], "p")]))?;
    let retry = t.db.write(|tx| tx.start_runs(&[run(c1[3], &[])], 50))?;
    assert_eq!(attempts(retry), vec![vec![2]]);

    // Several events leave the outbox at once.
    let (h1, h2) = (t.event(Some("c4"))?, t.event(Some("c4"))?);
    t.db.write(|tx| tx.leave_outbox(&[h1, h2]))?;
    assert!(t.db.read(|r| r.pending_events(100))?.is_empty());
    Ok(())
}

fn an_event_delivered_from_the_outbox_has_rows_only_for_calls_that_did_not_succeed(
    t: TestDb,
) -> TestResult {
    t.users(&["a"])?;
    let (e1, e2) = (t.event(Some("c1"))?, t.event(Some("c1"))?);
    let event = t.db.read(|r| r.get_event(e1))?;
    // p's call is made straight from the outbox; q gets a row, and the event stays in the outbox.
    assert!(t.db.write(|tx| Ok(tx.may_start_from_outbox()))?);
    let queued = t.db.write(|tx| tx.queue_event(&event, &ids(&["q"]), 5))?;
    assert_eq!(
        queued
            .iter()
            .map(|d| (d.event_id, d.plugin.as_str()))
            .collect::<Vec<_>>(),
        [(e1, "q")]
    );
    // As a dispatcher round reads them (on PostgreSQL outside a transaction), and through the seam.
    let pending = |after: i64, except: &[i64]| -> crate::store::Result<Vec<i64>> {
        let ids = |events: &[crate::store::StoredEvent]| events.iter().map(|e| e.id).collect();
        let (round, _) = t.db.pending_events_after(after, 100, except)?;
        let seam = t.db.read(|r| r.pending_events_after(after, 100, except))?;
        assert_eq!(ids(&round) as Vec<i64>, ids(&seam));
        // The ids alone (a round whose events were handed over by their commits), both ways.
        let (alone, _) = t.db.pending_event_ids_after(after, 100, except)?;
        assert_eq!(alone, ids(&round) as Vec<i64>);
        let seam =
            t.db.read(|r| r.pending_event_ids_after(after, 100, except))?;
        assert_eq!(seam, alone);
        Ok(ids(&round))
    };
    assert_eq!(pending(0, &[])?, [e1, e2]);
    assert_eq!(pending(0, &[e1])?, [e2], "held while its calls run");
    assert_eq!(pending(e1, &[])?, [e2], "read on from the last event seen");
    assert_eq!(pending(e2, &[])?, Vec::<i64>::new());

    // p's call failed: its row, with the attempt made and the error, due for a retry at 40.
    let failed = QueuedDelivery {
        event_id: e1,
        plugin: "p".to_owned(),
        conversation: "c1".to_owned(),
        next_attempt_at: 40,
        in_flight: false,
    };
    t.db.write(|tx| {
        tx.requeue_delivery(&failed, 1, Some("boom"))?;
        // Written once: a second write of the same delivery keeps the first.
        tx.requeue_delivery(&failed, 0, None)?;
        tx.leave_outbox(&[e1])
    })?;
    assert_eq!(pending(0, &[])?, [e2]);
    let retry = t.db.read(|r| r.next_deliveries(40, &ids(&["p"]), 10))?;
    assert_eq!(
        retry
            .iter()
            .map(|d| (d.event.id, d.attempt, d.last_error.as_deref()))
            .collect::<Vec<_>>(),
        [(e1, 1, Some("boom"))]
    );
    assert!(
        t.db.read(|r| r.next_deliveries(39, &ids(&["p"]), 10))?
            .is_empty()
    );
    // Its next start counts on from there; the row in flight is what a dead letter is made from.
    assert_eq!(t.db.write(|tx| tx.start_delivery(e1, "p"))?, 2);
    let in_flight = QueuedDelivery {
        event_id: e2,
        in_flight: true,
        ..failed
    };
    t.db.write(|tx| {
        tx.requeue_delivery(&in_flight, 1, Some("last"))?;
        tx.dead_letter(e2, "p", "last", 50)
    })?;
    let letters = t.db.read(|r| r.dead_letters(0, 10))?;
    assert_eq!(
        letters
            .iter()
            .map(|l| (l.event.id, l.plugin.as_str(), l.attempts))
            .collect::<Vec<_>>(),
        [(e2, "p", 1)]
    );
    Ok(())
}
