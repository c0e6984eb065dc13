//! Roles and ownership on PostgreSQL; the rules are those of
//! [`store::sqlite::roles`](crate::store::sqlite::roles).

use super::transaction::Transaction;

use super::conversations::{get_conversation, touch};
use super::participants::participant;
use crate::model::{Millis, Role};
use crate::store::error::{Result, StoreError};
use crate::store::records::{OwnerChange, RoleChange};

/// Gives member `user_id` of conversation `id` `role`; the participant now and their old role.
pub async fn set_role(
    tx: &Transaction<'_>,
    id: &str,
    user_id: &str,
    role: Role,
    now: Millis,
) -> Result<RoleChange> {
    get_conversation(tx, id).await?;
    let before = participant(tx, id, user_id)
        .await?
        .ok_or_else(|| StoreError::not_found("participant", user_id))?;
    if before.role == role {
        return Ok(RoleChange {
            old_role: role,
            participant: before,
        });
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE participants SET role = $3, is_admin = $4 WHERE conversation_id = $1 AND user_id = $2",
        )
        .await?;
    tx.execute(
        &stmt,
        &[&id, &user_id, &role.as_str(), &(role == Role::Admin)],
    )
    .await?;
    touch(tx, id, now).await?;
    let after = participant(tx, id, user_id)
        .await?
        .ok_or_else(|| StoreError::not_found("participant", user_id))?;
    Ok(RoleChange {
        participant: after,
        old_role: before.role,
    })
}

/// Makes member `new_owner` the owner of conversation `id`, promoting them to admin if needed.
pub async fn transfer_owner(
    tx: &Transaction<'_>,
    id: &str,
    new_owner: &str,
    now: Millis,
) -> Result<OwnerChange> {
    let before = get_conversation(tx, id).await?;
    let change = set_role(tx, id, new_owner, Role::Admin, now).await?;
    let stmt = tx
        .prepare_cached("UPDATE conversations SET owner_id = $2 WHERE id = $1")
        .await?;
    tx.execute(&stmt, &[&id, &new_owner]).await?;
    touch(tx, id, now).await?;
    Ok(OwnerChange {
        conversation: get_conversation(tx, id).await?,
        old_owner: before.owner_id,
        promoted: (change.old_role != Role::Admin).then_some(change),
    })
}
