//! The event log: one row per chat change, written in the change's own transaction.
//!
//! The row id is the event id everything downstream uses: WebSocket clients resume from it (`?since=`),
//! after-hooks receive it to deduplicate retries. `AUTOINCREMENT` guarantees ids only grow and are never
//! reused, and because writes are serialised they are assigned in commit order.
//!
//! Each event names its audience (the user ids allowed to see it); [`events_since`] only returns events
//! whose audience contains the user, so a non-participant never sees a conversation's events. Appending
//! an event also enqueues it in the [`outbox`](super::outbox) for after-hooks, when a plugin listens.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::Writing;
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::ids::{json_text, json_value};
use crate::store::limits::MAX_EVENTS_PAGE;
use crate::store::records::StoredEvent;

/// Whether an appended event goes into the outbox for the after-hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Queued: some running plugin exports the event's hook.
    ForAfterHooks,
    /// Only logged: no plugin listens, so the dispatcher has nothing to fan out.
    No,
}

/// Appends an event (and, as `queue` says, its outbox row) inside the caller's transaction; returns the
/// event id. Call it in the same transaction as the change it describes, so the two commit (or vanish)
/// together.
pub fn append_event(
    tx: &Writing<'_>,
    kind: &str,
    conversation_id: Option<&str>,
    audience: &[String],
    payload: &serde_json::Value,
    now: Millis,
    queue: Queue,
) -> Result<i64> {
    let mut members: Vec<&String> = audience.iter().collect();
    members.sort();
    members.dedup();
    let audience_json = json_text(&serde_json::json!(members))?;
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO events (kind, conversation_id, audience, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )?
        .query_row(
            params![
                kind,
                conversation_id,
                audience_json,
                json_text(payload)?,
                now
            ],
            |r| r.get(0),
        )?;
    // One statement for the whole audience (a 1,000-member conversation was 1,000 statement runs).
    tx.prepare_cached(
        "INSERT INTO event_audience (user_id, event_id) SELECT value, ?2 FROM json_each(?1)",
    )?
    .execute(params![audience_json, id])?;
    if queue == Queue::ForAfterHooks {
        tx.prepare_cached("INSERT INTO outbox (event_id) VALUES (?1)")?
            .execute([id])?;
    }
    Ok(id)
}

/// Events visible to `user_id` with an id greater than `since_id`, oldest first, at most `limit` (capped
/// at [`MAX_EVENTS_PAGE`]). A client that got a full page asks again from the last id.
pub fn events_since(
    conn: &Connection,
    user_id: &str,
    since_id: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{EVENT_SELECT} JOIN event_audience a ON a.event_id = e.id
         WHERE a.user_id = ?1 AND a.event_id > ?2 ORDER BY a.event_id LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![user_id, since_id, limit.min(MAX_EVENTS_PAGE)],
            RawEvent::from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(RawEvent::into_event).collect()
}

/// The event with `id`, or [`StoreError::NotFound`].
pub fn get_event(conn: &Connection, id: i64) -> Result<StoredEvent> {
    let raw = conn
        .prepare_cached(&format!("{EVENT_SELECT} WHERE e.id = ?1"))?
        .query_row([id], RawEvent::from_row)
        .optional()?;
    raw.ok_or_else(|| StoreError::not_found("event", id.to_string()))?
        .into_event()
}

/// The newest event id (0 when the log is empty): where a new live subscriber starts.
pub fn latest_event_id(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?)
}

/// The columns of a [`StoredEvent`], for `e` = `events`.
pub(crate) const EVENT_SELECT: &str =
    "SELECT e.id, e.kind, e.conversation_id, e.audience, e.payload, e.created_at FROM events e";

/// An event row before its JSON columns are parsed. [`RawEvent::from_row_at`] reads it at any offset so
/// the outbox can prepend its own columns.
pub(crate) struct RawEvent {
    id: i64,
    kind: String,
    conversation_id: Option<String>,
    audience: String,
    payload: String,
    created_at: Millis,
}

impl RawEvent {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Self::from_row_at(r, 0)
    }

    pub(crate) fn from_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(at)?,
            kind: r.get(at + 1)?,
            conversation_id: r.get(at + 2)?,
            audience: r.get(at + 3)?,
            payload: r.get(at + 4)?,
            created_at: r.get(at + 5)?,
        })
    }

    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            id: self.id,
            kind: self.kind,
            conversation_id: self.conversation_id,
            audience: serde_json::from_str(&self.audience)?,
            payload: json_value(&self.payload)?,
            created_at: self.created_at,
        })
    }
}
