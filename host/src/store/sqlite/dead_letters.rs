//! Dead letters: deliveries that used up their attempts, kept for an admin to list and replay.
//!
//! Dead-lettering a delivery removes it from its (plugin, conversation) queue, so later events flow again.
//! Replaying puts it back as a pending delivery; it then goes first in its queue again (its event id is
//! the oldest), so a plugin sees it before newer events of that conversation that are still queued.

use rusqlite::{Connection, OptionalExtension, params};

use super::events::{AUDIENCE_JOIN, EVENT_COLUMNS, RawEvent};
use super::writer::Writing;
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::records::DeadLetter;

/// Gives up on a delivery: moves it to `dead_letters` (releasing its queue) and returns the dead letter id.
pub fn dead_letter(
    tx: &Writing<'_>,
    event_id: i64,
    plugin: &str,
    error: &str,
    now: Millis,
) -> Result<i64> {
    let id = tx
        .query_row(
            "INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
             SELECT event_id, plugin, attempt, ?3, ?4 FROM deliveries WHERE event_id = ?1 AND plugin = ?2
             RETURNING id",
            params![event_id, plugin, error, now],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::not_found("delivery", format!("{event_id}/{plugin}")))?;
    tx.execute(
        "DELETE FROM deliveries WHERE event_id = ?1 AND plugin = ?2",
        params![event_id, plugin],
    )?;
    Ok(id)
}

/// Records that `event_id` was not queued for `plugin` at all (its backlog was full): a dead letter with no
/// attempt, replayable like any other. Returns its id.
pub fn dead_letter_unqueued(
    tx: &Writing<'_>,
    event_id: i64,
    plugin: &str,
    reason: &str,
    now: Millis,
) -> Result<i64> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
             VALUES (?1, ?2, 0, ?3, ?4) RETURNING id",
        )?
        .query_row(params![event_id, plugin, reason, now], |r| r.get(0))?)
}

/// Gives up on every pending (not in flight) delivery to `plugin`, oldest event first, with `reason`:
/// they become dead letters, keeping their attempt counts. Returns how many.
pub fn dead_letter_waiting(
    tx: &Writing<'_>,
    plugin: &str,
    reason: &str,
    now: Millis,
) -> Result<usize> {
    let moved = tx.execute(
        "INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
         SELECT event_id, plugin, attempt, ?2, ?3 FROM deliveries
         WHERE plugin = ?1 AND state = 'pending' ORDER BY event_id",
        params![plugin, reason, now],
    )?;
    tx.execute(
        "DELETE FROM deliveries WHERE plugin = ?1 AND state = 'pending'",
        [plugin],
    )?;
    Ok(moved)
}

/// How many dead letters there are, for metrics.
pub fn count(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))?)
}

/// Dead letters with an id greater than `after_id`, oldest first, at most `limit`.
pub fn dead_letters(conn: &Connection, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>> {
    dead_letters_where(
        conn,
        "d.id > ?1 ORDER BY d.id LIMIT ?2",
        params![after_id, limit],
    )
}

/// Takes dead letter `id` for replay: deletes it and queues a pending delivery of its event to its plugin,
/// due at `now`, continuing its attempt count. Returns the dead letter as it was.
pub fn replay_dead_letter(tx: &Writing<'_>, id: i64, now: Millis) -> Result<DeadLetter> {
    let letter = dead_letters_where(tx, "d.id = ?1", params![id])?
        .pop()
        .ok_or_else(|| StoreError::not_found("dead letter", id.to_string()))?;
    tx.execute(
        "INSERT INTO deliveries (event_id, plugin, conversation_id, attempt, next_attempt_at, last_error, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')
         ON CONFLICT DO UPDATE SET state = 'pending', next_attempt_at = excluded.next_attempt_at",
        params![
            letter.event.id,
            letter.plugin,
            letter.event.conversation_id.as_deref().unwrap_or(""),
            letter.attempts,
            now,
            letter.last_error
        ],
    )?;
    tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
    Ok(letter)
}

fn dead_letters_where(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT d.id, d.plugin, d.attempts, d.last_error, d.created_at, {EVENT_COLUMNS}
         FROM dead_letters d JOIN events e ON e.id = d.event_id {AUDIENCE_JOIN} WHERE {filter}"
    ))?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                RawEvent::from_row_at(r, 5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<(i64, String, u32, String, Millis, RawEvent)>>>()?;
    rows.into_iter()
        .map(|(id, plugin, attempts, last_error, created_at, event)| {
            Ok(DeadLetter {
                id,
                event: event.into_event()?,
                plugin,
                attempts,
                last_error,
                created_at,
            })
        })
        .collect()
}
