//! Cluster mode's delivery leases against a real server, with two nodes on one database: one fans out at
//! a time and nothing twice, a started head (or run) is the lessee's alone until its lease runs out, then
//! another node starts it with the next attempt, a node that lost its lease cannot record, and a
//! restarting node takes back only its own leases.

use chathooks_testservers::Postgres;
use serde_json::json;

use crate::store::{Db, Durability};

type TestResult = anyhow::Result<()>;

/// Two nodes of cluster "t" on a fresh database holding events 1 and 2 of conversation "c" in the outbox
/// (written by a server on its own first, as a sequencer would leave them); `None` without PostgreSQL.
fn two_nodes() -> anyhow::Result<Option<(Db, Db)>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    let open = || Db::connect(&url, Durability::Process, super::db_tests::test_pool());
    let first = open()?;
    for _ in 0..2 {
        first.write(|tx| tx.append_event("message.new", Some("c"), &[], &json!({}), 1))?;
    }
    drop(first);
    let (one, two) = (open()?, open()?);
    for (db, node) in [(&one, "n1"), (&two, "n2")] {
        db.as_postgres()
            .ok_or_else(|| anyhow::anyhow!("PostgreSQL"))?
            .join_cluster("t", node)?;
    }
    Ok(Some((one, two)))
}

fn plugins() -> Vec<String> {
    vec!["p".to_owned()]
}

/// Fans every event in the outbox out to [`plugins`] through `db`; the events.
fn fan_out_all(db: &Db) -> anyhow::Result<Vec<crate::store::StoredEvent>> {
    let events = db.read(|r| r.pending_events(10))?;
    db.write(|tx| {
        for event in &events {
            tx.fan_out_event(event, &plugins(), 1)?;
        }
        Ok(())
    })?;
    Ok(events)
}

