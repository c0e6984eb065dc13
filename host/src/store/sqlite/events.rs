//! The event log: one row per chat change, written in the change's own transaction.
//!
//! The row id is the event id everything downstream uses: WebSocket clients resume from it (`?since=`),
//! after-hooks receive it to deduplicate retries. `AUTOINCREMENT` guarantees ids only grow and are never
//! reused, and because writes are serialised they are assigned in commit order.
//!
//! Each event names its audience (the user ids allowed to see it); [`events_since`] only returns events
//! whose audience contains the user, so a non-participant never sees a conversation's events. Appending
//! an event also enqueues it in the [`outbox`](super::outbox) for after-hooks, when a plugin listens.
//!
//! ## How an audience is stored
//! - Up to [`LARGE_AUDIENCE`] members: one `event_audience` row per member, keyed `(user_id, event_id)`,
//!   so a user's events are one index range in id order.
//! - More: the audience is stored once, in `audiences` (its sorted member list, found again by its
//!   SHA-256), with one `audience_members` row per member, and the event names it by `audience_id`. Every
//!   message of a large conversation shares one audience until its membership changes, so a message
//!   writes one event row however many members there are, instead of as many rows at as many places
//!   of the index.
//!
//! [`events_since`] reads both: the user's own range, and for each large audience the user belongs to that
//! has events after the position, that audience's range (`events_audience`); then merges them in id
//! order. A user belongs to a few large audiences per large conversation (one per membership between
//! changes), and only those with newer events are read.

use rusqlite::{Connection, OptionalExtension, Row, params};

use sha2::{Digest, Sha256};

use super::writer::Writing;
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::ids::{json_text, json_value};
use crate::store::limits::{LARGE_AUDIENCE, MAX_EVENTS_PAGE};
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
    let large = if members.len() > LARGE_AUDIENCE {
        Some(large_audience(tx, &audience_json)?)
    } else {
        None
    };
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO events (kind, conversation_id, audience, audience_id, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?
        .query_row(
            params![
                kind,
                conversation_id,
                if large.is_some() { "" } else { &audience_json },
                large,
                json_text(payload)?,
                now
            ],
            |r| r.get(0),
        )?;
    if large.is_none() {
        // One statement for the whole audience (a 100-member audience was 100 statement runs).
        tx.prepare_cached(
            "INSERT INTO event_audience (user_id, event_id) SELECT value, ?2 FROM json_each(?1)",
        )?
        .execute(params![audience_json, id])?;
    }
    if queue == Queue::ForAfterHooks {
        tx.prepare_cached("INSERT INTO outbox (event_id) VALUES (?1)")?
            .execute([id])?;
    }
    Ok(id)
}

/// The id of the large audience whose sorted member list is `members` (JSON), stored with its member rows
/// the first time it is seen.
fn large_audience(tx: &Writing<'_>, members: &str) -> Result<i64> {
    let digest = Sha256::digest(members.as_bytes());
    let known: Option<i64> = tx
        .prepare_cached("SELECT id FROM audiences WHERE digest = ?1")?
        .query_row([&digest[..]], |r| r.get(0))
        .optional()?;
    if let Some(id) = known {
        return Ok(id);
    }
    let id: i64 = tx
        .prepare_cached("INSERT INTO audiences (digest, members) VALUES (?1, ?2) RETURNING id")?
        .query_row(params![&digest[..], members], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO audience_members (user_id, audience_id) SELECT value, ?2 FROM json_each(?1)",
    )?
    .execute(params![members, id])?;
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
    let limit = limit.min(MAX_EVENTS_PAGE);
    let mut stmt = conn.prepare_cached(&format!(
        "{EVENT_SELECT} JOIN event_audience a ON a.event_id = e.id
         WHERE a.user_id = ?1 AND a.event_id > ?2 ORDER BY a.event_id LIMIT ?3"
    ))?;
    let mut rows = stmt
        .query_map(params![user_id, since_id, limit], RawEvent::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let large: Vec<i64> = conn
        .prepare_cached(
            "SELECT m.audience_id FROM audience_members m WHERE m.user_id = ?1
               AND EXISTS (SELECT 1 FROM events e WHERE e.audience_id = m.audience_id AND e.id > ?2)",
        )?
        .query_map(params![user_id, since_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if !large.is_empty() {
        let mut stmt = conn.prepare_cached(&format!(
            "{EVENT_SELECT} WHERE e.audience_id = ?1 AND e.id > ?2 ORDER BY e.id LIMIT ?3"
        ))?;
        for audience in large {
            let more = stmt.query_map(params![audience, since_id, limit], RawEvent::from_row)?;
            for row in more {
                rows.push(row?);
            }
        }
        rows.sort_unstable_by_key(|row| row.id);
        rows.truncate(limit as usize);
    }
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

/// The columns of a [`StoredEvent`] ([`RawEvent::from_row_at`]) for `e` = `events` joined with
/// [`AUDIENCE_JOIN`]: an event with a large audience reads its members from there.
macro_rules! event_columns {
    () => {
        "e.id, e.kind, e.conversation_id, coalesce(s.members, e.audience), e.payload, e.created_at"
    };
}

/// Joins the large audience of `e` = `events` as `s`, which [`EVENT_COLUMNS`] reads.
macro_rules! audience_join {
    () => {
        "LEFT JOIN audiences s ON s.id = e.audience_id"
    };
}

/// See [`event_columns!`].
pub(crate) const EVENT_COLUMNS: &str = event_columns!();

/// See [`audience_join!`].
pub(crate) const AUDIENCE_JOIN: &str = audience_join!();

/// Selects [`EVENT_COLUMNS`] from `events e` and its large audience.
pub(crate) const EVENT_SELECT: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e ",
    audience_join!()
);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::testutil::{TestDb, ids};

    fn count(t: &TestDb, table: &str) -> Result<i64> {
        t.db.read(|c| Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?))
    }

    /// What the events of a large conversation write: its audience once, however many messages; a small
    /// audience still a row per member and event. (What each user reads back is tested on every backend
    /// in `store/tests/events.rs`.)
    #[test]
    fn a_large_audience_is_stored_once_for_all_its_events() -> anyhow::Result<()> {
        let t = TestDb::with_users(&[])?;
        let members: Vec<String> = (0..=LARGE_AUDIENCE).map(|i| format!("u{i:03}")).collect();
        let payload = serde_json::json!({});
        t.db.write(|tx| {
            for at in 0..3 {
                append_event(
                    tx,
                    "message.new",
                    Some("c"),
                    &members,
                    &payload,
                    at,
                    Queue::No,
                )?;
            }
            append_event(
                tx,
                "message.new",
                Some("d"),
                &ids(&["a", "b"]),
                &payload,
                4,
                Queue::No,
            )
        })?;
        assert_eq!(count(&t, "audiences")?, 1);
        assert_eq!(
            count(&t, "audience_members")?,
            i64::try_from(members.len())?
        );
        assert_eq!(count(&t, "event_audience")?, 2);
        let empty: i64 = t.db.read(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM events WHERE audience = ''", [], |r| {
                    r.get(0)
                })?,
            )
        })?;
        assert_eq!(empty, 3);
        Ok(())
    }
}
