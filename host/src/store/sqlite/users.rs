//! Users: ordinary users (created by admins) and plugins' bot users (created by the server), whether
//! each is active, and the admin's list of them. Their bearer tokens are in [`tokens`](super::tokens).
//!
//! Ids starting with [`BOT_ID_PREFIX`] (in any letter case) belong to bot users only: an ordinary user
//! cannot take one, so nobody can post under a plugin's name, and a bot row can never be an ordinary
//! user's row.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::Writing;
use crate::model::{Millis, User, UserAccount};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{json_value, metadata_text};
use crate::store::limits::{BOT_ID_PREFIX, MAX_USER_ID_LEN, is_bot_id, valid_user_id};
use crate::store::records::NewUser;

/// Creates an ordinary user. [`StoreError::Conflict`] if the id is taken, [`StoreError::Invalid`] if it is
/// malformed or in the bot namespace.
pub fn create_user(tx: &Writing<'_>, user: &NewUser, now: Millis) -> Result<User> {
    if is_bot_id(&user.id) {
        return Err(StoreError::Invalid(format!(
            "user id {:?} starts with {BOT_ID_PREFIX:?}, which is reserved for plugins' bot users",
            user.id
        )));
    }
    insert(tx, user, false, now)
}

/// Creates a plugin's bot user; its id must be in the bot namespace. [`StoreError::Conflict`] if the id is
/// taken.
pub fn create_bot_user(tx: &Writing<'_>, user: &NewUser, now: Millis) -> Result<User> {
    if !user.id.starts_with(BOT_ID_PREFIX) {
        return Err(StoreError::Invalid(format!(
            "bot user id {:?} must start with {BOT_ID_PREFIX:?}",
            user.id
        )));
    }
    insert(tx, user, true, now)
}

fn insert(tx: &Writing<'_>, user: &NewUser, bot: bool, now: Millis) -> Result<User> {
    if !valid_user_id(&user.id) {
        return Err(StoreError::Invalid(format!(
            "user id {:?} must be 1-{MAX_USER_ID_LEN} ASCII letters, digits, '_', '-' or '.'",
            user.id
        )));
    }
    let inserted = tx.execute(
        "INSERT INTO users (id, name, metadata, created_at, is_bot) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
        params![user.id, user.name, metadata_text(&user.metadata)?, now, bot],
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

/// Columns of [`UserAccount`], in the order [`raw_account`] reads them.
const ACCOUNT_COLUMNS: &str = "id, name, metadata, is_bot, created_at, deactivated_at";

/// The account of user `id`, or [`StoreError::NotFound`].
pub fn get_account(conn: &Connection, id: &str) -> Result<UserAccount> {
    find_account(conn, id)?.ok_or_else(|| StoreError::not_found("user", id))
}

/// The account of user `id`, if there is one.
pub fn find_account(conn: &Connection, id: &str) -> Result<Option<UserAccount>> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"
        ))?
        .query_row([id], raw_account)
        .optional()?;
    raw.map(RawAccount::into_account).transpose()
}

/// Users with an id after `after` (all when `None`), by id, at most `limit`: a page of the admin's list.
pub fn list_accounts(
    conn: &Connection,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<UserAccount>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![after, limit], raw_account)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(RawAccount::into_account).collect()
}

/// Deactivates user `id` as of `now` (`Some`) or reactivates them (`None`); a user already in that state
/// keeps their original deactivation time. Returns the account afterwards.
pub fn set_deactivated(tx: &Writing<'_>, id: &str, now: Option<Millis>) -> Result<UserAccount> {
    get_account(tx, id)?;
    tx.prepare_cached(
        "UPDATE users SET deactivated_at = CASE WHEN ?2 IS NULL THEN NULL ELSE coalesce(deactivated_at, ?2) END
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    get_account(tx, id)
}

/// Ordinary users whose id is in the bot namespace: created through the admin API before the namespace
/// was reserved (see migration 4), holding an id a plugin's bot should have.
pub fn squatted_bot_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM users WHERE lower(substr(id, 1, 4)) = 'bot.' AND is_bot = 0 ORDER BY id",
    )?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// Which of `ids` are not users; empty when all exist. Used to validate participant lists up front so the
/// caller gets an error naming the id instead of a bare foreign-key failure.
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

/// An account row ([`ACCOUNT_COLUMNS`]) before its metadata is parsed.
struct RawAccount {
    user: RawUser,
    bot: bool,
    created_at: Millis,
    deactivated_at: Option<Millis>,
}

fn raw_account(row: &Row<'_>) -> rusqlite::Result<RawAccount> {
    Ok(RawAccount {
        user: RawUser::from_row(row, 0)?,
        bot: row.get(3)?,
        created_at: row.get(4)?,
        deactivated_at: row.get(5)?,
    })
}

impl RawAccount {
    fn into_account(self) -> Result<UserAccount> {
        Ok(UserAccount {
            user: self.user.into_user()?,
            bot: self.bot,
            active: self.deactivated_at.is_none(),
            created_at: self.created_at,
            deactivated_at: self.deactivated_at,
        })
    }
}
