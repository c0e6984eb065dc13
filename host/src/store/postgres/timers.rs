//! Plugin timers on PostgreSQL (the `scheduler` power), with the `rev` check of
//! [`store::sqlite::timers`](crate::store::sqlite::timers): finishing a firing never undoes a timer the
//! plugin set again meanwhile.

use super::transaction::Transaction;
use tokio_postgres::Row;

use super::values::{big, no_nul, small};
use crate::model::Millis;
use crate::store::error::Result;
use crate::store::records::Timer;

/// Stores a timer, replacing one of the same plugin and name.
pub async fn set_timer(
    tx: &Transaction<'_>,
    plugin: &str,
    name: &str,
    due_at: Millis,
    interval_ms: Option<u64>,
    payload: &str,
    now: Millis,
) -> Result<()> {
    no_nul("name", name)?;
    no_nul("payload", payload)?;
    let interval = interval_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    let stmt = tx
        .prepare_cached(
            "INSERT INTO plugin_timers (plugin, name, due_at, interval_ms, payload, attempts, rev, created_at)
             VALUES ($1, $2, $3, $4, $5, 0, 1, $6)
             ON CONFLICT (plugin, name) DO UPDATE SET due_at = $3, interval_ms = $4, payload = $5,
                 attempts = 0, rev = plugin_timers.rev + 1, created_at = $6,
                 lease_owner = NULL, lease_until = NULL",
        )
        .await?;
    tx.execute(&stmt, &[&plugin, &name, &due_at, &interval, &payload, &now])
        .await?;
    Ok(())
}

/// Removes a timer; whether it existed.
pub async fn cancel_timer(tx: &Transaction<'_>, plugin: &str, name: &str) -> Result<bool> {
    if name.contains('\0') {
        // set_timer refuses such a name, so none is stored: nothing to cancel, as SQLite would find.
        return Ok(false);
    }
    let stmt = tx
        .prepare_cached("DELETE FROM plugin_timers WHERE plugin = $1 AND name = $2")
        .await?;
    Ok(tx.execute(&stmt, &[&plugin, &name]).await? > 0)
}

/// The columns [`timer_row`] reads, as a literal for `concat!`.
macro_rules! timer_select {
    () => {
        "SELECT plugin, name, due_at, interval_ms, payload, attempts, rev FROM plugin_timers"
    };
}

fn timer_row(r: &Row) -> Result<Timer> {
    Ok(Timer {
        plugin: r.try_get(0)?,
        name: r.try_get(1)?,
        due_at: r.try_get(2)?,
        interval_ms: r
            .try_get::<_, Option<i64>>(3)?
            .map(|ms| u64::try_from(ms).unwrap_or(0)),
        payload: r.try_get(4)?,
        attempts: small(r.try_get(5)?),
        rev: r.try_get(6)?,
    })
}

/// Timers due at `now`, earliest first, at most `limit`.
pub async fn due_timers(tx: &Transaction<'_>, now: Millis, limit: u32) -> Result<Vec<Timer>> {
    let stmt = tx
        .prepare_cached(concat!(
            timer_select!(),
            " WHERE due_at <= $1 ORDER BY due_at, plugin, name LIMIT $2"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&now, &big(limit)]).await?;
    rows.iter().map(timer_row).collect()
}

/// Cluster mode: leases up to `limit` timers of `plugins` due at `now` that no node holds a live lease
/// on, earliest first, for `node` until `lease_until` (`FOR UPDATE SKIP LOCKED`: a timer another node is
/// leasing at this moment is skipped, not waited for).
pub async fn lease_timers(
    tx: &Transaction<'_>,
    node: &str,
    plugins: &[String],
    now: Millis,
    lease_until: Millis,
    limit: u32,
) -> Result<Vec<Timer>> {
    let stmt = tx
        .prepare_cached(
            "WITH due AS (SELECT plugin, name FROM plugin_timers
                          WHERE due_at <= $1 AND plugin = ANY($2)
                            AND (lease_until IS NULL OR lease_until < $1)
                          ORDER BY due_at, plugin, name LIMIT $3
                          FOR UPDATE SKIP LOCKED)
             UPDATE plugin_timers t SET lease_owner = $4, lease_until = $5
             FROM due WHERE t.plugin = due.plugin AND t.name = due.name
             RETURNING t.plugin, t.name, t.due_at, t.interval_ms, t.payload, t.attempts, t.rev",
        )
        .await?;
    let rows = tx
        .query(&stmt, &[&now, &plugins, &big(limit), &node, &lease_until])
        .await?;
    let mut timers = rows.iter().map(timer_row).collect::<Result<Vec<_>>>()?;
    timers.sort_by(|a, b| (a.due_at, &a.plugin, &a.name).cmp(&(b.due_at, &b.plugin, &b.name)));
    Ok(timers)
}

/// When the next timer is due, if any.
pub async fn next_due(tx: &Transaction<'_>) -> Result<Option<Millis>> {
    let stmt = tx
        .prepare_cached("SELECT min(due_at) FROM plugin_timers")
        .await?;
    Ok(tx.query_one(&stmt, &[]).await?.try_get(0)?)
}

/// After a firing of `timer`: delete it (`next` is `None`) or move it to `next` with `attempts`, unless it
/// was set again meanwhile (its `rev` changed). Whether the row was touched.
pub async fn finish_firing(
    tx: &Transaction<'_>,
    timer: &Timer,
    next: Option<Millis>,
    attempts: u32,
) -> Result<bool> {
    let n = match next {
        None => {
            let stmt = tx
                .prepare_cached(
                    "DELETE FROM plugin_timers WHERE plugin = $1 AND name = $2 AND rev = $3",
                )
                .await?;
            tx.execute(&stmt, &[&timer.plugin, &timer.name, &timer.rev])
                .await?
        }
        Some(at) => {
            let stmt = tx
                .prepare_cached(
                    "UPDATE plugin_timers SET due_at = $4, attempts = $5,
                         lease_owner = NULL, lease_until = NULL
                     WHERE plugin = $1 AND name = $2 AND rev = $3",
                )
                .await?;
            tx.execute(
                &stmt,
                &[&timer.plugin, &timer.name, &timer.rev, &at, &big(attempts)],
            )
            .await?
        }
    };
    Ok(n > 0)
}

/// Every timer of `plugin`, by name.
pub async fn timers_of(tx: &Transaction<'_>, plugin: &str) -> Result<Vec<Timer>> {
    let stmt = tx
        .prepare_cached(concat!(timer_select!(), " WHERE plugin = $1 ORDER BY name"))
        .await?;
    let rows = tx.query(&stmt, &[&plugin]).await?;
    rows.iter().map(timer_row).collect()
}
