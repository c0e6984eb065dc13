//! The event log on PostgreSQL: one row per chat change, its audience rows and its outbox row, written in
//! the change's own transaction by one statement, as
//! [`store::sqlite::events`](crate::store::sqlite::events) writes them with several.
//!
//! Ids come from an identity column. They only grow, but PostgreSQL hands them out at insert, not at
//! commit, so they follow commit order only because single-node writes are serialised
//! ([`PgDb`](super::PgDb), SCALE-OUT.md 2.3; cluster mode adds the sequencer of 2.4). Unlike SQLite's
//! AUTOINCREMENT, an id taken by a transaction that rolls back is skipped, not reused: the log can have
//! holes, which no reader minds (each user's stream is a filtered subset of the ids anyway).
//!
//! On a node of a cluster, writers append drafts instead ([`append_draft`]) and the sequencer gives them
//! their ids ([`super::sequencer`]).
//!
//! An audience of more than [`LARGE_AUDIENCE`] users is stored once, in `audiences`, and named by its
//! events' `audience_id`; a smaller one is a row per member and event, as on SQLite (whose module docs say
//! why, and how [`events_since`] reads both).

use super::transaction::Transaction;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use super::values::{big, no_nul};
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::ids::{json_text, json_value};
use crate::store::limits::{LARGE_AUDIENCE, MAX_EVENTS_PAGE};
use crate::store::records::StoredEvent;

/// Appends an event, its audience rows (or, for a large audience, its `audience_id`) and (when `queued`,
/// for the after-hooks) its outbox row in one statement; returns the event id.
pub async fn append_event(
    tx: &Transaction<'_>,
    kind: &str,
    conversation_id: Option<&str>,
    audience: &[String],
    payload: &serde_json::Value,
    now: Millis,
    queued: bool,
) -> Result<i64> {
    no_nul("kind", kind)?;
    let members = audience_set(audience);
    let members_json = json_text(&serde_json::json!(members))?;
    let large = if members.len() > LARGE_AUDIENCE {
        Some(large_audience(tx, &members_json).await?)
    } else {
        None
    };
    let (audience_text, rows) = match large {
        Some(_) => ("", Vec::new()),
        None => (members_json.as_str(), members),
    };
    let stmt = tx
        .prepare_cached(
            "WITH e AS (INSERT INTO events (kind, conversation_id, audience, audience_id, payload, created_at)
                        VALUES ($1, $2, $3, $8, $4, $5) RETURNING id),
                  a AS (INSERT INTO event_audience (user_id, event_id)
                        SELECT u, e.id FROM e, unnest($6::text[]) AS u),
                  o AS (INSERT INTO outbox (event_id) SELECT id FROM e WHERE $7)
             SELECT id FROM e",
        )
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &kind,
                &conversation_id,
                &audience_text,
                &json_text(payload)?,
                &now,
                &rows,
                &queued,
                &large,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// The id of the large audience whose sorted member list is `members` (JSON), stored with its member rows
/// the first time it is seen (single-node writes are serialised, so nobody stores it meanwhile).
async fn large_audience(tx: &Transaction<'_>, members: &str) -> Result<i64> {
    let digest = Sha256::digest(members.as_bytes()).to_vec();
    let find = tx
        .prepare_cached("SELECT id FROM audiences WHERE digest = $1")
        .await?;
    if let Some(row) = tx.query_opt(&find, &[&digest]).await? {
        return Ok(row.try_get(0)?);
    }
    let create = tx
        .prepare_cached(
            "WITH a AS (INSERT INTO audiences (digest, members) VALUES ($1, $2::text) RETURNING id),
                  m AS (INSERT INTO audience_members (user_id, audience_id)
                        SELECT u, a.id FROM a, json_array_elements_text($2::text::json) AS u)
             SELECT id FROM a",
        )
        .await?;
    Ok(tx
        .query_one(&create, &[&digest, &members])
        .await?
        .try_get(0)?)
}

/// `audience` sorted, each user once: how an event's audience is stored.
fn audience_set(audience: &[String]) -> Vec<&String> {
    let mut members: Vec<&String> = audience.iter().collect();
    members.sort();
    members.dedup();
    members
}

