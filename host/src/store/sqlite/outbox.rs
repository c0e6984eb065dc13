//! Durable after-hook delivery: the outbox, per-plugin deliveries and dead letters.
//!
//! ## How the dispatcher uses it
//! 1. At start-up: [`recover_in_flight`] (a crash mid-call leaves rows `in_flight`; they become due again),
//!    then [`queued_deliveries`]: the whole table, without event payloads, into the dispatcher's memory
//!    of its queues (reloaded now and then to see deliveries written by others, such as a replay).
//! 2. [`pending_events`]: events not yet fanned out, in id order. For each, the dispatcher picks the
//!    plugins subscribed to its kind and calls [`fan_out_event`], which creates one delivery row per
//!    plugin and removes the outbox row ([`fan_out`] does the same by event id).
//! 3. For each queue head its memory says is due: [`start_head`], which checks the head-of-queue rule
//!    in SQL and returns the attempt number to pass to the hook ([`queue`] re-reads a queue whose head it
//!    refused). Call the hook, then, batched in the next round's transaction: [`delivery_succeeded`],
//!    [`delivery_failed`] (retry at a later time), [`postpone_delivery`] (circuit breaker) or
//!    [`dead_letter`](super::dead_letters::dead_letter) after the last attempt.
//! 4. Sleep until woken by a new event, a finished call, or the next due time.
//!
//! [`next_deliveries`] answers "which deliveries are due heads" in one query; it looks at every pending
//! delivery, so it serves tests and tools, not the dispatcher's inner loop.
//!
//! A server on its own makes most first attempts without a delivery row (`dispatch::direct`): it fans
//! an event out with [`queue_event`] to the plugins that need a row (or none at all), keeps the event
//! in the outbox while the others' calls run, writes a row only for a call that did not succeed
//! ([`requeue_delivery`]), and then removes the event with [`leave_outbox`]; reads of the outbox leave
//! out the events it holds ([`pending_events`]'s `except`).
//!
//! ## Guarantees
//! Every committed event is in `outbox` until fanned out (and, delivered straight from there, until every
//! such call succeeded or got its row), and every fanned-out (event, plugin) pair with a row is in
//! `deliveries` until it succeeded or was dead-lettered, so a restart forgets nothing (at least once).
//! A delivery is due only when no earlier event of the same conversation is still undelivered to the same
//! plugin, so each plugin sees each conversation's events in order, while other conversations and other
//! plugins proceed; events without a conversation form one more queue. The rows returned by one
//! [`next_deliveries`] call, or started by [`start_head`], are therefore safe to run concurrently.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::events::{AUDIENCE_JOIN, EVENT_COLUMNS, EVENT_SELECT, RawEvent};
use super::writer::Writing;
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::ids::json_text;
use crate::store::records::StoredEvent;
use crate::store::records::{Delivery, DeliveryState, QueuedDelivery, StartedRow};

/// Events in the outbox with an id above `after`, other than `except` (those whose first attempts the
/// dispatcher is making straight from the outbox), oldest first, at most `limit`.
pub fn pending_events(
    conn: &Connection,
    after: i64,
    limit: u32,
    except: &[i64],
) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{EVENT_SELECT} JOIN outbox o ON o.event_id = e.id
         WHERE o.event_id > ?3 AND o.event_id NOT IN (SELECT value FROM json_each(?2))
         ORDER BY o.event_id LIMIT ?1"
    ))?;
    let rows = stmt
        .query_map(
            params![limit, json_text(&serde_json::json!(except))?, after],
            RawEvent::from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(RawEvent::into_event).collect()
}

