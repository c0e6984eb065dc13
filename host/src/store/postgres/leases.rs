//! Cluster mode's after-hook deliveries (SCALE-OUT.md 2.6): the statements a cluster node's transactions
//! use instead of [`super::outbox`]'s, through `PgConn` when the database has joined a
//! cluster.
//!
//! - **Fan-out, one node at a time.** The deliveries of one (plugin, conversation) queue must be committed
//!   in event order, so a round fans out only while holding a transaction-level advisory lock
//!   ([`claim_fan_out`]); another node's round skips fan-out meanwhile. Under the lock, an event is fanned
//!   out only if its outbox row is still there ([`fan_out_event`]): a node that read the outbox before
//!   another node's fan-out committed finds the row gone and does nothing twice.
//! - **Leased starts.** [`start_head`] is the single-node head-of-queue rule plus a lease: it also takes a
//!   head whose lease ran out while in flight (its node died), with the next attempt number. A run
//!   ([`start_runs`]) leases its head and the due events right behind it, each row under the same lease,
//!   so a busy queue moves by dozens of events per round on a cluster node too; a dead node's run is
//!   taken over head first, in order, once its leases run out. The dispatcher does not begin a call whose
//!   lease could run out before the call's wall-clock cap (`dispatch::deliver::Started::lease_too_short`).
//! - **Fan-out in two statements.** A round's events leave the outbox together and their deliveries are
//!   inserted together ([`fan_out_events`]); one statement or more per event made a round of 256 events
//!   about 100 ms long under load.
//! - **Only the owner records.** Outcomes apply only to rows this node leased, so a node that lost its
//!   lease (it hung past it) cannot undo the new owner's start.
//! - **Unloaded plugins.** A node dead-letters the deliveries waiting for a plugin it does not run only
//!   when no live node of the cluster reports running it ([`dead_letter_waiting`]): during a rollout, or
//!   when one node failed to load a version, the nodes that have it go on delivering.
//! - **Own recovery.** At start a node makes only its own leftover leases pending ([`recover_own`]).
//!
//! Times are the dispatcher's clock (`now`); nodes' clocks must agree to well within the lease (NTP),
//! which is the margin a lease leaves beyond the longest call.

use std::collections::HashSet;

use super::outbox::started_row;
use super::transaction::Transaction;

use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::records::{QueuedDelivery, RunStart, StartedRow, StoredEvent};

/// Who this node is, for its leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The node id.
    pub node_id: String,
    /// The advisory lock key of the cluster's fan-out.
    pub fan_out_key: i64,
    /// How long a started delivery stays leased: longer than any hook call may run.
    pub lease_ms: Millis,
    /// The cluster's name (the `nodes` rows of its heartbeats).
    pub cluster: String,
}

/// A node whose heartbeat is younger than this still counts as running the plugins it reported: the
/// admin view's "alive" (`cluster::nodes::ALIVE_WITHIN`).
pub const LIVE_NODE_MS: Millis = 5_000;

/// Takes the cluster's fan-out lock for the rest of the transaction, if no other node holds it.
pub async fn claim_fan_out(tx: &Transaction<'_>, holder: &LeaseHolder) -> Result<bool> {
    let stmt = tx
        .prepare_cached("SELECT pg_try_advisory_xact_lock($1)")
        .await?;
    Ok(tx
        .query_one(&stmt, &[&holder.fan_out_key])
        .await?
        .try_get(0)?)
}

/// Fans `event` out to `plugins` if it is still in the outbox (see the module docs); the deliveries
/// created, none when another node had fanned it out already.
pub async fn fan_out_event(
    tx: &Transaction<'_>,
    event: &StoredEvent,
    plugins: &[String],
    now: Millis,
) -> Result<Vec<QueuedDelivery>> {
    let take = tx
        .prepare_cached("DELETE FROM outbox WHERE event_id = $1 RETURNING event_id")
        .await?;
    if tx.query_opt(&take, &[&event.id]).await?.is_none() {
        return Ok(Vec::new());
    }
    // Ours now: the single-node fan-out does the rest (its own outbox delete finds nothing left).
    super::outbox::fan_out_event(tx, event, plugins, now).await
}

