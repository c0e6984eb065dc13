//! Opening the SQLite file and running transactions on it.
//!
//! ## Durability
//! The file is in WAL mode with `synchronous=NORMAL` by default ([`Durability::Process`]). A commit appends
//! the transaction to the WAL file with `write()` before `COMMIT` returns, so once the API has answered 2xx
//! the data is in the operating system's page cache and survives the server process being killed
//! (SIGKILL, OOM, panic). What NORMAL gives up is the `fsync` per commit: after a power loss or kernel
//! crash the last few commits can be lost (never corrupted: the WAL is checksummed and a torn tail is
//! discarded). [`Durability::Power`] (`synchronous=FULL`) fsyncs the WAL on every commit and survives power
//! loss too, at the cost of one fsync (about a millisecond on SSDs, far more on network disks) per write.
//!
//! ## Connections
//! One writer connection behind a lock ([`Writer`]): SQLite allows one writer at a time anyway, and taking
//! the lock in-process instead of spinning on `SQLITE_BUSY` makes writes queue fairly and keeps event ids in
//! commit order; writes that queue at the same time commit together (group commit). Reads use a small
//! pool of separate read-only connections, which in WAL mode see a consistent snapshot and never wait for
//! the writer. The two reads made for every message when plugins run use the writer's connection instead
//! when it is idle, for its warm page cache ([`Db::read_warm`]).
//!
//! ## Checkpoints
//! A thread of its own copies the WAL back into the database file ([`super::checkpoint`]), so no commit
//! pays for it.
//!
//! All calls block; async code calls them through [`crate::blocking::run`] (every closure here is short).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::checkpoint::{Checkpointer, FALLBACK_AUTOCHECKPOINT_PAGES};
use super::conversations;
use super::file;
use super::migrations;
use super::tokens;
use super::writer::{Wait, Writer, Writing};
use crate::model::{Conversation, Millis};
use crate::store::Durability;
use crate::store::error::{Result, StoreError};
use crate::store::records::TokenOwner;
use crate::store::token_cache::TokenCache;
use crate::store::{AfterCommit, Deliveries};

/// How long a connection waits for another process's lock before failing with `SQLITE_BUSY`. Only another
/// process (a backup, the `sqlite3` shell) can hold it, since this process serialises its own writes;
/// five seconds rides out a checkpoint or a short admin query without hanging a request forever.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections kept open for reuse: as many as requests that read at once under load (16 clients
/// sending kept more than 4 busy, and opening a connection, which reads the schema, cost more than the
/// reads). Extra readers are opened on demand and closed after use; an idle one costs a file handle and
/// its page cache.
pub const READ_POOL_SIZE: usize = 16;

/// Prepared statements each connection keeps (rusqlite's default is 16). The store's queries use
/// `prepare_cached` so SQLite parses each once per connection instead of on every call (parsing was 19% of
/// the server's CPU per message); the store has about 70 distinct statements, and with fewer slots than
/// the hot ones the least recently used would be evicted and parsed again on every request.
pub const STATEMENT_CACHE_CAPACITY: usize = 128;

/// The `synchronous` setting that gives `durability` (see the module docs).
fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    }
}

/// The chat database: one SQLite file, migrated on open.
#[derive(Debug)]
pub struct Db {
    /// The file, kept to open read connections on demand.
    path: PathBuf,
    /// Applied to every connection.
    durability: Durability,
    /// The only connection that writes; see the module docs for why one.
    writer: Writer,
    /// Idle read-only connections.
    readers: Mutex<Vec<Connection>>,
    /// Moves the WAL into the database file off the request path (see [`super::checkpoint`]).
    checkpointer: Checkpointer,
    /// Token owners remembered between requests.
    tokens: TokenCache,
}

