//! Durable after-hook delivery on PostgreSQL: the outbox and per-plugin deliveries, with the head-of-queue
//! rule of [`store::sqlite::outbox`](crate::store::sqlite::outbox), whose docs say how the dispatcher
//! uses each function and what they guarantee. The statements are the same; fanning an event out to many
//! plugins is one statement (`unnest`) instead of one per plugin.
//!
//! The head-of-queue check in [`start_head`] is one `UPDATE ... WHERE NOT EXISTS (earlier delivery)`.
//! Under READ COMMITTED it holds because single-node writes are serialised ([`PgDb`](super::PgDb)); in
//! cluster mode the same statement gains `FOR UPDATE SKIP LOCKED` and a lease (SCALE-OUT.md 2.6).

use super::transaction::Transaction;
use tokio_postgres::Row;

use super::events::{audience_join, event_at, event_columns};
use super::statements::Statements;
use super::values::{big, count, small};
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::records::{
    Delivery, DeliveryState, QueuedDelivery, RunStart, StartedRow, StoredEvent,
};

/// Events in the outbox with an id above `after`, other than `except` (delivered straight from it),
/// oldest first. The outbox rows are picked first and each event is then looked up by its id: joined
/// the other way, the planner merged the whole `events` index with the outbox, and with the rows picked
/// first but a plain join, the plan PostgreSQL kept for the prepared statement (made for any `after`)
/// hashed them against a scan of the whole `events` table. Either read grew with every event ever sent
/// (1.5 ms at 3,700 events, 0.55 ms at 2,400; BENCHMARKS.md problems 18 and 19). The `OFFSET 0` keeps
/// the lookup a subquery of its own, run once per outbox row by the primary key, whatever the estimates.
pub async fn pending_events(
    tx: &impl Statements,
    after: i64,
    limit: u32,
    except: &[i64],
) -> Result<Vec<StoredEvent>> {
    let stmt = tx
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM (SELECT event_id FROM outbox WHERE event_id > $3 AND NOT (event_id = ANY($2))
                    ORDER BY event_id LIMIT $1) o
              CROSS JOIN LATERAL (SELECT * FROM events WHERE id = o.event_id OFFSET 0) e ",
            audience_join!(),
            " ORDER BY o.event_id"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&big(limit), &except, &after]).await?;
    rows.iter().map(|r| event_at(r, 0)).collect()
}

/// The ids of [`pending_events`] with the same arguments, without reading the events.
pub async fn pending_event_ids_after(
    tx: &impl Statements,
    after: i64,
    limit: u32,
    except: &[i64],
) -> Result<Vec<i64>> {
    let stmt = tx
        .prepare_cached(
            "SELECT event_id FROM outbox WHERE event_id > $3 AND NOT (event_id = ANY($2))
             ORDER BY event_id LIMIT $1",
        )
        .await?;
    let rows = tx.query(&stmt, &[&big(limit), &except, &after]).await?;
    rows.iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect::<Result<Vec<i64>>>()
}

/// The ids of [`pending_events`], oldest first.
pub async fn pending_event_ids(tx: &Transaction<'_>, limit: u32) -> Result<Vec<i64>> {
    let stmt = tx
        .prepare_cached("SELECT event_id FROM outbox ORDER BY event_id LIMIT $1")
        .await?;
    let rows = tx.query(&stmt, &[&big(limit)]).await?;
    rows.iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect::<Result<Vec<i64>>>()
}

/// The statement creating one pending delivery per plugin of `$2` for event `$1` in queue `$3`, due at
/// `$4`, keeping deliveries that exist.
const INSERT_DELIVERIES: &str =
    "INSERT INTO deliveries (event_id, plugin, conversation_id, next_attempt_at, state)
     SELECT $1, p, $3, $4, 'pending' FROM unnest($2::text[]) AS p ON CONFLICT DO NOTHING";

