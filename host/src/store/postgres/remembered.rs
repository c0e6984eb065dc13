//! [`Remembered`]: what a server on its own keeps in memory between requests on PostgreSQL, as SQLite's
//! backend does: token owners ([`crate::store::token_cache`]) and conversations
//! ([`crate::store::conversation_cache`]). It holds the database's server lock and makes every write
//! itself, so its writes can say what they change; PostgreSQL has no update hook to see it. The
//! backend's [`Tx`](crate::store::Tx) methods that change a user, a token, or a conversation beyond a
//! send's and a read's counters report it (`PgConn`, in `seam`), and each write's end is reported once it
//! committed or rolled back. The nodes of a cluster keep none of it: each would miss the others' changes.

use std::sync::Arc;

use crate::store::conversation_cache::ConversationCache;
use crate::store::table_changes::TableChanges;
use crate::store::token_cache::{ACCOUNT_TABLES, TokenCache};

/// Token owners and conversations remembered, with the changes they are trusted under.
#[derive(Debug)]
pub struct Remembered {
    /// Conversations, for the look before a send's chain.
    pub conversations: ConversationCache,
    /// Changes to users and tokens, which [`Remembered::tokens`] trusts its owners under.
    accounts: Arc<TableChanges>,
    /// Token owners, for every request's token.
    pub tokens: TokenCache,
}

impl Default for Remembered {
    fn default() -> Self {
        let accounts = Arc::new(TableChanges::watching(ACCOUNT_TABLES));
        Self {
            conversations: ConversationCache::default(),
            tokens: TokenCache::new(accounts.clone()),
            accounts,
        }
    }
}

impl Remembered {
    /// A write changes a conversation or its participants beyond a send's and a read's counters.
    pub fn conversation_changed(&self) {
        self.conversations.row_changed("conversations");
    }

    /// A write changes a user or a token.
    pub fn account_changed(&self) {
        self.accounts.row_changed("users");
    }

    /// A send in the open write made `message_id` the last message of `conversation_id`.
    pub fn last_message(&self, conversation_id: &str, message_id: &str) {
        self.conversations.last_message(conversation_id, message_id);
    }

    /// The open write committed or rolled back.
    pub fn transaction_ended(&self, committed: bool) {
        self.conversations.transaction_ended(committed);
        self.accounts.transaction_ended();
    }
}
