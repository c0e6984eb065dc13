//! Membership on PostgreSQL: who is in a conversation, who administers it, each member's read state, and
//! the unread counters every write keeps up to date. The rules are those of
//! [`store::sqlite::participants`](crate::store::sqlite::participants) and
//! `store::sqlite::unread` (whose table says which write moves which
//! counter, and why the count is a column).

use super::transaction::Transaction;
use tokio_postgres::Row;

use super::conversations::{get_conversation, touch};
use super::users::missing_users;
use super::values::user_at;
use crate::model::{Millis, Participant, Role};
use crate::store::error::{Result, StoreError};
use crate::store::ids::count_u32;
use crate::store::limits::{check_participant_count, stored_role};

/// A participant's unread count from their row `p` (an SQL expression, for `concat!`): the counters of
/// `store/sqlite/unread.rs`, kept the same way here.
macro_rules! unread_expr {
    () => {
        "(SELECT c.live_messages FROM conversations c WHERE c.id = p.conversation_id) - p.read_live - p.own_unread"
    };
}

/// Participant columns: the last read message from `last_read_seq`, the unread count from the counters.
/// Ends in a `WHERE` on the conversation so each query appends its filter and stays a constant.
macro_rules! participant_select {
    ($filter:literal) => {
        concat!(
            "SELECT p.role, u.id, u.name, u.metadata,
                (SELECT m.id FROM messages m
                 WHERE m.conversation_id = p.conversation_id AND m.seq = p.last_read_seq), ",
            unread_expr!(),
            " FROM participants p JOIN users u ON u.id = p.user_id WHERE p.conversation_id = $1",
            $filter
        )
    };
}

fn participant_row(r: &Row) -> Result<Participant> {
    let user = user_at(r, 1)?;
    let role = stored_role(&user.id, r.try_get(0)?)?;
    Ok(Participant {
        is_admin: role == Role::Admin,
        role,
        user,
        last_read_message_id: r.try_get(4)?,
        unread_count: count_u32(r.try_get(5)?),
    })
}

/// `user_id`'s membership of `conversation_id`, or `None` if they are not a participant.
pub async fn participant(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_id: &str,
) -> Result<Option<Participant>> {
    let stmt = tx
        .prepare_cached(participant_select!(" AND p.user_id = $2"))
        .await?;
    tx.query_opt(&stmt, &[&conversation_id, &user_id])
        .await?
        .map(|r| participant_row(&r))
        .transpose()
}

/// Whether `user_id` currently participates in `conversation_id`.
pub async fn is_participant(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_id: &str,
) -> Result<bool> {
    let stmt = tx
        .prepare_cached("SELECT 1 FROM participants WHERE conversation_id = $1 AND user_id = $2")
        .await?;
    Ok(tx
        .query_opt(&stmt, &[&conversation_id, &user_id])
        .await?
        .is_some())
}

/// Every participant of `conversation_id`, in join order.
pub async fn participants(tx: &Transaction<'_>, conversation_id: &str) -> Result<Vec<Participant>> {
    let stmt = tx
        .prepare_cached(participant_select!(" ORDER BY p.joined_at, p.user_id"))
        .await?;
    let rows = tx.query(&stmt, &[&conversation_id]).await?;
    rows.iter().map(participant_row).collect()
}

/// Adds `user_ids` (not admins) to the conversation; returns those who were not members already. New
/// members start with the existing messages counted as read (unread count 0).
pub async fn add_participants(
    tx: &Transaction<'_>,
    id: &str,
    user_ids: &[String],
    now: Millis,
) -> Result<Vec<String>> {
    let conversation = get_conversation(tx, id).await?;
    if let Some(missing) = missing_users(tx, user_ids).await?.into_iter().next() {
        return Err(StoreError::not_found("user", missing));
    }
    let mut added: Vec<String> = Vec::new();
    for user in user_ids {
        if !conversation.participant_ids.contains(user) && !added.contains(user) {
            added.push(user.clone());
        }
    }
    check_participant_count(conversation.participant_ids.len() + added.len())?;
    if added.is_empty() {
        return Ok(added);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO participants
                 (conversation_id, user_id, is_admin, joined_at, joined_seq, last_read_seq, read_live)
             SELECT c.id, a, false, $3, c.last_seq, c.last_seq, c.live_messages
             FROM conversations c, unnest($2::text[]) AS a WHERE c.id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&id, &added, &now]).await?;
    touch(tx, id, now).await?;
    Ok(added)
}

