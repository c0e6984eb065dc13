//! Membership: who is in a conversation, their role, and each member's read state.
//!
//! Participant and admin lists live in one row per member (not in JSON arrays as in Skygear), so
//! "my conversations" and "is U a member" are index lookups. A member's `role` is the truth about what
//! they may do; `is_admin` is written with it (`role = 'admin'`) for queries that predate roles. Role
//! changes and ownership are in [`roles`](super::roles).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::conversations::{get_conversation, touch};
use super::unread::unread_expr;
use super::users::{RawUser, missing_users};
use super::writer::Writing;
use crate::model::{Millis, Participant, Role};
use crate::store::error::{Result, StoreError};
use crate::store::ids::count_u32;
use crate::store::limits::{check_participant_count, stored_role};

/// Participant columns: the last read message from `last_read_seq`, the unread count from the counters
/// the store keeps ([`unread`](super::unread)). Ends in a `WHERE` on the conversation so each query appends its filter
/// and stays a constant (prepared once per connection).
macro_rules! participant_select {
    ($($filter:literal),*) => {
        concat!(
            "SELECT p.role, u.id, u.name, u.metadata,
                (SELECT m.id FROM messages m WHERE m.conversation_id = p.conversation_id AND m.seq = p.last_read_seq),
                ",
            unread_expr!(),
            "
             FROM participants p JOIN users u ON u.id = p.user_id WHERE p.conversation_id = ?1",
            $($filter),*
        )
    };
}

fn participant_row(r: &Row<'_>) -> rusqlite::Result<(String, RawUser, Option<String>, i64)> {
    Ok((r.get(0)?, RawUser::from_row(r, 1)?, r.get(4)?, r.get(5)?))
}

fn into_participant(
    (role, user, last_read_message_id, unread): (String, RawUser, Option<String>, i64),
) -> Result<Participant> {
    let user = user.into_user()?;
    let role = stored_role(&user.id, &role)?;
    Ok(Participant {
        user,
        is_admin: role == Role::Admin,
        role,
        unread_count: count_u32(unread),
        last_read_message_id,
    })
}

/// `user_id`'s membership of `conversation_id`, or `None` if they are not a participant.
pub fn participant(
    conn: &Connection,
    conversation_id: &str,
    user_id: &str,
) -> Result<Option<Participant>> {
    let row = conn
        .prepare_cached(participant_select!(" AND p.user_id = ?2"))?
        .query_row([conversation_id, user_id], participant_row)
        .optional()?;
    row.map(into_participant).transpose()
}

/// Whether `user_id` currently participates in `conversation_id` (false if the conversation is missing).
pub fn is_participant(conn: &Connection, conversation_id: &str, user_id: &str) -> Result<bool> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM participants WHERE conversation_id = ?1 AND user_id = ?2")?;
    Ok(stmt.exists([conversation_id, user_id])?)
}

/// Whether `user_id` is an admin of `conversation_id`.
pub fn is_admin(conn: &Connection, conversation_id: &str, user_id: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM participants WHERE conversation_id = ?1 AND user_id = ?2 AND role = 'admin'",
    )?;
    Ok(stmt.exists([conversation_id, user_id])?)
}

/// Every participant of `conversation_id`, in join order.
pub fn participants(conn: &Connection, conversation_id: &str) -> Result<Vec<Participant>> {
    let mut stmt = conn.prepare_cached(participant_select!(" ORDER BY p.joined_at, p.user_id"))?;
    let rows = stmt
        .query_map([conversation_id], participant_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(into_participant).collect()
}

/// Adds `user_ids` (not admins) to the conversation; returns those who were not members already. New
/// members start with the existing messages counted as read: history, not unread (unread count 0).
pub fn add_participants(
    tx: &Writing<'_>,
    id: &str,
    user_ids: &[String],
    now: Millis,
) -> Result<Vec<String>> {
    let conversation = get_conversation(tx, id)?;
    if let Some(missing) = missing_users(tx, user_ids)?.into_iter().next() {
        return Err(StoreError::not_found("user", missing));
    }
    let mut added: Vec<String> = Vec::new();
    for user in user_ids {
        if !conversation.participant_ids.contains(user) && !added.contains(user) {
            added.push(user.clone());
        }
    }
    check_participant_count(conversation.participant_ids.len() + added.len())?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO participants (conversation_id, user_id, is_admin, joined_at, joined_seq, last_read_seq,
                                   read_live)
         SELECT id, ?2, 0, ?3, last_seq, last_seq, live_messages FROM conversations WHERE id = ?1",
    )?;
    for user in &added {
        insert.execute(params![id, user, now])?;
    }
    if !added.is_empty() {
        touch(tx, id, now)?;
    }
    Ok(added)
}

/// Removes `user_id` from the conversation; false if they were not a member. Their receipts stay (they
/// are history), but no longer count towards message status. An owner who leaves leaves the conversation
/// without one (`owner_id` null) until an admin transfers it.
pub fn remove_participant(tx: &Writing<'_>, id: &str, user_id: &str, now: Millis) -> Result<bool> {
    get_conversation(tx, id)?;
    let removed = tx
        .prepare_cached("DELETE FROM participants WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute([id, user_id])?;
    if removed > 0 {
        tx.prepare_cached(
            "UPDATE conversations SET owner_id = NULL WHERE id = ?1 AND owner_id = ?2",
        )?
        .execute([id, user_id])?;
        touch(tx, id, now)?;
    }
    Ok(removed > 0)
}

/// Makes a member an admin or not; [`StoreError::NotFound`] if they are not a member.
pub fn set_admin(
    tx: &Writing<'_>,
    id: &str,
    user_id: &str,
    admin: bool,
    now: Millis,
) -> Result<()> {
    let changed = tx
        .prepare_cached(
            "UPDATE participants SET is_admin = ?3, role = ?4 WHERE conversation_id = ?1 AND user_id = ?2",
        )?
        .execute(params![id, user_id, admin, if admin { "admin" } else { "member" }])?;
    if changed == 0 {
        return Err(StoreError::not_found("participant", user_id));
    }
    touch(tx, id, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::testutil::{TestDb, ids};

    /// `set_admin` and `is_admin` are SQLite's own, not on the seam (which sees admins in the conversation
    /// and its participants); membership itself is tested on every backend in `store/tests/`.
    #[test]
    fn set_admin_makes_a_member_an_admin() -> Result<()> {
        let t = TestDb::with_users(&["a", "b", "c"])?;
        let conv = t.conversation(&["a", "b"])?;
        assert!(t.db.read(|db| is_admin(db, &conv.id, "a"))?);
        assert!(!t.db.read(|db| is_admin(db, &conv.id, "b"))?);
        t.db.write(|tx| set_admin(tx, &conv.id, "b", true, 11))?;
        assert!(t.db.read(|db| is_admin(db, &conv.id, "b"))?);
        let conversation = t.db.read(|db| get_conversation(db, &conv.id))?;
        assert_eq!(
            (conversation.admin_ids, conversation.updated_at),
            (ids(&["a", "b"]), 11)
        );
        let outsider = t.db.write(|tx| set_admin(tx, &conv.id, "c", true, 12));
        assert!(matches!(outsider, Err(StoreError::NotFound { .. })));
        Ok(())
    }
}
