//! The writer's tests: group commit, and reads on the idle writer.

use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// A writer on a fresh file with `t(n)`, and a child table whose foreign key is checked at commit.
fn writer(dir: &tempfile::TempDir) -> Writer {
    let conn = Connection::open(dir.path().join("w.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;
         CREATE TABLE t (n INTEGER NOT NULL);
         CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
    )
    .expect("schema");
    Writer::new(conn)
}

fn insert(w: &Writing<'_>, n: i64) -> Result<()> {
    w.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
    Ok(())
}

fn rows(writer: &Writer) -> Vec<i64> {
    let state = lock(&writer.state);
    let mut stmt = state
        .conn
        .prepare("SELECT n FROM t ORDER BY rowid")
        .expect("select");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// What a write's `after_commit` records: its number, in the order the commits' publishing ran.
fn publish(log: &Arc<Mutex<Vec<i64>>>, n: i64) -> Option<AfterCommit> {
    let log = Arc::clone(log);
    Some(Box::new(move || lock(&log).push(n)))
}

/// Holds the writer (inside a write of its own, `n`, flagging `inside` once there) until `queued`
/// writes wait for the lock, so they all join its group. Returns how it ended, and whether this call
/// committed.
fn hold_until_queued(
    writer: &Writer,
    n: i64,
    queued: usize,
    inside: &AtomicBool,
    log: &Arc<Mutex<Vec<i64>>>,
    wait: Wait,
) -> (bool, Result<()>) {
    writer.write(
        |w| {
            insert(w, n)?;
            inside.store(true, Ordering::SeqCst);
            let start = Instant::now();
            while writer.waiting() < queued {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "writes never queued"
                );
                thread::yield_now();
            }
            Ok(())
        },
        |()| publish(log, n),
        wait,
    )
}

/// Waits for `flag`.
fn wait_for(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        thread::yield_now();
    }
}

#[test]
fn writes_queued_behind_one_commit_together_and_publish_in_the_order_they_ran() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    let log = Arc::new(Mutex::new(Vec::new()));
    let inside = AtomicBool::new(false);
    let commits = thread::scope(|s| {
        let holder = s.spawn(|| hold_until_queued(&writer, 0, 3, &inside, &log, Wait::ForQueued));
        // The holder takes the lock first, then the others queue behind it.
        wait_for(&inside);
        let queued: Vec<_> = (1..=3)
            .map(|n| {
                let (writer, log, dir) = (&writer, &log, &dir);
                s.spawn(move || {
                    let (committed, result) =
                        writer.write(|w| insert(w, n), |()| publish(log, n), Wait::ForQueued);
                    result.expect("a queued write");
                    // Its row is committed when it returns: a new connection sees it.
                    let other = Connection::open(dir.path().join("w.db")).expect("reader");
                    let seen: i64 = other
                        .query_row("SELECT count(*) FROM t WHERE n = ?1", [n], |r| r.get(0))
                        .expect("count");
                    assert_eq!(seen, 1);
                    committed
                })
            })
            .collect();
        let (committed, result) = holder.join().expect("holder");
        result.expect("the holding write");
        let mut commits = usize::from(committed);
        for q in queued {
            commits += usize::from(q.join().expect("queued"));
        }
        commits
    });
    assert_eq!(commits, 1, "four writes, one commit");
    let stored = rows(&writer);
    assert_eq!(stored.len(), 4);
    assert_eq!(*lock(&log), stored, "published in the order the writes ran");
}

#[test]
fn a_prompt_write_commits_without_waiting_for_the_writes_queued_behind_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    let log = Arc::new(Mutex::new(Vec::new()));
    let inside = AtomicBool::new(false);
    thread::scope(|s| {
        let holder = s.spawn(|| hold_until_queued(&writer, 0, 1, &inside, &log, Wait::Never));
        wait_for(&inside);
        let queued =
            s.spawn(|| writer.write(|w| insert(w, 1), |()| publish(&log, 1), Wait::ForQueued));
        let (committed, result) = holder.join().expect("holder");
        assert!(
            committed && result.is_ok(),
            "the prompt write committed itself"
        );
        let (committed, result) = queued.join().expect("queued");
        assert!(
            committed && result.is_ok(),
            "the queued write committed on its own"
        );
    });
    assert_eq!(rows(&writer), [0, 1]);
    assert_eq!(*lock(&log), [0, 1]);
}

