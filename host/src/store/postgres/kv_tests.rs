//! The plugins' KV store on PostgreSQL against a real server: SQLite's semantics (TTL, quotas, purge,
//! byte order, a NUL in a key), and quotas and compare-and-swap that stay exact with 8 threads writing
//! at once. Skips when PostgreSQL is not installed, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use std::time::Duration;

use chathooks_testservers::Postgres;

use super::db_tests::test_pool;
use crate::store::kv::{Commit, KvError, KvQuota, KvStore, KvUsage};
use crate::store::{Db, Durability};

type TestResult = anyhow::Result<()>;

const THREADS: usize = 8;

/// A fresh database and its KV store; `None` (the test skips) without PostgreSQL.
fn fresh_kv() -> anyhow::Result<Option<(Db, KvStore)>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let options = crate::store::PoolOptions {
        size: THREADS + 2,
        ..test_pool()
    };
    let db = Db::connect(&pg.url_for_new_database()?, Durability::Process, options)?;
    let kv = KvStore::beside(&db, std::path::Path::new("unused"))?;
    assert!(matches!(kv, KvStore::Postgres(_)));
    Ok(Some((db, kv)))
}

#[test]
fn kv_answers_as_on_sqlite() -> TestResult {
    let Some((_db, kv)) = fresh_kv()? else {
        return Ok(());
    };
    // Namespaces, byte order, a NUL in a key.
    for key in ["b", "a\0z", "Zed", "a"] {
        kv.set("p", key, key.as_bytes(), None)?;
    }
    assert_eq!(kv.get("q", "a")?, None);
    assert_eq!(kv.list_keys("p", "")?, ["Zed", "a", "a\0z", "b"]);
    assert_eq!(kv.list_keys("p", "a")?, ["a", "a\0z"]);
    assert_eq!(kv.dump("p")?[1], ("a".to_owned(), b"a".to_vec()));
    assert!(kv.delete("p", "a\0z")?);
    assert!(!kv.delete("p", "a\0z")?);

    // Increment and compare-and-swap.
    assert_eq!(kv.increment("p", "n", 2)?, 2);
    assert_eq!(kv.increment("p", "n", -5)?, -3);
    assert!(!kv.compare_and_swap("p", "n", Some(b"0"), Some(b"1"))?);
    assert!(kv.compare_and_swap("p", "n", Some(b"-3"), None)?);
    assert!(kv.compare_and_swap("p", "n", None, Some(b"x"))?);
    assert!(matches!(
        kv.increment("p", "n", 1),
        Err(KvError::NotANumber)
    ));

    // Quotas count keys and bytes; an overwrite needs no new key.
    let quota = KvQuota {
        max_keys: 2,
        max_bytes: 20,
    };
    kv.set_within("a", quota, Commit::Now, "k1", b"12345", None)?;
    kv.set_within("a", quota, Commit::Now, "k2", b"1", None)?;
    assert_eq!(kv.usage("a")?, KvUsage { keys: 2, bytes: 10 });
    let over = kv
        .set_within("a", quota, Commit::Now, "k3", b"1", None)
        .err();
    assert!(
        matches!(
            over,
            Some(KvError::QuotaExceeded {
                what: "keys",
                limit: 2
            })
        ),
        "{over:?}"
    );
    kv.set_within("a", quota, Commit::Now, "k1", b"1234567890123", None)?;
    let over = kv
        .set_within("a", quota, Commit::Now, "k1", b"12345678901234567", None)
        .err();
    assert!(
        matches!(
            over,
            Some(KvError::QuotaExceeded {
                what: "bytes",
                limit: 20
            })
        ),
        "{over:?}"
    );
    assert!(kv.delete("a", "k2")?);
    assert_eq!(kv.increment_within("a", quota, Commit::Now, "n", 7)?, 7);
    assert!(kv.compare_and_swap_within("a", quota, Commit::Now, "n", Some(b"7"), None)?);
    assert_eq!(kv.usage("a")?, KvUsage { keys: 1, bytes: 15 });

    // TTL: expired rows are invisible, count until purged, and are given back at the quota.
    let one = KvQuota {
        max_keys: 1,
        max_bytes: 1000,
    };
    kv.set_within("t", one, Commit::Now, "old", b"v", Some(1))?;
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(kv.get("t", "old")?, None);
    assert!(kv.list_keys("t", "")?.is_empty());
    kv.set_within("t", one, Commit::Now, "new", b"v", None)?;
    assert_eq!(kv.usage("t")?, KvUsage { keys: 1, bytes: 4 });
    kv.set("u", "k", b"v", Some(1))?;
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(kv.purge_expired()?, 1);
    assert_eq!(kv.usage("u")?, KvUsage::default());
    Ok(())
}

