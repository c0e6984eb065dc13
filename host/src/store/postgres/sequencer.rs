//! The sequencer's SQL (SCALE-OUT.md 2.4): one node of a cluster holds the role, on a session of its own,
//! and moves event drafts into the event log in batches, giving each the next id.
//!
//! ## The role
//! [`SequencerSession::try_lead`] takes a session-level advisory lock keyed on the schema and the cluster
//! name. PostgreSQL frees it when the session ends, so a killed node's role is free at once. A node that
//! is alive but stuck (a stopped process, a hung thread) keeps its session open; it also stops writing its
//! heartbeat row ([`SequencerSession::heartbeat`]), and a challenger that finds the heartbeat older than
//! its limit ends the holder's session with `pg_terminate_backend` ([`SequencerSession::challenge`]),
//! which frees the lock. The batches run on the same session as the lock, so an ended session can never
//! commit another batch: no two sequencers ever commit, and ids also have a primary key as a last fence.
//!
//! ## A batch
//! [`SequencerSession::sequence`] is one transaction of one statement: the oldest drafts (up to a limit,
//! by draft number) are deleted, inserted into `events` with ids that continue the log without a gap,
//! their audience rows written (a large audience found or stored once instead, [`super::events`]), and
//! each queued in `outbox` for the dispatchers' fan-out; the events come back in id order, with their
//! members, for the node to publish. The commit waits for the WAL flush whatever the server's
//! durability setting: the ids are published to every node right after, and must not be lost by a
//! PostgreSQL crash once clients have seen them.
//!
//! Why draft order is enough: the drafts of one conversation are numbered under its row lock, held to
//! commit ([`super::events::append_draft`]), so they are in commit order, and a batch only sees
//! committed drafts, so a later batch cannot hold an earlier draft of the same conversation. Drafts of
//! different conversations may be sequenced in another order than they committed; nothing orders
//! events across conversations.

use tokio_postgres::{Client, Statement};

use super::connect::PgPool;
use super::events::event_at;
use super::locks::{advisory_key, lock_session};
use crate::store::error::Result;
use crate::store::limits::LARGE_AUDIENCE;
use crate::store::records::StoredEvent;

/// Milliseconds since the epoch by the database's clock: heartbeats are written and judged by one clock,
/// so nodes' clock skew cannot make a live holder look dead.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// The batch statement; see the module docs. `$1` is the most drafts per batch, `$2`
/// [`LARGE_AUDIENCE`]: a larger audience is found in `audiences` by the SHA-256 of its member list, or
/// stored there with its member rows (`p`, `new_audiences`, `known`), and the event names it instead of
/// writing a row per member ([`super::events`]); the events come back with their members either way.
const BATCH: &str =
    "WITH d AS (DELETE FROM event_drafts WHERE draft IN
                  (SELECT draft FROM event_drafts ORDER BY draft LIMIT $1 FOR UPDATE)
                RETURNING *),
          p AS (SELECT d.*, CASE WHEN json_array_length(d.audience::json) > $2::bigint
                                 THEN sha256(convert_to(d.audience, 'UTF8')) END AS digest
                FROM d),
          new_audiences AS (INSERT INTO audiences (digest, members)
                SELECT DISTINCT digest, audience FROM p WHERE digest IS NOT NULL
                ON CONFLICT (digest) DO NOTHING
                RETURNING id, digest, members),
          m AS (INSERT INTO audience_members (user_id, audience_id)
                SELECT u, a.id FROM new_audiences a, json_array_elements_text(a.members::json) AS u),
          known AS (SELECT id, digest FROM new_audiences
                    UNION ALL
                    SELECT id, digest FROM audiences WHERE digest IN (SELECT digest FROM p)),
          n AS (SELECT coalesce(max(id), 0) AS last FROM events),
          e AS (INSERT INTO events (id, kind, conversation_id, audience, audience_id, payload, created_at)
                OVERRIDING SYSTEM VALUE
                SELECT n.last + row_number() OVER (ORDER BY p.draft), p.kind, p.conversation_id,
                       CASE WHEN k.id IS NULL THEN p.audience ELSE '' END, k.id, p.payload, p.created_at
                FROM p CROSS JOIN n LEFT JOIN known k ON k.digest = p.digest
                RETURNING *),
          a AS (INSERT INTO event_audience (user_id, event_id)
                SELECT u, e.id FROM e,
                     json_array_elements_text(CASE WHEN e.audience_id IS NULL THEN e.audience ELSE '[]' END::json) AS u),
          o AS (INSERT INTO outbox (event_id) SELECT id FROM e)
     SELECT e.id, e.kind, e.conversation_id,
            coalesce((SELECT p.audience FROM p JOIN known k ON k.digest = p.digest
                      WHERE k.id = e.audience_id LIMIT 1), e.audience),
            e.payload, e.created_at
     FROM e ORDER BY e.id";