#[test]
fn a_failed_or_panicking_write_in_a_group_undoes_only_its_own_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    let log = Arc::new(Mutex::new(Vec::new()));
    let inside = AtomicBool::new(false);
    thread::scope(|s| {
        let holder = s.spawn(|| hold_until_queued(&writer, 0, 3, &inside, &log, Wait::ForQueued));
        wait_for(&inside);
        let ok = s.spawn(|| {
            writer
                .write(|w| insert(w, 1), |()| publish(&log, 1), Wait::ForQueued)
                .1
        });
        let failed = s.spawn(|| {
            writer
                .write(
                    |w| {
                        insert(w, 2)?;
                        Err::<(), _>(StoreError::Invalid("refused".into()))
                    },
                    |()| publish(&log, 2),
                    Wait::ForQueued,
                )
                .1
        });
        let panicked = s.spawn(|| {
            writer.write(
                |w| {
                    insert(w, 3)?;
                    panic!("a bug in a write");
                },
                |()| publish(&log, 3),
                Wait::ForQueued,
            )
        });
        assert!(holder.join().expect("holder").1.is_ok());
        assert!(ok.join().expect("ok").is_ok());
        assert!(matches!(
            failed.join().expect("failed"),
            Err(StoreError::Invalid(_))
        ));
        assert!(panicked.join().is_err(), "the panic reaches its own caller");
    });
    let mut stored = rows(&writer);
    stored.sort_unstable();
    assert_eq!(stored, [0, 1]);
    let mut published = lock(&log).clone();
    published.sort_unstable();
    assert_eq!(published, [0, 1]);
    // The writer is usable afterwards, with nothing left open.
    writer
        .write(|w| insert(w, 4), |()| None, Wait::ForQueued)
        .1
        .expect("a later write");
    assert!(lock(&writer.state).conn.is_autocommit());
}

#[test]
fn a_failed_commit_fails_every_member_and_publishes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    let log = Arc::new(Mutex::new(Vec::new()));
    let inside = AtomicBool::new(false);
    let results = thread::scope(|s| {
        // The holder's own row is fine; a member's child row breaks a foreign key checked at COMMIT.
        let holder = s.spawn(|| hold_until_queued(&writer, 0, 1, &inside, &log, Wait::ForQueued).1);
        wait_for(&inside);
        let breaker = s.spawn(|| {
            writer
                .write(
                    |w| {
                        w.execute("INSERT INTO child (parent) VALUES (42)", [])?;
                        Ok(())
                    },
                    |()| publish(&log, 1),
                    Wait::ForQueued,
                )
                .1
        });
        [
            holder.join().expect("holder"),
            breaker.join().expect("breaker"),
        ]
    });
    for result in &results {
        assert!(
            matches!(result, Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == rusqlite::ErrorCode::ConstraintViolation),
            "{result:?}"
        );
    }
    assert!(rows(&writer).is_empty());
    assert!(lock(&log).is_empty());
    writer
        .write(|w| insert(w, 2), |()| None, Wait::ForQueued)
        .1
        .expect("a later write");
    assert_eq!(rows(&writer), [2]);
}

/// How many rows `t` holds, as a read sees it.
fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
}

#[test]
fn a_read_on_the_idle_writer_sees_what_committed_and_leaves_it_ready_to_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    writer
        .write(|w| insert(w, 1), |()| None, Wait::ForQueued)
        .1
        .expect("write");
    let read = writer.read_if_idle(count).map_err(|_| "handed back");
    assert!(matches!(read, Ok(Ok(1))), "read on the writer: {read:?}");

    // A failing read reports its error; a panicking one panics in the caller. Neither leaves a
    // transaction open in the writer's way.
    let failed = writer
        .read_if_idle(|c| {
            c.query_row("SELECT nope FROM t", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .map_err(|_| "handed back");
    assert!(
        matches!(failed, Ok(Err(StoreError::Sqlite(_)))),
        "{failed:?}"
    );
    let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = writer.read_if_idle(|_| -> Result<()> { panic!("a read panicked") });
    }));
    assert!(panicked.is_err());
    writer
        .write(|w| insert(w, 2), |()| None, Wait::ForQueued)
        .1
        .expect("a write after the reads");
    assert_eq!(rows(&writer), [1, 2]);
}

