//! The error type every store function returns.
//!
//! A `thiserror` enum because the layers above match on it: `NotFound` becomes 404, `Conflict` 409,
//! `Invalid` 422, a database that cannot be reached now ([`StoreError::is_unavailable`]) 503, and
//! everything else is a server fault (500).

use super::postgres::PgError;

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record the operation needs does not exist.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// The kind of record, e.g. `"conversation"`.
        what: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// The operation contradicts existing data (a duplicate id, an edit of a deleted message, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input is well-formed JSON but not acceptable (an empty participant list, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database file was written by a newer chathooks whose schema this build does not know.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build can migrate to.
        supported: i64,
    },
    /// SQLite failed (I/O, a constraint we did not expect, a busy timeout, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A JSON column did not parse; only a corrupted or hand-edited database does this.
    #[error("json column: {0}")]
    Json(#[from] serde_json::Error),
    /// The data directory could not be created.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// PostgreSQL failed: it cannot be reached ([`StoreError::is_unavailable`]), or a statement failed in
    /// a way the operation did not expect. Its message names the server only redacted.
    #[error("{0}")]
    Postgres(#[from] PgError),
}

/// A statement's error from PostgreSQL, mapped as the SQLite backend would answer: a unique violation
/// (`23505`, a row that already exists) is [`StoreError::Conflict`], as the SQLite code reports its own
/// duplicates; a text value holding the NUL character, which PostgreSQL refuses and SQLite stores
/// (`22021`), is [`StoreError::Invalid`] (the query functions check the fields they store first, so this
/// only catches lookups); anything else is [`StoreError::Postgres`].
impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match error.code() {
            Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
                let what = error
                    .as_db_error()
                    .and_then(|db| db.constraint())
                    .unwrap_or("a unique constraint");
                Self::Conflict(format!("the row already exists ({what})"))
            }
            Some(code) if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE => {
                Self::Invalid("text must not contain the NUL character (U+0000)".to_owned())
            }
            _ => Self::Postgres(PgError::from(error)),
        }
    }
}

impl StoreError {
    /// Whether the database cannot be reached now (PostgreSQL down, unreachable, its connections cut
    /// mid-call, or no pooled connection free in time): the request may succeed if retried later, so the
    /// API answers 503. Never true for SQLite, whose file is always there.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Postgres(error) => error.is_unavailable(),
            _ => false,
        }
    }

    /// Shorthand for [`StoreError::NotFound`].
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            id: id.into(),
        }
    }
}

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
