//! Bans: moderators and admins keep a user out of a conversation until they lift the ban.
//!
//! ## The rules
//! - Moderators and admins ban, unban and list bans; members get 403.
//! - No one bans the owner; only admins ban admins; no one bans themselves (leaving is
//!   `DELETE /v1/conversations/{id}/participants/{me}`).
//! - A ban removes the member and records the ban in one transaction, with `member.removed` (so clients
//!   update their member lists as for any removal) then `member.banned`, both for the participants and
//!   the banned user. A user who is not a member can be banned too (kept out before they are added):
//!   then only `member.banned` is written. Banning again keeps the first ban and fires nothing.
//! - Adding a banned user (`POST .../participants`, a plugin's bot joining) is refused with
//!   [`ChatError::Banned`] naming them; unbanning (`member.unbanned`) does not add them back.
//! - Deleting the conversation deletes its bans.

use serde::Deserialize;

use crate::events::ChatEvent;
use crate::model::{Ban, Conversation, User};
use crate::store::{NewBan, Read};

use super::{Chat, ChatError, fields, member_conversation};

/// `POST /v1/conversations/{id}/bans`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanUser {
    /// The user to ban (a member or not).
    pub user_id: String,
    /// Why; shown to the banned user and the participants with `member.banned`.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Chat {
    /// Bans a user (moderators and admins): removes them if they are a member (`member.removed`) and
    /// records the ban (`member.banned`), in one transaction. Returns the ban and whether it is new
    /// (an existing ban is returned as it is, with no event).
    pub async fn ban_user(
        &self,
        actor: &User,
        conversation_id: &str,
        input: BanUser,
    ) -> Result<(Ban, bool), ChatError> {
        fields::MEMBER_ID.check(&input.user_id)?;
        if let Some(reason) = &input.reason {
            fields::REASON.check(reason)?;
        }
        let (actor, id) = (actor.clone(), conversation_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = moderated_conversation(tx, &id, &actor.id, "ban users")?;
                check_bannable(&conversation, &actor.id, &input.user_id)?;
                if let Some(existing) = tx.ban(&id, &input.user_id)? {
                    return Ok((existing, false));
                }
                if tx.find_user(&input.user_id)?.is_none() {
                    return Err(ChatError::not_found("user", input.user_id.as_str()));
                }
                let was_member = tx.remove_participant(&id, &input.user_id, rec.now)?;
                let new = NewBan {
                    conversation_id: id.clone(),
                    user_id: input.user_id.clone(),
                    banned_by: actor.id.clone(),
                    reason: input.reason.clone(),
                };
                let ban = tx.add_ban(&new, rec.now)?.value;
                let conversation = tx.get_conversation(&id)?;
                if was_member {
                    rec.record(
                        tx,
                        &ChatEvent::MembersRemoved {
                            conversation: conversation.clone(),
                            users: vec![ban.user.clone()],
                        },
                    )?;
                }
                rec.record(
                    tx,
                    &ChatEvent::MemberBanned {
                        conversation,
                        ban: ban.clone(),
                    },
                )?;
                Ok((ban, true))
            })
        })
        .await
    }

    /// Lifts a ban (moderators and admins) with `member.unbanned`; the user is not added back. Returns
    /// the lifted ban.
    pub async fn unban_user(
        &self,
        actor: &User,
        conversation_id: &str,
        user_id: &str,
    ) -> Result<Ban, ChatError> {
        let (actor, id, user_id) = (
            actor.clone(),
            conversation_id.to_owned(),
            user_id.to_owned(),
        );
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = moderated_conversation(tx, &id, &actor.id, "lift bans")?;
                let Some(ban) = tx.remove_ban(&id, &user_id)? else {
                    return Err(ChatError::not_found("ban", user_id.as_str()));
                };
                rec.record(
                    tx,
                    &ChatEvent::MemberUnbanned {
                        conversation,
                        ban: ban.clone(),
                        unbanned_by: actor.clone(),
                    },
                )?;
                Ok(ban)
            })
        })
        .await
    }

    /// The bans of a conversation, oldest first (moderators and admins).
    pub async fn list_bans(
        &self,
        actor: &User,
        conversation_id: &str,
    ) -> Result<Vec<Ban>, ChatError> {
        let (actor, id) = (actor.id.clone(), conversation_id.to_owned());
        self.blocking(move |chat| {
            chat.read(|c| {
                moderated_conversation(c, &id, &actor, "list bans")?;
                Ok(c.bans(&id)?)
            })
        })
        .await
    }
}

/// The conversation `id` if `user` moderates it: 404 unless they are in it, 403 unless they are a
/// moderator or an admin.
fn moderated_conversation(
    conn: &dyn Read,
    id: &str,
    user: &str,
    what: &str,
) -> Result<Conversation, ChatError> {
    let conversation = member_conversation(conn, id, user)?;
    if !conversation.may_moderate(user) {
        return Err(ChatError::Forbidden(format!(
            "only the conversation's moderators and admins may {what}"
        )));
    }
    Ok(conversation)
}

/// [`ChatError::Forbidden`] unless `actor` may ban `user_id` (see the rules in the module docs).
fn check_bannable(
    conversation: &Conversation,
    actor: &str,
    user_id: &str,
) -> Result<(), ChatError> {
    if user_id == actor {
        return Err(ChatError::Forbidden(
            "you cannot ban yourself; to leave, remove yourself from the participants".into(),
        ));
    }
    if conversation.is_owner(user_id) {
        return Err(ChatError::Forbidden(format!(
            "{user_id:?} owns the conversation and cannot be banned"
        )));
    }
    if conversation.admin_ids.iter().any(|a| a == user_id)
        && !conversation.admin_ids.iter().any(|a| a == actor)
    {
        return Err(ChatError::Forbidden(format!(
            "{user_id:?} is an admin: only admins may ban admins"
        )));
    }
    Ok(())
}

/// [`ChatError::Banned`] naming those of `user_ids` banned from conversation `id`: what adding
/// participants and a bot joining check, inside their transaction.
pub(crate) fn refuse_banned(
    conn: &dyn Read,
    id: &str,
    user_ids: &[String],
) -> Result<(), ChatError> {
    let banned = conn.banned_among(id, user_ids)?;
    if banned.is_empty() {
        return Ok(());
    }
    Err(ChatError::Banned {
        conversation_id: id.to_owned(),
        user_ids: banned,
    })
}