/// [`fan_out_event`] for each of `events`, in two statements: the events still in the outbox leave it,
/// then those get their deliveries. Per event, the deliveries created (none for one another node had
/// fanned out).
pub async fn fan_out_events(
    tx: &Transaction<'_>,
    events: &[(&StoredEvent, &[String])],
    now: Millis,
) -> Result<Vec<Vec<QueuedDelivery>>> {
    let take = tx
        .prepare_cached("DELETE FROM outbox WHERE event_id = ANY($1) RETURNING event_id")
        .await?;
    let ids: Vec<i64> = events.iter().map(|(event, _)| event.id).collect();
    let taken: HashSet<i64> = tx
        .query(&take, &[&ids])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    let ours: Vec<(&StoredEvent, &[String])> = events
        .iter()
        .map(|(event, plugins)| {
            let plugins: &[String] = if taken.contains(&event.id) {
                plugins
            } else {
                &[]
            };
            (*event, plugins)
        })
        .collect();
    super::outbox::queue_events(tx, &ours, now).await
}

/// Every undelivered delivery, as [`super::outbox::queued_deliveries`], except that one whose lease ran
/// out (by the database's clock) counts as waiting, not in flight: its node died, and this node may start
/// it again.
pub async fn queued_deliveries(tx: &Transaction<'_>) -> Result<Vec<QueuedDelivery>> {
    let stmt = tx
        .prepare_cached(
            "SELECT event_id, plugin, conversation_id, next_attempt_at,
                    state = 'in_flight'
                      AND coalesce(lease_until, 0) >= (extract(epoch from clock_timestamp()) * 1000)::bigint
             FROM deliveries ORDER BY event_id, plugin",
        )
        .await?;
    let rows = tx.query(&stmt, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(QueuedDelivery {
                event_id: r.try_get(0)?,
                plugin: r.try_get(1)?,
                conversation: r.try_get(2)?,
                next_attempt_at: r.try_get(3)?,
                in_flight: r.try_get(4)?,
            })
        })
        .collect()
}

/// Starts (leases) the delivery of `event_id` to `plugin` if it heads its queue and is due, or is in
/// flight under a lease that ran out; `None` otherwise (another node has it, or it is not the head).
pub async fn start_head(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    event_id: i64,
    plugin: &str,
    now: Millis,
) -> Result<Option<StartedRow>> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1,
                                   lease_owner = $4, lease_until = $5
             WHERE event_id = $1 AND plugin = $2
               AND ((state = 'pending' AND next_attempt_at <= $3)
                    OR (state = 'in_flight' AND coalesce(lease_until, 0) < $3))
               AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = $2
                                 AND o.conversation_id = deliveries.conversation_id AND o.event_id < $1)
             RETURNING attempt, next_attempt_at, last_error",
        )
        .await?;
    let until = now.saturating_add(holder.lease_ms);
    let row = tx
        .query_opt(&stmt, &[&event_id, &plugin, &now, &holder.node_id, &until])
        .await?;
    row.as_ref().map(|r| leased(r, until)).transpose()
}

/// A row this node started, leased until `until`.
fn leased(r: &tokio_postgres::Row, until: Millis) -> Result<StartedRow> {
    Ok(StartedRow {
        leased_until: Some(until),
        ..started_row(r)?
    })
}

/// Like [`start_head`] for the delivery right behind `previous` in its queue, which this node started in
/// the same transaction: only if it is due (or its lease ran out), `previous` is in flight under this
/// node's lease in the same queue, and no delivery of the queue lies between the two. `None` otherwise.
pub async fn start_next(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    event_id: i64,
    plugin: &str,
    previous: i64,
    now: Millis,
) -> Result<Option<StartedRow>> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'in_flight', attempt = attempt + 1,
                                   lease_owner = $5, lease_until = $6
             WHERE event_id = $1 AND plugin = $2
               AND ((state = 'pending' AND next_attempt_at <= $3)
                    OR (state = 'in_flight' AND coalesce(lease_until, 0) < $3))
               AND $4 < $1
               AND EXISTS (SELECT 1 FROM deliveries p WHERE p.event_id = $4 AND p.plugin = $2
                             AND p.conversation_id = deliveries.conversation_id
                             AND p.state = 'in_flight' AND p.lease_owner = $5)
               AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = $2
                                 AND o.conversation_id = deliveries.conversation_id
                                 AND o.event_id > $4 AND o.event_id < $1)
             RETURNING attempt, next_attempt_at, last_error",
        )
        .await?;
    let until = now.saturating_add(holder.lease_ms);
    let row = tx
        .query_opt(
            &stmt,
            &[&event_id, &plugin, &now, &previous, &holder.node_id, &until],
        )
        .await?;
    row.as_ref().map(|r| leased(r, until)).transpose()
}

