//! Bans: users kept out of one conversation until a moderator or admin lifts the ban.
//!
//! A ban is a row of its own, not a participant state: banning removes the member (the chat layer does
//! both in one transaction) and the row outlives their membership, so adding them again can be refused.
//! Deleting the conversation deletes its bans (`ON DELETE CASCADE`).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::conversations::get_conversation;
use super::users::{RawUser, missing_users};
use super::writer::Writing;
use crate::model::{Ban, Millis};
use crate::store::error::{Result, StoreError};
use crate::store::records::{NewBan, Outcome};

/// Ban columns with the banned user: `b.*` then `u.id, u.name, u.metadata`.
const BAN_SELECT: &str =
    "SELECT b.conversation_id, b.banned_by, b.reason, b.created_at, u.id, u.name, u.metadata
     FROM bans b JOIN users u ON u.id = b.user_id";

type RawBan = (String, String, Option<String>, Millis, RawUser);

fn ban_row(r: &Row<'_>) -> rusqlite::Result<RawBan> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        RawUser::from_row(r, 4)?,
    ))
}

fn into_ban((conversation_id, banned_by, reason, created_at, user): RawBan) -> Result<Ban> {
    Ok(Ban {
        conversation_id,
        user: user.into_user()?,
        banned_by,
        reason,
        created_at,
    })
}

/// `user_id`'s ban from `conversation_id`, if banned.
pub fn ban(conn: &Connection, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
    let sql = format!("{BAN_SELECT} WHERE b.conversation_id = ?1 AND b.user_id = ?2");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([conversation_id, user_id], ban_row)
        .optional()?;
    row.map(into_ban).transpose()
}

/// The bans of `conversation_id`, oldest first.
pub fn bans(conn: &Connection, conversation_id: &str) -> Result<Vec<Ban>> {
    let sql = format!("{BAN_SELECT} WHERE b.conversation_id = ?1 ORDER BY b.created_at, b.user_id");
    let rows = conn
        .prepare_cached(&sql)?
        .query_map([conversation_id], ban_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(into_ban).collect()
}

/// The users of `user_ids` banned from `conversation_id`, in the order given, each once.
pub fn banned_among(
    conn: &Connection,
    conversation_id: &str,
    user_ids: &[String],
) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT 1 FROM bans WHERE conversation_id = ?1 AND user_id = ?2")?;
    let mut banned: Vec<String> = Vec::new();
    for user in user_ids {
        if !banned.contains(user) && stmt.exists([conversation_id, user])? {
            banned.push(user.clone());
        }
    }
    Ok(banned)
}

/// Records a ban (it does not remove the member: the caller does, in the same transaction). A user
/// already banned keeps their first ban (`changed == false`).
pub fn add_ban(tx: &Writing<'_>, new: &NewBan, now: Millis) -> Result<Outcome<Ban>> {
    get_conversation(tx, &new.conversation_id)?;
    if let Some(missing) = missing_users(tx, std::slice::from_ref(&new.user_id))?.first() {
        return Err(StoreError::not_found("user", missing.as_str()));
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO bans (conversation_id, user_id, banned_by, reason, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            new.conversation_id,
            new.user_id,
            new.banned_by,
            new.reason,
            now
        ])?;
    let value = ban(tx, &new.conversation_id, &new.user_id)?
        .ok_or_else(|| StoreError::not_found("ban", new.user_id.as_str()))?;
    Ok(Outcome {
        value,
        changed: inserted > 0,
    })
}

/// Lifts `user_id`'s ban from `conversation_id`; the ban, if there was one. The user is not added back.
pub fn remove_ban(tx: &Writing<'_>, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
    let Some(existing) = ban(tx, conversation_id, user_id)? else {
        return Ok(None);
    };
    tx.prepare_cached("DELETE FROM bans WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute([conversation_id, user_id])?;
    Ok(Some(existing))
}