/// [`LARGE_AUDIENCE`] as the batch's `$2`.
const LARGE_AUDIENCE_PARAM: i64 = LARGE_AUDIENCE as i64;

/// A session of its own for the sequencer role: the lock, the heartbeat and the batches.
pub struct SequencerSession {
    client: Client,
    /// [`BATCH`], prepared on this session.
    batch: Statement,
    /// The role's advisory lock key.
    key: i64,
    /// The cluster's name.
    cluster: String,
    /// This node's id.
    node_id: String,
}

impl std::fmt::Debug for SequencerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerSession")
            .field("cluster", &self.cluster)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl SequencerSession {
    /// Opens a session on `pool`'s database (not a pooled connection: the lock lives as long as the
    /// session). Run it on a runtime that stays up: the connection's task is spawned on the current one.
    pub async fn open(pool: &PgPool, cluster: &str, node_id: &str) -> Result<Self> {
        let (client, schema) = lock_session(pool).await?;
        let namespace = format!("{schema}/{cluster}");
        let batch = client.prepare(BATCH).await?;
        Ok(Self {
            client,
            batch,
            key: advisory_key(&namespace, "sequencer"),
            cluster: cluster.to_owned(),
            node_id: node_id.to_owned(),
        })
    }

    /// Whether the session was closed (by the server, a restart, or a challenger): the role, if held, is
    /// gone with it.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Takes the role if nobody holds it; true when this session holds it (also when it already did).
    pub async fn try_lead(&self) -> Result<bool> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])
            .await?;
        Ok(row.get(0))
    }

    /// Records that this node holds the role and is alive, with its session's backend pid.
    pub async fn heartbeat(&self) -> Result<()> {
        let sql = format!(
            "INSERT INTO sequencers (cluster, node_id, backend_pid, heartbeat_at)
             VALUES ($1, $2, pg_backend_pid(), {DB_NOW_MS})
             ON CONFLICT (cluster) DO UPDATE
             SET node_id = EXCLUDED.node_id, backend_pid = EXCLUDED.backend_pid,
                 heartbeat_at = EXCLUDED.heartbeat_at"
        );
        self.client
            .execute(&sql, &[&self.cluster, &self.node_id])
            .await?;
        Ok(())
    }

    /// The node that last recorded holding the role, and how many milliseconds ago, by the database's
    /// clock.
    pub async fn holder(&self) -> Result<Option<(String, i64)>> {
        let sql = format!(
            "SELECT node_id, {DB_NOW_MS} - heartbeat_at FROM sequencers WHERE cluster = $1"
        );
        let row = self.client.query_opt(&sql, &[&self.cluster]).await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Ends the session of a holder whose heartbeat is more than `stale_ms` old and which still holds
    /// the lock (checked in `pg_locks`, so a backend pid reused by another session is never touched).
    /// Returns the node whose session was ended.
    pub async fn challenge(&self, stale_ms: i64) -> Result<Option<String>> {
        let sql = format!(
            "SELECT s.node_id, pg_terminate_backend(s.backend_pid)
             FROM sequencers s
             WHERE s.cluster = $1 AND {DB_NOW_MS} - s.heartbeat_at > $2
               AND s.backend_pid <> pg_backend_pid()
               AND EXISTS (SELECT 1 FROM pg_locks l
                           WHERE l.locktype = 'advisory' AND l.granted AND l.pid = s.backend_pid
                             AND ((l.classid::bigint << 32) | l.objid::bigint) = $3)"
        );
        let row = self
            .client
            .query_opt(&sql, &[&self.cluster, &stale_ms, &self.key])
            .await?;
        Ok(row.and_then(|r| r.get::<_, bool>(1).then(|| r.get(0))))
    }

    /// The newest event id (0 when the log is empty).
    pub async fn latest(&self) -> Result<i64> {
        let row = self
            .client
            .query_one("SELECT coalesce(max(id), 0) FROM events", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// One batch: up to `limit` drafts become events (see the module docs); returns them in id order,
    /// empty when there were no drafts.
    pub async fn sequence(&mut self, limit: u32) -> Result<Vec<StoredEvent>> {
        let tx = self.client.transaction().await?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .await?;
        let rows = tx
            .query(&self.batch, &[&i64::from(limit), &LARGE_AUDIENCE_PARAM])
            .await?;
        tx.commit().await?;
        rows.iter().map(|row| event_at(row, 0)).collect()
    }
}
