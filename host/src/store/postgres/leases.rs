//! Cluster mode's after-hook deliveries (SCALE-OUT.md 2.6): the statements a cluster node's transactions
//! use instead of [`super::outbox`]'s, through [`PgConn`](super::seam) when the database has joined a
//! cluster.
//!
//! - **Fan-out, one node at a time.** The deliveries of one (plugin, conversation) queue must be committed
//!   in event order, so a round fans out only while holding a transaction-level advisory lock
//!   ([`claim_fan_out`]); another node's round skips fan-out meanwhile. Under the lock, an event is fanned
//!   out only if its outbox row is still there ([`fan_out_event`]): a node that read the outbox before
//!   another node's fan-out committed finds the row gone and does nothing twice.
//! - **Leased starts.** [`start_head`] is the single-node head-of-queue rule plus a lease: it also takes a
//!   head whose lease ran out while in flight (its node died), with the next attempt number.
//! - **Only the owner records.** Outcomes apply only to rows this node leased, so a node that lost its
//!   lease (it hung past it) cannot undo the new owner's start.
//! - **Unloaded plugins.** A node dead-letters the deliveries waiting for a plugin it does not run only
//!   when no live node of the cluster reports running it ([`dead_letter_waiting`]): during a rollout, or
//!   when one node failed to load a version, the nodes that have it go on delivering.
//! - **Own recovery.** At start a node makes only its own leftover leases pending ([`recover_own`]).
//!
//! Times are the dispatcher's clock (`now`); nodes' clocks must agree to well within the lease (NTP),
//! which is the margin a lease leaves beyond the longest call.

use super::transaction::Transaction;

use super::values::small;
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
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(StartedRow {
        attempt: small(r.try_get(0)?),
        next_attempt_at: r.try_get(1)?,
        last_error: r.try_get(2)?,
    }))
}

/// [`start_head`] for the head of each of `runs` (on a node of a cluster a run is its head alone: each
/// start is a lease of its own), the statements pipelined on the connection: one round trip for a
/// round's starts. Per run, the row started, if any.
pub async fn start_heads(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    runs: &[RunStart<'_>],
    now: Millis,
) -> Result<Vec<Vec<StartedRow>>> {
    let starts = runs.iter().map(|run| async move {
        let row = start_head(tx, holder, run.head, run.plugin, now).await?;
        Ok(row.into_iter().collect())
    });
    futures_util::future::try_join_all(starts).await
}

/// [`delivery_succeeded`] for each of `deliveries` (event id, plugin), pipelined; for each, whether it
/// was deleted.
pub async fn deliveries_succeeded(
    tx: &Transaction<'_>,
    holder: &LeaseHolder,
    deliveries: &[(i64, &str)],
) -> Result<Vec<bool>> {
    let deletes = deliveries
        .iter()
        .map(|(event_id, plugin)| delivery_succeeded(tx, holder, *event_id, plugin));
    futures_util::future::try_join_all(deletes).await
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