/// The ids of [`pending_events`] with the same arguments, without reading the events.
pub fn pending_event_ids_after(
    conn: &Connection,
    after: i64,
    limit: u32,
    except: &[i64],
) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_id FROM outbox
         WHERE event_id > ?3 AND event_id NOT IN (SELECT value FROM json_each(?2))
         ORDER BY event_id LIMIT ?1",
    )?;
    let ids = stmt
        .query_map(
            params![limit, json_text(&serde_json::json!(except))?, after],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// The ids of [`pending_events`], oldest first.
pub fn pending_event_ids(conn: &Connection, limit: u32) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT event_id FROM outbox ORDER BY event_id LIMIT ?1")?;
    let ids = stmt
        .query_map([limit], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Creates a pending delivery of `event_id` to each of `plugins`, due at `now`, and removes the event
/// from the outbox. Safe to repeat (existing deliveries are kept). Returns how many were created.
pub fn fan_out(tx: &Writing<'_>, event_id: i64, plugins: &[String], now: Millis) -> Result<usize> {
    let conversation: Option<Option<String>> = tx
        .prepare_cached("SELECT conversation_id FROM events WHERE id = ?1")?
        .query_row([event_id], |r| r.get(0))
        .optional()?;
    let conversation =
        conversation.ok_or_else(|| StoreError::not_found("event", event_id.to_string()))?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (event_id, plugin, conversation_id, next_attempt_at, state)
         VALUES (?1, ?2, ?3, ?4, 'pending') ON CONFLICT DO NOTHING",
    )?;
    let mut created = 0;
    for plugin in plugins {
        created += insert.execute(params![
            event_id,
            plugin,
            conversation.as_deref().unwrap_or(""),
            now
        ])?;
    }
    leave_outbox(tx, event_id)?;
    Ok(created)
}

/// Up to `limit` pending deliveries to any of `plugins` that are due at `now` and at the head of their
/// (plugin, conversation) queue, in event order. Deliveries to plugins not in `plugins` (unloaded or
/// switched off by the circuit breaker) wait, and hold back later events of their queue.
pub fn next_deliveries(
    conn: &Connection,
    now: Millis,
    plugins: &[String],
    limit: u32,
) -> Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS}, {EVENT_COLUMNS}
         FROM deliveries d JOIN events e ON e.id = d.event_id {AUDIENCE_JOIN}
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1
           AND d.plugin IN (SELECT value FROM json_each(?2))
           AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = d.plugin
                             AND o.conversation_id = d.conversation_id AND o.event_id < d.event_id)
         ORDER BY d.event_id LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![now, json_text(&serde_json::json!(plugins))?, limit],
            raw_delivery,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(into_delivery).collect()
}

/// Every undelivered delivery (pending or in flight), without event payloads: what the dispatcher loads
/// into memory at start-up and reloads now and then to see deliveries written by others (a replayed dead
/// letter). One scan of the table, cheaper per row than any query per delivery.
pub fn queued_deliveries(conn: &Connection) -> Result<Vec<QueuedDelivery>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {QUEUED_COLUMNS} FROM deliveries"))?;
    let rows = stmt
        .query_map([], queued_delivery)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The deliveries of one (plugin, conversation) queue, oldest first: how the dispatcher refreshes a queue
/// its memory got wrong (one `deliveries_order` index range).
pub fn queue(conn: &Connection, plugin: &str, conversation: &str) -> Result<Vec<QueuedDelivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {QUEUED_COLUMNS} FROM deliveries
         WHERE plugin = ?1 AND conversation_id = ?2 ORDER BY event_id"
    ))?;
    let rows = stmt
        .query_map(params![plugin, conversation], queued_delivery)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Like [`fan_out`] for an event already read (from [`pending_events`]): no lookup of its conversation.
/// Returns the deliveries it queued (existing ones included), for the dispatcher's memory.
pub fn fan_out_event(
    tx: &Writing<'_>,
    event: &StoredEvent,
    plugins: &[String],
    now: Millis,
) -> Result<Vec<QueuedDelivery>> {
    let queued = queue_event(tx, event, plugins, now)?;
    leave_outbox(tx, event.id)?;
    Ok(queued)
}

/// Like [`fan_out_event`], but the event stays in the outbox: the dispatcher makes its first attempt to
/// other plugins straight from there, and removes it with [`leave_outbox`] once those are recorded.
pub fn queue_event(
    tx: &Writing<'_>,
    event: &StoredEvent,
    plugins: &[String],
    now: Millis,
) -> Result<Vec<QueuedDelivery>> {
    let conversation = event.conversation_id.clone().unwrap_or_default();
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (event_id, plugin, conversation_id, next_attempt_at, state)
         VALUES (?1, ?2, ?3, ?4, 'pending') ON CONFLICT DO NOTHING",
    )?;
    let mut queued = Vec::with_capacity(plugins.len());
    for plugin in plugins {
        insert.execute(params![event.id, plugin, conversation, now])?;
        queued.push(QueuedDelivery {
            event_id: event.id,
            plugin: plugin.clone(),
            conversation: conversation.clone(),
            next_attempt_at: now,
            in_flight: false,
        });
    }
    Ok(queued)
}

/// Removes event `event_id` from the outbox: every plugin it is owed to has a delivery row or was
/// called.
pub fn leave_outbox(tx: &Writing<'_>, event_id: i64) -> Result<()> {
    tx.prepare_cached("DELETE FROM outbox WHERE event_id = ?1")?
        .execute([event_id])?;
    Ok(())
}

