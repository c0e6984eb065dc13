//! Roles and ownership: an admin changes a participant's role; the owner (or, when the conversation has
//! none, an admin) hands ownership to another participant.
//!
//! ## The rules
//! - Roles are `admin` (manages the conversation, its members and their roles), `moderator` (bans
//!   members, reviews held messages) and `member`. Only admins change roles.
//! - The owner is always an admin: no one demotes the owner (they transfer ownership first), and other
//!   admins cannot remove or ban them.
//! - A conversation keeps at least one admin: the last admin cannot demote themselves.
//! - Transferring ownership promotes the new owner to admin (with `member.role_changed` first when they
//!   were not one); the old owner stays an admin.

use serde::Deserialize;

use crate::events::ChatEvent;
use crate::model::{Conversation, Participant, Role, User};
use crate::store::Tx;

use super::{Chat, ChatError, Recorder, fields, member_conversation, require_admin};

/// `PUT /v1/conversations/{id}/participants/{user_id}/role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// The new role: `admin`, `moderator` or `member`.
    pub role: Role,
}

/// `POST /v1/conversations/{id}/owner`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwner {
    /// The participant who becomes the owner (and an admin).
    pub user_id: String,
}

impl Chat {
    /// Gives participant `user_id` `role` (admins only) with `member.role_changed`; setting the role
    /// they have changes nothing and fires nothing. Returns the participant as they now are.
    pub async fn set_role(
        &self,
        actor: &User,
        conversation_id: &str,
        user_id: &str,
        input: SetRole,
    ) -> Result<Participant, ChatError> {
        let (actor, id, user_id) = (
            actor.clone(),
            conversation_id.to_owned(),
            user_id.to_owned(),
        );
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = member_conversation(tx, &id, &actor.id)?;
                require_admin(&conversation, &actor.id, "change roles")?;
                let Some(old) = conversation.role_of(&user_id) else {
                    return Err(ChatError::not_found("participant", user_id.as_str()));
                };
                if old == input.role {
                    return tx
                        .participant(&id, &user_id)?
                        .ok_or_else(|| ChatError::not_found("participant", user_id.as_str()));
                }
                check_demotion(&conversation, &actor.id, &user_id, input.role)?;
                change_role(tx, rec, &id, &user_id, input.role, &actor)
            })
        })
        .await
    }

    /// Makes participant `user_id` the owner with `conversation.owner_transferred` (preceded by
    /// `member.role_changed` when they were not an admin). Only the owner may, or any admin when the
    /// conversation has no owner; [`ChatError::Conflict`] when `user_id` is not a participant. Returns
    /// the conversation as it now is.
    pub async fn transfer_owner(
        &self,
        actor: &User,
        conversation_id: &str,
        input: TransferOwner,
    ) -> Result<Conversation, ChatError> {
        fields::MEMBER_ID.check(&input.user_id)?;
        let (actor, id) = (actor.clone(), conversation_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = member_conversation(tx, &id, &actor.id)?;
                match &conversation.owner_id {
                    Some(owner) if *owner != actor.id => {
                        return Err(ChatError::Forbidden(format!(
                            "only the owner ({owner:?}) may transfer ownership of the conversation"
                        )));
                    }
                    Some(_) => {}
                    None => require_admin(&conversation, &actor.id, "transfer ownership")?,
                }
                if conversation.role_of(&input.user_id).is_none() {
                    return Err(ChatError::Conflict(format!(
                        "{:?} is not a participant of the conversation: add them first",
                        input.user_id
                    )));
                }
                if conversation.is_owner(&input.user_id) {
                    return Ok(conversation);
                }
                let change = tx.transfer_owner(&id, &input.user_id, rec.now)?;
                if let Some(promoted) = change.promoted {
                    rec.record(
                        tx,
                        &ChatEvent::ParticipantRoleChanged {
                            conversation: change.conversation.clone(),
                            participant: promoted.participant,
                            old_role: promoted.old_role,
                            changed_by: actor.clone(),
                        },
                    )?;
                }
                let old_owner = change
                    .old_owner
                    .as_deref()
                    .map(|o| tx.get_user(o))
                    .transpose()?;
                rec.record(
                    tx,
                    &ChatEvent::OwnerTransferred {
                        conversation: change.conversation.clone(),
                        old_owner,
                        new_owner: tx.get_user(&input.user_id)?,
                    },
                )?;
                Ok(change.conversation)
            })
        })
        .await
    }
}

/// [`ChatError::Forbidden`] when giving `user_id` `role` would demote the owner, or leave the
/// conversation without an admin (the last admin demoting themselves).
fn check_demotion(
    conversation: &Conversation,
    actor: &str,
    user_id: &str,
    role: Role,
) -> Result<(), ChatError> {
    if role == Role::Admin {
        return Ok(());
    }
    if conversation.is_owner(user_id) {
        return Err(ChatError::Forbidden(format!(
            "{user_id:?} owns the conversation and stays an admin: transfer ownership first \
             (POST /v1/conversations/{}/owner)",
            conversation.id
        )));
    }
    let admins = &conversation.admin_ids;
    if user_id == actor && admins.len() == 1 && admins.iter().any(|a| a == actor) {
        return Err(ChatError::Forbidden(
            "you are the conversation's last admin: make another participant an admin first".into(),
        ));
    }
    Ok(())
}

/// Gives `user_id` `role` with `member.role_changed`; the participant as they now are.
fn change_role(
    tx: &dyn Tx,
    rec: &mut Recorder,
    id: &str,
    user_id: &str,
    role: Role,
    actor: &User,
) -> Result<Participant, ChatError> {
    let change = tx.set_role(id, user_id, role, rec.now)?;
    rec.record(
        tx,
        &ChatEvent::ParticipantRoleChanged {
            conversation: tx.get_conversation(id)?,
            participant: change.participant.clone(),
            old_role: change.old_role,
            changed_by: actor.clone(),
        },
    )?;
    Ok(change.participant)
}