/// Creates a pending delivery of `event_id` to each of `plugins`, due at `now`, and removes the event from
/// the outbox. Safe to repeat. Returns how many were created.
pub async fn fan_out(
    tx: &Transaction<'_>,
    event_id: i64,
    plugins: &[String],
    now: Millis,
) -> Result<usize> {
    let lookup = tx
        .prepare_cached("SELECT conversation_id FROM events WHERE id = $1")
        .await?;
    let conversation: Option<String> = tx
        .query_opt(&lookup, &[&event_id])
        .await?
        .ok_or_else(|| StoreError::not_found("event", event_id.to_string()))?
        .try_get(0)?;
    let insert = tx.prepare_cached(INSERT_DELIVERIES).await?;
    let queue = conversation.unwrap_or_default();
    let created = tx
        .execute(&insert, &[&event_id, &plugins, &queue, &now])
        .await?;
    leave_outbox(tx, &[event_id]).await?;
    Ok(usize::try_from(created).unwrap_or(usize::MAX))
}

/// Like [`fan_out`] for an event already read; returns the deliveries it queued (existing ones included).
pub async fn fan_out_event(
    tx: &Transaction<'_>,
    event: &StoredEvent,
    plugins: &[String],
    now: Millis,
) -> Result<Vec<QueuedDelivery>> {
    let mut queued = fan_out_events(tx, &[(event, plugins)], now).await?;
    Ok(queued.pop().unwrap_or_default())
}

/// [`fan_out_event`] for each of `events`, in two statements: one insert of every delivery, then the
/// events leave the outbox.
pub async fn fan_out_events(
    tx: &Transaction<'_>,
    events: &[(&StoredEvent, &[String])],
    now: Millis,
) -> Result<Vec<Vec<QueuedDelivery>>> {
    let queued = queue_events(tx, events, now).await?;
    let ids: Vec<i64> = events.iter().map(|(event, _)| event.id).collect();
    leave_outbox(tx, &ids).await?;
    Ok(queued)
}

/// Creates a pending delivery of each of `events` to each of its plugins, due at `now`, in one
/// statement (existing ones are kept); per event, its deliveries.
pub async fn queue_events(
    tx: &Transaction<'_>,
    events: &[(&StoredEvent, &[String])],
    now: Millis,
) -> Result<Vec<Vec<QueuedDelivery>>> {
    let queued: Vec<Vec<QueuedDelivery>> = events
        .iter()
        .map(|(event, plugins)| {
            let conversation = event.conversation_id.clone().unwrap_or_default();
            plugins
                .iter()
                .map(|plugin| QueuedDelivery {
                    event_id: event.id,
                    plugin: plugin.clone(),
                    conversation: conversation.clone(),
                    next_attempt_at: now,
                    in_flight: false,
                })
                .collect()
        })
        .collect();
    let rows = queued.iter().flatten();
    let event_ids: Vec<i64> = rows.clone().map(|d| d.event_id).collect();
    if event_ids.is_empty() {
        return Ok(queued);
    }
    let plugins: Vec<&str> = rows.clone().map(|d| d.plugin.as_str()).collect();
    let conversations: Vec<&str> = rows.map(|d| d.conversation.as_str()).collect();
    let insert = tx
        .prepare_cached(
            "INSERT INTO deliveries (event_id, plugin, conversation_id, next_attempt_at, state)
             SELECT e, p, c, $4, 'pending' FROM unnest($1::bigint[], $2::text[], $3::text[]) AS d(e, p, c)
             ON CONFLICT DO NOTHING",
        )
        .await?;
    tx.execute(&insert, &[&event_ids, &plugins, &conversations, &now])
        .await?;
    Ok(queued)
}

/// Like [`fan_out_event`], leaving the event in the outbox (see `store::sqlite::outbox::queue_event`).
pub async fn queue_event(
    tx: &Transaction<'_>,
    event: &StoredEvent,
    plugins: &[String],
    now: Millis,
) -> Result<Vec<QueuedDelivery>> {
    let mut queued = queue_events(tx, &[(event, plugins)], now).await?;
    Ok(queued.pop().unwrap_or_default())
}

/// Removes events `event_ids` from the outbox, in one statement.
pub async fn leave_outbox(tx: &Transaction<'_>, event_ids: &[i64]) -> Result<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    let delete = tx
        .prepare_cached("DELETE FROM outbox WHERE event_id = ANY($1)")
        .await?;
    tx.execute(&delete, &[&event_ids]).await?;
    Ok(())
}

