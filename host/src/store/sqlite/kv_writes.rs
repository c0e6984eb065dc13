//! The KV store's connection and its write transaction, which may hold writes waiting for a commit.
//!
//! Each write runs whole or not at all. A write made with [`Commit::Now`] is committed before it returns.
//! A write made with [`Commit::Later`] (an after-hook's, see [`Commit`]) stays in the open transaction,
//! visible to every later read and write of the store at once, until the next `Now` write or
//! [`KvConn::commit_waiting`] commits it: the dispatcher commits once per round, not once per write,
//! and records a delivery as done only after that commit. A commit of a file writes its pages to the WAL
//! (two `pwrite`s each) and takes SQLite's locks: most of what a KV increment cost on a file
//! (BENCHMARKS.md, problem 13).
//!
//! A commit that fails rolls back the writes that were waiting with it; [`KvConn::lost`] counts those
//! times, so the dispatcher retries the deliveries whose writes may be among them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

use super::kv_statements::{ConnWithKept, Kept, KvSql};
use crate::store::kv::{Commit, KvError};

/// The KV store's one connection (behind the store's mutex) and whether writes wait in it.
#[derive(Debug)]
pub(super) struct KvConn {
    /// The connection, with the statements it runs most kept prepared ([`super::kv_statements`]).
    conn: ConnWithKept,
    /// A write transaction is open, holding writes made with [`Commit::Later`].
    waiting: bool,
    /// How many times waiting writes were rolled back: shared, so it can be read without the mutex.
    lost: Arc<AtomicU64>,
}

impl KvConn {
    /// Wraps `conn`, whose losses of waiting writes are counted in `lost`.
    pub(super) fn new(conn: Connection, lost: Arc<AtomicU64>) -> Self {
        KvConn {
            conn: ConnWithKept::new(conn, |c| Kept::new(c)),
            waiting: false,
            lost,
        }
    }

    /// The connection, for reads (which see waiting writes).
    pub(super) fn conn(&self) -> &Connection {
        self.conn.borrow_owner()
    }

    /// Runs `f` as one write, all of it or nothing, committed as `commit` says. A write joining waiting
    /// ones runs in a savepoint, so its failure leaves theirs in place.
    pub(super) fn write<R>(
        &mut self,
        commit: Commit,
        f: impl FnOnce(&Connection) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        self.clear_leftover();
        let joined = self.waiting;
        self.run(if joined {
            KvSql::Savepoint
        } else {
            KvSql::Begin
        })?;
        let value = match f(self.conn.borrow_owner()) {
            Ok(value) => value,
            Err(error) => {
                let undone = if joined {
                    self.run(KvSql::RollbackToSavepoint)
                        .and_then(|()| self.run(KvSql::Release))
                } else {
                    self.run(KvSql::Rollback)
                };
                if undone.is_err() {
                    self.abandon();
                }
                return Err(error);
            }
        };
        if joined && let Err(error) = self.run(KvSql::Release) {
            self.abandon();
            return Err(error);
        }
        match commit {
            Commit::Later => self.waiting = true,
            Commit::Now => self.commit()?,
        }
        Ok(value)
    }

