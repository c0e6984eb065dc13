//! Membership: adding users (admins; never a banned user, see [`bans`](super::bans)) and removing them
//! (admins, or anyone removing themselves; the owner only by leaving).

use crate::events::ChatEvent;
use crate::model::{Conversation, User};

use super::bans::refuse_banned;
use super::{Chat, ChatError, fields, member_conversation, require_admin, require_users};

impl Chat {
    /// Adds users to a conversation (admins only) with `member.added` for those who were not members;
    /// [`ChatError::Banned`] naming the banned among them, if any. Returns the conversation as it is now.
    pub async fn add_participants(
        &self,
        actor: &User,
        id: &str,
        user_ids: Vec<String>,
    ) -> Result<Conversation, ChatError> {
        let (actor, id) = (actor.id.clone(), id.to_owned());
        fields::USER_IDS.check(&user_ids)?;
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = member_conversation(tx, &id, &actor)?;
                require_admin(&conversation, &actor, "add participants")?;
                require_users(tx, &fields::USER_IDS, &user_ids)?;
                refuse_banned(tx, &id, &user_ids)?;
                let added = tx.add_participants(&id, &user_ids, rec.now)?;
                let conversation = tx.get_conversation(&id)?;
                if !added.is_empty() {
                    let users = added
                        .iter()
                        .map(|u| tx.get_user(u))
                        .collect::<Result<Vec<_>, _>>()?;
                    rec.record(
                        tx,
                        &ChatEvent::MembersAdded {
                            conversation: conversation.clone(),
                            users,
                        },
                    )?;
                }
                Ok(conversation)
            })
        })
        .await
    }

    /// Removes `user_id` from a conversation with `member.removed` (which the removed user receives too).
    /// Admins may remove anyone but the owner; anyone may remove themselves (an owner who leaves leaves
    /// the conversation without one). Returns the conversation as it is now.
    pub async fn remove_participant(
        &self,
        actor: &User,
        id: &str,
        user_id: &str,
    ) -> Result<Conversation, ChatError> {
        let (actor, id, user_id) = (actor.id.clone(), id.to_owned(), user_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = member_conversation(tx, &id, &actor)?;
                if user_id != actor {
                    require_admin(&conversation, &actor, "remove other participants")?;
                    if conversation.is_owner(&user_id) {
                        return Err(ChatError::Forbidden(format!(
                            "{user_id:?} owns the conversation: only they can leave it"
                        )));
                    }
                }
                if !tx.remove_participant(&id, &user_id, rec.now)? {
                    return Err(ChatError::not_found("participant", user_id.as_str()));
                }
                let conversation = tx.get_conversation(&id)?;
                let removed = tx.get_user(&user_id)?;
                rec.record(
                    tx,
                    &ChatEvent::MembersRemoved {
                        conversation: conversation.clone(),
                        users: vec![removed],
                    },
                )?;
                Ok(conversation)
            })
        })
        .await
    }
}
