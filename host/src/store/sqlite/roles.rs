//! Roles and ownership: changing a participant's role, and moving a conversation's ownership.
//!
//! A participant's `role` is the truth; `is_admin` is written with it in the same statement, so the two
//! never disagree. The owner (`conversations.owner_id`) is always an admin: transferring ownership
//! promotes the new owner. Who may do either is the chat layer's business (`chat/roles.rs`).

use rusqlite::params;

use super::conversations::{get_conversation, touch};
use super::participants::participant;
use super::writer::Writing;
use crate::model::{Millis, Role};
use crate::store::error::{Result, StoreError};
use crate::store::records::{OwnerChange, RoleChange};

/// Gives `user_id` `role` in conversation `id`; the participant as they now are and their old role.
/// [`StoreError::NotFound`] (participant) if they are not a member. Setting the role they have changes
/// nothing (not even `updated_at`).
pub fn set_role(
    tx: &Writing<'_>,
    id: &str,
    user_id: &str,
    role: Role,
    now: Millis,
) -> Result<RoleChange> {
    get_conversation(tx, id)?;
    let before = participant(tx, id, user_id)?
        .ok_or_else(|| StoreError::not_found("participant", user_id))?;
    if before.role == role {
        return Ok(RoleChange {
            old_role: role,
            participant: before,
        });
    }
    tx.prepare_cached(
        "UPDATE participants SET role = ?3, is_admin = ?4 WHERE conversation_id = ?1 AND user_id = ?2",
    )?
    .execute(params![id, user_id, role.as_str(), role == Role::Admin])?;
    touch(tx, id, now)?;
    let after = participant(tx, id, user_id)?
        .ok_or_else(|| StoreError::not_found("participant", user_id))?;
    Ok(RoleChange {
        participant: after,
        old_role: before.role,
    })
}

/// Makes `new_owner` the owner of conversation `id`, promoting them to admin if they were not one.
/// [`StoreError::NotFound`] (participant) if they are not a member. The old owner stays an admin.
pub fn transfer_owner(
    tx: &Writing<'_>,
    id: &str,
    new_owner: &str,
    now: Millis,
) -> Result<OwnerChange> {
    let before = get_conversation(tx, id)?;
    let change = set_role(tx, id, new_owner, Role::Admin, now)?;
    tx.prepare_cached("UPDATE conversations SET owner_id = ?2 WHERE id = ?1")?
        .execute([id, new_owner])?;
    touch(tx, id, now)?;
    Ok(OwnerChange {
        conversation: get_conversation(tx, id)?,
        old_owner: before.owner_id,
        promoted: (change.old_role != Role::Admin).then_some(change),
    })
}
