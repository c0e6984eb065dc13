//! Users' bearer tokens: issued (optionally expiring), resolved to their user, listed and revoked.
//!
//! A token is shown to its owner once, when issued; the table keeps only its SHA-256, so reading the
//! database (a backup, a leaked file) does not let anyone act as a user. SHA-256 without a salt is enough
//! because tokens are 256 random bits, not guessable passwords. Each token also has an id, which is not a
//! credential: it is what admins list and revoke.
//!
//! Bot users never get a token: they act through their plugin.

use rusqlite::{Connection, OptionalExtension, Row, params};
use sha2::{Digest, Sha256};

use super::users::{RawUser, get_account};
use super::writer::Writing;
use crate::model::{Millis, TokenInfo};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{new_id, random_hex};
use crate::store::limits::{MAX_TOKENS_PER_USER, TOKEN_PREFIX};
use crate::store::records::{Issued, TokenOwner};

/// Random bytes in a token: 256 bits, beyond guessing.
const TOKEN_BYTES: usize = 32;

/// Issues a new token for `user_id`, expiring at `expires_at` if given; returns it, the only time the token
/// exists in clear. Earlier tokens stay valid (a user may have several devices).
///
/// [`StoreError::NotFound`] for an unknown user, [`StoreError::Invalid`] for a bot user,
/// [`StoreError::Conflict`] when the user already holds [`MAX_TOKENS_PER_USER`] unexpired tokens.
pub fn issue_token(
    tx: &Writing<'_>,
    user_id: &str,
    expires_at: Option<Millis>,
    now: Millis,
) -> Result<Issued> {
    if get_account(tx, user_id)?.bot {
        return Err(StoreError::Invalid(format!(
            "user {user_id:?} is a plugin's bot user and gets no token"
        )));
    }
    tx.prepare_cached("DELETE FROM tokens WHERE user_id = ?1 AND expires_at <= ?2")?
        .execute(params![user_id, now])?;
    let held: i64 = tx
        .prepare_cached("SELECT count(*) FROM tokens WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))?;
    if usize::try_from(held).unwrap_or(usize::MAX) >= MAX_TOKENS_PER_USER {
        return Err(StoreError::Conflict(format!(
            "user {user_id:?} already holds {MAX_TOKENS_PER_USER} tokens: revoke one first"
        )));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_hex(TOKEN_BYTES)?);
    let id = new_id("t_")?;
    tx.prepare_cached(
        "INSERT INTO tokens (id, hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, token_hash(&token), user_id, now, expires_at])?;
    let info = TokenInfo {
        id,
        user_id: user_id.to_owned(),
        created_at: now,
        expires_at,
        last_used_at: None,
        expired: false,
    };
    Ok(Issued { token, info })
}

/// The owner of a bearer token, or `None` for a token the server does not know (never issued, revoked,
/// or dropped after expiring).
pub fn token_owner(conn: &Connection, token: &str) -> Result<Option<TokenOwner>> {
    token_owner_by_hash(conn, &token_hash(token))
}

/// [`token_owner`] by the hash of the token ([`token_hash`]).
pub fn token_owner_by_hash(conn: &Connection, hash: &str) -> Result<Option<TokenOwner>> {
    let owner = conn
        .prepare_cached(
            "SELECT t.id, t.expires_at, t.last_used_at, u.is_bot, u.deactivated_at IS NOT NULL,
                    u.id, u.name, u.metadata
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
        )?
        .query_row([hash], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                RawUser::from_row(r, 5)?,
            ))
        })
        .optional()?;
    owner
        .map(
            |(token_id, expires_at, last_used_at, bot, deactivated, user)| {
                Ok(TokenOwner {
                    token_id,
                    user: user.into_user()?,
                    bot,
                    deactivated,
                    expires_at,
                    last_used_at,
                })
            },
        )
        .transpose()
}

/// Records that token `token_id` was used at `now`.
pub fn note_use(tx: &Writing<'_>, token_id: &str, now: Millis) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
    )?
    .execute(params![token_id, now])?;
    Ok(())
}

/// The tokens of `user_id`, newest first (in order of issue within a millisecond), as they stand at `now` ([`StoreError::NotFound`] for an unknown
/// user).
pub fn list_tokens(conn: &Connection, user_id: &str, now: Millis) -> Result<Vec<TokenInfo>> {
    get_account(conn, user_id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, created_at, expires_at, last_used_at FROM tokens WHERE user_id = ?1
         ORDER BY created_at DESC, rowid DESC",
    )?;
    let tokens = stmt
        .query_map([user_id], |r| token_info(r, now))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(tokens)
}

fn token_info(r: &Row<'_>, now: Millis) -> rusqlite::Result<TokenInfo> {
    let expires_at: Option<Millis> = r.get(3)?;
    Ok(TokenInfo {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at: r.get(2)?,
        expires_at,
        last_used_at: r.get(4)?,
        expired: expires_at.is_some_and(|at| at <= now),
    })
}

/// Revokes token `token_id` of `user_id`; false if the user has no such token.
pub fn revoke_token(tx: &Writing<'_>, user_id: &str, token_id: &str) -> Result<bool> {
    let deleted = tx
        .prepare_cached("DELETE FROM tokens WHERE user_id = ?1 AND id = ?2")?
        .execute([user_id, token_id])?;
    Ok(deleted > 0)
}

/// Revokes every token of `user_id`; returns how many there were.
pub fn revoke_tokens(tx: &Writing<'_>, user_id: &str) -> Result<usize> {
    Ok(tx.execute("DELETE FROM tokens WHERE user_id = ?1", [user_id])?)
}

/// How a token is stored: the hex SHA-256 of the token, so a leaked database does not leak tokens.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewUser;
    use crate::store::sqlite::Db;
    use crate::store::sqlite::users::create_user;

    /// What the SQLite file keeps of a token: only its hash, never the secret. (What a token does is tested
    /// on every backend in `store/tests/`.)
    #[test]
    fn tokens_are_stored_only_as_their_hash() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(dir.path().join("chat.db"))?;
        let new = NewUser {
            id: "alice".into(),
            name: "Alice".into(),
            metadata: serde_json::json!({}),
        };
        db.write(|tx| create_user(tx, &new, 1).map(|_| ()))?;
        let token = db.write(|tx| issue_token(tx, "alice", None, 2))?.token;
        let stored: String =
            db.read(|c| Ok(c.query_row("SELECT hash FROM tokens", [], |r| r.get(0))?))?;
        assert_ne!(stored, token);
        assert!(!stored.contains(&token[TOKEN_PREFIX.len()..]));
        Ok(())
    }
}
