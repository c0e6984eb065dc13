//! The WAL written through the VFS holds what SQLite alone would: readers see each commit as it
//! happens, and a copy taken at any moment after a commit (what a crash leaves) recovers it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::open_writer;
use crate::store::records::NewUser;
use crate::store::sqlite::db::Db;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A writer through the VFS that never checkpoints, so the WAL keeps every commit, and whose page cache
/// holds `cache_pages`: a transaction that changes more pages spills some to the WAL before it commits.
/// No sync at commit, as with the store's default durability: a sync would write the buffer anyway.
fn writer(path: &Path, cache_pages: i64) -> rusqlite::Result<Connection> {
    let conn = open_writer(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "cache_size", cache_pages)?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")?;
    Ok(conn)
}

/// Copies the database and its WAL (not the shared index) as a crash leaves them, opens the copy
/// (SQLite recovers the WAL, keeping the commits whose frames' checksums hold) and checks it.
fn recovered(dir: &Path, name: &str) -> rusqlite::Result<Connection> {
    let copy = dir.join(format!("copy-{name}"));
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(dir.join("t.db"), copy.join("t.db")).unwrap();
    std::fs::copy(dir.join("t.db-wal"), copy.join("t.db-wal")).unwrap();
    let conn = Connection::open(copy.join("t.db"))?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok");
    Ok(conn)
}

fn sum_and_count(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT coalesce(sum(length(v)), 0), count(*) FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

#[test]
fn small_commits_reach_readers_and_survive_a_crash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    let conn = writer(&path, 2000)?;
    let reader = Connection::open(&path)?;
    for i in 0..200_i64 {
        conn.execute("INSERT INTO t (id, v) VALUES (?1, zeroblob(100))", [i])?;
        // Each commit is on the file before the next statement: another connection sees it.
        assert_eq!(sum_and_count(&reader)?, (100 * (i + 1), i + 1));
    }
    assert_eq!(
        sum_and_count(&recovered(dir.path(), "small")?)?,
        (20_000, 200)
    );
    Ok(())
}

/// A transaction of several megabytes goes to the file in pieces; the unix VFS writes a piece of
/// exactly 128 KiB as nothing, which it reports as a full disk (`CAPACITY`).
#[test]
fn a_transaction_larger_than_the_buffer_commits_whole() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    let mut conn = writer(&path, 100_000)?;
    let tx = conn.transaction()?;
    for i in 0..1_000_i64 {
        tx.execute("INSERT INTO t (id, v) VALUES (?1, zeroblob(5000))", [i])?;
    }
    tx.commit()?;
    let reader = Connection::open(&path)?;
    assert_eq!(sum_and_count(&reader)?, (5_000_000, 1_000));
    assert_eq!(
        sum_and_count(&recovered(dir.path(), "large")?)?,
        (5_000_000, 1_000)
    );
    Ok(())
}

/// With a small page cache a large transaction spills pages to the WAL before it commits, rewrites the
/// frames of pages it changes again, and once the commit frame is written rewrites their checksums:
/// writes before the end of the commit, which must reach the file before readers see the commit.
#[test]
fn frames_rewritten_at_commit_are_on_the_file_with_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    let mut conn = writer(&path, 10)?;
    conn.execute("INSERT INTO t (id, v) VALUES (-1, zeroblob(10))", [])?;
    let tx = conn.transaction()?;
    for i in 0..300_i64 {
        tx.execute("INSERT INTO t (id, v) VALUES (?1, zeroblob(3000))", [i])?;
    }
    // Pages spilled above change again: their frames are rewritten in place.
    tx.execute("UPDATE t SET v = zeroblob(2000) WHERE id < 300", [])?;
    tx.commit()?;
    let expected = (301 * 2000, 301);
    assert_eq!(sum_and_count(&Connection::open(&path)?)?, expected);
    assert_eq!(
        sum_and_count(&recovered(dir.path(), "rewritten")?)?,
        expected
    );
    Ok(())
}

/// A transaction that spilled pages and rolled back leaves nothing, and the next commit is whole.
#[test]
fn a_rolled_back_transaction_after_a_spill_leaves_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    let mut conn = writer(&path, 10)?;
    let tx = conn.transaction()?;
    for i in 0..300_i64 {
        tx.execute("INSERT INTO t (id, v) VALUES (?1, zeroblob(3000))", [i])?;
    }
    tx.rollback()?;
    conn.execute("INSERT INTO t (id, v) VALUES (1, zeroblob(7))", [])?;
    assert_eq!(sum_and_count(&Connection::open(&path)?)?, (7, 1));
    assert_eq!(
        sum_and_count(&recovered(dir.path(), "rolled-back")?)?,
        (7, 1)
    );
    Ok(())
}

/// The store's writer, with group commit, under sixteen threads that each write and read back.
#[test]
fn concurrent_group_commits_are_read_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(Db::open(dir.path().join("chat.db"))?);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let user = NewUser {
                        id: format!("u{t}-{i}"),
                        name: "n".repeat(2000),
                        metadata: serde_json::Value::Null,
                    };
                    db.write(|tx| crate::store::sqlite::users::create_user(tx, &user, 1))
                        .unwrap();
                    db.read(|c| crate::store::sqlite::users::get_user(c, &user.id))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let users: i64 =
        db.read(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))?;
    assert_eq!(users, 1_600);
    Ok(())
}
