//! Plugin timers (the `scheduler` power): one row per (plugin, name), fired by the scheduler when due.
//!
//! `rev` grows on every set, so the scheduler can finish a firing ("delete this one-shot timer", "move
//! this interval timer on") without undoing a timer the plugin set again while it was being called.

use rusqlite::{Connection, params};

use super::writer::Writing;
use crate::model::Millis;
use crate::store::error::Result;
use crate::store::records::Timer;

/// Stores a timer, replacing one of the same plugin and name.
pub fn set_timer(
    tx: &Writing<'_>,
    plugin: &str,
    name: &str,
    due_at: Millis,
    interval_ms: Option<u64>,
    payload: &str,
    now: Millis,
) -> Result<()> {
    let interval = interval_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    tx.execute(
        "INSERT INTO plugin_timers (plugin, name, due_at, interval_ms, payload, attempts, rev, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 1, ?6)
         ON CONFLICT (plugin, name) DO UPDATE SET due_at = ?3, interval_ms = ?4, payload = ?5,
             attempts = 0, rev = rev + 1, created_at = ?6",
        params![plugin, name, due_at, interval, payload, now],
    )?;
    Ok(())
}

/// Removes a timer; whether it existed.
pub fn cancel_timer(tx: &Writing<'_>, plugin: &str, name: &str) -> Result<bool> {
    let n = tx.execute(
        "DELETE FROM plugin_timers WHERE plugin = ?1 AND name = ?2",
        params![plugin, name],
    )?;
    Ok(n > 0)
}

/// The columns [`timer_row`] reads, as a literal for `concat!` (the SQL stays a constant).
macro_rules! timer_select {
    () => {
        "SELECT plugin, name, due_at, interval_ms, payload, attempts, rev FROM plugin_timers"
    };
}

/// A [`Timer`] from a row of `timer_select!()`.
fn timer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Timer> {
    Ok(Timer {
        plugin: r.get(0)?,
        name: r.get(1)?,
        due_at: r.get(2)?,
        interval_ms: r
            .get::<_, Option<i64>>(3)?
            .map(|ms| u64::try_from(ms).unwrap_or(0)),
        payload: r.get(4)?,
        attempts: r.get(5)?,
        rev: r.get(6)?,
    })
}

/// Timers due at `now`, earliest first, at most `limit`.
pub fn due_timers(conn: &Connection, now: Millis, limit: u32) -> Result<Vec<Timer>> {
    let mut stmt = conn.prepare_cached(concat!(
        timer_select!(),
        " WHERE due_at <= ?1 ORDER BY due_at, plugin, name LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], timer_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When the next timer is due, if any.
pub fn next_due(conn: &Connection) -> Result<Option<Millis>> {
    Ok(conn.query_row("SELECT MIN(due_at) FROM plugin_timers", [], |r| r.get(0))?)
}

/// After a firing of `timer`: delete it (`next` is `None`) or move it to `next` with `attempts`, unless it
/// was set again meanwhile (its `rev` changed). Returns whether the row was touched.
pub fn finish_firing(
    tx: &Writing<'_>,
    timer: &Timer,
    next: Option<Millis>,
    attempts: u32,
) -> Result<bool> {
    let n = match next {
        None => tx.execute(
            "DELETE FROM plugin_timers WHERE plugin = ?1 AND name = ?2 AND rev = ?3",
            params![timer.plugin, timer.name, timer.rev],
        )?,
        Some(at) => tx.execute(
            "UPDATE plugin_timers SET due_at = ?4, attempts = ?5
             WHERE plugin = ?1 AND name = ?2 AND rev = ?3",
            params![timer.plugin, timer.name, timer.rev, at, attempts],
        )?,
    };
    Ok(n > 0)
}

/// Every timer of `plugin` (for tests and the admin API), by name.
pub fn timers_of(conn: &Connection, plugin: &str) -> Result<Vec<Timer>> {
    let mut stmt =
        conn.prepare_cached(concat!(timer_select!(), " WHERE plugin = ?1 ORDER BY name"))?;
    let rows = stmt.query_map(params![plugin], timer_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