impl Db {
    /// Opens (creating if needed, with its parent directories) and migrates the database at `path`,
    /// with [`Durability::Process`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Durability::default())
    }

    /// Like [`Db::open`] with an explicit [`Durability`].
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut writer = file::open_writer(&path)?;
        // journal_mode is stored in the file; setting it every open is cheap and repairs a file that was
        // switched back by a tool.
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!(
                "could not enable WAL (journal_mode={mode})"
            )));
        }
        configure(&writer, durability)?;
        writer.pragma_update(None, "wal_autocheckpoint", FALLBACK_AUTOCHECKPOINT_PAGES)?;
        migrations::migrate(&mut writer)?;
        let checkpointer = Checkpointer::start(&path)?;
        let writer = Writer::new(writer);
        let tokens = TokenCache::new(writer.account_changes());
        Ok(Self {
            path,
            durability,
            writer,
            readers: Mutex::new(Vec::new()),
            checkpointer,
            tokens,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long the writer has been held since the database was opened (see `Writer::busy`).
    pub fn writer_busy(&self) -> std::time::Duration {
        self.writer.busy()
    }

    /// Runs `f` in an IMMEDIATE transaction and commits if it returns `Ok`; an `Err` (or a panic) rolls
    /// back everything it did. IMMEDIATE takes the write lock up front, so a transaction that reads then
    /// writes never fails half-way with `SQLITE_BUSY`. Writes made at the same time may share the
    /// transaction and its commit ([`Writer`]); each still succeeds or fails on its own.
    pub fn write<T>(&self, f: impl FnOnce(&Writing<'_>) -> Result<T>) -> Result<T> {
        self.write_then(f, |_| None)
    }

    /// Runs `f` in a write that begins with its first statement and then commits as soon as `f` returned
    /// ([`Writer::write_lazily`]): the dispatcher's rounds, most of which make no statement.
    pub fn write_deliveries<T>(&self, f: impl FnOnce(&dyn Deliveries) -> Result<T>) -> Result<T> {
        let (committed, result) = self.writer.write_lazily(|lazy| f(lazy));
        if committed {
            self.checkpointer.committed();
        }
        result
    }

    /// Like [`Db::write`], then runs what `after_commit` makes of the result *before the next write can
    /// commit*, in commit order.
    ///
    /// Use it to publish the transaction's events to live subscribers: subscribers then see events in
    /// event-id order, and a client that resumes from the last id it saw never skips one. What it returns
    /// must be quick and must not touch the database (a non-blocking channel send is right).
    pub fn write_then<T>(
        &self,
        f: impl FnOnce(&Writing<'_>) -> Result<T>,
        after_commit: impl FnOnce(&T) -> Option<AfterCommit>,
    ) -> Result<T> {
        self.run(f, after_commit, Wait::ForQueued)
    }

    fn run<T>(
        &self,
        f: impl FnOnce(&Writing<'_>) -> Result<T>,
        after_commit: impl FnOnce(&T) -> Option<AfterCommit>,
        wait: Wait,
    ) -> Result<T> {
        let (committed, result) = self.writer.write(f, after_commit, wait);
        if committed {
            self.checkpointer.committed();
        }
        result
    }

    /// Who `token` belongs to at `now`, remembered from an earlier request while nothing changed it
    /// ([`crate::store::token_cache`]).
    pub fn token_owner(&self, token: &str, now: Millis) -> Result<Option<TokenOwner>> {
        let hash = tokens::token_hash(token);
        self.tokens.owner(&hash, now, || {
            self.read(|c| tokens::token_owner_by_hash(c, &hash))
        })
    }

    /// The conversation with `id`, remembered from an earlier read while nothing but counters changed it
    /// ([`crate::store::conversation_cache`]), else read on the writer's connection when it is idle
    /// ([`Db::read_warm`]).
    pub fn conversation(&self, id: &str) -> Result<Conversation> {
        self.writer.conversations().conversation(id, || {
            self.read_warm(|c| conversations::get_conversation(c, id))
        })
    }

    /// Runs `f` on a read-only connection inside a read transaction, so every query in `f` sees the same
    /// snapshot. Writes committed before the call are visible.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        // `BEGIN` and `COMMIT` from the statement cache: rusqlite's `Transaction` parses them anew on
        // every read (2% of the server's CPU per message sent with one client).
        conn.prepare_cached("BEGIN")?.execute([])?;
        let value = f(&conn);
        // Ending a read transaction cannot lose anything; ignore a failure to end it cleanly only if `f`
        // already failed.
        let ended = conn
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]));
        let result = match (value, ended) {
            (Ok(v), Ok(_)) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
        };
        // A connection still in a transaction (its end failed) is not reused.
        let mut readers = lock(&self.readers);
        if readers.len() < READ_POOL_SIZE && conn.is_autocommit() {
            readers.push(conn);
        }
        result
    }

    /// Like [`Db::read`], on the writer's connection when no write is running or waiting (its page cache
    /// is warm, see [`Writer::read_if_idle`]), else on a read connection. For the reads made for every
    /// message when plugins run: the look at a conversation before its before-hooks, and the dispatcher's
    /// read of new events. `f` must only read.
    pub fn read_warm<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match self.writer.read_if_idle(f) {
            Ok(read) => read,
            Err(f) => self.read(f),
        }
    }

    fn open_reader(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        configure(&conn, self.durability)?;
        Ok(conn)
    }
}