/// Writes the delivery row of an attempt made straight from the outbox that did not succeed (see
/// `store::sqlite::outbox::requeue_delivery`).
pub async fn requeue_delivery(
    tx: &Transaction<'_>,
    delivery: &QueuedDelivery,
    attempts: u32,
    last_error: Option<&str>,
) -> Result<()> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO deliveries
               (event_id, plugin, conversation_id, attempt, next_attempt_at, last_error, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .await?;
    let state = if delivery.in_flight {
        "in_flight"
    } else {
        "pending"
    };
    let last_error = last_error.map(super::values::without_nul);
    tx.execute(
        &insert,
        &[
            &delivery.event_id,
            &delivery.plugin,
            &delivery.conversation,
            &i64::from(attempts),
            &delivery.next_attempt_at,
            &last_error,
            &state,
        ],
    )
    .await?;
    Ok(())
}

/// Up to `limit` pending deliveries to any of `plugins` that are due at `now` and head their (plugin,
/// conversation) queue, in event order (tests and tools: it looks at every pending delivery).
pub async fn next_deliveries(
    tx: &Transaction<'_>,
    now: Millis,
    plugins: &[String],
    limit: u32,
) -> Result<Vec<Delivery>> {
    let stmt = tx
        .prepare_cached(concat!(
            "SELECT d.plugin, d.attempt, d.next_attempt_at, d.last_error, d.state, ",
            event_columns!(),
            " FROM deliveries d JOIN events e ON e.id = d.event_id ",
            audience_join!(),
            " WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND d.plugin = ANY($2::text[])
               AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = d.plugin
                                 AND o.conversation_id = d.conversation_id AND o.event_id < d.event_id)
             ORDER BY d.event_id, d.plugin LIMIT $3"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&now, &plugins, &big(limit)]).await?;
    rows.iter()
        .map(|r| {
            let state: &str = r.try_get(4)?;
            Ok(Delivery {
                plugin: r.try_get(0)?,
                attempt: small(r.try_get(1)?),
                next_attempt_at: r.try_get(2)?,
                last_error: r.try_get(3)?,
                state: if state == "in_flight" {
                    DeliveryState::InFlight
                } else {
                    DeliveryState::Pending
                },
                event: event_at(r, 5)?,
            })
        })
        .collect()
}

/// The columns [`queued_delivery`] reads, as a literal for `concat!`.
macro_rules! queued_columns {
    () => {
        "SELECT event_id, plugin, conversation_id, next_attempt_at, state FROM deliveries"
    };
}

fn queued_delivery(r: &Row) -> Result<QueuedDelivery> {
    Ok(QueuedDelivery {
        event_id: r.try_get(0)?,
        plugin: r.try_get(1)?,
        conversation: r.try_get(2)?,
        next_attempt_at: r.try_get(3)?,
        in_flight: r.try_get::<_, &str>(4)? == "in_flight",
    })
}

/// Every undelivered delivery (pending or in flight), without event payloads.
pub async fn queued_deliveries(tx: &Transaction<'_>) -> Result<Vec<QueuedDelivery>> {
    // SQLite returns them in primary-key order (a WITHOUT ROWID table); PostgreSQL must be told.
    let stmt = tx
        .prepare_cached(concat!(queued_columns!(), " ORDER BY event_id, plugin"))
        .await?;
    let rows = tx.query(&stmt, &[]).await?;
    rows.iter().map(queued_delivery).collect()
}

/// The deliveries of one (plugin, conversation) queue, oldest first.
pub async fn queue(
    tx: &Transaction<'_>,
    plugin: &str,
    conversation: &str,
) -> Result<Vec<QueuedDelivery>> {
    let stmt = tx
        .prepare_cached(concat!(
            queued_columns!(),
            " WHERE plugin = $1 AND conversation_id = $2 ORDER BY event_id"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&plugin, &conversation]).await?;
    rows.iter().map(queued_delivery).collect()
}

/// Starts the delivery of `event_id` to `plugin` if it is pending, due at `now` and heads its queue;
/// `None` otherwise. Returns the attempt number to pass to the hook.
pub async fn start_head(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    now: Millis,
) -> Result<Option<StartedRow>> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1
             WHERE event_id = $1 AND plugin = $2 AND state = 'pending' AND next_attempt_at <= $3
               AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = $2
                                 AND o.conversation_id = deliveries.conversation_id AND o.event_id < $1)
             RETURNING attempt, next_attempt_at, last_error",
        )
        .await?;
    tx.query_opt(&stmt, &[&event_id, &plugin, &now])
        .await?
        .as_ref()
        .map(started_row)
        .transpose()
}

