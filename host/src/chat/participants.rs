//! Membership: adding users (admins) and removing them (admins, or anyone removing themselves).

use crate::events::ChatEvent;
use crate::model::{Conversation, User};
use crate::store::{
    conversations as conv_store, participants as member_store, users as user_store,
};

use super::{Chat, ChatError, fields, member_conversation, require_admin, require_users};

impl Chat {
    /// Adds users to a conversation (admins only) with `member.added` for those who were not members.
    /// Returns the conversation as it is now.
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
                let added = member_store::add_participants(tx, &id, &user_ids, rec.now)?;
                let conversation = conv_store::get_conversation(tx, &id)?;
                if !added.is_empty() {
                    let users = added
                        .iter()
                        .map(|u| user_store::get_user(tx, u))
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
    /// Admins may remove anyone; anyone may remove themselves. Returns the conversation as it is now.
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
                }
                if !member_store::remove_participant(tx, &id, &user_id, rec.now)? {
                    return Err(ChatError::not_found("participant", user_id.as_str()));
                }
                let conversation = conv_store::get_conversation(tx, &id)?;
                let removed = user_store::get_user(tx, &user_id)?;
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
