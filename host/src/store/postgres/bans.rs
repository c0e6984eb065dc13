//! Bans on PostgreSQL; the model is that of [`store::sqlite::bans`](crate::store::sqlite::bans).

use super::transaction::Transaction;
use tokio_postgres::Row;

use super::conversations::get_conversation;
use super::users::missing_users;
use super::values::{no_nul_opt, user_at};
use crate::model::{Ban, Millis};
use crate::store::error::{Result, StoreError};
use crate::store::records::{NewBan, Outcome};

/// Ban columns with the banned user; each query appends its filter.
macro_rules! ban_select {
    ($rest:literal) => {
        concat!(
            "SELECT b.conversation_id, b.banned_by, b.reason, b.created_at, u.id, u.name, u.metadata
             FROM bans b JOIN users u ON u.id = b.user_id ",
            $rest
        )
    };
}

fn ban_row(r: &Row) -> Result<Ban> {
    Ok(Ban {
        conversation_id: r.try_get(0)?,
        banned_by: r.try_get(1)?,
        reason: r.try_get(2)?,
        created_at: r.try_get(3)?,
        user: user_at(r, 4)?,
    })
}

/// `user_id`'s ban from `conversation_id`, if banned.
pub async fn ban(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_id: &str,
) -> Result<Option<Ban>> {
    let stmt = tx
        .prepare_cached(ban_select!(
            "WHERE b.conversation_id = $1 AND b.user_id = $2"
        ))
        .await?;
    tx.query_opt(&stmt, &[&conversation_id, &user_id])
        .await?
        .map(|r| ban_row(&r))
        .transpose()
}

/// The bans of `conversation_id`, oldest first.
pub async fn bans(tx: &Transaction<'_>, conversation_id: &str) -> Result<Vec<Ban>> {
    let stmt = tx
        .prepare_cached(ban_select!(
            "WHERE b.conversation_id = $1 ORDER BY b.created_at, b.user_id"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&conversation_id]).await?;
    rows.iter().map(ban_row).collect()
}

/// The users of `user_ids` banned from `conversation_id`, in the order given, each once.
pub async fn banned_among(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_ids: &[String],
) -> Result<Vec<String>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT user_id FROM bans WHERE conversation_id = $1 AND user_id = ANY($2::text[])",
        )
        .await?;
    let found: Vec<String> = tx
        .query(&stmt, &[&conversation_id, &user_ids])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut banned: Vec<String> = Vec::new();
    for user in user_ids {
        if found.contains(user) && !banned.contains(user) {
            banned.push(user.clone());
        }
    }
    Ok(banned)
}

/// Records a ban; a user already banned keeps their first ban (`changed == false`).
pub async fn add_ban(tx: &Transaction<'_>, new: &NewBan, now: Millis) -> Result<Outcome<Ban>> {
    no_nul_opt("reason", new.reason.as_deref())?;
    get_conversation(tx, &new.conversation_id).await?;
    if let Some(missing) = missing_users(tx, std::slice::from_ref(&new.user_id))
        .await?
        .first()
    {
        return Err(StoreError::not_found("user", missing.as_str()));
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO bans (conversation_id, user_id, banned_by, reason, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(
            &stmt,
            &[
                &new.conversation_id,
                &new.user_id,
                &new.banned_by,
                &new.reason,
                &now,
            ],
        )
        .await?;
    let value = ban(tx, &new.conversation_id, &new.user_id)
        .await?
        .ok_or_else(|| StoreError::not_found("ban", new.user_id.as_str()))?;
    Ok(Outcome {
        value,
        changed: inserted > 0,
    })
}

/// Lifts `user_id`'s ban from `conversation_id`; the ban, if there was one.
pub async fn remove_ban(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_id: &str,
) -> Result<Option<Ban>> {
    let Some(existing) = ban(tx, conversation_id, user_id).await? else {
        return Ok(None);
    };
    let stmt = tx
        .prepare_cached("DELETE FROM bans WHERE conversation_id = $1 AND user_id = $2")
        .await?;
    tx.execute(&stmt, &[&conversation_id, &user_id]).await?;
    Ok(Some(existing))
}
