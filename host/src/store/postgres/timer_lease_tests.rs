//! Cluster mode's timer leases against a real server: nodes leasing at once never get one timer twice, a
//! lease keeps other nodes off until it runs out, and finishing or setting a timer again frees it.

use chathooks_testservers::Postgres;

use super::PgDb;
use crate::store::{Db, Durability, Timer};

type TestResult = anyhow::Result<()>;

fn fresh() -> anyhow::Result<Option<Db>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    Ok(Some(Db::connect(
        &url,
        Durability::Process,
        super::db_tests::test_pool(),
    )?))
}

fn pg(db: &Db) -> anyhow::Result<&PgDb> {
    db.as_postgres()
        .ok_or_else(|| anyhow::anyhow!("a PostgreSQL database"))
}

fn plugins() -> Vec<String> {
    vec!["p".to_owned()]
}

#[test]
fn nodes_leasing_at_once_share_the_due_timers_without_overlap() -> TestResult {
    const TIMERS: i64 = 60;
    let Some(db) = fresh()? else {
        return Ok(());
    };
    for i in 0..TIMERS {
        db.write(|tx| tx.set_timer("p", &format!("t{i:02}"), i, None, "x", 0))?;
    }
    db.write(|tx| tx.set_timer("other", "not-mine", 0, None, "x", 0))?;
    let leased = std::thread::scope(|s| {
        let nodes: Vec<_> = ["n1", "n2", "n3"]
            .into_iter()
            .map(|node| {
                let db = &db;
                s.spawn(move || -> anyhow::Result<Vec<Timer>> {
                    let mut mine = Vec::new();
                    loop {
                        let batch = pg(db)?.lease_timers(node, &plugins(), 1_000, 31_000, 4)?;
                        if batch.is_empty() {
                            return Ok(mine);
                        }
                        mine.extend(batch);
                    }
                })
            })
            .collect();
        nodes
            .into_iter()
            .map(|n| n.join().map_err(|_| anyhow::anyhow!("a node panicked"))?)
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let mut names: Vec<String> = leased.iter().flatten().map(|t| t.name.clone()).collect();
    names.sort();
    let expected: Vec<String> = (0..TIMERS).map(|i| format!("t{i:02}")).collect();
    assert_eq!(
        names, expected,
        "each due timer leased once, only the loaded plugin's"
    );
    Ok(())
}

#[test]
fn a_lease_keeps_other_nodes_off_until_it_runs_out_or_the_firing_finishes() -> TestResult {
    let Some(db) = fresh()? else {
        return Ok(());
    };
    let pg = pg(&db)?;
    db.write(|tx| tx.set_timer("p", "once", 100, None, "x", 0))?;
    db.write(|tx| tx.set_timer("p", "again", 100, None, "x", 0))?;
    let first = pg.lease_timers("n1", &plugins(), 200, 30_200, 10)?;
    assert_eq!(first.len(), 2);
    assert!(
        pg.lease_timers("n2", &plugins(), 30_000, 60_000, 10)?
            .is_empty()
    );

    // n1 finishes "once" (moved on); it is due again later and free for anyone.
    let once = first.iter().find(|t| t.name == "once").cloned();
    let once = once.ok_or_else(|| anyhow::anyhow!("leased"))?;
    db.write(|tx| tx.finish_firing(&once, Some(20_000), 1))?;
    // "again" is set again by its plugin while n1 holds it: the new setting is free at once.
    db.write(|tx| tx.set_timer("p", "again", 100, None, "y", 0))?;
    let second = pg.lease_timers("n2", &plugins(), 25_000, 55_000, 10)?;
    let mut names: Vec<&str> = second.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["again", "once"]);

    // n2 dies holding them: once its lease ran out, n3 fires them.
    assert!(
        pg.lease_timers("n3", &plugins(), 55_000, 85_000, 10)?
            .is_empty()
    );
    assert_eq!(
        pg.lease_timers("n3", &plugins(), 55_001, 85_001, 10)?.len(),
        2
    );
    Ok(())
}