#[test]
fn quotas_hold_exactly_with_eight_writers() -> TestResult {
    let Some((_db, kv)) = fresh_kv()? else {
        return Ok(());
    };
    let quota = KvQuota {
        max_keys: 50,
        max_bytes: u64::MAX,
    };
    let stored = std::thread::scope(|s| {
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let kv = &kv;
                s.spawn(move || {
                    let mut stored = 0;
                    for i in 0..20 {
                        match kv.set_within(
                            "p",
                            quota,
                            Commit::Now,
                            &format!("{t}-{i}"),
                            b"v",
                            None,
                        ) {
                            Ok(()) => stored += 1,
                            Err(KvError::QuotaExceeded { what: "keys", .. }) => {}
                            Err(other) => panic!("{other}"),
                        }
                    }
                    stored
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().unwrap_or(0))
            .sum::<u64>()
    });
    assert_eq!(stored, 50);
    assert_eq!(kv.usage("p")?.keys, 50);
    assert_eq!(kv.list_keys("p", "")?.len(), 50);
    Ok(())
}

#[test]
fn compare_and_swap_and_increment_are_exact_with_eight_writers() -> TestResult {
    const ROUNDS: i64 = 25;
    let Some((_db, kv)) = fresh_kv()? else {
        return Ok(());
    };
    // "both" is counted by swaps and increments at once; from 1000 every increment keeps its length.
    kv.set("p", "both", b"1000", None)?;
    // Read, then swap only if nobody wrote in between; retry otherwise.
    let swap_one_up = |key: &str| loop {
        let current = kv.get("p", key).ok().flatten();
        let n: i64 = current
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0);
        let next = (n + 1).to_string();
        match kv.compare_and_swap("p", key, current.as_deref(), Some(next.as_bytes())) {
            Ok(true) => break,
            Ok(false) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let (kv, swap_one_up) = (&kv, &swap_one_up);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    swap_one_up("cas");
                    assert!(kv.increment("p", "incr", 1).is_ok());
                    // Half the threads swap "both" twice, half increment it twice.
                    for _ in 0..2 {
                        if thread % 2 == 0 {
                            swap_one_up("both");
                        } else {
                            assert!(kv.increment("p", "both", 1).is_ok());
                        }
                    }
                }
            });
        }
    });
    let total = THREADS as i64 * ROUNDS;
    assert_eq!(kv.get("p", "cas")?, Some(total.to_string().into_bytes()));
    assert_eq!(kv.get("p", "incr")?, Some(total.to_string().into_bytes()));
    let both = (1000 + 2 * total).to_string();
    assert_eq!(kv.get("p", "both")?, Some(both.into_bytes()));
    let bytes = ["cas", "incr", "both"]
        .iter()
        .map(|k| k.len() as u64 + total.to_string().len() as u64)
        .sum::<u64>()
        + 1;
    assert_eq!(kv.usage("p")?, KvUsage { keys: 3, bytes });
    Ok(())
}