/// Cluster mode's [`append_event`]: locks the conversation's row (held to commit, so the drafts of one
/// conversation are numbered in commit order), then appends an event draft for the sequencer
/// ([`super::sequencer`]) to turn into an event; returns the draft's number, which no reader sees.
pub async fn append_draft(
    tx: &Transaction<'_>,
    kind: &str,
    conversation_id: Option<&str>,
    audience: &[String],
    payload: &serde_json::Value,
    now: Millis,
) -> Result<i64> {
    no_nul("kind", kind)?;
    let members = audience_set(audience);
    if let Some(id) = conversation_id {
        // A deleted conversation has no row left to lock: its deleting transaction holds the lock instead.
        let lock = tx
            .prepare_cached("SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE")
            .await?;
        tx.query_opt(&lock, &[&id]).await?;
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO event_drafts (kind, conversation_id, audience, payload, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING draft",
        )
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &kind,
                &conversation_id,
                &json_text(&serde_json::json!(members))?,
                &json_text(payload)?,
                &now,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Every event with an id in `after + 1 ..= through`, oldest first, at most `limit` (capped at
/// [`MAX_EVENTS_PAGE`]), whatever its audience: a cluster node's live feed filling a gap.
pub async fn events_between(
    tx: &Transaction<'_>,
    after: i64,
    through: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let stmt = tx
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e ",
            audience_join!(),
            " WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3"
        ))
        .await?;
    let rows = tx
        .query(&stmt, &[&after, &through, &big(limit.min(MAX_EVENTS_PAGE))])
        .await?;
    rows.iter().map(|r| event_at(r, 0)).collect()
}

/// The columns of a [`StoredEvent`], for `e` = `events` joined with `audience_join!()` (an event with a
/// large audience reads its members from there), as a literal for `concat!` (statements stay constants);
/// [`event_at`] reads them.
macro_rules! event_columns {
    () => {
        "e.id, e.kind, e.conversation_id, coalesce(s.members, e.audience), e.payload, e.created_at"
    };
}

/// Joins the large audience of `e` = `events` as `s`, which `event_columns!()` reads; a literal for
/// `concat!`.
macro_rules! audience_join {
    () => {
        "LEFT JOIN audiences s ON s.id = e.audience_id"
    };
}
pub(super) use audience_join;
pub(super) use event_columns;

/// Events visible to `user_id` with an id greater than `since_id`, oldest first, at most `limit` (capped
/// at [`MAX_EVENTS_PAGE`]).
pub async fn events_since(
    tx: &Transaction<'_>,
    user_id: &str,
    since_id: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let limit = big(limit.min(MAX_EVENTS_PAGE));
    let own = tx
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e JOIN event_audience a ON a.event_id = e.id ",
            audience_join!(),
            " WHERE a.user_id = $1 AND a.event_id > $2 ORDER BY a.event_id LIMIT $3"
        ))
        .await?;
    let mut rows = tx.query(&own, &[&user_id, &since_id, &limit]).await?;
    let large = tx
        .prepare_cached(
            "SELECT m.audience_id FROM audience_members m WHERE m.user_id = $1
               AND EXISTS (SELECT 1 FROM events e WHERE e.audience_id = m.audience_id AND e.id > $2)",
        )
        .await?;
    let large = tx.query(&large, &[&user_id, &since_id]).await?;
    if !large.is_empty() {
        let range = tx
            .prepare_cached(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events e ",
                audience_join!(),
                " WHERE e.audience_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3"
            ))
            .await?;
        for audience in large {
            let audience: i64 = audience.try_get(0)?;
            rows.extend(tx.query(&range, &[&audience, &since_id, &limit]).await?);
        }
    }
    let mut events = rows
        .iter()
        .map(|r| event_at(r, 0))
        .collect::<Result<Vec<_>>>()?;
    events.sort_unstable_by_key(|e| e.id);
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(events)
}

/// The event with `id`, or [`StoreError::NotFound`].
pub async fn get_event(tx: &Transaction<'_>, id: i64) -> Result<StoredEvent> {
    let stmt = tx
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e ",
            audience_join!(),
            " WHERE e.id = $1"
        ))
        .await?;
    let row = tx.query_opt(&stmt, &[&id]).await?;
    event_at(
        &row.ok_or_else(|| StoreError::not_found("event", id.to_string()))?,
        0,
    )
}

/// The newest event id (0 when the log is empty).
pub async fn latest_event_id(tx: &Transaction<'_>) -> Result<i64> {
    let stmt = tx
        .prepare_cached("SELECT coalesce(max(id), 0) FROM events")
        .await?;
    Ok(tx.query_one(&stmt, &[]).await?.try_get(0)?)
}

/// A [`StoredEvent`] from the `event_columns!()` of `row`, starting at column `at`.
pub(super) fn event_at(row: &Row, at: usize) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.try_get(at)?,
        kind: row.try_get(at + 1)?,
        conversation_id: row.try_get(at + 2)?,
        audience: serde_json::from_str(row.try_get(at + 3)?)?,
        payload: json_value(row.try_get(at + 4)?)?,
        created_at: row.try_get(at + 5)?,
    })
}
