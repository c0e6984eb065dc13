//! Changes a server makes to some tables, as a generation: what the memories kept beside the database
//! ([`super::token_cache`], [`super::conversation_cache`]) trust their entries under.
//!
//! On SQLite the update hook on the writer connection reports every row that changes; on PostgreSQL a
//! server on its own reports the changes its writes make ([`super::conversation_cache`] says how). A
//! change to a watched table bumps the generation, and the writer bumps it again once that transaction
//! ended, committed or rolled back ([`TableChanges::transaction_ended`]). An entry read under a
//! generation is used only while the generation stays: one read from a snapshot taken before a commit
//! is not trusted after it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Changes to the rows of some tables made by this server's writes.
#[derive(Debug)]
pub struct TableChanges {
    tables: &'static [&'static str],
    generation: AtomicU64,
    /// A change was made in the writer's open transaction.
    pending: AtomicBool,
}

impl TableChanges {
    /// Changes to `tables`, none seen yet.
    pub const fn watching(tables: &'static [&'static str]) -> Self {
        Self {
            tables,
            generation: AtomicU64::new(0),
            pending: AtomicBool::new(false),
        }
    }

    /// A write changed a row of `table`; the writer must then report its transaction's end.
    pub fn row_changed(&self, table: &str) {
        if self.tables.contains(&table) {
            self.pending.store(true, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The writer's transaction committed or rolled back.
    pub fn transaction_ended(&self) {
        if self.pending.swap(false, Ordering::SeqCst) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The generation now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}