/// [`start_head`], then [`start_next`] for each event behind it until one does not start, for each of
/// `runs`, every row under the same lease: the server-side function `chathooks_start_leased_run`
/// (`schema/v16.sql`) runs those statements in that order, once per run, and the runs are pipelined on
/// the connection, so a round's starts take one round trip. Per run, the rows started, in order.
pub async fn start_runs(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    runs: &[RunStart<'_>],
    now: Millis,
) -> Result<Vec<Vec<StartedRow>>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT started_attempt, started_due, started_error
             FROM chathooks_start_leased_run($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    let until = now.saturating_add(holder.lease_ms);
    let starts = runs.iter().map(|run| {
        let stmt = &stmt;
        async move {
            let rows = tx
                .query(
                    stmt,
                    &[
                        &run.plugin,
                        &run.head,
                        &run.behind,
                        &now,
                        &holder.node_id,
                        &until,
                    ],
                )
                .await?;
            rows.iter()
                .map(|r| leased(r, until))
                .collect::<Result<Vec<_>>>()
        }
    });
    futures_util::future::try_join_all(starts).await
}

/// The call this node leased succeeded: the delivery is deleted. False when the row is gone or another
/// node holds it now.
pub async fn delivery_succeeded(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    event_id: i64,
    plugin: &str,
) -> Result<bool> {
    let stmt = tx
        .prepare_cached(
            "DELETE FROM deliveries WHERE event_id = $1 AND plugin = $2 AND lease_owner = $3",
        )
        .await?;
    Ok(tx
        .execute(&stmt, &[&event_id, &plugin, &holder.node_id])
        .await?
        > 0)
}

/// The call this node leased failed (`error` set, the attempt kept) or did not happen (`error` `None`,
/// the attempt given back): pending again at `next_attempt_at`, the lease cleared. Not found when another
/// node holds it now.
pub async fn delivery_returned(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    event_id: i64,
    plugin: &str,
    error: Option<&str>,
    next_attempt_at: Millis,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries
             SET state = 'pending', next_attempt_at = $4, lease_owner = NULL, lease_until = NULL,
                 last_error = coalesce($5, last_error),
                 attempt = CASE WHEN $5::text IS NULL THEN greatest(attempt - 1, 0) ELSE attempt END
             WHERE event_id = $1 AND plugin = $2 AND lease_owner = $3",
        )
        .await?;
    let error = error.map(super::values::without_nul);
    let n = tx
        .execute(
            &stmt,
            &[
                &event_id,
                &plugin,
                &holder.node_id,
                &next_attempt_at,
                &error,
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::not_found(
            "delivery",
            format!("{event_id}/{plugin}"),
        ));
    }
    Ok(())
}

/// Makes this node's leftover leases (a crash cut its calls short) pending and due at once; how many.
/// Other nodes' leases are theirs until they run out.
pub async fn recover_own(tx: &Transaction<'_>, holder: &LeaseHolder) -> Result<usize> {
    let stmt = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = 0, lease_owner = NULL,
                                   lease_until = NULL
             WHERE state = 'in_flight' AND lease_owner = $1",
        )
        .await?;
    let n = tx.execute(&stmt, &[&holder.node_id]).await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// [`super::dead_letters::dead_letter_waiting`] on a node of a cluster: nothing moves while a live node
/// (heartbeat within [`LIVE_NODE_MS`], by the database's clock) reports running `plugin`.
pub async fn dead_letter_waiting(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    plugin: &str,
    reason: &str,
    now: Millis,
) -> Result<usize> {
    let stmt = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM nodes n, json_array_elements(n.plugins::json) AS p
                            WHERE n.cluster = $1 AND p->>'name' = $2
                              AND n.heartbeat_at
                                  > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $3)",
        )
        .await?;
    let running: bool = tx
        .query_one(&stmt, &[&holder.cluster, &plugin, &LIVE_NODE_MS])
        .await?
        .try_get(0)?;
    if running {
        return Ok(0);
    }
    super::dead_letters::dead_letter_waiting(tx, plugin, reason, now).await
}
