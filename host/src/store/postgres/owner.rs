//! One server per PostgreSQL database, or only the nodes of a cluster: the lock that says so.
//!
//! A single-node server keeps things only one process may do at a time: its writer mutex orders event ids
//! ([`super::db`]), its dispatcher delivers every after-hook event and fires every timer. A second server
//! on the same database would interleave ids out of commit order and call every hook twice, with nothing
//! visibly wrong. So a server takes a session-level advisory lock on a connection of its own when it
//! starts, and a second one is refused with [`PgError::InUse`] — the same promise the SQLite data folder's
//! `serve.lock` makes (`store/data_lock.rs`). The nodes of a cluster share the database, so they take the
//! same lock in shared mode ([`LockMode::Shared`]): any number of nodes, but no server on its own beside
//! them.
//!
//! PostgreSQL drops the lock with the session: a killed server never leaves it behind. A PostgreSQL
//! restart cuts the session too; the [`ServerLock`] then takes the lock again on a new connection as soon
//! as the database is back, and says so loudly if another server took it meanwhile.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::connect::PgPool;
use super::error::{PgError, Result};
use super::locks::{self, advisory_key};

/// How often a lost lock is tried again while the database is away.
const RETAKE_EVERY: Duration = Duration::from_secs(1);

/// How long taking the lock waits for a holder that is going away before it refuses. A server that has
/// just stopped releases the lock only once PostgreSQL sees its session end, a moment later: a restart,
/// or a test that stops a server and starts another in the same process, would otherwise be refused by
/// the server it replaces. A live holder is refused this much later.
pub const TAKE_GRACE: Duration = Duration::from_secs(1);

/// How often the lock is tried within [`TAKE_GRACE`].
const TAKE_POLL: Duration = Duration::from_millis(25);

/// How a server holds the lock: a server on its own alone, nodes of a cluster together (PostgreSQL's
/// shared advisory locks), so that neither kind can start beside the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// A server on its own: no other server of either kind.
    Exclusive,
    /// A node of a cluster: other nodes, but no server on its own.
    Shared,
}

/// The held lock; dropping it (with the server) releases it.
#[derive(Debug)]
pub struct ServerLock {
    /// Keeps the lock's session, and takes it again after a lost connection.
    keeper: JoinHandle<()>,
}

impl Drop for ServerLock {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

impl ServerLock {
    /// Takes the server lock of `pool`'s database, or fails with [`PgError::InUse`] if it is still
    /// held after `grace` ([`TAKE_GRACE`] for a server); must run on the backend's runtime, where the
    /// keeper task then lives.
    pub async fn take(pool: &PgPool, mode: LockMode, grace: Duration) -> Result<ServerLock> {
        let deadline = tokio::time::Instant::now() + grace;
        let (client, key) = loop {
            let (client, key) = lock_session(pool, mode).await?;
            if client.is_some() || tokio::time::Instant::now() >= deadline {
                break (client, key);
            }
            tokio::time::sleep(TAKE_POLL).await;
        };
        let Some(client) = client else {
            return Err(PgError::InUse {
                setting: pool.setting().redacted().to_owned(),
            });
        };
        let pool = pool.clone();
        let keeper = tokio::spawn(async move {
            let mut client = client;
            loop {
                while !client.is_closed() {
                    tokio::time::sleep(RETAKE_EVERY).await;
                }
                tracing::warn!("the PostgreSQL server lock's connection was lost; taking it again");
                client = retake(&pool, key, mode).await;
            }
        });
        Ok(ServerLock { keeper })
    }
}

/// A new session that tries the lock: the session holding it, or `None` when another server has it.
async fn lock_session(pool: &PgPool, mode: LockMode) -> Result<(Option<Client>, i64)> {
    let (client, schema) = locks::lock_session(pool).await?;
    let key = advisory_key(&schema, "serve");
    let try_lock = match mode {
        LockMode::Exclusive => "SELECT pg_try_advisory_lock($1)",
        LockMode::Shared => "SELECT pg_try_advisory_lock_shared($1)",
    };
    let taken: bool = client.query_one(try_lock, &[&key]).await?.get(0);
    Ok((taken.then_some(client), key))
}

/// Takes the lock again after its session was lost, waiting for the database to come back.
async fn retake(pool: &PgPool, key: i64, mode: LockMode) -> Client {
    let mut warned = false;
    loop {
        match lock_session(pool, mode).await {
            Ok((Some(client), _)) => {
                tracing::info!("the PostgreSQL server lock is held again");
                return client;
            }
            Ok((None, _)) if !warned => {
                tracing::error!(
                    key,
                    "another chathooks server took this database's server lock while the connection \
                     was lost; two servers on one database deliver hooks twice: stop one of them"
                );
                warned = true;
            }
            Ok((None, _)) => {}
            Err(error) => tracing::debug!(%error, "PostgreSQL not back yet for the server lock"),
        }
        tokio::time::sleep(RETAKE_EVERY).await;
    }
}
