//! The moderation queue: messages a before-hook held (`decision.hold`). They live in `held_messages`,
//! not in `messages`, so a pending one takes no `seq`, counts toward no unread count, is no conversation's
//! last message and gets no receipts; approving one sends it then (keeping its id), rejecting one only
//! records the decision. Rows stay after the decision, as the record of what was decided, and go with
//! their conversation.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::users::RawUser;
use super::writer::Writing;
use crate::model::{HeldMessage, HoldState, Millis, Origin};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{json_value, new_id};
use crate::store::records::{NewHeld, Outcome};

const SELECT: &str =
    "SELECT h.id, h.conversation_id, h.body, h.metadata, h.mentions, h.origin_plugin,
        h.origin_depth, h.client_id, h.parent_id, h.reason, h.held_by, h.state, h.decided_by,
        h.decided_at, h.decision_reason, h.created_at, u.id, u.name, u.metadata
     FROM held_messages h JOIN users u ON u.id = h.sender_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(RawHeld, RawUser)> {
    Ok((
        RawHeld {
            id: r.get(0)?,
            conversation_id: r.get(1)?,
            body: r.get(2)?,
            metadata: r.get(3)?,
            mentions: r.get(4)?,
            origin_plugin: r.get(5)?,
            origin_depth: r.get(6)?,
            client_id: r.get(7)?,
            parent_id: r.get(8)?,
            reason: r.get(9)?,
            held_by: r.get(10)?,
            state: r.get(11)?,
            decided_by: r.get(12)?,
            decided_at: r.get(13)?,
            decision_reason: r.get(14)?,
            created_at: r.get(15)?,
        },
        RawUser::from_row(r, 16)?,
    ))
}

/// A row before its JSON columns are parsed.
struct RawHeld {
    id: String,
    conversation_id: String,
    body: String,
    metadata: String,
    mentions: String,
    origin_plugin: Option<String>,
    origin_depth: Option<u32>,
    client_id: Option<String>,
    parent_id: Option<String>,
    reason: String,
    held_by: String,
    state: String,
    decided_by: Option<String>,
    decided_at: Option<Millis>,
    decision_reason: Option<String>,
    created_at: Millis,
}

fn into_held((raw, sender): (RawHeld, RawUser)) -> Result<HeldMessage> {
    Ok(HeldMessage {
        state: HoldState::parse(&raw.state).ok_or_else(|| {
            StoreError::Invalid(format!(
                "held message {:?} has state {:?}",
                raw.id, raw.state
            ))
        })?,
        id: raw.id,
        conversation_id: raw.conversation_id,
        sender: sender.into_user()?,
        body: raw.body,
        metadata: json_value(&raw.metadata)?,
        mentions: serde_json::from_str(&raw.mentions)?,
        origin: match raw.origin_plugin {
            Some(name) => Origin::Plugin {
                name,
                depth: raw.origin_depth.unwrap_or(1),
            },
            None => Origin::User,
        },
        client_id: raw.client_id,
        parent_id: raw.parent_id,
        reason: raw.reason,
        held_by: raw.held_by,
        decided_by: raw.decided_by,
        decided_at: raw.decided_at,
        decision_reason: raw.decision_reason,
        created_at: raw.created_at,
    })
}

/// Holds a message for review, or returns the sender's earlier held message with the same `client_id`
/// (`changed == false`).
pub fn hold_message(tx: &Writing<'_>, new: &NewHeld, now: Millis) -> Result<Outcome<HeldMessage>> {
    if let Some(client_id) = &new.client_id
        && let Some(earlier) = find_held_by_client_id(tx, &new.sender_id, client_id)?
    {
        return Ok(Outcome {
            value: earlier,
            changed: false,
        });
    }
    let id = new_id("m_")?;
    let (plugin, depth) = match &new.origin {
        Origin::User => (None, None),
        Origin::Plugin { name, depth } => (Some(name.as_str()), Some(*depth)),
    };
    tx.prepare_cached(
        "INSERT INTO held_messages (id, conversation_id, sender_id, client_id, body, metadata, mentions,
                                    origin_plugin, origin_depth, parent_id, reason, held_by, state,
                                    created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13)",
    )?
    .execute(params![
        id,
        new.conversation_id,
        new.sender_id,
        new.client_id,
        new.body,
        crate::store::ids::metadata_text(&new.metadata)?,
        serde_json::to_string(&new.mentions)?,
        plugin,
        depth,
        new.parent_id,
        new.reason,
        new.held_by,
        now
    ])?;
    Ok(Outcome {
        value: get_held(tx, &id)?,
        changed: true,
    })
}

/// Records a moderator's decision on a pending held message; [`StoreError::Conflict`] if it is no longer
/// pending.
pub fn decide_held(
    tx: &Writing<'_>,
    id: &str,
    state: HoldState,
    decided_by: &str,
    reason: Option<&str>,
    now: Millis,
) -> Result<HeldMessage> {
    let n = tx
        .prepare_cached(
            "UPDATE held_messages SET state = ?2, decided_by = ?3, decision_reason = ?4,
                                      decided_at = ?5
             WHERE id = ?1 AND state = 'pending'",
        )?
        .execute(params![id, state.as_str(), decided_by, reason, now])?;
    let held = get_held(tx, id)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "held message {id:?} is already {}",
            held.state.as_str()
        )));
    }
    Ok(held)
}

/// The held message `id`.
pub fn get_held(conn: &Connection, id: &str) -> Result<HeldMessage> {
    let sql = format!("{SELECT} WHERE h.id = ?1");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?
        .ok_or_else(|| StoreError::not_found("held message", id))?;
    into_held(row)
}

/// The sender's held message with this `client_id`, if any.
pub fn find_held_by_client_id(
    conn: &Connection,
    sender_id: &str,
    client_id: &str,
) -> Result<Option<HeldMessage>> {
    let sql = format!("{SELECT} WHERE h.sender_id = ?1 AND h.client_id = ?2");
    conn.prepare_cached(&sql)?
        .query_row([sender_id, client_id], from_row)
        .optional()?
        .map(into_held)
        .transpose()
}

/// The held messages of `conversation_id`, oldest first, at most `limit`: every sender's, or only
/// `sender`'s; in any state, or only `state`.
pub fn held_messages(
    conn: &Connection,
    conversation_id: &str,
    sender: Option<&str>,
    state: Option<HoldState>,
    limit: u32,
) -> Result<Vec<HeldMessage>> {
    let sql = format!(
        "{SELECT} WHERE h.conversation_id = ?1 AND (?2 IS NULL OR h.sender_id = ?2)
           AND (?3 IS NULL OR h.state = ?3)
         ORDER BY h.created_at, h.id LIMIT ?4"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(
            params![conversation_id, sender, state.map(HoldState::as_str), limit],
            from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(into_held).collect()
}
