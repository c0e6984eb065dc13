//! The statements the KV store runs most, each prepared once and kept with its connection.
//!
//! ## Why
//! rusqlite's `prepare_cached` finds a statement by its SQL text on every use: it trims and hashes the
//! text, compares it, copies it into a new key, and hashes it again to put the statement back. That is
//! 0.1-0.17 µs a statement here. A plugin's KV increment is two statements (a read and an `UPDATE`), and
//! every write has its transaction's `BEGIN`, `COMMIT` or savepoint, so the lookups were a fifth of an
//! increment: `KvStore::increment` takes 1.6 µs with the statements kept against 2.0 with the lookups
//! (BENCHMARKS.md, problem 14). These are kept by a number instead, each prepared on its first use, so a
//! connection without the KV tables (a test's) prepares none of the KV ones.
//!
//! ## Why `unsafe`
//! A kept [`Statement`] borrows its [`Connection`], so the two live in one [`ConnWithKept`] (the
//! `self_cell` crate keeps the connection at a fixed address on the heap and the statements' borrows
//! inside it). rusqlite marks statements `!Send`, because a statement alone on another thread could use
//! its connection while the first thread does. The store moves the connection and all its statements
//! together, behind its mutex, which SQLite's threading mode allows ("no single database connection nor
//! any object derived from it, such as a prepared statement, is used in two or more threads at the same
//! time"). See the `SAFETY` comment on the `Send` impl.

use rusqlite::{Connection, Statement};

use super::kv::{READ_WITH_SIZE, UPDATE_VALUE};
use crate::store::kv::KvError;

/// A statement kept prepared ([`Kept`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KvSql {
    /// `BEGIN IMMEDIATE`: a write transaction, taking the write lock at once.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK` of the whole transaction.
    Rollback,
    /// `SAVEPOINT kv_write`: a write joining others that wait for a commit.
    Savepoint,
    /// `RELEASE kv_write`: that write done.
    Release,
    /// `ROLLBACK TO kv_write`: that write undone, the others kept.
    RollbackToSavepoint,
    /// A key's live value and its stored row's size ([`READ_WITH_SIZE`]).
    ReadWithSize,
    /// A live row's new value of the same size ([`UPDATE_VALUE`]).
    UpdateValue,
}

impl KvSql {
    /// How many there are: [`Kept`]'s slots.
    const COUNT: usize = 8;

    fn sql(self) -> &'static str {
        match self {
            KvSql::Begin => "BEGIN IMMEDIATE",
            KvSql::Commit => "COMMIT",
            KvSql::Rollback => "ROLLBACK",
            KvSql::Savepoint => "SAVEPOINT kv_write",
            KvSql::Release => "RELEASE kv_write",
            KvSql::RollbackToSavepoint => "ROLLBACK TO kv_write",
            KvSql::ReadWithSize => READ_WITH_SIZE,
            KvSql::UpdateValue => UPDATE_VALUE,
        }
    }
}

/// A connection's kept statements ([`KvSql`]), each prepared on its first use.
#[derive(Debug)]
pub(super) struct Kept<'conn> {
    conn: &'conn Connection,
    slots: [Option<Statement<'conn>>; KvSql::COUNT],
}

impl<'conn> Kept<'conn> {
    /// None prepared yet, on `conn`.
    pub(super) fn new(conn: &'conn Connection) -> Self {
        Kept {
            conn,
            slots: Default::default(),
        }
    }

    /// `which`, prepared now if this is its first use.
    pub(super) fn get(&mut self, which: KvSql) -> Result<&mut Statement<'conn>, KvError> {
        let slot = &mut self.slots[which as usize];
        match slot {
            Some(statement) => Ok(statement),
            None => Ok(slot.insert(self.conn.prepare(which.sql())?)),
        }
    }
}

self_cell::self_cell!(
    /// A connection together with its [`Kept`] statements, which borrow it.
    pub(super) struct ConnWithKept {
        owner: Connection,
        #[covariant]
        dependent: Kept,
    }
    impl {Debug}
);

// SAFETY: rusqlite's `Connection` is `Send`; its `Statement`s are not, only because a statement sent
// alone would reach its connection (through a shared reference, and SQLite's handle) from a second
// thread while the first may still use it. A `ConnWithKept` owns the connection and every statement
// that borrows it, so sending it sends all of them: no borrow of either can stay behind, since
// `self_cell` hands them out only for the lifetime of a borrow of the cell, and `ConnWithKept` is not
// `Sync` (the connection is not), so no two threads can hold such borrows at once. One thread at a time
// using a connection and its statements is what SQLite's threading mode allows.
#[allow(unsafe_code)]
unsafe impl Send for ConnWithKept {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::KvStore;
    use std::sync::Arc;

    #[test]
    fn every_kept_statement_has_its_own_slot_and_prepares_on_the_kv_schema() -> Result<(), KvError>
    {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(super::super::kv::SCHEMA)?;
        let mut kept = Kept::new(&conn);
        let all = [
            KvSql::Begin,
            KvSql::Commit,
            KvSql::Rollback,
            KvSql::Savepoint,
            KvSql::Release,
            KvSql::RollbackToSavepoint,
            KvSql::ReadWithSize,
            KvSql::UpdateValue,
        ];
        assert_eq!(all.len(), KvSql::COUNT);
        for (n, which) in all.into_iter().enumerate() {
            assert_eq!(which as usize, n, "{which:?} has slot {n}");
            kept.get(which)?;
        }
        assert!(kept.slots.iter().all(Option::is_some));
        Ok(())
    }

    #[test]
    fn increments_from_several_threads_on_kept_statements_all_count()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let kv = Arc::new(KvStore::open(&dir.path().join("kv.db"))?);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || -> Result<(), KvError> {
                    for _ in 0..500 {
                        kv.increment("p", "n", 1)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for thread in threads {
            thread
                .join()
                .map_err(|_| "an incrementing thread panicked")??;
        }
        assert_eq!(kv.get("p", "n")?.as_deref(), Some(&b"2000"[..]));
        // Seen the same way by a store opened afresh on the file: the kept statements committed.
        drop(kv);
        let again = KvStore::open(&dir.path().join("kv.db"))?;
        assert_eq!(again.get("p", "n")?.as_deref(), Some(&b"2000"[..]));
        Ok(())
    }
}
