//! Users' bearer tokens on PostgreSQL: issued (optionally expiring), resolved, listed and revoked. Stored as
//! their SHA-256 only, as in [`store::sqlite::tokens`](crate::store::sqlite::tokens), whose docs say why.

use super::transaction::Transaction;
use sha2::{Digest, Sha256};

use super::users::get_account;
use super::values::user_at;
use crate::model::{Millis, TokenInfo};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{new_id, random_hex};
use crate::store::limits::{MAX_TOKENS_PER_USER, TOKEN_PREFIX};
use crate::store::records::{Issued, TokenOwner};

/// Random bytes in a token: 256 bits, beyond guessing.
const TOKEN_BYTES: usize = 32;

/// Issues a new token for `user_id`, expiring at `expires_at` if given; the only time it exists in clear.
///
/// [`StoreError::NotFound`] for an unknown user, [`StoreError::Invalid`] for a bot user,
/// [`StoreError::Conflict`] when the user already holds [`MAX_TOKENS_PER_USER`] unexpired tokens.
pub async fn issue_token(
    tx: &Transaction<'_>,
    user_id: &str,
    expires_at: Option<Millis>,
    now: Millis,
) -> Result<Issued> {
    if get_account(tx, user_id).await?.bot {
        return Err(StoreError::Invalid(format!(
            "user {user_id:?} is a plugin's bot user and gets no token"
        )));
    }
    let drop_expired = tx
        .prepare_cached("DELETE FROM tokens WHERE user_id = $1 AND expires_at <= $2")
        .await?;
    tx.execute(&drop_expired, &[&user_id, &now]).await?;
    let count = tx
        .prepare_cached("SELECT count(*) FROM tokens WHERE user_id = $1")
        .await?;
    let held: i64 = tx.query_one(&count, &[&user_id]).await?.try_get(0)?;
    if usize::try_from(held).unwrap_or(usize::MAX) >= MAX_TOKENS_PER_USER {
        return Err(StoreError::Conflict(format!(
            "user {user_id:?} already holds {MAX_TOKENS_PER_USER} tokens: revoke one first"
        )));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_hex(TOKEN_BYTES)?);
    let id = new_id("t_")?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO tokens (id, hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(
        &insert,
        &[&id, &token_hash(&token), &user_id, &now, &expires_at],
    )
    .await?;
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

/// The owner of a bearer token, or `None` for a token the server does not know.
pub async fn token_owner(
    tx: &impl super::statements::Statements,
    token: &str,
) -> Result<Option<TokenOwner>> {
    let stmt = tx
        .prepare_cached(
            "SELECT t.id, t.expires_at, t.last_used_at, u.is_bot, u.deactivated_at IS NOT NULL,
                    u.id, u.name, u.metadata
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
        )
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&token_hash(token)]).await? else {
        return Ok(None);
    };
    Ok(Some(TokenOwner {
        token_id: row.try_get(0)?,
        expires_at: row.try_get(1)?,
        last_used_at: row.try_get(2)?,
        bot: row.try_get(3)?,
        deactivated: row.try_get(4)?,
        user: user_at(&row, 5)?,
    }))
}

/// Records that token `token_id` was used at `now` (never moving the time backwards).
pub async fn note_use(tx: &Transaction<'_>, token_id: &str, now: Millis) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE tokens SET last_used_at = greatest(coalesce(last_used_at, 0), $2) WHERE id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&token_id, &now]).await?;
    Ok(())
}

/// The tokens of `user_id`, newest first (in order of issue within a millisecond), as they stand at
/// `now` ([`StoreError::NotFound`] for an unknown user).
pub async fn list_tokens(
    tx: &Transaction<'_>,
    user_id: &str,
    now: Millis,
) -> Result<Vec<TokenInfo>> {
    get_account(tx, user_id).await?;
    let stmt = tx
        .prepare_cached(
            "SELECT id, user_id, created_at, expires_at, last_used_at FROM tokens WHERE user_id = $1
             ORDER BY created_at DESC, issued DESC",
        )
        .await?;
    let rows = tx.query(&stmt, &[&user_id]).await?;
    rows.iter()
        .map(|r| {
            let expires_at: Option<Millis> = r.try_get(3)?;
            Ok(TokenInfo {
                id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                created_at: r.try_get(2)?,
                expires_at,
                last_used_at: r.try_get(4)?,
                expired: expires_at.is_some_and(|at| at <= now),
            })
        })
        .collect()
}

/// Revokes token `token_id` of `user_id`; false if the user has no such token.
pub async fn revoke_token(tx: &Transaction<'_>, user_id: &str, token_id: &str) -> Result<bool> {
    let stmt = tx
        .prepare_cached("DELETE FROM tokens WHERE user_id = $1 AND id = $2")
        .await?;
    Ok(tx.execute(&stmt, &[&user_id, &token_id]).await? > 0)
}

/// Revokes every token of `user_id`; how many there were.
pub async fn revoke_tokens(tx: &Transaction<'_>, user_id: &str) -> Result<usize> {
    let stmt = tx
        .prepare_cached("DELETE FROM tokens WHERE user_id = $1")
        .await?;
    let n = tx.execute(&stmt, &[&user_id]).await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
