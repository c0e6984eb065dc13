//! The errors of the PostgreSQL backend's setup: the connection setting, reaching the server, the schema.
//!
//! Every variant that concerns a server carries the setting in its [redacted](super::PgSetting::redacted)
//! form only, so no message or log line built from these errors can show a password.

use std::time::Duration;

/// Why connecting to, checking or migrating a PostgreSQL database failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The setting is neither a `postgres://` URL nor a key-value string we can use.
    #[error("invalid PostgreSQL setting {setting}: {reason}")]
    BadSetting {
        /// The setting, redacted.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made: the server is down or elsewhere, or it refused the user, password or
    /// database.
    #[error(
        "cannot connect to PostgreSQL at {setting} ({}); check that the server is running and \
         reachable there, and that the user, password and database name are right (the database must \
         exist: `CREATE DATABASE ...`)",
        describe(.error)
    )]
    Unreachable {
        /// The setting, redacted.
        setting: String,
        /// What the driver said (described in the message, so not also a `source`).
        error: tokio_postgres::Error,
    },
    /// No connection became free, or none could be opened, within the pool's wait.
    #[error(
        "no PostgreSQL connection to {setting} within {waited:?}: all {size} of the pool are busy or \
         the server does not answer"
    )]
    PoolTimeout {
        /// The setting, redacted.
        setting: String,
        /// How long we waited.
        waited: Duration,
        /// The pool's size.
        size: usize,
    },
    /// The pool itself failed (it was closed, or could not be built); not a problem of the server.
    #[error("the connection pool for {setting} failed: {reason}")]
    Pool {
        /// The setting, redacted.
        setting: String,
        /// deadpool's message.
        reason: String,
    },
    /// The server answers like PostgreSQL but is a look-alike whose semantics this backend relies on
    /// differently (CockroachDB accepts `pg_advisory_lock` and returns at once without locking, so two
    /// nodes would migrate, and later sequence, at the same time).
    #[error(
        "{setting} is {product}, not PostgreSQL ({version}); chathooks refuses it because it accepts \
         advisory locks without locking; use PostgreSQL"
    )]
    NotPostgres {
        /// The setting, redacted.
        setting: String,
        /// The product recognised, e.g. `CockroachDB`.
        product: &'static str,
        /// `SELECT version()`.
        version: String,
    },
    /// The database was migrated by a newer chathooks whose schema this build does not know.
    #[error(
        "PostgreSQL schema version {found} is newer than this build supports ({supported}); run a \
         chathooks at least as new as the one that migrated it"
    )]
    SchemaTooNew {
        /// The newest version in `schema_version`.
        found: i64,
        /// The newest version this build can migrate to.
        supported: i64,
    },
    /// Another chathooks server already serves this database in a way this one cannot share (see
    /// [`super::owner`]).
    #[error(
        "another chathooks server is already serving {setting} (it holds the database's server lock); \
         a server on its own (without --nats) needs the database for itself, and the nodes of a cluster \
         share it only with each other: stop the other server, start every server as a node of one \
         cluster (--nats), or give this one another database"
    )]
    InUse {
        /// The setting, redacted.
        setting: String,
    },
    /// A statement failed.
    #[error("postgres: {}", describe(.0))]
    Postgres(tokio_postgres::Error),
}

/// Not `#[from]`: that would also make the driver's error the `source`, and a report of the chain
/// (`{:#}`) would then say everything twice, since [`describe`] already includes it.
impl From<tokio_postgres::Error> for PgError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

impl PgError {
    /// Whether the database cannot be reached now, so that the same call may succeed later: no connection
    /// could be made ([`PgError::Unreachable`]), none became free in time ([`PgError::PoolTimeout`]), or
    /// a statement lost its connection ([`connection_lost`]). False for errors a retry would repeat (a bad
    /// setting, a schema too new, a statement PostgreSQL refused).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::PoolTimeout { .. } => true,
            Self::Postgres(error) => connection_lost(error),
            Self::BadSetting { .. }
            | Self::Pool { .. }
            | Self::NotPostgres { .. }
            | Self::SchemaTooNew { .. }
            | Self::InUse { .. } => false,
        }
    }
}

/// Whether `error` means the connection went away under the statement: the driver found it closed, the
/// socket failed (an I/O error in its causes), the server said so (SQLSTATE class `08`, connection
/// exception) or is shutting down or starting (`57P01` admin shutdown, `57P02` crash shutdown, `57P03`
/// cannot connect now, as a restart cuts every session).
pub fn connection_lost(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        return code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code);
    }
    let mut cause = std::error::Error::source(error);
    while let Some(next) = cause {
        if next.is::<std::io::Error>() {
            return true;
        }
        cause = next.source();
    }
    false
}

/// Whether `error` is one a transaction may simply be run again after: a serialization failure
/// (`40001`) or a deadlock PostgreSQL broke by aborting this side (`40P01`).
pub fn must_retry(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error.code().is_some_and(|code| {
        *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// The driver's error with its causes. tokio-postgres's own message is only the kind of failure
/// (`db error`, `error connecting to server`); what the server or the operating system said is in its
/// `source` chain, which a plain `{}` would drop.
pub fn describe(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// The result of a PostgreSQL setup step.
pub type Result<T, E = PgError> = std::result::Result<T, E>;