#[test]
fn a_read_is_handed_back_unrun_while_a_write_runs_waits_or_holds_its_group_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    let ran = AtomicBool::new(false);
    let read = |c: &Connection| {
        ran.store(true, Ordering::SeqCst);
        count(c)
    };

    // A write running: the read does not wait for it.
    let inside = AtomicBool::new(false);
    let tried = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            writer.write(
                |w| {
                    insert(w, 1)?;
                    inside.store(true, Ordering::SeqCst);
                    wait_for(&tried);
                    Ok(())
                },
                |()| None,
                Wait::ForQueued,
            )
        });
        wait_for(&inside);
        assert!(
            writer.read_if_idle(read).is_err(),
            "handed back while a write runs"
        );
        tried.store(true, Ordering::SeqCst);
    });

    // A write queued for the lock: the read does not delay it.
    writer.waiting.fetch_add(1, Ordering::SeqCst);
    assert!(
        writer.read_if_idle(read).is_err(),
        "handed back while a write waits"
    );
    writer.waiting.fetch_sub(1, Ordering::SeqCst);

    // A group's transaction open (its members wait for the commit): its rows are not committed, so the
    // read must not see them.
    {
        let mut state = lock(&writer.state);
        run(&state.conn, "BEGIN IMMEDIATE").expect("begin");
        insert(
            &Writing {
                conn: &state.conn,
                conversations: &writer.conversations,
            },
            2,
        )
        .expect("insert");
        state.group = Some(Group::default());
    }
    assert!(
        writer.read_if_idle(read).is_err(),
        "handed back while a group is open"
    );
    {
        let mut state = lock(&writer.state);
        state.group = None;
        run(&state.conn, "COMMIT").expect("commit");
    }
    assert!(
        !ran.load(Ordering::SeqCst),
        "no read ran on the writer while it was busy"
    );
    assert!(matches!(writer.read_if_idle(read), Ok(Ok(2))));
}

#[test]
fn the_writer_counts_how_long_writes_and_lent_reads_held_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    assert_eq!(writer.busy(), Duration::ZERO);
    let hold = Duration::from_millis(20);
    let (_, written) = writer.write(
        |w| {
            thread::sleep(hold);
            insert(w, 1)
        },
        |_| None,
        Wait::Never,
    );
    assert!(written.is_ok());
    let after_write = writer.busy();
    assert!(after_write >= hold, "{after_write:?}");
    let read = writer.read_if_idle(|c| {
        thread::sleep(hold);
        count(c)
    });
    assert!(matches!(read, Ok(Ok(1))));
    assert!(writer.busy() >= after_write + hold, "{:?}", writer.busy());
}

#[test]
fn a_lazy_write_takes_the_writer_only_at_its_first_statement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(&dir);
    let inside = AtomicBool::new(false);
    let (release_tx, release) = std::sync::mpsc::channel::<()>();
    thread::scope(|s| {
        let (writer, inside) = (&writer, &inside);
        let holder = s.spawn(move || {
            writer.write(
                |w| {
                    insert(w, 0)?;
                    inside.store(true, Ordering::SeqCst);
                    let _ = release.recv_timeout(Duration::from_secs(30));
                    Ok(())
                },
                |_| None,
                Wait::Never,
            )
        });
        wait_for(inside);
        // Nothing asked of the database: done while another write holds the writer.
        let busy = writer.busy();
        let (committed, value) = writer.write_lazily(|_| Ok(7));
        assert!(
            !holder.is_finished(),
            "the lazy write waited for the writer"
        );
        assert!(!committed);
        assert_eq!(value.ok(), Some(7));
        assert_eq!(writer.busy(), busy, "it held nothing");
        let _ = release_tx.send(());
        let (_, held) = holder.join().expect("holder");
        assert!(held.is_ok());
    });

    // The first statement begins it, and it commits once it returns.
    let (committed, written) = writer.write_lazily(|lazy| {
        insert(&lazy.writing()?, 1)?;
        insert(&lazy.writing()?, 2)
    });
    assert!(committed && written.is_ok(), "{written:?}");
    assert_eq!(rows(&writer), [0, 1, 2]);

    // A failure or a panic after the first statement undoes what it wrote, and the writer writes on.
    let (_, failed) = writer.write_lazily(|lazy| {
        insert(&lazy.writing()?, 3)?;
        Err::<(), _>(StoreError::Invalid("refused".to_owned()))
    });
    assert!(matches!(failed, Err(StoreError::Invalid(_))), "{failed:?}");
    let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
        writer.write_lazily(|lazy| -> Result<()> {
            insert(&lazy.writing()?, 4)?;
            panic!("a bug in the round")
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(rows(&writer), [0, 1, 2]);
    let (_, written) = writer.write(|w| insert(w, 5), |_| None, Wait::Never);
    assert!(written.is_ok());
    assert_eq!(rows(&writer), [0, 1, 2, 5]);
}