/// Like [`start_head`] for the delivery right behind `previous` in its queue, which the caller started in
/// this transaction: only if it is pending, due at `now`, `previous` is in flight in the same queue, and
/// no delivery of the queue lies between the two. `None` otherwise.
pub async fn start_next(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    previous: i64,
    now: Millis,
) -> Result<Option<StartedRow>> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1
             WHERE event_id = $1 AND plugin = $2 AND state = 'pending' AND next_attempt_at <= $3
               AND $4 < $1
               AND EXISTS (SELECT 1 FROM deliveries p WHERE p.event_id = $4 AND p.plugin = $2
                             AND p.conversation_id = deliveries.conversation_id AND p.state = 'in_flight')
               AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = $2
                                 AND o.conversation_id = deliveries.conversation_id
                                 AND o.event_id > $4 AND o.event_id < $1)
             RETURNING attempt, next_attempt_at, last_error",
        )
        .await?;
    tx.query_opt(&stmt, &[&event_id, &plugin, &now, &previous])
        .await?
        .as_ref()
        .map(started_row)
        .transpose()
}

/// [`start_head`] then [`start_next`] for each event behind it until one does not start, for each of
/// `runs`: the server-side function `chathooks_start_run` (`schema/v14.sql`) runs those same statements
/// in that order, once per run, and the runs are sent together (tokio-postgres pipelines the queries of
/// futures polled at once), so the whole round takes one round trip. Per run, the rows started.
pub async fn start_runs(
    tx: &Transaction<'_>,
    runs: &[RunStart<'_>],
    now: Millis,
) -> Result<Vec<Vec<StartedRow>>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT started_attempt, started_due, started_error
             FROM chathooks_start_run($1, $2, $3, $4)",
        )
        .await?;
    let queries = runs.iter().map(|run| {
        let stmt = &stmt;
        async move {
            let rows = tx
                .query(stmt, &[&run.plugin, &run.head, &run.behind, &now])
                .await?;
            rows.iter().map(started_row).collect::<Result<Vec<_>>>()
        }
    });
    futures_util::future::try_join_all(queries).await
}

/// [`delivery_succeeded`] for each of `deliveries` (event id, plugin), in one statement; on a node of a
/// cluster (`lessee` its node id) only those it leased. For each, whether it was deleted.
pub async fn deliveries_succeeded(
    tx: &Transaction<'_>,
    deliveries: &[(i64, &str)],
    lessee: Option<&str>,
) -> Result<Vec<bool>> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let (events, plugins): (Vec<i64>, Vec<&str>) = deliveries.iter().copied().unzip();
    let stmt = tx
        .prepare_cached(
            "DELETE FROM deliveries d USING unnest($1::bigint[], $2::text[]) AS done(event_id, plugin)
             WHERE d.event_id = done.event_id AND d.plugin = done.plugin
               AND ($3::text IS NULL OR d.lease_owner = $3)
             RETURNING d.event_id, d.plugin",
        )
        .await?;
    let rows = tx.query(&stmt, &[&events, &plugins, &lessee]).await?;
    returned(&rows, deliveries.iter().copied())
}

/// For each of `wanted` (event id, plugin), whether `rows` (`RETURNING event_id, plugin`) hold it.
fn returned<'a>(rows: &[Row], wanted: impl Iterator<Item = (i64, &'a str)>) -> Result<Vec<bool>> {
    let got: std::collections::HashSet<(i64, String)> = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    Ok(wanted
        .map(|(event_id, plugin)| got.contains(&(event_id, plugin.to_owned())))
        .collect())
}

/// A started delivery's `RETURNING attempt, next_attempt_at, last_error`.
pub(super) fn started_row(r: &Row) -> Result<StartedRow> {
    Ok(StartedRow {
        attempt: small(r.try_get(0)?),
        next_attempt_at: r.try_get(1)?,
        last_error: r.try_get(2)?,
        leased_until: None,
    })
}

/// Marks a delivery in flight and returns its attempt number (1 for the first).
pub async fn start_delivery(tx: &Transaction<'_>, event_id: i64, plugin: &str) -> Result<u32> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1
             WHERE event_id = $1 AND plugin = $2 RETURNING attempt",
        )
        .await?;
    let row = tx
        .query_opt(&stmt, &[&event_id, &plugin])
        .await?
        .ok_or_else(|| StoreError::not_found("delivery", format!("{event_id}/{plugin}")))?;
    Ok(small(row.try_get(0)?))
}

