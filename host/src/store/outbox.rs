//! Durable after-hook delivery: the outbox, per-plugin deliveries and dead letters.
//!
//! ## How the dispatcher uses it
//! 1. At start-up: [`recover_in_flight`] (a crash mid-call leaves rows `in_flight`; they become due again).
//! 2. [`pending_events`]: events not yet fanned out, in id order. For each, the dispatcher picks the
//!    plugins subscribed to its kind and calls [`fan_out`], which creates one delivery row per plugin and
//!    removes the outbox row in one transaction (an empty plugin list just removes it).
//! 3. [`next_deliveries`]: due deliveries that are at the head of their (plugin, conversation) queue. For
//!    each: [`start_delivery`] (returns the attempt number to pass to the hook), call the hook, then
//!    [`delivery_succeeded`], [`delivery_failed`] (retry at a later time) or [`dead_letter`].
//! 4. Sleep until woken by a new event or until [`next_due_at`].
//!
//! ## Guarantees
//! Every committed event is in `outbox` until fanned out, and every fanned-out (event, plugin) pair is in
//! `deliveries` until it succeeded or was dead-lettered, so a restart forgets nothing (at least once).
//! A delivery is due only when no earlier event of the same conversation is still undelivered to the same
//! plugin, so each plugin sees each conversation's events in order, while other conversations and other
//! plugins proceed; events without a conversation form one more queue. The rows returned by one
//! [`next_deliveries`] call are therefore safe to run concurrently.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::error::{Result, StoreError};
use super::events::{EVENT_SELECT, RawEvent, StoredEvent};
use super::ids::json_text;
use crate::model::Millis;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry at `next_attempt_at`.
    Pending,
    /// A hook call is running (or was, when the process died).
    InFlight,
}

/// One event owed to one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The event to deliver.
    pub event: StoredEvent,
    /// The plugin's name.
    pub plugin: String,
    /// Attempts started so far (0 before the first).
    pub attempt: u32,
    /// Not to be tried before this time.
    pub next_attempt_at: Millis,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Pending or in flight.
    pub state: DeliveryState,
}

/// A delivery that used up its attempts, kept for an admin to inspect and replay.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The dead letter's own id (what the admin API names).
    pub id: i64,
    /// The event that was not delivered.
    pub event: StoredEvent,
    /// The plugin it was not delivered to.
    pub plugin: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: String,
    /// When it was dead-lettered.
    pub created_at: Millis,
}

/// Events not yet fanned out to plugins, oldest first.
pub fn pending_events(conn: &Connection, limit: u32) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{EVENT_SELECT} JOIN outbox o ON o.event_id = e.id ORDER BY o.event_id LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], RawEvent::from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(RawEvent::into_event).collect()
}

/// Creates a pending delivery of `event_id` to each of `plugins`, due at `now`, and removes the event
/// from the outbox. Safe to repeat (existing deliveries are kept). Returns how many were created.
pub fn fan_out(tx: &Transaction<'_>, event_id: i64, plugins: &[String], now: Millis) -> Result<usize> {
    let conversation: Option<Option<String>> = tx
        .query_row("SELECT conversation_id FROM events WHERE id = ?1", [event_id], |r| r.get(0))
        .optional()?;
    let conversation = conversation.ok_or_else(|| StoreError::not_found("event", event_id.to_string()))?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (event_id, plugin, conversation_id, next_attempt_at, state)
         VALUES (?1, ?2, ?3, ?4, 'pending') ON CONFLICT DO NOTHING",
    )?;
    let mut created = 0;
    for plugin in plugins {
        created += insert.execute(params![event_id, plugin, conversation.as_deref().unwrap_or(""), now])?;
    }
    tx.execute("DELETE FROM outbox WHERE event_id = ?1", [event_id])?;
    Ok(created)
}

/// Up to `limit` pending deliveries to any of `plugins` that are due at `now` and at the head of their
/// (plugin, conversation) queue, in event order. Deliveries to plugins not in `plugins` (unloaded or
/// switched off by the circuit breaker) wait, and hold back later events of their queue.
pub fn next_deliveries(conn: &Connection, now: Millis, plugins: &[String], limit: u32) -> Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1
           AND d.plugin IN (SELECT value FROM json_each(?2))
           AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = d.plugin
                             AND o.conversation_id = d.conversation_id AND o.event_id < d.event_id)
         ORDER BY d.event_id LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(params![now, json_text(&serde_json::json!(plugins))?, limit], raw_delivery)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(into_delivery).collect()
}

/// The earliest time a pending delivery becomes due, if any: how long the dispatcher may sleep.
pub fn next_due_at(conn: &Connection) -> Result<Option<Millis>> {
    Ok(conn.query_row("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'", [], |r| r.get(0))?)
}

