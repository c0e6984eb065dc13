//! How the store opens a database file to write it (the chat database and the KV store): through the
//! WAL VFS ([`super::wal_vfs`]), and, for a file it creates, with pages of [`PAGE_SIZE`] bytes.
//!
//! ## Why 1 KiB pages
//! Every page a transaction changes is appended to the write-ahead log whole at its commit, and checksummed
//! and copied into the page cache there. A send changes about nine pages, each by a few dozen bytes (the
//! tails of the messages, events and audience tables and their indexes, the conversation's counters): with
//! SQLite's default 4 KiB pages a commit wrote some 36 KiB for under a kilobyte of changes, and at one
//! client every send is a commit of its own. With 1 KiB pages the same commit writes a quarter of that; the
//! trees are a level deeper, which reads from memory hardly notice. Measured end to end in BENCHMARKS.md,
//! problem 28 (1 KiB was the best of 512, 1,024, 2,048 and 4,096).
//!
//! A file that exists keeps the page size it was created with: SQLite changes it only by rewriting the
//! whole file (`VACUUM`), which it cannot do in WAL mode at all. Such a file works as before.

use std::path::Path;

use rusqlite::Connection;

/// The page size of a database file the store creates.
pub const PAGE_SIZE: u32 = 1024;

/// Opens the connection that writes the database at `path` (created if missing) through the WAL VFS. A
/// new file gets [`PAGE_SIZE`]; for a file that has pages already, setting it does nothing.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = super::wal_vfs::open_writer(path)?;
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::kv::KvStore;
    use crate::store::sqlite::Db;

    fn page_size(path: &Path) -> u32 {
        let conn = Connection::open(path).unwrap();
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn new_chat_and_kv_files_get_small_pages() {
        let dir = tempfile::tempdir().unwrap();
        let chat = dir.path().join("chat.db");
        let kv = dir.path().join("kv.db");
        drop(Db::open(&chat).unwrap());
        drop(KvStore::open(&kv).unwrap());
        assert_eq!(page_size(&chat), PAGE_SIZE);
        assert_eq!(page_size(&kv), PAGE_SIZE);
    }

    /// A database made before (4 KiB pages, SQLite's default) opens, migrates and serves with its own
    /// page size.
    #[test]
    fn a_file_with_large_pages_keeps_them_and_serves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE t (x);",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        db.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 1)",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let users: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(users, 1);
        drop(db);
        assert_eq!(page_size(&path), 4096);
    }
}