/// Removes `user_id` from the conversation; false if they were not a member. An owner who leaves leaves
/// the conversation without one.
pub async fn remove_participant(
    tx: &Transaction<'_>,
    id: &str,
    user_id: &str,
    now: Millis,
) -> Result<bool> {
    get_conversation(tx, id).await?;
    let stmt = tx
        .prepare_cached("DELETE FROM participants WHERE conversation_id = $1 AND user_id = $2")
        .await?;
    let removed = tx.execute(&stmt, &[&id, &user_id]).await?;
    if removed > 0 {
        let orphan = tx
            .prepare_cached(
                "UPDATE conversations SET owner_id = NULL WHERE id = $1 AND owner_id = $2",
            )
            .await?;
        tx.execute(&orphan, &[&id, &user_id]).await?;
        touch(tx, id, now).await?;
    }
    Ok(removed > 0)
}

/// The statement counting a new message (`$1` its conversation, `$2` its sender) as unread for everyone
/// in the conversation but its sender: the send counted it in `live_messages` with its seq; this counts
/// it as the sender's own, above their read mark. Run by the send's pipeline (`messages::send_message`).
pub(super) const MESSAGE_SENT: &str = "UPDATE participants SET own_unread = own_unread + 1
     WHERE conversation_id = $1 AND user_id = $2";

/// Uncounts a message just soft-deleted: it leaves `live_messages`, and the read marks and the sender's
/// own count that held it (one unread message less for the others who had not read it).
pub(super) async fn message_deleted(
    tx: &Transaction<'_>,
    conversation_id: &str,
    sender_id: &str,
    seq: i64,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "WITH c AS (UPDATE conversations SET live_messages = live_messages - 1 WHERE id = $1),
                  r AS (UPDATE participants SET read_live = read_live - 1
                        WHERE conversation_id = $1 AND last_read_seq >= $3)
             UPDATE participants SET own_unread = own_unread - 1
             WHERE conversation_id = $1 AND user_id = $2 AND last_read_seq < $3",
        )
        .await?;
    tx.execute(&stmt, &[&conversation_id, &sender_id, &seq])
        .await?;
    Ok(())
}

/// Moves `user_id`'s read mark from `previous` up to `target` (> `previous`): the messages not deleted in
/// between join `read_live`, and the user's own among them leave `own_unread`.
pub(super) async fn messages_read(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_id: &str,
    previous: i64,
    target: i64,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE participants SET last_read_seq = $4,
                 read_live = read_live + (
                     SELECT count(*) FROM messages m
                     WHERE m.conversation_id = $1 AND m.seq > $3 AND m.seq <= $4 AND NOT m.deleted),
                 own_unread = own_unread - (
                     SELECT count(*) FROM messages m
                     WHERE m.conversation_id = $1 AND m.seq > $3 AND m.seq <= $4
                       AND m.sender_id = $2 AND NOT m.deleted)
             WHERE conversation_id = $1 AND user_id = $2",
        )
        .await?;
    tx.execute(&stmt, &[&conversation_id, &user_id, &previous, &target])
        .await?;
    Ok(())
}

/// `user_id`'s unread count in `conversation_id` (0 for a non-participant).
pub async fn unread_count(
    tx: &Transaction<'_>,
    conversation_id: &str,
    user_id: &str,
) -> Result<u32> {
    let stmt = tx
        .prepare_cached(concat!(
            "SELECT ",
            unread_expr!(),
            " FROM participants p WHERE p.conversation_id = $1 AND p.user_id = $2"
        ))
        .await?;
    let row = tx.query_opt(&stmt, &[&conversation_id, &user_id]).await?;
    Ok(match row {
        Some(r) => count_u32(r.try_get(0)?),
        None => 0,
    })
}
