//! Users on PostgreSQL: ordinary users and plugins' bot users, whether each is active, the admin's list.
//! The rules (the bot namespace, id syntax, keeping the first deactivation time) are those of
//! [`store::sqlite::users`](crate::store::sqlite::users), with the same errors.

use super::transaction::Transaction;

use super::values::{big, no_nul, user_at};
use crate::model::{Millis, User, UserAccount};
use crate::store::error::{Result, StoreError};
use crate::store::ids::metadata_text;
use crate::store::limits::{BOT_ID_PREFIX, MAX_USER_ID_LEN, is_bot_id, valid_user_id};
use crate::store::records::NewUser;

/// Creates an ordinary user. [`StoreError::Conflict`] if the id is taken, [`StoreError::Invalid`] if it is
/// malformed or in the bot namespace.
pub async fn create_user(tx: &Transaction<'_>, user: &NewUser, now: Millis) -> Result<User> {
    if is_bot_id(&user.id) {
        return Err(StoreError::Invalid(format!(
            "user id {:?} starts with {BOT_ID_PREFIX:?}, which is reserved for plugins' bot users",
            user.id
        )));
    }
    insert(tx, user, false, now).await
}

/// Creates a plugin's bot user; its id must be in the bot namespace. [`StoreError::Conflict`] if the id is
/// taken.
pub async fn create_bot_user(tx: &Transaction<'_>, user: &NewUser, now: Millis) -> Result<User> {
    if !user.id.starts_with(BOT_ID_PREFIX) {
        return Err(StoreError::Invalid(format!(
            "bot user id {:?} must start with {BOT_ID_PREFIX:?}",
            user.id
        )));
    }
    insert(tx, user, true, now).await
}

async fn insert(tx: &Transaction<'_>, user: &NewUser, bot: bool, now: Millis) -> Result<User> {
    if !valid_user_id(&user.id) {
        return Err(StoreError::Invalid(format!(
            "user id {:?} must be 1-{MAX_USER_ID_LEN} ASCII letters, digits, '_', '-' or '.'",
            user.id
        )));
    }
    no_nul("name", &user.name)?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO users (id, name, metadata, created_at, is_bot) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let metadata = metadata_text(&user.metadata)?;
    let inserted = tx
        .execute(&stmt, &[&user.id, &user.name, &metadata, &now, &bot])
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "user {:?} already exists",
            user.id
        )));
    }
    get_user(tx, &user.id).await
}

/// The user with `id`, or [`StoreError::NotFound`].
pub async fn get_user(tx: &Transaction<'_>, id: &str) -> Result<User> {
    find_user(tx, id)
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))
}

/// The user with `id`, if there is one.
pub async fn find_user(tx: &Transaction<'_>, id: &str) -> Result<Option<User>> {
    let stmt = tx
        .prepare_cached("SELECT id, name, metadata FROM users WHERE id = $1")
        .await?;
    tx.query_opt(&stmt, &[&id])
        .await?
        .map(|row| user_at(&row, 0))
        .transpose()
}

/// Columns of [`UserAccount`], in the order [`account`] reads them.
macro_rules! account_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, metadata, is_bot, created_at, deactivated_at FROM users ",
            $rest
        )
    };
}

fn account(row: &tokio_postgres::Row) -> Result<UserAccount> {
    let deactivated_at: Option<Millis> = row.try_get(5)?;
    Ok(UserAccount {
        user: user_at(row, 0)?,
        bot: row.try_get(3)?,
        active: deactivated_at.is_none(),
        created_at: row.try_get(4)?,
        deactivated_at,
    })
}

/// The account of user `id`, or [`StoreError::NotFound`].
pub async fn get_account(tx: &Transaction<'_>, id: &str) -> Result<UserAccount> {
    find_account(tx, id)
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))
}

/// The account of user `id`, if there is one.
pub async fn find_account(tx: &Transaction<'_>, id: &str) -> Result<Option<UserAccount>> {
    let stmt = tx.prepare_cached(account_select!("WHERE id = $1")).await?;
    tx.query_opt(&stmt, &[&id])
        .await?
        .map(|row| account(&row))
        .transpose()
}

/// Users with an id after `after` (all when `None`), by id, at most `limit`.
pub async fn list_accounts(
    tx: &Transaction<'_>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<UserAccount>> {
    let stmt = tx
        .prepare_cached(account_select!(
            "WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&after, &big(limit)]).await?;
    rows.iter().map(account).collect()
}

/// Deactivates user `id` as of `now` (`Some`) or reactivates them (`None`); a user already in that state
/// keeps their original deactivation time. Returns the account afterwards.
pub async fn set_deactivated(
    tx: &Transaction<'_>,
    id: &str,
    now: Option<Millis>,
) -> Result<UserAccount> {
    get_account(tx, id).await?;
    let stmt = tx
        .prepare_cached(
            "UPDATE users SET deactivated_at = CASE WHEN $2::bigint IS NULL THEN NULL
                                                    ELSE coalesce(deactivated_at, $2) END
             WHERE id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&id, &now]).await?;
    get_account(tx, id).await
}

/// Ordinary users whose id is in the bot namespace (see the SQLite backend's migration 4).
pub async fn squatted_bot_ids(tx: &Transaction<'_>) -> Result<Vec<String>> {
    let stmt = tx
        .prepare_cached(
            "SELECT id FROM users WHERE lower(substr(id, 1, 4)) = 'bot.' AND NOT is_bot ORDER BY id",
        )
        .await?;
    let rows = tx.query(&stmt, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Which of `ids` are not users, in the order given (duplicates included); empty when all exist. One
/// statement for the whole list.
pub async fn missing_users(tx: &Transaction<'_>, ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT t.id FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)
             WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.id) ORDER BY t.n",
        )
        .await?;
    let rows = tx.query(&stmt, &[&ids]).await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}
