//! Conversations: create (with the distinct lookup), list mine, get, update, delete.

use crate::events::ChatEvent;
use crate::model::{Conversation, User, UserConversation};

use super::inputs::{CreateConversation, UpdateConversation};
use super::require_users;
use super::{Chat, ChatError, fields, member_conversation, require_admin};

/// Most conversations `list_conversations` returns, most recently active first. A person is rarely in
/// more than a few hundred; the list is for a sidebar, not an archive.
pub const MAX_LISTED_CONVERSATIONS: u32 = 500;

impl Chat {
    /// Creates a conversation with `actor` in it, and `actor` as its only admin when `admin_ids` is empty.
    /// `actor` owns it when they are an admin; otherwise the first of `admin_ids` does.
    /// With `distinct_by_participants`, an existing distinct conversation with the same participant set
    /// is returned instead (no event).
    pub async fn create_conversation(
        &self,
        actor: &User,
        input: CreateConversation,
    ) -> Result<Conversation, ChatError> {
        let actor = actor.id.clone();
        if let Some(title) = &input.title {
            fields::TITLE.check(title)?;
        }
        fields::PARTICIPANT_IDS.check(&input.participant_ids)?;
        fields::ADMIN_IDS.check(&input.admin_ids)?;
        fields::METADATA.check(&input.metadata)?;
        self.blocking(move |chat| {
            chat.read(|c| {
                require_users(c, &fields::PARTICIPANT_IDS, &input.participant_ids)?;
                require_users(c, &fields::ADMIN_IDS, &input.admin_ids)
            })?;
            let mut participant_ids = input.participant_ids;
            if !participant_ids.contains(&actor) {
                participant_ids.insert(0, actor.clone());
            }
            let admin_ids = if input.admin_ids.is_empty() {
                vec![actor.clone()]
            } else {
                input.admin_ids
            };
            let new = crate::store::NewConversation {
                title: input.title,
                participant_ids,
                admin_ids,
                owner_id: Some(actor.clone()),
                distinct_by_participants: input.distinct_by_participants,
                metadata: input.metadata,
            };
            chat.commit(|tx, rec| {
                let created = tx.create_conversation(&new, rec.now)?;
                if created.changed {
                    rec.record(
                        tx,
                        &ChatEvent::ConversationCreated {
                            conversation: created.value.clone(),
                        },
                    )?;
                }
                Ok(created.value)
            })
        })
        .await
    }

    /// `actor`'s conversations, most recently active first, each with their unread count and newest
    /// message (at most [`MAX_LISTED_CONVERSATIONS`]).
    pub async fn list_conversations(
        &self,
        actor: &User,
    ) -> Result<Vec<UserConversation>, ChatError> {
        let actor = actor.id.clone();
        self.blocking(move |chat| {
            Ok(chat
                .db
                .read(|c| c.list_for_user(&actor, MAX_LISTED_CONVERSATIONS))?)
        })
        .await
    }

    /// One conversation, for its participants.
    pub async fn get_conversation(
        &self,
        actor: &User,
        id: &str,
    ) -> Result<Conversation, ChatError> {
        let (actor, id) = (actor.id.clone(), id.to_owned());
        self.blocking(move |chat| chat.read(|c| member_conversation(c, &id, &actor)))
            .await
    }

    /// Changes the title and/or metadata (admins only) with `conversation.updated`. A patch with neither
    /// changes nothing and fires nothing.
    pub async fn update_conversation(
        &self,
        actor: &User,
        id: &str,
        patch: UpdateConversation,
    ) -> Result<Conversation, ChatError> {
        if let Some(Some(title)) = &patch.title {
            fields::TITLE.check(title)?;
        }
        if let Some(metadata) = &patch.metadata {
            fields::METADATA.check(metadata)?;
        }
        let (actor, id) = (actor.id.clone(), id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = member_conversation(tx, &id, &actor)?;
                require_admin(&conversation, &actor, "update it")?;
                if patch.title.is_none() && patch.metadata.is_none() {
                    return Ok(conversation);
                }
                let store_patch = crate::store::ConversationPatch {
                    title: patch.title.clone(),
                    metadata: patch.metadata.clone(),
                };
                let updated = tx.update_conversation(&id, &store_patch, rec.now)?;
                rec.record(
                    tx,
                    &ChatEvent::ConversationUpdated {
                        conversation: updated.clone(),
                    },
                )?;
                Ok(updated)
            })
        })
        .await
    }

    /// Deletes a conversation with its messages (admins only) with `conversation.deleted`, which its
    /// former participants still receive.
    pub async fn delete_conversation(&self, actor: &User, id: &str) -> Result<(), ChatError> {
        let (actor, id) = (actor.id.clone(), id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let conversation = member_conversation(tx, &id, &actor)?;
                require_admin(&conversation, &actor, "delete it")?;
                let deleted = tx.delete_conversation(&id)?;
                rec.record(
                    tx,
                    &ChatEvent::ConversationDeleted {
                        conversation: deleted,
                    },
                )?;
                Ok(())
            })
        })
        .await
    }
}
