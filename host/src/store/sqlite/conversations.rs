//! Conversations: create (with distinct lookup), get, list for a user, update, delete. Membership
//! changes are in [`participants`](super::participants).
//!
//! Participant and admin lists live in the `participants` table (one row per member), not in JSON arrays
//! as in Skygear, so "my conversations" and "is U a member" are index lookups. A distinct conversation is
//! found by its exact current participant set, so adding someone to a direct chat makes it a different
//! set, as users expect.

use crate::store::limits::{check_title, conversation_members, new_owner, stored_role};
use rusqlite::{Connection, OptionalExtension, params};

use super::users::missing_users;
use super::writer::Writing;
use super::{messages, participants::participant};
use crate::model::{Conversation, Millis, Role, UserConversation};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{count_u32, json_text, json_value, metadata_text, new_id};
use crate::store::records::Outcome;
use crate::store::records::{ConversationPatch, NewConversation};

/// Creates a conversation, or, when `distinct_by_participants` is set and a distinct conversation with
/// exactly this participant set exists, returns that one with `changed == false` (the new title, admins
/// and metadata are then ignored).
pub fn create_conversation(
    tx: &Writing<'_>,
    new: &NewConversation,
    now: Millis,
) -> Result<Outcome<Conversation>> {
    let members = conversation_members(new)?;
    if let Some(id) = missing_users(tx, &members)?.into_iter().next() {
        return Err(StoreError::not_found("user", id));
    }
    if new.distinct_by_participants
        && let Some(id) = find_distinct(tx, &members)?
    {
        return Ok(Outcome {
            value: get_conversation(tx, &id)?,
            changed: false,
        });
    }
    let id = new_id("c_")?;
    let owner = new_owner(new);
    tx.prepare_cached(
        "INSERT INTO conversations (id, title, metadata, distinct_by_participants, owner_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![id, new.title, metadata_text(&new.metadata)?, new.distinct_by_participants, owner, now])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO participants (conversation_id, user_id, is_admin, role, joined_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for user in &members {
        let admin = new.admin_ids.contains(user);
        let role = if admin { Role::Admin } else { Role::Member };
        insert.execute(params![id, user, admin, role.as_str(), now])?;
    }
    Ok(Outcome {
        value: get_conversation(tx, &id)?,
        changed: true,
    })
}

/// The oldest distinct conversation whose current participants are exactly `user_ids` (in any order).
pub fn find_distinct(conn: &Connection, user_ids: &[String]) -> Result<Option<String>> {
    let Some(first) = user_ids.first() else {
        return Ok(None);
    };
    let mut set = user_ids.to_vec();
    set.sort();
    set.dedup();
    let n = i64::try_from(set.len()).unwrap_or(i64::MAX);
    let id = conn
        .query_row(
            "SELECT c.id FROM participants p0 JOIN conversations c ON c.id = p0.conversation_id
             WHERE p0.user_id = ?1 AND c.distinct_by_participants = 1
               AND (SELECT count(*) FROM participants p WHERE p.conversation_id = c.id) = ?2
               AND (SELECT count(*) FROM participants p WHERE p.conversation_id = c.id
                      AND p.user_id IN (SELECT value FROM json_each(?3))) = ?2
             ORDER BY c.created_at, c.id LIMIT 1",
            params![first, n, json_text(&serde_json::json!(set))?],
            |r| r.get(0),
        )
        .optional()?;
    Ok(id)
}

