//! Conversations remembered between sends, so the look at a conversation before its before-hooks usually
//! reads nothing.
//!
//! With plugins on `before-message-sent`, every send reads its conversation and participants before the
//! chain (the write reads them again under the lock): 17-20 µs of CPU per message with one client, a
//! fifth of what the plugins may add to a send (BENCHMARKS.md, problem 24). A remembered conversation is
//! used only while it is still true, as [`super::token_cache`] does for tokens:
//! - **Changes are seen at once.** SQLite's update hook on the writer connection sees every row of
//!   `conversations` and `participants` that changes; each change bumps a generation, and so does the end
//!   of the transaction that made it, so a conversation read from a snapshot taken before the commit is
//!   not trusted after it. A conversation is used only under the generation it was read at: a new title,
//!   a participant added, removed or given a role, all are read anew.
//! - **Except counters.** A send changes its conversation's row (its message count and last message) and
//!   its sender's participant row (their own unread count); reading a message changes the reader's
//!   participant row. Those statements run as
//!   [`Writing::counters`](super::sqlite::writer::Writing::counters): they leave the generation alone,
//!   and the last message a send sets is written into the remembered conversation once its transaction
//!   commits ([`Writing::last_message`](super::sqlite::writer::Writing::last_message)), in commit order.
//!   A conversation read while such a patch lands is not remembered (it may predate the patch).
//! - **Other processes.** A change made by another process on the file (the `sqlite3` shell) passes the
//!   hook by: a remembered conversation is read anew after [`TTL`] anyway.
//!
//! It holds at most [`MAX_ENTRIES`] conversations and [`MAX_PARTICIPANTS`] participant ids in all, and
//! starts over when either is full.
//!
//! ## On PostgreSQL
//! A server on its own holds the database's server lock, so no other server writes it, and every write
//! goes through its writer mutex. PostgreSQL has no update hook: the backend's [`Tx`](super::Tx)
//! methods that change a conversation or its participants say so themselves (`PgConn`'s
//! `conversation_changed`, in `store/postgres/seam`), and a send reports its last message as SQLite's
//! does. Its look before the chain was a round trip of its own, about 80 µs of a send's wall time at
//! one client (BENCHMARKS.md, problem 36). The nodes of a cluster keep no such memory: each would miss
//! the others' changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::table_changes::TableChanges;
use crate::model::Conversation;
use crate::store::error::Result;

/// How long a remembered conversation is used at most.
pub const TTL: Duration = Duration::from_secs(1);

/// Conversations remembered at most.
pub const MAX_ENTRIES: usize = 4_096;

/// Participant ids remembered at most, over all conversations (about 10 MB).
pub const MAX_PARTICIPANTS: usize = 250_000;

/// The tables a conversation is read from.
const WATCHED: &[&str] = &["conversations", "participants"];

/// Remembered conversations, and what the server's writes change in them. Shared by the writer, which
/// reports changes, and the database, which reads through it.
#[derive(Debug)]
pub struct ConversationCache {
    /// Changes to watched rows that are not counters.
    changes: TableChanges,
    /// A counter statement runs ([`Writing::counters`](super::sqlite::writer::Writing::counters)).
    counting: AtomicBool,
    /// Bumped by every patch applied, so a read that a patch overtook is not remembered.
    patched: AtomicU64,
    /// The last message of each send in the writer's open transaction, in the order they ran.
    patches: Mutex<Vec<(String, String)>>,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<String, Entry>,
    participants: usize,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    read_at: Instant,
    conversation: Conversation,
}

impl Default for ConversationCache {
    fn default() -> Self {
        Self {
            changes: TableChanges::watching(WATCHED),
            counting: AtomicBool::new(false),
            patched: AtomicU64::new(0),
            patches: Mutex::default(),
            entries: Mutex::default(),
        }
    }
}

impl ConversationCache {
    /// A write changed a row of `table` (SQLite's update hook saw it, or the PostgreSQL backend said so).
    pub fn row_changed(&self, table: &str) {
        if !self.counting.load(Ordering::SeqCst) {
            self.changes.row_changed(table);
        }
    }

    /// Runs `f`, whose changes to watched rows are counters only. The rows it changes count again once
    /// it returns or panics (the writer catches a write's panic and goes on).
    pub fn counting<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Counting<'a>(&'a AtomicBool);
        impl Drop for Counting<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        self.counting.store(true, Ordering::SeqCst);
        let _counting = Counting(&self.counting);
        f()
    }

    /// A send in the open transaction made `message_id` the last message of `conversation_id`.
    pub fn last_message(&self, conversation_id: &str, message_id: &str) {
        lock(&self.patches).push((conversation_id.to_owned(), message_id.to_owned()));
    }

    /// Where the open transaction's patches stand, before a write of its group runs.
    pub fn mark(&self) -> usize {
        lock(&self.patches).len()
    }

    /// That write rolled back to its savepoint: its patches go with it.
    pub fn rolled_back_to(&self, mark: usize) {
        lock(&self.patches).truncate(mark);
    }

    /// The writer's transaction ended: committed (its patches apply) or rolled back.
    pub fn transaction_ended(&self, committed: bool) {
        let patches = std::mem::take(&mut *lock(&self.patches));
        if committed && !patches.is_empty() {
            let mut entries = lock(&self.entries);
            for (conversation_id, message_id) in patches {
                if let Some(entry) = entries.by_id.get_mut(&conversation_id) {
                    entry.conversation.last_message_id = Some(message_id);
                }
            }
            self.patched.fetch_add(1, Ordering::SeqCst);
        }
        self.changes.transaction_ended();
    }

    /// The conversation `id`: the remembered one if still true, else what `read` returns (remembered).
    pub fn conversation(
        &self,
        id: &str,
        read: impl FnOnce() -> Result<Conversation>,
    ) -> Result<Conversation> {
        let generation = self.changes.generation();
        let patched = self.patched.load(Ordering::SeqCst);
        {
            let entries = lock(&self.entries);
            if let Some(entry) = entries.by_id.get(id)
                && entry.generation == generation
                && entry.read_at.elapsed() < TTL
            {
                return Ok(entry.conversation.clone());
            }
        }
        let read_at = Instant::now();
        let conversation = read()?;
        let mut entries = lock(&self.entries);
        // Under the lock patches land with: a read that one overtook, or that a change overtook, may
        // predate it.
        if self.changes.generation() == generation && self.patched.load(Ordering::SeqCst) == patched
        {
            let size = conversation.participant_ids.len();
            if entries.by_id.len() >= MAX_ENTRIES || entries.participants + size > MAX_PARTICIPANTS
            {
                *entries = Entries::default();
            }
            let entry = Entry {
                generation,
                read_at,
                conversation: conversation.clone(),
            };
            entries.participants += size;
            if let Some(old) = entries.by_id.insert(id.to_owned(), entry) {
                entries.participants -= old.conversation.participant_ids.len();
            }
        }
        Ok(conversation)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "conversation_cache_tests.rs"]
mod tests;