    /// Runs `f`, which reads and then writes with at most one statement, without a transaction of its
    /// own: a statement is atomic by itself, and nothing comes between the reads and the write (this
    /// connection is the store's only writer, and the caller holds its mutex). Saves an increment's
    /// `BEGIN` and `COMMIT` statements, a fifth of its cost in memory. Committed as `commit` says: a
    /// `Later` write opens the waiting transaction first; a `Now` write commits any waiting ones.
    /// `f` runs the connection's kept statements.
    pub(super) fn one_statement<R>(
        &mut self,
        commit: Commit,
        f: impl FnOnce(&mut Kept<'_>) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        self.clear_leftover();
        if commit == Commit::Later && !self.waiting {
            self.run(KvSql::Begin)?;
            self.waiting = true;
        }
        let value = self.conn.with_dependent_mut(|_, kept| f(kept))?;
        if commit == Commit::Now && self.waiting {
            self.commit()?;
        }
        Ok(value)
    }

    /// Commits the writes waiting, if any; whether there were.
    pub(super) fn commit_waiting(&mut self) -> Result<bool, KvError> {
        if !self.waiting {
            return Ok(false);
        }
        self.commit()?;
        Ok(true)
    }

    /// Commits the open transaction; if that fails, rolls it back (counting waiting writes as lost).
    fn commit(&mut self) -> Result<(), KvError> {
        match self.run(KvSql::Commit) {
            Ok(()) => {
                self.waiting = false;
                Ok(())
            }
            Err(error) => {
                self.abandon();
                Err(error)
            }
        }
    }

    /// Rolls back a transaction left open with no writes waiting in it: a write that panicked midway
    /// (the store's mutex ignores poisoning), which would otherwise make every later `BEGIN` fail.
    fn clear_leftover(&mut self) {
        if !self.waiting && !self.conn().is_autocommit() {
            let _ = self.run(KvSql::Rollback);
        }
    }

    /// Rolls the open transaction back, whatever state it is in.
    fn abandon(&mut self) {
        // Fails only if no transaction is open (SQLite rolled it back itself): nothing left to undo.
        let _ = self.run(KvSql::Rollback);
        if self.waiting {
            self.lost.fetch_add(1, Ordering::AcqRel);
            tracing::error!("plugin KV writes waiting for a commit were rolled back");
        }
        self.waiting = false;
    }

    /// Runs one kept statement without parameters ([`super::kv_statements`]).
    fn run(&mut self, which: KvSql) -> Result<(), KvError> {
        self.conn.with_dependent_mut(|_, kept| {
            kept.get(which)?.execute([])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::KvStore;
    use crate::store::sqlite::kv::SqliteKv;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The value of plugin `p`'s `key` as another connection to the file sees it: what is durable.
    fn durable(path: &std::path::Path, key: &str) -> Result<Option<Vec<u8>>, rusqlite::Error> {
        use rusqlite::OptionalExtension;
        Connection::open(path)?
            .query_row(
                "SELECT value FROM plugin_kv WHERE plugin = 'p' AND key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
    }

    #[test]
    fn a_later_write_is_seen_at_once_and_durable_once_committed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        let kv = KvStore::open(&path)?;
        let q = crate::store::kv::KvQuota::UNLIMITED;
        assert_eq!(kv.increment_within("p", q, Commit::Later, "n", 1)?, 1);
        assert_eq!(kv.increment_within("p", q, Commit::Later, "n", 1)?, 2);
        assert_eq!(kv.get("p", "n")?.as_deref(), Some(&b"2"[..]));
        assert_eq!(durable(&path, "n")?, None);
        kv.commit_waiting()?;
        assert_eq!(durable(&path, "n")?.as_deref(), Some(&b"2"[..]));
        assert_eq!(kv.lost_count(), 0);

        // An increment in place (same width) waits too, with nothing waiting before it.
        assert_eq!(kv.increment_within("p", q, Commit::Later, "n", 1)?, 3);
        assert_eq!(durable(&path, "n")?.as_deref(), Some(&b"2"[..]));

        // A write committed now takes the waiting ones with it.
        kv.set_within("p", q, Commit::Later, "a", b"1", None)?;
        kv.set("p", "b", b"2", None)?;
        assert_eq!(durable(&path, "n")?.as_deref(), Some(&b"3"[..]));
        assert_eq!(durable(&path, "a")?.as_deref(), Some(&b"1"[..]));
        assert_eq!(durable(&path, "b")?.as_deref(), Some(&b"2"[..]));
        // And an increment in place committed now is on file when it returns.
        assert_eq!(kv.increment("p", "n", 1)?, 4);
        assert_eq!(durable(&path, "n")?.as_deref(), Some(&b"4"[..]));
        Ok(())
    }

    #[test]
    fn a_write_that_panicked_midway_is_rolled_back_by_the_next() -> TestResult {
        let dir = tempfile::tempdir()?;
        let conn = Connection::open(dir.path().join("kv.db"))?;
        conn.execute_batch("CREATE TABLE t (v INTEGER)")?;
        let mut kv = KvConn::new(conn, Arc::new(AtomicU64::new(0)));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = kv.write(Commit::Now, |c| -> Result<(), KvError> {
                c.execute("INSERT INTO t VALUES (1)", [])?;
                panic!("a write that panics midway")
            });
        }));
        assert!(panicked.is_err());
        kv.write(Commit::Now, |c| {
            Ok(c.execute("INSERT INTO t VALUES (2)", [])?)
        })?;
        let rows: Vec<i64> = kv
            .conn()
            .prepare("SELECT v FROM t")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        assert_eq!(rows, vec![2]);
        Ok(())
    }

    #[test]
    fn a_write_failing_among_waiting_ones_undoes_itself_only() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        let kv = SqliteKv::open(&path)?;
        let quota = crate::store::kv::KvQuota {
            max_keys: 1,
            max_bytes: 1_000,
        };
        kv.set_within("p", quota, Commit::Later, "a", b"1", None)?;
        let refused = kv.set_within("p", quota, Commit::Later, "b", b"2", None);
        assert!(matches!(
            refused,
            Err(KvError::QuotaExceeded { what: "keys", .. })
        ));
        let overflow = kv.increment_within("p", quota, Commit::Later, "a", i64::MAX);
        assert!(matches!(overflow, Err(KvError::Overflow)));
        kv.commit_waiting()?;
        assert_eq!(durable(&path, "a")?.as_deref(), Some(&b"1"[..]));
        assert_eq!(durable(&path, "b")?, None);
        assert_eq!(kv.lost_count(), 0);
        Ok(())
    }

    /// A commit refused by SQLite (here a deferred foreign key, checked at `COMMIT`) rolls back every
    /// write waiting with it and counts the loss; the connection works on afterwards.
    #[test]
    fn a_failed_commit_rolls_back_the_waiting_writes_and_counts_the_loss() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kv.db");
        let conn = Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TABLE t (v INTEGER);",
        )?;
        let lost = Arc::new(AtomicU64::new(0));
        let mut kv = KvConn::new(conn, lost.clone());
        let count = |kv: &KvConn| -> Result<i64, rusqlite::Error> {
            kv.conn()
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        };
        kv.write(Commit::Later, |c| {
            Ok(c.execute("INSERT INTO t VALUES (1)", [])?)
        })?;
        kv.write(Commit::Later, |c| {
            Ok(c.execute("INSERT INTO child VALUES (7)", [])?)
        })?;
        assert_eq!(count(&kv)?, 1);
        let failed = kv.commit_waiting();
        assert!(
            matches!(failed, Err(KvError::Sqlite(_))),
            "the commit must fail: {failed:?}"
        );
        assert_eq!(lost.load(Ordering::Acquire), 1);
        assert_eq!(count(&kv)?, 0, "the waiting writes are rolled back");

        kv.write(Commit::Later, |c| {
            Ok(c.execute("INSERT INTO t VALUES (2)", [])?)
        })?;
        assert!(kv.commit_waiting()?);
        assert!(!kv.commit_waiting()?, "nothing waits after a commit");
        assert_eq!(count(&kv)?, 1);
        assert_eq!(lost.load(Ordering::Acquire), 1);
        Ok(())
    }
}
