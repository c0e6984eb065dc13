//! The error type every store function returns.
//!
//! A `thiserror` enum because the layers above match on it: `NotFound` becomes 404, `Conflict` 409,
//! `Invalid` 422, and everything else is a server fault (500).

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
}

impl StoreError {
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