/// Writes the delivery row of an attempt made straight from the outbox that did not succeed (or was not
/// made): `attempts` made so far, `last_error` the last one's, due again at
/// `delivery.next_attempt_at`, or in flight (about to be dead-lettered). An existing row is kept.
pub fn requeue_delivery(
    tx: &Writing<'_>,
    delivery: &QueuedDelivery,
    attempts: u32,
    last_error: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO deliveries
           (event_id, plugin, conversation_id, attempt, next_attempt_at, last_error, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        delivery.event_id,
        delivery.plugin,
        delivery.conversation,
        attempts,
        delivery.next_attempt_at,
        last_error,
        if delivery.in_flight {
            "in_flight"
        } else {
            "pending"
        },
    ])?;
    Ok(())
}

/// Like [`start_delivery`], but only if the delivery is still pending, due at `now` and the head of its
/// (plugin, conversation) queue; `None` otherwise. The dispatcher picks heads from memory; this check,
/// one `deliveries_order` probe, keeps order and at-most-one start even when that memory is out of date
/// (a dead letter replayed ahead of the queue meanwhile).
pub fn start_head(
    tx: &Writing<'_>,
    event_id: i64,
    plugin: &str,
    now: Millis,
) -> Result<Option<StartedRow>> {
    let mut stmt = tx.prepare_cached(
        "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1
         WHERE event_id = ?1 AND plugin = ?2 AND state = 'pending' AND next_attempt_at <= ?3
           AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = ?2
                             AND o.conversation_id = deliveries.conversation_id AND o.event_id < ?1)
         RETURNING attempt, next_attempt_at, last_error",
    )?;
    Ok(stmt
        .query_row(params![event_id, plugin, now], started_row)
        .optional()?)
}

/// Like [`start_head`] for the delivery right behind `previous` in its queue, which the caller started in
/// this transaction: only if it is pending, due at `now`, `previous` is in flight in the same queue, and
/// no delivery of the queue lies between the two (a primary-key and a `deliveries_order` probe). `None`
/// otherwise.
pub fn start_next(
    tx: &Writing<'_>,
    event_id: i64,
    plugin: &str,
    previous: i64,
    now: Millis,
) -> Result<Option<StartedRow>> {
    let mut stmt = tx.prepare_cached(
        "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1
         WHERE event_id = ?1 AND plugin = ?2 AND state = 'pending' AND next_attempt_at <= ?3
           AND ?4 < ?1
           AND EXISTS (SELECT 1 FROM deliveries p WHERE p.event_id = ?4 AND p.plugin = ?2
                         AND p.conversation_id = deliveries.conversation_id AND p.state = 'in_flight')
           AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = ?2
                             AND o.conversation_id = deliveries.conversation_id
                             AND o.event_id > ?4 AND o.event_id < ?1)
         RETURNING attempt, next_attempt_at, last_error",
    )?;
    Ok(stmt
        .query_row(params![event_id, plugin, now, previous], started_row)
        .optional()?)
}

/// A started delivery's `RETURNING attempt, next_attempt_at, last_error`.
fn started_row(r: &Row<'_>) -> rusqlite::Result<StartedRow> {
    Ok(StartedRow {
        attempt: r.get(0)?,
        next_attempt_at: r.get(1)?,
        last_error: r.get(2)?,
        leased_until: None,
    })
}

/// The earliest time a pending delivery becomes due, if any: how long the dispatcher may sleep.
pub fn next_due_at(conn: &Connection) -> Result<Option<Millis>> {
    Ok(conn.query_row(
        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )?)
}

/// Marks a delivery in flight and returns its attempt number (1 for the first). Committing this before
/// calling the hook keeps attempt numbers right across crashes.
pub fn start_delivery(tx: &Writing<'_>, event_id: i64, plugin: &str) -> Result<u32> {
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
pub fn delivery_succeeded(tx: &Writing<'_>, event_id: i64, plugin: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached("DELETE FROM deliveries WHERE event_id = ?1 AND plugin = ?2")?
        .execute(params![event_id, plugin])?
        > 0)
}

/// The attempt failed: keep the delivery pending, due again at `next_attempt_at`.
pub fn delivery_failed(
    tx: &Writing<'_>,
    event_id: i64,
    plugin: &str,
    error: &str,
    next_attempt_at: Millis,
) -> Result<()> {
    let n = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', last_error = ?3, next_attempt_at = ?4
             WHERE event_id = ?1 AND plugin = ?2",
        )?
        .execute(params![event_id, plugin, error, next_attempt_at])?;
    if n == 0 {
        return Err(StoreError::not_found(
            "delivery",
            format!("{event_id}/{plugin}"),
        ));
    }
    Ok(())
}

