//! Emoji reactions on PostgreSQL, unique per (message, user, emoji), as
//! [`store::sqlite::reactions`](crate::store::sqlite::reactions) keeps them.

use super::transaction::Transaction;

use super::messages;
use super::values::{no_nul, user_at};
use crate::model::{Millis, Reaction};
use crate::store::error::{Result, StoreError};
use crate::store::limits::MAX_EMOJI_LEN;
use crate::store::records::Outcome;

/// Adds `user_id`'s `emoji` reaction to `message_id`; an existing identical reaction is returned with
/// `changed == false`. [`StoreError::Conflict`] on a deleted message.
pub async fn add_reaction(
    tx: &Transaction<'_>,
    message_id: &str,
    user_id: &str,
    emoji: &str,
    now: Millis,
) -> Result<Outcome<Reaction>> {
    if emoji.trim().is_empty() || emoji.chars().count() > MAX_EMOJI_LEN {
        return Err(StoreError::Invalid(format!(
            "emoji must be 1-{MAX_EMOJI_LEN} characters"
        )));
    }
    no_nul("emoji", emoji)?;
    if messages::get_message(tx, message_id).await?.deleted {
        return Err(StoreError::Conflict(format!(
            "message {message_id:?} is deleted"
        )));
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let changed = tx
        .execute(&stmt, &[&message_id, &user_id, &emoji, &now])
        .await?;
    let reaction = find(tx, message_id, user_id, emoji)
        .await?
        .ok_or_else(|| StoreError::not_found("reaction", emoji))?;
    Ok(Outcome {
        value: reaction,
        changed: changed > 0,
    })
}

/// Removes a reaction and returns it, or `None` if there was none.
pub async fn remove_reaction(
    tx: &Transaction<'_>,
    message_id: &str,
    user_id: &str,
    emoji: &str,
) -> Result<Option<Reaction>> {
    if emoji.contains('\0') {
        // No stored emoji holds one (add_reaction refuses it): nothing to remove, as SQLite would find.
        return Ok(None);
    }
    let Some(reaction) = find(tx, message_id, user_id, emoji).await? else {
        return Ok(None);
    };
    let stmt = tx
        .prepare_cached(
            "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
        )
        .await?;
    tx.execute(&stmt, &[&message_id, &user_id, &emoji]).await?;
    Ok(Some(reaction))
}

async fn find(
    tx: &Transaction<'_>,
    message_id: &str,
    user_id: &str,
    emoji: &str,
) -> Result<Option<Reaction>> {
    let stmt = tx
        .prepare_cached(
            "SELECT r.created_at, u.id, u.name, u.metadata FROM reactions r JOIN users u ON u.id = r.user_id
             WHERE r.message_id = $1 AND r.user_id = $2 AND r.emoji = $3",
        )
        .await?;
    let Some(row) = tx
        .query_opt(&stmt, &[&message_id, &user_id, &emoji])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Reaction {
        message_id: message_id.to_owned(),
        user: user_at(&row, 1)?,
        emoji: emoji.to_owned(),
        created_at: row.try_get(0)?,
    }))
}
