//! Conversations on PostgreSQL: create (with distinct lookup), get, list for a user, update, delete, as
//! [`store::sqlite::conversations`](crate::store::sqlite::conversations) does. Lists of ids go to the
//! server as one array parameter (`unnest`, `= ANY`), so a conversation of 1,000 members is created in one
//! statement, not 1,000 round trips.

use super::transaction::Transaction;
use crate::store::limits::{check_title, conversation_members, new_owner, stored_role};

use super::locks::advisory_key;
use super::statements::Statements;
use super::users::missing_users;
use super::values::{big, no_nul_opt};
use super::{messages, participants::participant};
use crate::model::{Conversation, Millis, Role, UserConversation};
use crate::store::error::{Result, StoreError};
use crate::store::ids::{count_u32, json_value, metadata_text, new_id};
use crate::store::records::{ConversationPatch, NewConversation, Outcome};

/// Creates a conversation, or, when `distinct_by_participants` is set and a distinct conversation with
/// exactly this participant set exists, returns that one with `changed == false`.
pub async fn create_conversation(
    tx: &Transaction<'_>,
    new: &NewConversation,
    now: Millis,
) -> Result<Outcome<Conversation>> {
    let members = conversation_members(new)?;
    no_nul_opt("title", new.title.as_deref())?;
    if let Some(id) = missing_users(tx, &members).await?.into_iter().next() {
        return Err(StoreError::not_found("user", id));
    }
    if new.distinct_by_participants {
        // Two nodes creating the same distinct conversation at once take turns on a lock named by the
        // participant set, so the second finds the first's (the set is sorted: any order, one key).
        let mut set: Vec<&str> = members.iter().map(String::as_str).collect();
        set.sort_unstable();
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock($1)")
            .await?;
        tx.execute(&lock, &[&advisory_key("distinct", &set.join("\n"))])
            .await?;
    }
    if new.distinct_by_participants
        && let Some(id) = find_distinct(tx, &members).await?
    {
        return Ok(Outcome {
            value: get_conversation(tx, &id).await?,
            changed: false,
        });
    }
    let id = new_id("c_")?;
    let conversation = tx
        .prepare_cached(
            "INSERT INTO conversations
                 (id, title, metadata, distinct_by_participants, owner_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .await?;
    let metadata = metadata_text(&new.metadata)?;
    tx.execute(
        &conversation,
        &[
            &id,
            &new.title,
            &metadata,
            &new.distinct_by_participants,
            &new_owner(new),
            &now,
        ],
    )
    .await?;
    let participants = tx
        .prepare_cached(
            "INSERT INTO participants (conversation_id, user_id, is_admin, role, joined_at)
             SELECT $1, m, m = ANY($3::text[]),
                    CASE WHEN m = ANY($3::text[]) THEN 'admin' ELSE 'member' END, $4
             FROM unnest($2::text[]) AS m",
        )
        .await?;
    tx.execute(&participants, &[&id, &members, &new.admin_ids, &now])
        .await?;
    Ok(Outcome {
        value: get_conversation(tx, &id).await?,
        changed: true,
    })
}

/// The oldest distinct conversation whose current participants are exactly `user_ids` (in any order).
pub async fn find_distinct(tx: &Transaction<'_>, user_ids: &[String]) -> Result<Option<String>> {
    let Some(first) = user_ids.first() else {
        return Ok(None);
    };
    let mut set = user_ids.to_vec();
    set.sort();
    set.dedup();
    let n = i64::try_from(set.len()).unwrap_or(i64::MAX);
    let stmt = tx
        .prepare_cached(
            "SELECT c.id FROM participants p0 JOIN conversations c ON c.id = p0.conversation_id
             WHERE p0.user_id = $1 AND c.distinct_by_participants
               AND (SELECT count(*) FROM participants p WHERE p.conversation_id = c.id) = $2
               AND (SELECT count(*) FROM participants p WHERE p.conversation_id = c.id
                      AND p.user_id = ANY($3::text[])) = $2
             ORDER BY c.created_at, c.id LIMIT 1",
        )
        .await?;
    let row = tx.query_opt(&stmt, &[first, &n, &set]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The conversation with `id`, or [`StoreError::NotFound`]: its row and its participants in one statement
/// (one round trip; it is read on every send).
pub async fn get_conversation(tx: &impl Statements, id: &str) -> Result<Conversation> {
    let stmt = tx
        .prepare_cached(
            "SELECT c.id, c.title, c.metadata, c.distinct_by_participants, c.last_message_id,
                    c.created_at, c.updated_at, c.owner_id,
                    coalesce(array_agg(p.user_id ORDER BY p.joined_at, p.user_id)
                             FILTER (WHERE p.user_id IS NOT NULL), '{}'),
                    coalesce(array_agg(p.role ORDER BY p.joined_at, p.user_id)
                             FILTER (WHERE p.user_id IS NOT NULL), '{}')
             FROM conversations c LEFT JOIN participants p ON p.conversation_id = c.id
             WHERE c.id = $1 GROUP BY c.id",
        )
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&id]).await? else {
        return Err(StoreError::not_found("conversation", id));
    };
    let participant_ids: Vec<String> = row.try_get(8)?;
    let roles: Vec<String> = row.try_get(9)?;
    let mut admin_ids = Vec::new();
    let mut moderator_ids = Vec::new();
    for (user, role) in participant_ids.iter().zip(&roles) {
        match stored_role(user, role)? {
            Role::Admin => admin_ids.push(user.clone()),
            Role::Moderator => moderator_ids.push(user.clone()),
            Role::Member => {}
        }
    }
    Ok(Conversation {
        participant_count: count_u32(i64::try_from(participant_ids.len()).unwrap_or(i64::MAX)),
        participant_ids_omitted: false,
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        admin_ids,
        moderator_ids,
        owner_id: row.try_get(7)?,
        participant_ids,
        distinct_by_participants: row.try_get(3)?,
        metadata: json_value(row.try_get(2)?)?,
        last_message_id: row.try_get(4)?,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
    })
}

/// `user_id`'s conversations, most recently active first (newest message, else last update), at most
/// `limit`, each with the user's unread count and the newest message.
pub async fn list_for_user(
    tx: &Transaction<'_>,
    user_id: &str,
    limit: u32,
) -> Result<Vec<UserConversation>> {
    let stmt = tx
        .prepare_cached(
            "SELECT c.id FROM participants p JOIN conversations c ON c.id = p.conversation_id
             LEFT JOIN messages m ON m.id = c.last_message_id
             WHERE p.user_id = $1
             ORDER BY coalesce(m.created_at, c.updated_at) DESC, c.id DESC LIMIT $2",
        )
        .await?;
    let ids: Vec<String> = tx
        .query(&stmt, &[&user_id, &big(limit)])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let conversation = get_conversation(tx, &id).await?;
        let me = participant(tx, &id, user_id)
            .await?
            .ok_or_else(|| StoreError::not_found("participant", user_id))?;
        let last_message = match &conversation.last_message_id {
            Some(m) => Some(messages::get_message(tx, m).await?),
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
pub async fn update_conversation(
    tx: &Transaction<'_>,
    id: &str,
    patch: &ConversationPatch,
    now: Millis,
) -> Result<Conversation> {
    get_conversation(tx, id).await?;
    if let Some(title) = &patch.title {
        check_title(title.as_deref())?;
        no_nul_opt("title", title.as_deref())?;
        let stmt = tx
            .prepare_cached("UPDATE conversations SET title = $2 WHERE id = $1")
            .await?;
        tx.execute(&stmt, &[&id, title]).await?;
    }
    if let Some(metadata) = &patch.metadata {
        let stmt = tx
            .prepare_cached("UPDATE conversations SET metadata = $2 WHERE id = $1")
            .await?;
        tx.execute(&stmt, &[&id, &metadata_text(metadata)?]).await?;
    }
    touch(tx, id, now).await?;
    get_conversation(tx, id).await
}

/// Deletes the conversation with everything in it (its events stay); returns it as it was.
pub async fn delete_conversation(tx: &Transaction<'_>, id: &str) -> Result<Conversation> {
    let before = get_conversation(tx, id).await?;
    let stmt = tx
        .prepare_cached("DELETE FROM conversations WHERE id = $1")
        .await?;
    tx.execute(&stmt, &[&id]).await?;
    Ok(before)
}

/// Bumps `updated_at` (never backwards), for changes to title, metadata or membership.
pub(super) async fn touch(tx: &Transaction<'_>, id: &str, now: Millis) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE conversations SET updated_at = greatest(updated_at, $2) WHERE id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&id, &now]).await?;
    Ok(())
}