/// Marks a delivery in flight and returns its attempt number (1 for the first). Committing this before
/// calling the hook keeps attempt numbers right across crashes.
pub fn start_delivery(tx: &Transaction<'_>, event_id: i64, plugin: &str) -> Result<u32> {
    tx.query_row(
        "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1
         WHERE event_id = ?1 AND plugin = ?2 RETURNING attempt",
        params![event_id, plugin],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::not_found("delivery", format!("{event_id}/{plugin}")))
}

/// The hook handled the event: the delivery is finished (its row is deleted). False if there was none.
pub fn delivery_succeeded(tx: &Transaction<'_>, event_id: i64, plugin: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM deliveries WHERE event_id = ?1 AND plugin = ?2", params![event_id, plugin])? > 0)
}

/// The attempt failed: keep the delivery pending, due again at `next_attempt_at`.
pub fn delivery_failed(tx: &Transaction<'_>, event_id: i64, plugin: &str, error: &str, next_attempt_at: Millis) -> Result<()> {
    let n = tx.execute(
        "UPDATE deliveries SET state = 'pending', last_error = ?3, next_attempt_at = ?4
         WHERE event_id = ?1 AND plugin = ?2",
        params![event_id, plugin, error, next_attempt_at],
    )?;
    if n == 0 {
        return Err(StoreError::not_found("delivery", format!("{event_id}/{plugin}")));
    }
    Ok(())
}

/// Gives up on a delivery: moves it to `dead_letters` (releasing its queue) and returns the dead letter id.
pub fn dead_letter(tx: &Transaction<'_>, event_id: i64, plugin: &str, error: &str, now: Millis) -> Result<i64> {
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
    tx.execute("DELETE FROM deliveries WHERE event_id = ?1 AND plugin = ?2", params![event_id, plugin])?;
    Ok(id)
}

/// Makes deliveries left in flight by a crash pending and due at once; returns how many. Call once at
/// start-up, before the dispatcher runs.
pub fn recover_in_flight(tx: &Transaction<'_>) -> Result<usize> {
    Ok(tx.execute("UPDATE deliveries SET state = 'pending', next_attempt_at = 0 WHERE state = 'in_flight'", [])?)
}

/// Dead letters with an id greater than `after_id`, oldest first, at most `limit`.
pub fn dead_letters(conn: &Connection, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>> {
    dead_letters_where(conn, "d.id > ?1 ORDER BY d.id LIMIT ?2", params![after_id, limit])
}

/// Takes dead letter `id` for replay: deletes it and queues a pending delivery of its event to its plugin,
/// due at `now`, continuing its attempt count. Returns the dead letter as it was.
pub fn replay_dead_letter(tx: &Transaction<'_>, id: i64, now: Millis) -> Result<DeadLetter> {
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

/// Undelivered (pending or in flight) deliveries per plugin, for the admin plugin list.
pub fn backlog(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached("SELECT plugin, count(*) FROM deliveries GROUP BY plugin ORDER BY plugin")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn dead_letters_where(conn: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT d.id, d.plugin, d.attempts, d.last_error, d.created_at,
                e.id, e.kind, e.conversation_id, e.audience, e.payload, e.created_at
         FROM dead_letters d JOIN events e ON e.id = d.event_id WHERE {filter}"
    ))?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, RawEvent::from_row_at(r, 5)?))
        })?
        .collect::<rusqlite::Result<Vec<(i64, String, u32, String, Millis, RawEvent)>>>()?;
    rows.into_iter()
        .map(|(id, plugin, attempts, last_error, created_at, event)| {
            Ok(DeadLetter { id, event: event.into_event()?, plugin, attempts, last_error, created_at })
        })
        .collect()
}

/// Delivery columns followed by the event's, for `d` = `deliveries`, `e` = `events`.
const DELIVERY_COLUMNS: &str = "d.plugin, d.attempt, d.next_attempt_at, d.last_error, d.state,
        e.id, e.kind, e.conversation_id, e.audience, e.payload, e.created_at";

type RawDelivery = (String, u32, Millis, Option<String>, String, RawEvent);

fn raw_delivery(r: &Row<'_>) -> rusqlite::Result<RawDelivery> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, RawEvent::from_row_at(r, 5)?))
}

fn into_delivery((plugin, attempt, next_attempt_at, last_error, state, event): RawDelivery) -> Result<Delivery> {
    let state = if state == "in_flight" { DeliveryState::InFlight } else { DeliveryState::Pending };
    Ok(Delivery { event: event.into_event()?, plugin, attempt, next_attempt_at, last_error, state })
}
