//! [`PgDb`]'s reads of one statement, made outside a transaction ([`PgDb::alone`]): the reads every
//! request or dispatcher round makes, at one round trip each instead of three.

use deadpool_postgres::ClientWrapper;

use super::PgDb;
use crate::store::TokenOwner;
use crate::store::error::{Result, StoreError};
use crate::store::postgres::error::{PgError, connection_lost};
use crate::store::postgres::{conversations, outbox, tokens};

impl PgDb {
    /// Who `token` belongs to at `now` ([`Read::token_owner`](crate::store::Read::token_owner)), asked on every request: one statement
    /// outside a transaction (`PgDb::alone`). A server on its own remembers owners while nothing
    /// changed them ([`crate::store::token_cache`]).
    pub fn token_owner(
        &self,
        token: &str,
        now: crate::model::Millis,
    ) -> Result<Option<TokenOwner>> {
        let read = || self.alone(async |client| tokens::token_owner(client, token).await);
        if !self.appends_alone() {
            return read();
        }
        let hash = tokens::token_hash(token);
        self.remembered.tokens.owner(&hash, now, read)
    }

    /// The outbox's events after `after` but `except` ([`Read::pending_events_after`](crate::store::Read::pending_events_after)), read by every
    /// dispatcher round, with [`Read::events_commit_in_id_order`](crate::store::Read::events_commit_in_id_order): one statement outside a transaction
    /// (`PgDb::alone`).
    pub fn pending_events_after(
        &self,
        after: i64,
        limit: u32,
        except: &[i64],
    ) -> Result<(Vec<crate::store::StoredEvent>, bool)> {
        let events =
            self.alone(async |client| outbox::pending_events(client, after, limit, except).await)?;
        Ok((events, self.appends_alone()))
    }

    /// [`PgDb::pending_events_after`]'s ids alone ([`Read::pending_event_ids_after`](crate::store::Read::pending_event_ids_after)).
    pub fn pending_event_ids_after(
        &self,
        after: i64,
        limit: u32,
        except: &[i64],
    ) -> Result<(Vec<i64>, bool)> {
        let ids = self.alone(async |client| {
            outbox::pending_event_ids_after(client, after, limit, except).await
        })?;
        Ok((ids, self.appends_alone()))
    }

    /// The conversation with `id` ([`Read::get_conversation`](crate::store::Read::get_conversation)), one statement outside a transaction
    /// (`PgDb::alone`): what a send with before-hooks looks at before its chain (its write reads it
    /// again). A server on its own remembers it while nothing but counters changed it
    /// ([`crate::store::conversation_cache`]).
    pub fn conversation(&self, id: &str) -> Result<crate::model::Conversation> {
        let read = || self.alone(async |client| conversations::get_conversation(client, id).await);
        if !self.appends_alone() {
            return read();
        }
        self.remembered.conversations.conversation(id, read)
    }

    /// Runs `query`, a read of one statement, outside a transaction: one round trip where a read
    /// transaction takes three (`BEGIN`, the query, `COMMIT`), and one statement sees one snapshot. A
    /// pooled connection found closed is replaced, as at a transaction's `BEGIN`: the query only reads,
    /// so sending it again is safe.
    fn alone<T>(&self, query: impl AsyncFn(&ClientWrapper) -> Result<T>) -> Result<T> {
        tokio::task::block_in_place(|| {
            let mut stale = 0;
            loop {
                let mut conn = self.driven.get()?;
                let (rt, client) = conn.parts();
                match rt.block_on(query(client)) {
                    Err(StoreError::Postgres(PgError::Postgres(error)))
                        if connection_lost(&error) && stale < self.driven.options().size =>
                    {
                        stale += 1;
                        tracing::debug!(%error, "a pooled PostgreSQL connection was closed; taking another");
                        conn.discard();
                    }
                    answer => return answer,
                }
            }
        })
    }
}