/// The call did not happen after all (the plugin's circuit breaker refused it): the delivery is pending
/// again, due at `next_attempt_at`, and the attempt `start_delivery` counted is given back.
pub fn postpone_delivery(
    tx: &Writing<'_>,
    event_id: i64,
    plugin: &str,
    next_attempt_at: Millis,
) -> Result<()> {
    let n = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', attempt = max(attempt - 1, 0), next_attempt_at = ?3
             WHERE event_id = ?1 AND plugin = ?2",
        )?
        .execute(params![event_id, plugin, next_attempt_at])?;
    if n == 0 {
        return Err(StoreError::not_found(
            "delivery",
            format!("{event_id}/{plugin}"),
        ));
    }
    Ok(())
}

/// Makes deliveries left in flight by a crash pending and due at once; returns how many. Call once at
/// start-up, before the dispatcher runs.
pub fn recover_in_flight(tx: &Writing<'_>) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = 0 WHERE state = 'in_flight'",
        [],
    )?)
}

/// Events committed but not yet fanned out to plugins (the outbox proper), for metrics.
pub fn outbox_depth(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?)
}

/// Undelivered (pending or in flight) deliveries per plugin, for the admin plugin list.
pub fn backlog(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT plugin, count(*) FROM deliveries GROUP BY plugin ORDER BY plugin",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The columns [`queued_delivery`] reads.
const QUEUED_COLUMNS: &str = "event_id, plugin, conversation_id, next_attempt_at, state";

fn queued_delivery(r: &Row<'_>) -> rusqlite::Result<QueuedDelivery> {
    Ok(QueuedDelivery {
        event_id: r.get(0)?,
        plugin: r.get(1)?,
        conversation: r.get(2)?,
        next_attempt_at: r.get(3)?,
        in_flight: r.get::<_, String>(4)? == "in_flight",
    })
}

/// The delivery's columns, for `d` = `deliveries`; the event's ([`EVENT_COLUMNS`]) follow them.
const DELIVERY_COLUMNS: &str = "d.plugin, d.attempt, d.next_attempt_at, d.last_error, d.state";

type RawDelivery = (String, u32, Millis, Option<String>, String, RawEvent);

fn raw_delivery(r: &Row<'_>) -> rusqlite::Result<RawDelivery> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        RawEvent::from_row_at(r, 5)?,
    ))
}

fn into_delivery(
    (plugin, attempt, next_attempt_at, last_error, state, event): RawDelivery,
) -> Result<Delivery> {
    let state = if state == "in_flight" {
        DeliveryState::InFlight
    } else {
        DeliveryState::Pending
    };
    Ok(Delivery {
        event: event.into_event()?,
        plugin,
        attempt,
        next_attempt_at,
        last_error,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::events::{Queue, append_event};
    use crate::store::sqlite::testutil::{TestDb, ids};

    /// `next_due_at` is SQLite's own, not on the seam (the dispatcher keeps its queues in memory, from
    /// `queued_deliveries`); deliveries themselves are tested on every backend in `store/tests/`.
    #[test]
    fn next_due_at_is_when_the_earliest_pending_delivery_is_due() -> Result<()> {
        let t = TestDb::with_users(&["a"])?;
        assert_eq!(t.db.read(next_due_at)?, None);
        let payload = serde_json::json!({});
        let (e1, e2) = t.db.write(|tx| {
            let event = |conversation| {
                append_event(
                    tx,
                    "message.new",
                    Some(conversation),
                    &ids(&["a"]),
                    &payload,
                    1,
                    Queue::ForAfterHooks,
                )
            };
            Ok((event("c1")?, event("c2")?))
        })?;
        t.db.write(|tx| {
            fan_out(tx, e1, &ids(&["p"]), 0)?;
            fan_out(tx, e2, &ids(&["p"]), 0)
        })?;
        t.db.write(|tx| {
            start_delivery(tx, e1, "p")?;
            delivery_failed(tx, e1, "p", "boom", 50)
        })?;
        assert_eq!(t.db.read(next_due_at)?, Some(0));
        // An in-flight delivery is not pending: only e1's retry is left to wait for.
        t.db.write(|tx| start_delivery(tx, e2, "p"))?;
        assert_eq!(t.db.read(next_due_at)?, Some(50));
        Ok(())
    }
}
