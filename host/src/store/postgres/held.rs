//! The moderation queue on PostgreSQL; see the SQLite backend's `held` for the model.

use super::transaction::Transaction;
use tokio_postgres::Row;

use super::values::{big, small, user_at};
use crate::model::{HeldMessage, HoldState, Millis, Origin};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{json_value, metadata_text, new_id};
use crate::store::records::{NewHeld, Outcome};

macro_rules! held_select {
    ($rest:literal) => {
        concat!(
            "SELECT h.id, h.conversation_id, h.body, h.metadata, h.mentions, h.origin_plugin,
        h.origin_depth, h.client_id, h.parent_id, h.reason, h.held_by, h.state, h.decided_by,
        h.decided_at, h.decision_reason, h.created_at, u.id, u.name, u.metadata
     FROM held_messages h JOIN users u ON u.id = h.sender_id ",
            $rest
        )
    };
}

fn held_row(r: &Row) -> Result<HeldMessage> {
    let id: String = r.try_get(0)?;
    let state: String = r.try_get(11)?;
    Ok(HeldMessage {
        state: HoldState::parse(&state).ok_or_else(|| {
            StoreError::Invalid(format!("held message {id:?} has state {state:?}"))
        })?,
        id,
        conversation_id: r.try_get(1)?,
        body: r.try_get(2)?,
        metadata: json_value(r.try_get(3)?)?,
        mentions: r.try_get(4)?,
        origin: match r.try_get::<_, Option<String>>(5)? {
            Some(name) => Origin::Plugin {
                name,
                depth: r.try_get::<_, Option<i64>>(6)?.map_or(1, small),
            },
            None => Origin::User,
        },
        client_id: r.try_get(7)?,
        parent_id: r.try_get(8)?,
        reason: r.try_get(9)?,
        held_by: r.try_get(10)?,
        decided_by: r.try_get(12)?,
        decided_at: r.try_get(13)?,
        decision_reason: r.try_get(14)?,
        created_at: r.try_get(15)?,
        sender: user_at(r, 16)?,
    })
}

/// Holds a message for review, or returns the sender's earlier held message with the same `client_id`.
pub async fn hold_message(
    tx: &Transaction<'_>,
    new: &NewHeld,
    now: Millis,
) -> Result<Outcome<HeldMessage>> {
    if let Some(client_id) = &new.client_id
        && let Some(earlier) = find_held_by_client_id(tx, &new.sender_id, client_id).await?
    {
        return Ok(Outcome {
            value: earlier,
            changed: false,
        });
    }
    let id = new_id("m_")?;
    let (plugin, depth) = match &new.origin {
        Origin::User => (None, None),
        Origin::Plugin { name, depth } => (Some(name.as_str()), Some(i64::from(*depth))),
    };
    let metadata = metadata_text(&new.metadata)?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO held_messages (id, conversation_id, sender_id, client_id, body, metadata,
                                        mentions, origin_plugin, origin_depth, parent_id, reason,
                                        held_by, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &new.conversation_id,
            &new.sender_id,
            &new.client_id,
            &new.body,
            &metadata,
            &new.mentions,
            &plugin,
            &depth,
            &new.parent_id,
            &new.reason,
            &new.held_by,
            &now,
        ],
    )
    .await?;
    Ok(Outcome {
        value: get_held(tx, &id).await?,
        changed: true,
    })
}

/// Records a moderator's decision on a pending held message; [`StoreError::Conflict`] if it is no longer
/// pending.
pub async fn decide_held(
    tx: &Transaction<'_>,
    id: &str,
    state: HoldState,
    decided_by: &str,
    reason: Option<&str>,
    now: Millis,
) -> Result<HeldMessage> {
    let stmt = tx
        .prepare_cached(
            "UPDATE held_messages SET state = $2, decided_by = $3, decision_reason = $4,
                                      decided_at = $5
             WHERE id = $1 AND state = 'pending'",
        )
        .await?;
    let n = tx
        .execute(&stmt, &[&id, &state.as_str(), &decided_by, &reason, &now])
        .await?;
    let held = get_held(tx, id).await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "held message {id:?} is already {}",
            held.state.as_str()
        )));
    }
    Ok(held)
}

/// The held message `id`.
pub async fn get_held(tx: &Transaction<'_>, id: &str) -> Result<HeldMessage> {
    let stmt = tx.prepare_cached(held_select!("WHERE h.id = $1")).await?;
    let row = tx
        .query_opt(&stmt, &[&id])
        .await?
        .ok_or_else(|| StoreError::not_found("held message", id))?;
    held_row(&row)
}

/// The sender's held message with this `client_id`, if any.
pub async fn find_held_by_client_id(
    tx: &Transaction<'_>,
    sender_id: &str,
    client_id: &str,
) -> Result<Option<HeldMessage>> {
    let stmt = tx
        .prepare_cached(held_select!("WHERE h.sender_id = $1 AND h.client_id = $2"))
        .await?;
    tx.query_opt(&stmt, &[&sender_id, &client_id])
        .await?
        .as_ref()
        .map(held_row)
        .transpose()
}

/// The held messages of `conversation_id`, oldest first; see the SQLite backend's `held_messages`.
pub async fn held_messages(
    tx: &Transaction<'_>,
    conversation_id: &str,
    sender: Option<&str>,
    state: Option<HoldState>,
    limit: u32,
) -> Result<Vec<HeldMessage>> {
    let stmt = tx
        .prepare_cached(held_select!(
            "WHERE h.conversation_id = $1 AND ($2::text IS NULL OR h.sender_id = $2)
               AND ($3::text IS NULL OR h.state = $3)
             ORDER BY h.created_at, h.id LIMIT $4"
        ))
        .await?;
    let state = state.map(HoldState::as_str);
    tx.query(&stmt, &[&conversation_id, &sender, &state, &big(limit)])
        .await?
        .iter()
        .map(held_row)
        .collect()
}