/// Per-connection settings: foreign keys (off by default in SQLite), the busy timeout, durability, the
/// statement cache and the query planner's stability guarantee.
///
/// Without that guarantee, SQLite plans a statement for the values bound to it: a `LIMIT ?` (every page
/// of the store, and the dispatcher's outbox read) marks the statement expired whenever it is bound
/// again, so each run of a cached statement parsed and planned its SQL anew (6% of the server's CPU per
/// message sent, measured with `perf`). The store never runs `ANALYZE` and has no `LIKE` on a bound
/// prefix, so a plan made once serves every value.
fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", synchronous(durability))?;
    Ok(())
}

/// Locks `m`, recovering from poisoning: a panic inside a closure dropped its transaction (rolled back),
/// so the connection is still in a clean state.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_in_wal_with_pragmas_and_keeps_data_after_reopen() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nested/chat.db");
        {
            let db = Db::open(&path)?;
            db.write(|tx| {
                tx.execute(
                    "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 1)",
                    [],
                )?;
                Ok(())
            })?;
            let (mode, fk, sync): (String, i64, i64) = db.read(|c| {
                Ok((
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                    c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                ))
            })?;
            assert_eq!((mode.as_str(), fk, sync), ("wal", 1, 1));
        }
        let db = Db::open(&path)?;
        let n: i64 =
            db.read(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))?;
        assert_eq!(n, 1);
        Ok(())
    }

    /// No commit copies the WAL into the database file; the checkpoint thread does, after a batch of
    /// commits, and the file then holds what they wrote.
    #[test]
    fn the_checkpoint_thread_moves_commits_into_the_database_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("chat.db");
        let db = Db::open(&path)?;
        let file_len = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = file_len();
        for i in 0..super::super::checkpoint::CHECKPOINT_EVERY_COMMITS {
            db.write(|tx| {
                tx.execute(
                    "INSERT INTO users (id, name, created_at) VALUES (?1, ?2, 1)",
                    rusqlite::params![format!("u{i}"), "x".repeat(2000)],
                )?;
                Ok(())
            })?;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db.checkpointer.checkpoints() == 0 || file_len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint: database file still {} bytes",
                file_len()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Every commit is there after a restart.
        drop(db);
        let conn = Connection::open(&path)?;
        let n: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        assert_eq!(n, super::super::checkpoint::CHECKPOINT_EVERY_COMMITS as i64);
        Ok(())
    }

    #[test]
    fn failed_write_rolls_back_and_readers_are_read_only() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path().join("chat.db"))?;
        let failed: Result<()> = db.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 1)",
                [],
            )?;
            Err(StoreError::Conflict("stop".into()))
        });
        assert!(failed.is_err());
        let n: i64 =
            db.read(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))?;
        assert_eq!(n, 0);
        let write_in_read = db.read(|c| Ok(c.execute("DELETE FROM users", [])?));
        assert!(write_in_read.is_err());
        Ok(())
    }

    #[test]
    fn commits_do_not_depend_on_a_clean_close() -> Result<()> {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Db>();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("chat.db");
        let db = Db::open(&path)?;
        db.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 1)",
                [],
            )?;
            Ok(())
        })?;
        // Like a killed process: the connection is never closed, nothing is checkpointed.
        std::mem::forget(db);
        let again = Db::open(&path)?;
        let n: i64 =
            again.read(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))?;
        assert_eq!(n, 1);
        Ok(())
    }
}