/// The hook handled the event: the delivery's row is deleted. False if there was none.
pub async fn delivery_succeeded(tx: &Transaction<'_>, event_id: i64, plugin: &str) -> Result<bool> {
    let stmt = tx
        .prepare_cached("DELETE FROM deliveries WHERE event_id = $1 AND plugin = $2")
        .await?;
    Ok(tx.execute(&stmt, &[&event_id, &plugin]).await? > 0)
}

/// The attempt failed: keep the delivery pending, due again at `next_attempt_at`.
pub async fn delivery_failed(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    error: &str,
    next_attempt_at: Millis,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', last_error = $3, next_attempt_at = $4
             WHERE event_id = $1 AND plugin = $2",
        )
        .await?;
    let error = super::values::without_nul(error);
    let n = tx
        .execute(&stmt, &[&event_id, &plugin, &error, &next_attempt_at])
        .await?;
    if n == 0 {
        return Err(StoreError::not_found(
            "delivery",
            format!("{event_id}/{plugin}"),
        ));
    }
    Ok(())
}

/// The call did not happen after all (circuit breaker): pending again at `next_attempt_at`, the attempt
/// given back.
pub async fn postpone_delivery(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    next_attempt_at: Millis,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', attempt = greatest(attempt - 1, 0),
                                   next_attempt_at = $3
             WHERE event_id = $1 AND plugin = $2",
        )
        .await?;
    let n = tx
        .execute(&stmt, &[&event_id, &plugin, &next_attempt_at])
        .await?;
    if n == 0 {
        return Err(StoreError::not_found(
            "delivery",
            format!("{event_id}/{plugin}"),
        ));
    }
    Ok(())
}

/// [`postpone_delivery`] for each of `deliveries` (event id, plugin, when due again), in one statement;
/// on a node of a cluster (`lessee` its node id) only those it leased, whose leases it gives up, as
/// `leases::delivery_returned` does. For each, whether it was put back.
pub async fn postpone_deliveries(
    tx: &Transaction<'_>,
    deliveries: &[(i64, &str, Millis)],
    lessee: Option<&str>,
) -> Result<Vec<bool>> {
    let events: Vec<i64> = deliveries.iter().map(|d| d.0).collect();
    let plugins: Vec<&str> = deliveries.iter().map(|d| d.1).collect();
    let due: Vec<Millis> = deliveries.iter().map(|d| d.2).collect();
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries d
             SET state = 'pending', attempt = greatest(d.attempt - 1, 0), next_attempt_at = p.due,
                 lease_owner = NULL, lease_until = NULL
             FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS p(event_id, plugin, due)
             WHERE d.event_id = p.event_id AND d.plugin = p.plugin
               AND ($4::text IS NULL OR d.lease_owner = $4)
             RETURNING d.event_id, d.plugin",
        )
        .await?;
    let rows = tx.query(&stmt, &[&events, &plugins, &due, &lessee]).await?;
    returned(
        &rows,
        deliveries
            .iter()
            .map(|(event_id, plugin, _)| (*event_id, *plugin)),
    )
}

/// Makes deliveries left in flight by a crash pending and due at once; how many.
pub async fn recover_in_flight(tx: &Transaction<'_>) -> Result<usize> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = 0 WHERE state = 'in_flight'",
        )
        .await?;
    let n = tx.execute(&stmt, &[]).await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Events committed but not yet fanned out to plugins.
pub async fn outbox_depth(tx: &Transaction<'_>) -> Result<u64> {
    let stmt = tx.prepare_cached("SELECT count(*) FROM outbox").await?;
    Ok(count(tx.query_one(&stmt, &[]).await?.try_get(0)?))
}

/// Undelivered deliveries per plugin, by plugin.
pub async fn backlog(tx: &Transaction<'_>) -> Result<Vec<(String, u64)>> {
    let stmt = tx
        .prepare_cached("SELECT plugin, count(*) FROM deliveries GROUP BY plugin ORDER BY plugin")
        .await?;
    let rows = tx.query(&stmt, &[]).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, count(r.try_get(1)?))))
        .collect()
}
