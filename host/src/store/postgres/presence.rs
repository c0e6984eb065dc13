//! Presence on PostgreSQL; see the SQLite backend's `presence` for the model. Every node of a cluster
//! writes its own rows; a change locks the user's row first (`FOR NO KEY UPDATE`), so two nodes letting
//! go of one user at once cannot both miss, or both report, the flip to offline.

use super::transaction::Transaction;

use super::catalog::NOW_MS;

use crate::model::{Millis, Presence};
use crate::store::error::Result;
use crate::store::records::PresenceChange;

/// Records that `user_id` is (or is no longer) connected to `node`; whether that flipped the user's
/// overall state.
pub async fn set_presence(
    tx: &Transaction<'_>,
    user_id: &str,
    node: &str,
    online: bool,
    now: Millis,
) -> Result<PresenceChange> {
    let lock = tx
        .prepare_cached("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .await?;
    tx.query_opt(&lock, &[&user_id]).await?;
    let before = is_online(tx, user_id).await?;
    if online {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO presence (user_id, node, since) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, node) DO NOTHING",
            )
            .await?;
        tx.execute(&stmt, &[&user_id, &node, &now]).await?;
    } else {
        let stmt = tx
            .prepare_cached("DELETE FROM presence WHERE user_id = $1 AND node = $2")
            .await?;
        tx.execute(&stmt, &[&user_id, &node]).await?;
    }
    let stmt = tx
        .prepare_cached("UPDATE users SET last_seen_at = $2 WHERE id = $1")
        .await?;
    tx.execute(&stmt, &[&user_id, &now]).await?;
    let presence = presence_of(tx, &[user_id.to_owned()])
        .await?
        .pop()
        .unwrap_or(Presence {
            user_id: user_id.to_owned(),
            online: false,
            last_seen_at: None,
        });
    Ok(PresenceChange {
        changed: presence.online != before,
        presence,
    })
}

/// Drops every row of `node`; the users that left offline.
pub async fn clear_node_presence(
    tx: &Transaction<'_>,
    node: &str,
    now: Millis,
) -> Result<Vec<PresenceChange>> {
    let stmt = tx
        .prepare_cached("SELECT user_id FROM presence WHERE node = $1 ORDER BY user_id")
        .await?;
    let users: Vec<String> = tx
        .query(&stmt, &[&node])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    let mut changes = Vec::new();
    for user in users {
        let change = set_presence(tx, &user, node, false, now).await?;
        if change.changed {
            changes.push(change);
        }
    }
    Ok(changes)
}

async fn is_online(tx: &Transaction<'_>, user_id: &str) -> Result<bool> {
    let stmt = tx
        .prepare_cached("SELECT 1 FROM presence WHERE user_id = $1 LIMIT 1")
        .await?;
    Ok(tx.query_opt(&stmt, &[&user_id]).await?.is_some())
}

/// The presence of each of `user_ids` that is a user, in the order given.
pub async fn presence_of(tx: &Transaction<'_>, user_ids: &[String]) -> Result<Vec<Presence>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT u.id, EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id), u.last_seen_at
             FROM unnest($1::text[]) WITH ORDINALITY AS q(id, n) JOIN users u ON u.id = q.id
             ORDER BY q.n",
        )
        .await?;
    tx.query(&stmt, &[&user_ids])
        .await?
        .iter()
        .map(|r| {
            Ok(Presence {
                user_id: r.try_get(0)?,
                online: r.try_get(1)?,
                last_seen_at: r.try_get(2)?,
            })
        })
        .collect()
}

/// The users who share at least one conversation with `user_id` (not the user), by id.
pub async fn contacts_of(tx: &Transaction<'_>, user_id: &str) -> Result<Vec<String>> {
    let stmt = tx
        .prepare_cached(
            "SELECT DISTINCT other.user_id FROM participants mine
             JOIN participants other ON other.conversation_id = mine.conversation_id
             WHERE mine.user_id = $1 AND other.user_id != $1
               AND (SELECT count(*) FROM participants n WHERE n.conversation_id = mine.conversation_id) <= $2
             ORDER BY other.user_id",
        )
        .await?;
    tx.query(
        &stmt,
        &[&user_id, &crate::presence::MAX_PRESENCE_CONVERSATION],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

/// The nodes other than [`crate::presence::LOCAL_NODE`] holding presence rows whose heartbeat (table
/// `nodes`, any cluster) is more than `alive_within_ms` old by the database's clock, or missing: nodes
/// that died with users connected, whose rows no restart will clear.
pub async fn silent_presence_nodes(
    tx: &Transaction<'_>,
    alive_within_ms: i64,
) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT DISTINCT p.node FROM presence p
         WHERE p.node <> $1 AND NOT EXISTS (
             SELECT 1 FROM nodes n WHERE n.node_id = p.node AND {NOW_MS} - n.heartbeat_at <= $2)
         ORDER BY p.node"
    );
    let stmt = tx.prepare_cached(&sql).await?;
    tx.query(&stmt, &[&crate::presence::LOCAL_NODE, &alive_within_ms])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}

/// How many users `node` holds presence rows for.
pub async fn node_presence_count(tx: &Transaction<'_>, node: &str) -> Result<u64> {
    let stmt = tx
        .prepare_cached("SELECT COUNT(*) FROM presence WHERE node = $1")
        .await?;
    let count: i64 = tx.query_one(&stmt, &[&node]).await?.try_get(0)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The users `node` holds presence rows for, by id.
pub async fn node_presence_users(tx: &Transaction<'_>, node: &str) -> Result<Vec<String>> {
    let stmt = tx
        .prepare_cached("SELECT user_id FROM presence WHERE node = $1 ORDER BY user_id")
        .await?;
    tx.query(&stmt, &[&node])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}
