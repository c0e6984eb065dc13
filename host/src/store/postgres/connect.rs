//! The connection pool, and the checks made once when a node connects.
//!
//! ## The pool
//! deadpool-postgres over tokio-postgres (the pair SCALE-OUT.md section 3 measured). A bounded pool with a
//! bounded wait: store calls run on blocking threads ([`crate::blocking::run`]; up to 512 of them)
//! bridged with `block_on`, and without a bound they would all queue on a few connections until every
//! request timed out together (SCALE-OUT.md risk 5); with one, a caller that waits [`PoolOptions::wait`] gets
//! [`PgError::PoolTimeout`] (a 503 upstream) while the others proceed. Connections are recycled with
//! deadpool's `Fast` check (is the connection closed?), not `Verified` (a query per checkout): a
//! connection the server closed is noticed by its connection task, and the round trip per checkout would
//! be paid by every store call.
//!
//! ## At start
//! [`PgPool::connect`] opens one connection right away, so a wrong setting is an error at start naming
//! the (redacted) setting and what to check, not a 503 on the first request. It then refuses servers
//! that only look like PostgreSQL (see [`PgError::NotPostgres`]).

use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;

use super::error::{PgError, Result};
use super::setting::PgSetting;

/// Connections a node's pool holds at most, by default. 16 concurrent writers is where the measured
/// throughput (SCALE-OUT.md section 3: 6,921–8,822 transactions/s) came from on 2 cores; more mostly
/// adds contention. Three nodes at 16 stay well within PostgreSQL's default `max_connections` of 100.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a caller waits for a free connection by default before [`PgError::PoolTimeout`]. Store calls
/// take well under a millisecond each, so a wait of seconds means the database is down or overloaded,
/// and a client is better served by a quick 503 it can retry than by a request that hangs.
pub const DEFAULT_POOL_WAIT: Duration = Duration::from_secs(5);

/// How the pool is sized (`--db-pool-size`, `--db-pool-wait` when `serve` gets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub size: usize,
    /// Longest wait for a free connection.
    pub wait: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            size: DEFAULT_POOL_SIZE,
            wait: DEFAULT_POOL_WAIT,
        }
    }
}

/// A pool of connections to one PostgreSQL database; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PgPool {
    /// The connections.
    pool: Pool,
    /// Where they go; shown redacted in every error.
    setting: PgSetting,
    /// How the pool was sized, for error messages.
    options: PoolOptions,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("setting", &self.setting)
            .field("options", &self.options)
            .field("status", &self.pool.status())
            .finish()
    }
}

impl PgPool {
    /// Builds the pool, opens a first connection and checks that the server is PostgreSQL; see the
    /// module docs.
    pub async fn connect(setting: PgSetting, options: PoolOptions) -> Result<Self> {
        let manager = Manager::from_config(
            setting.config().clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.size.max(1))
            .wait_timeout(Some(options.wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::Pool {
                setting: setting.redacted().to_owned(),
                reason: e.to_string(),
            })?;
        let pool = Self {
            pool,
            setting,
            options,
        };
        let client = pool.get().await?;
        let version: String = client.query_one("SELECT version()", &[]).await?.get(0);
        if let Some(product) = lookalike(&version) {
            return Err(PgError::NotPostgres {
                setting: pool.setting.redacted().to_owned(),
                product,
                version,
            });
        }
        tracing::debug!(setting = %pool.setting, %version, "connected to PostgreSQL");
        Ok(pool)
    }

    /// A connection from the pool, waiting at most [`PoolOptions::wait`] for one to be free; opened if
    /// the pool has room and none is idle.
    pub async fn get(&self) -> Result<Object> {
        self.pool.get().await.map_err(|err| self.pool_error(err))
    }

    /// Where the pool connects.
    pub fn setting(&self) -> &PgSetting {
        &self.setting
    }

    /// How the pool was sized.
    pub fn options(&self) -> PoolOptions {
        self.options
    }

    fn pool_error(&self, err: PoolError) -> PgError {
        let setting = self.setting.redacted().to_owned();
        match err {
            PoolError::Backend(error) => PgError::Unreachable { setting, error },
            PoolError::Timeout(_) => PgError::PoolTimeout {
                setting,
                waited: self.options.wait,
                size: self.options.size,
            },
            other => PgError::Pool {
                setting,
                reason: other.to_string(),
            },
        }
    }
}

/// The product `version` (from `SELECT version()`) names when the server only speaks PostgreSQL's
/// protocol.
fn lookalike(version: &str) -> Option<&'static str> {
    version.contains("CockroachDB").then_some("CockroachDB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_cockroachdb_by_its_version() {
        let cockroach =
            "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27, go1.19.10)";
        assert_eq!(lookalike(cockroach), Some("CockroachDB"));
        let postgres =
            "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc";
        assert_eq!(lookalike(postgres), None);
    }
}
