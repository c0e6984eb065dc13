//! What the query modules share: the text rules PostgreSQL adds to SQLite's, number conversions, and
//! reading a user from a row.
//!
//! ## NUL characters
//! PostgreSQL's TEXT refuses the NUL character; SQLite stores it. The backends answer alike this way:
//! - JSON columns are TEXT written by serde_json, which always escapes a NUL as `\u0000`, so a NUL inside
//!   metadata or a payload round-trips on both (schema `v1.sql` says why they are not JSONB);
//! - a text field the caller gives and the store keeps (a name, a body, a title, ...) is checked first
//!   with [`no_nul`]: [`StoreError::Invalid`] naming the field, so the chat layer's field detection
//!   (the message's first word) works as for its other validation errors;
//! - text the server writes about a failure (a delivery's last error, a dead letter's reason) may quote
//!   a plugin's output; [`without_nul`] replaces a NUL with U+FFFD rather than lose the record;
//! - a NUL in a lookup key (an id to find) fails in PostgreSQL with `22021`, which the store's error
//!   mapping turns into [`StoreError::Invalid`] where SQLite would answer "not found".

use std::borrow::Cow;

use tokio_postgres::Row;

use crate::model::User;
use crate::store::error::{Result, StoreError};
use crate::store::ids::json_value;

/// [`StoreError::Invalid`] naming `field` if `value` holds the NUL character, which PostgreSQL's TEXT
/// cannot store.
pub(super) fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{field} must not contain the NUL character (U+0000)"
        )));
    }
    Ok(())
}

/// [`no_nul`] for an optional value.
pub(super) fn no_nul_opt(field: &str, value: Option<&str>) -> Result<()> {
    value.map_or(Ok(()), |v| no_nul(field, v))
}

/// `text` with each NUL replaced by U+FFFD, for diagnostics the server records (see the module docs).
pub(super) fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A `u32` count or limit as the BIGINT parameter PostgreSQL expects.
pub(super) fn big(n: u32) -> i64 {
    i64::from(n)
}

/// A BIGINT the records keep as `u32` (attempts, depths), saturating instead of failing.
pub(super) fn small(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A BIGINT count as `u64`.
pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads `id, name, metadata` from `row` starting at column `at`.
pub(super) fn user_at(row: &Row, at: usize) -> Result<User> {
    Ok(User {
        id: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        metadata: json_value(row.try_get(at + 2)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_refused_by_field_or_replaced_in_diagnostics() {
        assert!(no_nul("body", "fine").is_ok());
        let err = no_nul("body", "a\0b").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid: body must not contain the NUL character (U+0000)")
        );
        assert!(no_nul_opt("title", None).is_ok());
        assert_eq!(without_nul("a\0b"), "a\u{FFFD}b");
        assert!(matches!(without_nul("ab"), Cow::Borrowed("ab")));
        assert_eq!((small(-1), small(i64::MAX), count(-3)), (0, u32::MAX, 0));
    }
}
