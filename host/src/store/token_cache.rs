//! Token owners remembered between requests, so checking a request's token usually reads nothing.
//!
//! Every request checks its bearer token, and the read that did it was 7-9% of the server's CPU per
//! message sent (BENCHMARKS.md, problem 17). A remembered owner is used only while it is still true:
//! - **Revocation stays immediate.** SQLite's update hook on the writer connection sees every row of
//!   `users` and `tokens` that changes ([`TableChanges`]); each change bumps a generation, and the writer
//!   bumps it again once that transaction ended, committed or rolled back, so an owner read from a
//!   snapshot taken before the commit is not trusted after it. An owner is used only under the generation
//!   it was read at. A revoked token, a deactivated user, a new token's `last_used_at`: all are read anew.
//! - **Other processes.** A change made by another process on the file (the `sqlite3` shell) passes the
//!   hook by: a remembered owner is read anew after [`TTL_MS`] anyway.
//! - **Expiry** is the caller's check on every request, from the owner's `expires_at`.
//!
//! Unknown tokens are not remembered, so guessing tokens cannot fill the memory; it holds at most
//! [`MAX_ENTRIES`] owners and starts over when full.
//!
//! On PostgreSQL a server on its own (the holder of the database's server lock, which makes every write
//! itself) keeps the same memory: the backend's [`Tx`](super::Tx) methods that change a user or a token
//! say so, as they do for [`super::conversation_cache`], since PostgreSQL has no update hook. That
//! saves each request a round trip (BENCHMARKS.md, problem 36). The nodes of a cluster keep no such
//! memory: each would miss the others' changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::model::Millis;
use crate::store::error::Result;
use crate::store::records::TokenOwner;
use crate::store::table_changes::TableChanges;

/// How long a remembered owner is used at most, in milliseconds.
pub const TTL_MS: Millis = 1_000;

/// Owners remembered at most.
pub const MAX_ENTRIES: usize = 10_000;

/// The tables a token's owner is read from.
pub const ACCOUNT_TABLES: &[&str] = &["users", "tokens"];

/// Token owners by the hash of their token (the raw token is not kept).
#[derive(Debug)]
pub struct TokenCache {
    changes: Arc<TableChanges>,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    read_at: Millis,
    owner: TokenOwner,
}

impl TokenCache {
    /// An empty memory, trusting what `changes` has not seen change.
    pub fn new(changes: Arc<TableChanges>) -> Self {
        Self {
            changes,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The owner of the token whose hash is `hash` at `now`: the remembered one if still true, else what
    /// `read` returns (remembered if it is an owner).
    pub fn owner(
        &self,
        hash: &str,
        now: Millis,
        read: impl FnOnce() -> Result<Option<TokenOwner>>,
    ) -> Result<Option<TokenOwner>> {
        let generation = self.changes.generation();
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entries.get(hash)
                && entry.generation == generation
                && (entry.read_at..entry.read_at.saturating_add(TTL_MS)).contains(&now)
            {
                return Ok(Some(entry.owner.clone()));
            }
        }
        let owner = read()?;
        if let Some(owner) = &owner {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                hash.to_owned(),
                Entry {
                    generation,
                    read_at: now,
                    owner: owner.clone(),
                },
            );
        }
        Ok(owner)
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::sqlite::testutil::TestDb;
    use crate::store::sqlite::tokens::{issue_token, revoke_token};
    use crate::store::sqlite::users::set_deactivated;

    fn name(owner: Option<TokenOwner>) -> Option<String> {
        owner.map(|owner| owner.user.name)
    }

    #[test]
    fn an_owner_is_remembered_until_its_rows_change_here_or_for_a_second_if_changed_elsewhere()
    -> Result<()> {
        let test = TestDb::with_users(&["alice"])?;
        let db = &test.db;
        let issued = db.write(|tx| issue_token(tx, "alice", None, 1))?;
        assert_eq!(
            name(db.token_owner(&issued.token, 10)?),
            Some("ALICE".into())
        );

        // Another process (the `sqlite3` shell) renames her: the remembered owner holds for TTL_MS.
        let shell = Connection::open(db.path())?;
        shell.execute("UPDATE users SET name = 'Al' WHERE id = 'alice'", [])?;
        assert_eq!(
            name(db.token_owner(&issued.token, 10 + TTL_MS - 1)?),
            Some("ALICE".into())
        );
        assert_eq!(
            name(db.token_owner(&issued.token, 10 + TTL_MS)?),
            Some("Al".into())
        );

        // Through the server, revocation is seen at once.
        assert!(db.write(|tx| revoke_token(tx, "alice", &issued.info.id))?);
        assert_eq!(name(db.token_owner(&issued.token, 10 + TTL_MS)?), None);
        Ok(())
    }

    #[test]
    fn an_owner_read_before_a_change_committed_is_not_trusted_after_the_commit() -> Result<()> {
        let test = TestDb::with_users(&["alice"])?;
        let db = &test.db;
        let token = db.write(|tx| issue_token(tx, "alice", None, 1))?.token;
        let active = |owner: Option<TokenOwner>| owner.map(|owner| !owner.deactivated);
        assert_eq!(active(db.token_owner(&token, 10)?), Some(true));

        db.write(|tx| {
            set_deactivated(tx, "alice", Some(11))?;
            // A request checked in the meantime reads the snapshot before the commit.
            assert_eq!(active(db.token_owner(&token, 11)?), Some(true));
            Ok(())
        })?;
        assert_eq!(active(db.token_owner(&token, 12)?), Some(false));
        Ok(())
    }

    #[test]
    fn unknown_tokens_are_not_remembered_and_a_full_memory_starts_over() -> Result<()> {
        let cache = TokenCache::new(Arc::new(TableChanges::watching(ACCOUNT_TABLES)));
        let mut reads = 0;
        for _ in 0..2 {
            assert!(
                cache
                    .owner("nobody", 1, || {
                        reads += 1;
                        Ok(None)
                    })?
                    .is_none()
            );
        }
        assert_eq!(reads, 2);
        let test = TestDb::with_users(&["alice"])?;
        let token = test.db.write(|tx| issue_token(tx, "alice", None, 1))?.token;
        let owner = test.db.token_owner(&token, 1)?;
        for i in 0..=MAX_ENTRIES {
            cache.owner(&format!("t{i}"), 1, || Ok(owner.clone()))?;
        }
        assert_eq!(cache.entries.lock().map(|e| e.len()).unwrap_or_default(), 1);
        Ok(())
    }
}