/// The conversation with `id`, or [`StoreError::NotFound`].
pub fn get_conversation(conn: &Connection, id: &str) -> Result<Conversation> {
    let row = conn
        .prepare_cached(
            "SELECT id, title, metadata, distinct_by_participants, last_message_id, created_at, updated_at,
                    owner_id
             FROM conversations WHERE id = ?1",
        )?
        .query_row([id], |r| {
                Ok((
                    (r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?),
                    (r.get::<_, Option<String>>(4)?,
                    r.get::<_, Millis>(5)?,
                    r.get::<_, Millis>(6)?,
                    r.get::<_, Option<String>>(7)?),
                ))
            })
        .optional()?;
    let Some((
        (id, title, metadata, distinct),
        (last_message_id, created_at, updated_at, owner_id),
    )) = row
    else {
        return Err(StoreError::not_found("conversation", id));
    };
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, role FROM participants WHERE conversation_id = ?1 ORDER BY joined_at, user_id",
    )?;
    let mut participant_ids = Vec::new();
    let mut admin_ids = Vec::new();
    let mut moderator_ids = Vec::new();
    let members = stmt
        .query_map([&id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (user, role) in members {
        match stored_role(&user, &role)? {
            Role::Admin => admin_ids.push(user.clone()),
            Role::Moderator => moderator_ids.push(user.clone()),
            Role::Member => {}
        }
        participant_ids.push(user);
    }
    Ok(Conversation {
        participant_count: count_u32(i64::try_from(participant_ids.len()).unwrap_or(i64::MAX)),
        participant_ids_omitted: false,
        id,
        title,
        admin_ids,
        moderator_ids,
        owner_id,
        participant_ids,
        distinct_by_participants: distinct,
        metadata: json_value(&metadata)?,
        last_message_id,
        created_at,
        updated_at,
    })
}

/// `user_id`'s conversations, most recently active first (newest message, else last update), at most
/// `limit`, each with the user's unread count and the newest message.
pub fn list_for_user(
    conn: &Connection,
    user_id: &str,
    limit: u32,
) -> Result<Vec<UserConversation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id FROM participants p JOIN conversations c ON c.id = p.conversation_id
         LEFT JOIN messages m ON m.id = c.last_message_id
         WHERE p.user_id = ?1
         ORDER BY coalesce(m.created_at, c.updated_at) DESC, c.id DESC LIMIT ?2",
    )?;
    let ids = stmt
        .query_map(params![user_id, limit], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let conversation = get_conversation(conn, &id)?;
        let me = participant(conn, &id, user_id)?
            .ok_or_else(|| StoreError::not_found("participant", user_id))?;
        let last_message = match &conversation.last_message_id {
            Some(m) => Some(messages::get_message(conn, m)?),
            None => None,
        };
        out.push(UserConversation {
            conversation,
            unread_count: me.unread_count,
            last_read_message_id: me.last_read_message_id,
            last_message,
        });
    }
    Ok(out)
}

/// Applies `patch` and bumps `updated_at`; returns the updated conversation.
pub fn update_conversation(
    tx: &Writing<'_>,
    id: &str,
    patch: &ConversationPatch,
    now: Millis,
) -> Result<Conversation> {
    get_conversation(tx, id)?;
    if let Some(title) = &patch.title {
        check_title(title.as_deref())?;
        tx.execute(
            "UPDATE conversations SET title = ?2 WHERE id = ?1",
            params![id, title],
        )?;
    }
    if let Some(metadata) = &patch.metadata {
        tx.execute(
            "UPDATE conversations SET metadata = ?2 WHERE id = ?1",
            params![id, metadata_text(metadata)?],
        )?;
    }
    touch(tx, id, now)?;
    get_conversation(tx, id)
}

/// Deletes the conversation with its participants, bans, messages, receipts and reactions; returns it as it was,
/// for the `conversation.deleted` event. Its events stay in the log.
pub fn delete_conversation(tx: &Writing<'_>, id: &str) -> Result<Conversation> {
    let before = get_conversation(tx, id)?;
    tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
    Ok(before)
}

/// Bumps `updated_at` (never backwards), for changes to title, metadata or membership.
pub(crate) fn touch(tx: &Writing<'_>, id: &str, now: Millis) -> Result<()> {
    tx.prepare_cached("UPDATE conversations SET updated_at = max(updated_at, ?2) WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}