#[test]
fn one_node_fans_out_at_a_time_and_an_event_only_once() -> TestResult {
    let Some((one, two)) = two_nodes()? else {
        return Ok(());
    };
    let events = one.read(|r| r.pending_events(10))?;
    assert_eq!(events.len(), 2);
    // n1's round holds the fan-out lock while n2's round tries.
    let (held, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    let (mine, theirs) = std::thread::scope(|s| {
        let n2 = s.spawn(|| {
            held.wait();
            let claimed = two.write(|tx| tx.may_fan_out());
            release.wait();
            claimed
        });
        let n1 = one.write(|tx| {
            let claimed = tx.may_fan_out()?;
            held.wait();
            release.wait();
            let mut created = 0;
            for event in &events {
                created += tx.fan_out_event(event, &plugins(), 1)?.len();
            }
            Ok((claimed, created))
        });
        (n1, n2.join())
    });
    assert_eq!(mine?, (true, 2));
    assert!(!theirs.map_err(|_| anyhow::anyhow!("n2 panicked"))??);
    // n2 read the outbox before n1 committed: under the lock now, it fans nothing out twice.
    let again = two.write(|tx| {
        assert!(tx.may_fan_out()?);
        events
            .iter()
            .map(|e| tx.fan_out_event(e, &plugins(), 1).map(|rows| rows.len()))
            .sum::<crate::store::Result<usize>>()
    })?;
    assert_eq!(again, 0);
    assert_eq!(one.read(|r| r.queued_deliveries())?.len(), 2);
    Ok(())
}

#[test]
fn events_fanned_out_together_get_deliveries_only_where_still_in_the_outbox() -> TestResult {
    let Some((one, two)) = two_nodes()? else {
        return Ok(());
    };
    let events = one.read(|r| r.pending_events(10))?;
    let plugins = plugins();
    // n1 fanned out the first event after n2 read both.
    one.write(|tx| tx.fan_out_event(&events[0], &plugins, 1))?;
    let plan: Vec<(&crate::store::StoredEvent, &[String])> =
        events.iter().map(|e| (e, plugins.as_slice())).collect();
    let created = two.write(|tx| tx.fan_out_events(&plan, 1))?;
    let counts: Vec<usize> = created.iter().map(Vec::len).collect();
    assert_eq!(counts, [0, 1]);
    assert!(one.read(|r| r.pending_events(10))?.is_empty());
    assert_eq!(one.read(|r| r.queued_deliveries())?.len(), 2);
    Ok(())
}

#[test]
fn a_lease_is_the_lessees_until_it_runs_out_then_another_node_starts_it_again() -> TestResult {
    let Some((one, two)) = two_nodes()? else {
        return Ok(());
    };
    let events = fan_out_all(&one)?;
    let (head, next) = (events[0].id, events[1].id);
    let started = one.write(|tx| tx.start_head(head, "p", 100))?;
    assert_eq!(started.map(|r| r.attempt), Some(1));
    // Taken, and its queue is held behind it: n2 starts neither.
    assert!(two.write(|tx| tx.start_head(head, "p", 200))?.is_none());
    assert!(two.write(|tx| tx.start_head(next, "p", 200))?.is_none());
    assert!(
        !two.write(|tx| tx.delivery_succeeded(head, "p"))?,
        "not n2's to record"
    );

    // n1 dies: past its lease, n2 starts the delivery again, as attempt 2.
    let lease = super::db::DELIVERY_LEASE.as_millis();
    let after = 100 + i64::try_from(lease)? + 1;
    let again = two.write(|tx| tx.start_head(head, "p", after))?;
    assert_eq!(again.map(|r| r.attempt), Some(2));
    // n1 comes back late with its outcome: refused, and n2's lease stands.
    assert!(!one.write(|tx| tx.delivery_succeeded(head, "p"))?);
    let failed = one.write(|tx| tx.delivery_failed(head, "p", "late", after));
    assert!(failed.is_err(), "{failed:?}");
    assert!(two.write(|tx| tx.delivery_succeeded(head, "p"))?);
    assert_eq!(
        two.write(|tx| tx.start_head(next, "p", after))?
            .map(|r| r.attempt),
        Some(1),
        "the next event of the queue goes on"
    );

    // n2 restarts: it takes back its own lease, n1 has none to take.
    assert_eq!(one.write(|tx| tx.recover_in_flight())?, 0);
    assert_eq!(two.write(|tx| tx.recover_in_flight())?, 1);
    assert_eq!(
        one.write(|tx| tx.start_head(next, "p", after))?
            .map(|r| r.attempt),
        Some(2)
    );
    Ok(())
}

#[test]
fn a_plugin_another_live_node_runs_keeps_its_waiting_deliveries() -> TestResult {
    let Some((one, _two)) = two_nodes()? else {
        return Ok(());
    };
    fan_out_all(&one)?;
    let pg = one
        .as_postgres()
        .ok_or_else(|| anyhow::anyhow!("PostgreSQL"))?;
    let beat = |age_ms: i64| -> anyhow::Result<()> {
        let client = pg.handle().block_on(pg.pool().get())?;
        pg.handle().block_on(client.execute(
            "INSERT INTO nodes (cluster, node_id, started_at, heartbeat_at, http_addr, version,
                                plugins, backend_pid)
             VALUES ('t', 'n2', 0, (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1,
                     '127.0.0.1:1', 'test', '[{\"name\": \"p\", \"sha256\": \"ab\"}]', 0)
             ON CONFLICT (cluster, node_id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
            &[&age_ms],
        ))?;
        Ok(())
    };
    // n1 lacks the plugin past the grace, but n2 runs it and is alive: nothing is given up.
    beat(0)?;
    assert_eq!(
        one.write(|tx| tx.dead_letter_waiting("p", "unloaded", 5))?,
        0
    );
    assert_eq!(one.read(|r| r.queued_deliveries())?.len(), 2);
    // n2 went silent: now they are dead letters, as on a server on its own.
    beat(60_000)?;
    assert_eq!(
        one.write(|tx| tx.dead_letter_waiting("p", "unloaded", 5))?,
        2
    );
    assert_eq!(one.read(|r| r.dead_letter_count())?, 2);
    Ok(())
}

/// A run of `behind` events after `head` for plugin "p".
fn run(head: i64, behind: &[i64]) -> crate::store::RunStart<'_> {
    crate::store::RunStart {
        plugin: "p",
        head,
        behind,
    }
}

/// The attempts of each run's started rows, and whether each row is leased until `until`.
fn attempts(rows: Vec<Vec<crate::store::StartedRow>>, until: i64) -> Vec<Vec<(u32, bool)>> {
    rows.into_iter()
        .map(|run| {
            run.into_iter()
                .map(|r| (r.attempt, r.leased_until == Some(until)))
                .collect()
        })
        .collect()
}

#[test]
fn a_run_is_leased_whole_and_taken_over_whole_in_order_once_its_lease_runs_out() -> TestResult {
    let Some((one, two)) = two_nodes()? else {
        return Ok(());
    };
    let events = fan_out_all(&one)?;
    let (head, next) = (events[0].id, events[1].id);
    let lease = i64::try_from(super::db::DELIVERY_LEASE.as_millis())?;
    // n1 starts the head and the event behind it as one run, both under its lease.
    let behind = [next];
    let started = one.write(|tx| tx.start_runs(&[run(head, &behind)], 100))?;
    assert_eq!(attempts(started, 100 + lease), [[(1, true), (1, true)]]);
    // Both are n1's: n2 starts neither, as a run or as a head, and records neither.
    let theirs = two.write(|tx| tx.start_runs(&[run(head, &behind), run(next, &[])], 200))?;
    assert_eq!(theirs, [vec![], vec![]]);
    assert_eq!(
        two.write(|tx| tx.deliveries_succeeded(&[(head, "p"), (next, "p")]))?,
        [false, false]
    );

    // n1 dies: past its lease, n2 takes the run over, head first, each as its next attempt.
    let after = 100 + lease + 1;
    assert_eq!(
        two.write(|tx| tx.start_head(next, "p", after))?,
        None,
        "the head goes first"
    );
    let again = two.write(|tx| tx.start_runs(&[run(head, &behind)], after))?;
    assert_eq!(attempts(again, after + lease), [[(2, true), (2, true)]]);
    // n1's late outcomes are refused, n2's count, in one statement.
    assert_eq!(
        one.write(|tx| tx.deliveries_succeeded(&[(head, "p"), (next, "p")]))?,
        [false, false]
    );
    assert_eq!(
        two.write(|tx| tx.deliveries_succeeded(&[(head, "p"), (next, "p")]))?,
        [true, true]
    );
    assert!(one.read(|r| r.queued_deliveries())?.is_empty());
    Ok(())
}

#[test]
fn only_the_lessee_puts_a_delivery_back_and_gives_up_its_lease() -> TestResult {
    let Some((one, two)) = two_nodes()? else {
        return Ok(());
    };
    let events = fan_out_all(&one)?;
    let (head, next) = (events[0].id, events[1].id);
    let behind = [next];
    let started = one.write(|tx| tx.start_runs(&[run(head, &behind)], 100))?;
    assert_eq!(started.iter().map(Vec::len).collect::<Vec<_>>(), [2]);
    // The run's second call was not made: n2 cannot put it back, n1 can, and then it waits for
    // anyone, as attempt 1 again, behind n1's head.
    let pair = [(next, "p", 150)];
    assert_eq!(two.write(|tx| tx.postpone_deliveries(&pair))?, [false]);
    assert_eq!(one.write(|tx| tx.postpone_deliveries(&pair))?, [true]);
    assert_eq!(two.write(|tx| tx.start_head(next, "p", 200))?, None);
    assert!(one.write(|tx| tx.deliveries_succeeded(&[(head, "p")]))?[0]);
    let again = two.write(|tx| tx.start_head(next, "p", 200))?;
    assert_eq!(again.map(|r| r.attempt), Some(1));
    Ok(())
}

#[test]
fn an_event_behind_another_nodes_delivery_is_not_started() -> TestResult {
    let Some((one, two)) = two_nodes()? else {
        return Ok(());
    };
    let events = fan_out_all(&one)?;
    let (head, next) = (events[0].id, events[1].id);
    assert!(one.write(|tx| tx.start_head(head, "p", 100))?.is_some());
    // The head is in flight, but n1's: n2 cannot continue its run, alone or as a run of its own.
    assert_eq!(two.write(|tx| tx.start_next(next, "p", head, 100))?, None);
    assert_eq!(
        two.write(|tx| tx.start_runs(&[run(head, &[next])], 100))?,
        [vec![]]
    );
    // n1 can, under its lease.
    let lease = i64::try_from(super::db::DELIVERY_LEASE.as_millis())?;
    let mine = one.write(|tx| tx.start_next(next, "p", head, 150))?;
    assert_eq!(
        mine.map(|r| (r.attempt, r.leased_until)),
        Some((1, Some(150 + lease)))
    );
    Ok(())
}
