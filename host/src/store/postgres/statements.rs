//! [`Statements`]: what a query function that runs both inside a transaction and alone (one statement
//! outside any, [`PgDb`](super::PgDb)'s reads of one round trip) runs its statements on.
//!
//! deadpool's `GenericClient` does this for its own pool's connections and transactions, but it is
//! sealed, and the store's calls run on [`driven`](super::driven) connections, which are not the pool's,
//! in the backend's own [`Transaction`]s.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row, Statement};

use super::transaction::Transaction;

/// A connection outside a transaction, or a transaction: prepared statements (cached per connection)
/// and the queries the functions that take either make.
///
/// Its futures are driven on the calling thread ([`driven`](super::driven)), never spawned, so they
/// need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Statements {
    /// `sql` prepared, from the connection's cache when it was prepared before.
    async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error>;

    /// The rows `statement` returns.
    async fn query(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>;

    /// The row `statement` returns, if any; an error for more than one.
    async fn query_opt(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>;

    /// The one row `statement` returns; an error for none or more.
    async fn query_one(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>;
}

impl Statements for ClientWrapper {
    async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        ClientWrapper::prepare_cached(self, sql).await
    }

    async fn query(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        tokio_postgres::Client::query(self, statement, params).await
    }

    async fn query_opt(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        tokio_postgres::Client::query_opt(self, statement, params).await
    }

    async fn query_one(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        tokio_postgres::Client::query_one(self, statement, params).await
    }
}

impl Statements for Transaction<'_> {
    async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        Transaction::prepare_cached(self, sql).await
    }

    async fn query(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        Transaction::query(self, statement, params).await
    }

    async fn query_opt(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        Transaction::query_opt(self, statement, params).await
    }

    async fn query_one(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        Transaction::query_one(self, statement, params).await
    }
}
