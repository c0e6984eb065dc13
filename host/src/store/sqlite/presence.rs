//! Presence: which users have a live connection, per node, and when each was last seen.
//!
//! One row per (user, node) holding at least one WebSocket: a server on its own writes node
//! [`crate::presence::LOCAL_NODE`], a cluster node its node id, so a user connected to two nodes stays online until both
//! let go. A user is online while any row exists. `users.last_seen_at` is stamped whenever a user comes
//! online or goes offline (an online user's "last seen" is now). Rows of a node are dropped when it starts
//! (the connections of its previous run are gone).
//!
//! The connection counting itself is in memory, on the node holding the sockets (`crate::presence`); the
//! table only changes when a node's first connection of a user opens or its last one closes for good.

use rusqlite::{Connection, OptionalExtension, params};

use super::writer::Writing;
use crate::model::{Millis, Presence};
use crate::store::error::Result;
use crate::store::records::PresenceChange;

/// Records that `user_id` is (or is no longer) connected to `node`; whether that flipped the user's
/// overall state.
pub fn set_presence(
    tx: &Writing<'_>,
    user_id: &str,
    node: &str,
    online: bool,
    now: Millis,
) -> Result<PresenceChange> {
    let before = is_online(tx, user_id)?;
    if online {
        tx.prepare_cached(
            "INSERT INTO presence (user_id, node, since) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, node) DO NOTHING",
        )?
        .execute(params![user_id, node, now])?;
    } else {
        tx.prepare_cached("DELETE FROM presence WHERE user_id = ?1 AND node = ?2")?
            .execute(params![user_id, node])?;
    }
    tx.prepare_cached("UPDATE users SET last_seen_at = ?2 WHERE id = ?1")?
        .execute(params![user_id, now])?;
    let presence = presence_of(tx, &[user_id.to_owned()])?
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

/// Drops every row of `node` (it restarted, or is gone); the users that left offline.
pub fn clear_node_presence(
    tx: &Writing<'_>,
    node: &str,
    now: Millis,
) -> Result<Vec<PresenceChange>> {
    let users: Vec<String> = tx
        .prepare_cached("SELECT user_id FROM presence WHERE node = ?1 ORDER BY user_id")?
        .query_map([node], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut changes = Vec::new();
    for user in users {
        let change = set_presence(tx, &user, node, false, now)?;
        if change.changed {
            changes.push(change);
        }
    }
    Ok(changes)
}

fn is_online(conn: &Connection, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM presence WHERE user_id = ?1 LIMIT 1")?
        .query_row([user_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The presence of each of `user_ids` that is a user, in the order given.
pub fn presence_of(conn: &Connection, user_ids: &[String]) -> Result<Vec<Presence>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id), u.last_seen_at
         FROM users u WHERE u.id = ?1",
    )?;
    let mut out = Vec::with_capacity(user_ids.len());
    for id in user_ids {
        let found = stmt
            .query_row([id], |r| {
                Ok(Presence {
                    user_id: r.get(0)?,
                    online: r.get(1)?,
                    last_seen_at: r.get(2)?,
                })
            })
            .optional()?;
        out.extend(found);
    }
    Ok(out)
}

/// The users who share at least one conversation of at most
/// [`MAX_PRESENCE_CONVERSATION`](crate::presence::MAX_PRESENCE_CONVERSATION) members with `user_id` (not
/// the user), by id: who hears of the user's presence.
pub fn contacts_of(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    let rows = conn
        .prepare_cached(
            "SELECT DISTINCT other.user_id FROM participants mine
             JOIN participants other ON other.conversation_id = mine.conversation_id
             WHERE mine.user_id = ?1 AND other.user_id != ?1
               AND (SELECT count(*) FROM participants n WHERE n.conversation_id = mine.conversation_id) <= ?2
             ORDER BY other.user_id",
        )?
        .query_map(
            rusqlite::params![user_id, crate::presence::MAX_PRESENCE_CONVERSATION],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// How many users `node` holds presence rows for.
pub fn node_presence_count(conn: &Connection, node: &str) -> Result<u64> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM presence WHERE node = ?1")?
        .query_row([node], |r| r.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The users `node` holds presence rows for, by id.
pub fn node_presence_users(conn: &Connection, node: &str) -> Result<Vec<String>> {
    let rows = conn
        .prepare_cached("SELECT user_id FROM presence WHERE node = ?1 ORDER BY user_id")?
        .query_map([node], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
