//! Users and their bearer tokens.
//!
//! A token is shown to its owner once, when issued; the table keeps only its SHA-256, so reading the
//! database (a backup, a leaked file) does not let anyone act as a user. SHA-256 without a salt is enough
//! because tokens are 256 random bits, not guessable passwords.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use sha2::{Digest, Sha256};

use super::error::{Result, StoreError};
use super::ids::{json_value, metadata_text, random_hex};
use crate::model::{Millis, User};

/// Prefix of every user token, so secret scanners and humans can recognise one.
pub const TOKEN_PREFIX: &str = "cht_";

/// Random bytes in a token: 256 bits, beyond guessing.
const TOKEN_BYTES: u32 = 32;

/// Longest user id accepted; ids appear in URLs, JSON and every event's audience, so keep them short.
pub const MAX_USER_ID_LEN: usize = 64;

/// What creating a user needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The id, chosen by the admin: 1..=64 ASCII letters, digits, `_`, `-` or `.` so it can be mentioned
    /// as `@id` and used in URLs unescaped.
    pub id: String,
    /// Display name.
    pub name: String,
    /// A JSON object, or `null` for `{}`.
    pub metadata: serde_json::Value,
}

/// Whether `id` is an acceptable user id (see [`NewUser::id`]).
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_USER_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Creates a user. [`StoreError::Conflict`] if the id is taken, [`StoreError::Invalid`] if it is malformed.
pub fn create_user(tx: &Transaction<'_>, user: &NewUser, now: Millis) -> Result<User> {
    if !valid_user_id(&user.id) {
        return Err(StoreError::Invalid(format!(
            "user id {:?} must be 1-{MAX_USER_ID_LEN} ASCII letters, digits, '_', '-' or '.'",
            user.id
        )));
    }
    let inserted = tx.execute(
        "INSERT INTO users (id, name, metadata, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![user.id, user.name, metadata_text(&user.metadata)?, now],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "user {:?} already exists",
            user.id
        )));
    }
    get_user(tx, &user.id)
}

/// The user with `id`, or [`StoreError::NotFound`].
pub fn get_user(conn: &Connection, id: &str) -> Result<User> {
    find_user(conn, id)?.ok_or_else(|| StoreError::not_found("user", id))
}

/// The user with `id`, if there is one.
pub fn find_user(conn: &Connection, id: &str) -> Result<Option<User>> {
    let raw = conn
        .prepare_cached("SELECT id, name, metadata FROM users WHERE id = ?1")?
        .query_row([id], raw_user)
        .optional()?;
    raw.map(RawUser::into_user).transpose()
}

/// Which of `ids` are not users; empty when all exist. Used to validate participant lists up front so the
/// caller gets a `NotFound` naming the id instead of a bare foreign-key failure.
pub fn missing_users(conn: &Connection, ids: &[String]) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?;
    let mut missing = Vec::new();
    for id in ids {
        if !stmt.exists([id])? {
            missing.push(id.clone());
        }
    }
    Ok(missing)
}

/// Issues a new token for `user_id` and returns it; this is the only time the token exists in clear.
/// Earlier tokens stay valid (a user may have several devices).
pub fn issue_token(tx: &Transaction<'_>, user_id: &str, now: Millis) -> Result<String> {
    get_user(tx, user_id)?;
    let token = format!("{TOKEN_PREFIX}{}", random_hex(tx, TOKEN_BYTES)?);
    tx.execute(
        "INSERT INTO tokens (hash, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![token_hash(&token), user_id, now],
    )?;
    Ok(token)
}

/// The user a bearer token belongs to, or `None` for an unknown token.
pub fn user_for_token(conn: &Connection, token: &str) -> Result<Option<User>> {
    let raw = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.metadata FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
        )?
        .query_row([token_hash(token)], raw_user)
        .optional()?;
    raw.map(RawUser::into_user).transpose()
}

/// Revokes every token of `user_id`; returns how many there were.
pub fn revoke_tokens(tx: &Transaction<'_>, user_id: &str) -> Result<usize> {
    Ok(tx.execute("DELETE FROM tokens WHERE user_id = ?1", [user_id])?)
}

/// The hex SHA-256 of a token, as stored.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A user row before its metadata is parsed (row closures cannot return our error type).
pub(crate) struct RawUser {
    id: String,
    name: String,
    metadata: String,
}

impl RawUser {
    /// Reads `id, name, metadata` from `row` starting at column `at`.
    pub(crate) fn from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(at)?,
            name: row.get(at + 1)?,
            metadata: row.get(at + 2)?,
        })
    }

    /// Parses the metadata.
    pub(crate) fn into_user(self) -> Result<User> {
        Ok(User {
            id: self.id,
            name: self.name,
            metadata: json_value(&self.metadata)?,
        })
    }
}

fn raw_user(row: &Row<'_>) -> rusqlite::Result<RawUser> {
    RawUser::from_row(row, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    #[test]
    fn tokens_are_hashed_and_resolve_to_their_user() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path().join("chat.db"))?;
        let new = NewUser {
            id: "alice".into(),
            name: "Alice".into(),
            metadata: serde_json::json!({"a": 1}),
        };
        let token = db.write(|tx| {
            create_user(tx, &new, 1)?;
            issue_token(tx, "alice", 2)
        })?;
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 64);
        let user = db.read(|c| user_for_token(c, &token))?;
        assert_eq!(user.map(|u| u.name), Some("Alice".to_owned()));
        assert!(db.read(|c| user_for_token(c, "cht_nope"))?.is_none());
        let stored: String =
            db.read(|c| Ok(c.query_row("SELECT hash FROM tokens", [], |r| r.get(0))?))?;
        assert_ne!(stored, token);

        assert!(matches!(
            db.write(|tx| create_user(tx, &new, 3)),
            Err(StoreError::Conflict(_))
        ));
        let bad = NewUser {
            id: "a b".into(),
            ..new
        };
        assert!(matches!(
            db.write(|tx| create_user(tx, &bad, 3)),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            db.write(|tx| issue_token(tx, "bob", 3)),
            Err(StoreError::NotFound { .. })
        ));

        db.write(|tx| revoke_tokens(tx, "alice"))?;
        assert!(db.read(|c| user_for_token(c, &token))?.is_none());
        Ok(())
    }
}
