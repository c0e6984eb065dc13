//! [`Transaction`]: the backend's transactions, whose `BEGIN` can travel with their first statement.
//!
//! tokio-postgres's own transaction sends `BEGIN` and waits for its answer before anything else: one
//! round trip of its own per transaction, and on a server on its own one the writer mutex is held
//! through (BENCHMARKS.md, problem 36). This one, begun [`on its first
//! statement`](Transaction::on_first_statement), sends `BEGIN` right before that statement, so the two
//! share a round trip; a transaction that makes no statement sends nothing at all (a dispatcher round
//! that finds nothing to write, about a third of them under load: problem 21). The statements run
//! as they would on tokio-postgres's (PostgreSQL answers messages on a connection in order, so a
//! statement sent after `BEGIN` runs inside the transaction), and several of them may be in flight at
//! once, as the send's pipeline does.
//!
//! A transaction dropped before its [`commit`](Transaction::commit) or
//! [`rollback`](Transaction::rollback) (its closure failed or panicked) queues a `ROLLBACK`, as
//! tokio-postgres's does; a [`driven`](super::driven) connection sends it before it waits idle.

use std::cell::Cell;
use std::future::Future;

use deadpool_postgres::ClientWrapper;
use futures_util::FutureExt;
use futures_util::future::join;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, IsolationLevel, Row, SimpleQueryMessage, Statement, ToStatement};

use super::error::connection_lost;

/// Where a [`Transaction`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not begun: this `BEGIN` goes out with the first statement.
    Waiting(&'static str),
    /// `BEGIN` was sent.
    Open,
    /// Committed or rolled back (or never begun, and so over).
    Ended,
}

/// A transaction on one connection; see the module docs.
pub struct Transaction<'c> {
    client: &'c ClientWrapper,
    state: Cell<State>,
    /// The connection was found closed before anything of the transaction ran.
    lost_at_begin: Cell<bool>,
}

impl<'c> Transaction<'c> {
    /// Begins a transaction on `client` and waits for the server to confirm it: for a closure that
    /// cannot run twice, which must know that its connection works before it starts.
    pub async fn begin(
        client: &'c mut ClientWrapper,
        isolation: IsolationLevel,
        read_only: bool,
    ) -> Result<Self, Error> {
        let sql = begin_sql(isolation, read_only);
        client.batch_execute(sql).await?;
        Ok(Self {
            client,
            state: Cell::new(State::Open),
            lost_at_begin: Cell::new(false),
        })
    }

    /// A transaction on `client` that begins with its first statement, in the same round trip.
    pub fn on_first_statement(
        client: &'c mut ClientWrapper,
        isolation: IsolationLevel,
        read_only: bool,
    ) -> Self {
        Self {
            client,
            state: Cell::new(State::Waiting(begin_sql(isolation, read_only))),
            lost_at_begin: Cell::new(false),
        }
    }

    /// Whether a statement began it.
    pub fn begun(&self) -> bool {
        !matches!(self.state.get(), State::Waiting(_))
    }

    /// Whether the connection turned out closed (a pooled connection the server closed while it waited
    /// idle) before anything of the transaction ran: at its `BEGIN`, or at a statement prepared before
    /// it. Nothing of it reached the server, so it may run again on another connection.
    pub fn lost_at_begin(&self) -> bool {
        self.lost_at_begin.get()
    }

    /// `sql` prepared, from the connection's cache when it was prepared before.
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        let before = !self.begun();
        let prepared = self.client.prepare_cached(sql).await;
        if let Err(error) = &prepared
            && before
        {
            self.lost_at_begin.set(connection_lost(error));
        }
        prepared
    }

    /// The rows `statement` returns.
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.in_it(self.client.query(statement, params)).await
    }

    /// The row `statement` returns, if any; an error for more than one.
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.in_it(self.client.query_opt(statement, params)).await
    }

    /// The one row `statement` returns; an error for none or more.
    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.in_it(self.client.query_one(statement, params)).await
    }

    /// Runs `statement`; the rows it changed.
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.in_it(self.client.execute(statement, params)).await
    }

    /// Runs `sql` with the simple query protocol.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.in_it(self.client.simple_query(sql)).await
    }

    /// Commits, if a statement began it.
    pub async fn commit(&self) -> Result<(), Error> {
        self.end("COMMIT").await
    }

    /// Rolls back, if a statement began it.
    pub async fn rollback(&self) -> Result<(), Error> {
        self.end("ROLLBACK").await
    }

    /// Ends a read-only transaction without waiting for the server's answer: nothing it did can be
    /// lost. The message is queued on the connection, which sends it before it is used again (as a
    /// dropped transaction's `ROLLBACK`), and the answer is read and dropped then.
    pub fn end_without_waiting(&self) {
        if self.state.replace(State::Ended) == State::Open {
            let _ = self.client.batch_execute("COMMIT").now_or_never();
        }
    }

    async fn end(&self, sql: &str) -> Result<(), Error> {
        let state = self.state.replace(State::Ended);
        if state == State::Open {
            self.client.batch_execute(sql).await?;
        }
        Ok(())
    }

    /// Runs `statement` inside the transaction: sends the `BEGIN` first if it is still waiting. Both go
    /// out on `statement`'s first poll, before its answer is awaited.
    async fn in_it<R>(
        &self,
        statement: impl Future<Output = Result<R, Error>>,
    ) -> Result<R, Error> {
        let State::Waiting(begin) = self.state.get() else {
            return statement.await;
        };
        self.state.set(State::Open);
        // `join` polls `BEGIN` first, so the server receives it first.
        let (begun, answer) = join(self.client.batch_execute(begin), statement).await;
        if let Err(error) = begun {
            self.lost_at_begin.set(connection_lost(&error));
            return Err(error);
        }
        answer
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.state.get() == State::Open {
            // One poll queues the message on the connection; its answer is not awaited (the driven
            // connection sends it before it is used again, see the module docs).
            let _ = self.client.batch_execute("ROLLBACK").now_or_never();
        }
    }
}

/// The `BEGIN` of a transaction at `isolation`, read-only or not.
fn begin_sql(isolation: IsolationLevel, read_only: bool) -> &'static str {
    match (isolation, read_only) {
        (IsolationLevel::ReadUncommitted, false) => "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
        (IsolationLevel::ReadUncommitted, true) => {
            "BEGIN ISOLATION LEVEL READ UNCOMMITTED READ ONLY"
        }
        (IsolationLevel::RepeatableRead, false) => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        (IsolationLevel::RepeatableRead, true) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        (IsolationLevel::Serializable, false) => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        (IsolationLevel::Serializable, true) => "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
        (_, false) => "BEGIN ISOLATION LEVEL READ COMMITTED",
        (_, true) => "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY",
    }
}
