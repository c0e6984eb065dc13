//! Dead letters on PostgreSQL: deliveries that used up their attempts, kept for an admin to list and
//! replay, as [`store::sqlite::dead_letters`](crate::store::sqlite::dead_letters) keeps them. Moving a
//! delivery is one statement here (`WITH d AS (DELETE ... RETURNING) INSERT ...`) instead of two.

use super::transaction::Transaction;
use tokio_postgres::Row;

use super::events::{audience_join, event_at, event_columns};
use super::values::{big, count, small, without_nul};
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::records::DeadLetter;

/// Gives up on a delivery: moves it to `dead_letters` (releasing its queue); the dead letter's id.
pub async fn dead_letter(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    error: &str,
    now: Millis,
) -> Result<i64> {
    let stmt = tx
        .prepare_cached(
            "WITH d AS (DELETE FROM deliveries WHERE event_id = $1 AND plugin = $2
                        RETURNING event_id, plugin, attempt)
             INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
             SELECT event_id, plugin, attempt, $3, $4 FROM d RETURNING id",
        )
        .await?;
    let row = tx
        .query_opt(&stmt, &[&event_id, &plugin, &without_nul(error), &now])
        .await?
        .ok_or_else(|| StoreError::not_found("delivery", format!("{event_id}/{plugin}")))?;
    Ok(row.try_get(0)?)
}

/// Records that `event_id` was not queued for `plugin` at all (its backlog was full): a dead letter with
/// no attempt, replayable like any other. Returns its id.
pub async fn dead_letter_unqueued(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    reason: &str,
    now: Millis,
) -> Result<i64> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
             VALUES ($1, $2, 0, $3, $4) RETURNING id",
        )
        .await?;
    let row = tx
        .query_one(&stmt, &[&event_id, &plugin, &without_nul(reason), &now])
        .await?;
    Ok(row.try_get(0)?)
}

/// Gives up on every pending (not in flight) delivery to `plugin`, oldest event first; how many.
pub async fn dead_letter_waiting(
    tx: &Transaction<'_>,
    plugin: &str,
    reason: &str,
    now: Millis,
) -> Result<usize> {
    let stmt = tx
        .prepare_cached(
            "WITH d AS (DELETE FROM deliveries WHERE plugin = $1 AND state = 'pending'
                        RETURNING event_id, plugin, attempt)
             INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
             SELECT event_id, plugin, attempt, $2, $3 FROM d ORDER BY event_id",
        )
        .await?;
    let moved = tx
        .execute(&stmt, &[&plugin, &without_nul(reason), &now])
        .await?;
    Ok(usize::try_from(moved).unwrap_or(usize::MAX))
}

/// How many dead letters there are.
pub async fn dead_letter_count(tx: &Transaction<'_>) -> Result<u64> {
    let stmt = tx
        .prepare_cached("SELECT count(*) FROM dead_letters")
        .await?;
    Ok(count(tx.query_one(&stmt, &[]).await?.try_get(0)?))
}

/// Dead letters and their events, for `d` = `dead_letters`, `e` = `events`; [`dead_letter_row`] reads
/// them. A macro, so each query appends its filter and stays a constant.
macro_rules! dead_letter_select {
    ($filter:literal) => {
        concat!(
            "SELECT d.id, d.plugin, d.attempts, d.last_error, d.created_at, ",
            event_columns!(),
            " FROM dead_letters d JOIN events e ON e.id = d.event_id ",
            audience_join!(),
            " WHERE ",
            $filter
        )
    };
}

fn dead_letter_row(r: &Row) -> Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.try_get(0)?,
        plugin: r.try_get(1)?,
        attempts: small(r.try_get(2)?),
        last_error: r.try_get(3)?,
        created_at: r.try_get(4)?,
        event: event_at(r, 5)?,
    })
}

/// Dead letters with an id greater than `after_id`, oldest first, at most `limit`.
pub async fn dead_letters(
    tx: &Transaction<'_>,
    after_id: i64,
    limit: u32,
) -> Result<Vec<DeadLetter>> {
    let stmt = tx
        .prepare_cached(dead_letter_select!("d.id > $1 ORDER BY d.id LIMIT $2"))
        .await?;
    let rows = tx.query(&stmt, &[&after_id, &big(limit)]).await?;
    rows.iter().map(dead_letter_row).collect()
}

/// Takes dead letter `id` for replay: deletes it and queues a pending delivery of its event to its
/// plugin, due at `now`, continuing its attempt count. Returns the dead letter as it was.
pub async fn replay_dead_letter(tx: &Transaction<'_>, id: i64, now: Millis) -> Result<DeadLetter> {
    let find = tx.prepare_cached(dead_letter_select!("d.id = $1")).await?;
    let letter = tx
        .query_opt(&find, &[&id])
        .await?
        .ok_or_else(|| StoreError::not_found("dead letter", id.to_string()))
        .and_then(|r| dead_letter_row(&r))?;
    let requeue = tx
        .prepare_cached(
            "INSERT INTO deliveries (event_id, plugin, conversation_id, attempt, next_attempt_at,
                                     last_error, state)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending')
             ON CONFLICT (event_id, plugin) DO UPDATE
             SET state = 'pending', next_attempt_at = excluded.next_attempt_at",
        )
        .await?;
    tx.execute(
        &requeue,
        &[
            &letter.event.id,
            &letter.plugin,
            &letter.event.conversation_id.as_deref().unwrap_or(""),
            &i64::from(letter.attempts),
            &now,
            &letter.last_error,
        ],
    )
    .await?;
    let delete = tx
        .prepare_cached("DELETE FROM dead_letters WHERE id = $1")
        .await?;
    tx.execute(&delete, &[&id]).await?;
    Ok(letter)
}