/// An increment that keeps its value's length (41 to 42) is one `UPDATE` of the key's row: it does not
/// wait for the plugin's usage row, which another write of the plugin may hold, and it waits for a
/// write of its own key and then counts from the value that write left.
#[test]
fn an_increment_keeping_its_length_waits_only_for_writes_of_its_key() -> TestResult {
    let Some((db, kv)) = fresh_kv()? else {
        return Ok(());
    };
    let Some(pg_db) = db.as_postgres() else {
        anyhow::bail!("not PostgreSQL");
    };
    kv.set("p", "k", b"41", None)?;
    let usage = kv.usage("p")?;
    // Only a failing build waits this long: without the answer the held lock below is never released.
    let wait = Duration::from_secs(60);
    let waiting = "SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let kv = &kv;
    std::thread::scope(|s| {
        pg_db.handle().block_on(async {
            let mut client = pg_db.pool().get().await?;
            let watcher = pg_db.pool().get().await?;
            // Another write of the plugin holds its usage row, as every set, swap and delete does.
            let tx = client.transaction().await?;
            tx.execute(
                "SELECT 1 FROM plugin_kv_usage WHERE plugin = 'p' FOR UPDATE",
                &[],
            )
            .await?;
            let (answer_tx, answer) = std::sync::mpsc::channel();
            s.spawn(move || {
                let _ = answer_tx.send(kv.increment("p", "k", 1));
            });
            let answered = answer.recv_timeout(wait);
            tx.commit().await?;
            let answered =
                answered.map_err(|_| anyhow::anyhow!("the increment waited for the usage row"))?;
            assert_eq!(answered?, 42);

            // A write of the key itself holds its row: the increment waits, then counts from 50.
            let tx = client.transaction().await?;
            tx.execute(
                "UPDATE plugin_kv SET value = '50' WHERE plugin = 'p' AND key = 'k'",
                &[],
            )
            .await?;
            let (answer_tx, answer) = std::sync::mpsc::channel();
            s.spawn(move || {
                let _ = answer_tx.send(kv.increment("p", "k", 1));
            });
            let mut waited = Duration::ZERO;
            while watcher
                .query_one(waiting, &[])
                .await?
                .try_get::<_, i64>(0)?
                == 0
            {
                anyhow::ensure!(
                    waited < wait,
                    "the increment never waited for the key's row"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
                waited += Duration::from_millis(10);
            }
            tx.commit().await?;
            let answered = answer
                .recv_timeout(wait)
                .map_err(|_| anyhow::anyhow!("the increment never answered"))?;
            assert_eq!(answered?, 51, "counted from the value the other write left");
            Ok::<_, anyhow::Error>(())
        })
    })?;
    assert_eq!(kv.get("p", "k")?, Some(b"51".to_vec()));
    assert_eq!(kv.usage("p")?, usage, "no byte changed");
    Ok(())
}

#[test]
fn an_increment_takes_one_statement_in_the_plain_case_and_the_full_path_otherwise() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let database = pg.create_database()?;
    let db = Db::connect(&pg.url(&database), Durability::Process, test_pool())?;
    let kv = KvStore::beside(&db, std::path::Path::new("unused"))?;
    // The function alone: a number where the case is plain, NULL (empty) where the full path must decide.
    let call = |key: &str, delta: i64, max_keys: i64, max_bytes: i64| {
        pg.psql(
            &database,
            &format!(
                "SELECT chathooks_kv_increment('f', convert_to('{key}', 'UTF8'), {delta}, \
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint, {max_keys}, {max_bytes})"
            ),
        )
        .map(|out| out.trim().to_owned())
    };
    assert_eq!(call("n", 41, 10, 100)?, "41");
    assert_eq!(call("n", 1, 10, 100)?, "42");
    assert_eq!(call("n", -50, 10, 100)?, "-8");
    assert_eq!(kv.usage("f")?, KvUsage { keys: 1, bytes: 3 });
    assert_eq!(call("m", 1, 1, 100)?, "", "a second key past max_keys 1");
    assert_eq!(
        call("n", -100, 10, 4)?,
        "",
        "'n' and '-108' take 5 bytes, past max_bytes 4"
    );
    assert_eq!(
        call("n", i64::MIN + 7, 10, 100)?,
        "",
        "past the bigint range"
    );
    kv.set("f", "spaced", b" 5", None)?;
    kv.set("f", "long", b"1234567890123456789", None)?;
    kv.set("f", "bytes", b"1\xff", None)?;
    for key in ["spaced", "long", "bytes"] {
        assert_eq!(call(key, 1, 10, 100)?, "", "{key}");
    }
    kv.set("f", "old", b"5", Some(1))?;
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(call("old", 1, 10, 100)?, "", "an expired row");
    assert_eq!(kv.get("f", "n")?, Some(b"-8".to_vec()));

    // Through the store, every case the function declines answers as the full path always did.
    assert_eq!(kv.increment("f", "spaced", 1)?, 6);
    assert_eq!(kv.increment("f", "long", 1)?, 1_234_567_890_123_456_790);
    assert!(matches!(
        kv.increment("f", "bytes", 1),
        Err(KvError::NotANumber)
    ));
    assert!(matches!(
        kv.increment("f", "n", i64::MIN),
        Err(KvError::Overflow)
    ));
    let one = KvQuota {
        max_keys: 1,
        max_bytes: 1000,
    };
    kv.set("g", "gone", b"1", Some(1))?;
    std::thread::sleep(Duration::from_millis(5));
    // Past the quota only because of the expired row: the full path purges it and goes on.
    assert_eq!(kv.increment_within("g", one, Commit::Now, "c", 3)?, 3);
    assert_eq!(kv.usage("g")?, KvUsage { keys: 1, bytes: 2 });
    assert!(matches!(
        kv.increment_within("g", one, Commit::Now, "d", 1),
        Err(KvError::QuotaExceeded { what: "keys", .. })
    ));
    Ok(())
}
