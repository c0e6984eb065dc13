//! What plugins do as their bot users (the `chat` power), as chat operations: every write goes through
//! [`Chat::commit`] with its events, like a user's. All blocking: they run on the plugin call's thread.
//!
//! Posting is [`Chat::send_blocking`] itself (with [`Origin::Plugin`](crate::model::Origin::Plugin)).

use serde_json::json;

use crate::events::ChatEvent;
use crate::model::{Conversation, Message, User};
use crate::store::{
    StoreError, conversations as conv_store, ids::now_ms, messages as msg_store,
    participants as member_store, users as user_store,
};

use super::{Chat, ChatError};

impl Chat {
    /// The bot user `id` of plugin `plugin` (named after it, metadata `{"bot": true, "plugin": ...}`),
    /// created the first time it is asked for.
    pub fn bot_user_blocking(&self, id: &str, plugin: &str) -> Result<User, ChatError> {
        if !user_store::valid_user_id(id) {
            return Err(ChatError::invalid(
                "plugin",
                format!("the plugin name {plugin:?} cannot name a bot user"),
            ));
        }
        if let Some(user) = self.read(|c| Ok(user_store::find_user(c, id)?))? {
            return Ok(user);
        }
        let new = user_store::NewUser {
            id: id.to_owned(),
            name: plugin.to_owned(),
            metadata: json!({ "bot": true, "plugin": plugin }),
        };
        Ok(self
            .db()
            .write(|tx| match user_store::create_user(tx, &new, now_ms()) {
                // Created meanwhile by another call of the same plugin.
                Err(StoreError::Conflict(_)) => user_store::get_user(tx, id),
                other => other,
            })?)
    }

    /// Adds `bot` to a conversation, with `member.added` if it was not a participant. A plugin's grant
    /// (`chat_join`) is its authorization: no conversation admin is involved.
    pub fn join_bot_blocking(&self, bot: &User, conversation_id: &str) -> Result<(), ChatError> {
        self.commit(|tx, rec| {
            conv_store::get_conversation(tx, conversation_id)?;
            let added = member_store::add_participants(
                tx,
                conversation_id,
                std::slice::from_ref(&bot.id),
                rec.now,
            )?;
            if !added.is_empty() {
                let conversation = conv_store::get_conversation(tx, conversation_id)?;
                rec.record(
                    tx,
                    &ChatEvent::MembersAdded {
                        conversation,
                        users: vec![bot.clone()],
                    },
                )?;
            }
            Ok(())
        })
    }

    /// A conversation as it is now, for a plugin granted `chat_read`.
    pub fn conversation_blocking(&self, conversation_id: &str) -> Result<Conversation, ChatError> {
        self.read(|c| Ok(conv_store::get_conversation(c, conversation_id)?))
    }

    /// The newest `limit` messages of a conversation, newest first, for a plugin granted `chat_read`.
    pub fn recent_messages_blocking(
        &self,
        conversation_id: &str,
        limit: u32,
    ) -> Result<Vec<Message>, ChatError> {
        self.read(|c| {
            conv_store::get_conversation(c, conversation_id)?;
            let page = msg_store::MessagePage {
                before: None,
                after: None,
                limit: Some(limit),
                oldest_first: false,
            };
            Ok(msg_store::list_messages(c, conversation_id, &page)?)
        })
    }

    /// The users a live event about `conversation_id` goes to: its participants.
    pub fn audience_blocking(&self, conversation_id: &str) -> Result<Vec<String>, ChatError> {
        Ok(self.conversation_blocking(conversation_id)?.participant_ids)
    }

    /// Whether user `id` exists ([`ChatError::NotFound`] if not).
    pub fn require_user_blocking(&self, id: &str) -> Result<(), ChatError> {
        self.read(|c| Ok(user_store::get_user(c, id).map(|_| ())?))
    }
}
