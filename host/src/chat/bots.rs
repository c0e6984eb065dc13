//! What plugins do as their bot users (the `chat` power), as chat operations: every write goes through
//! [`Chat::commit`] with its events, like a user's. All blocking: they run on the plugin call's thread.
//!
//! Posting is [`Chat::send_blocking`] itself (with [`Origin::Plugin`](crate::model::Origin::Plugin)).

use serde_json::json;

use crate::events::ChatEvent;
use crate::model::{Conversation, Message, User, UserAccount};
use crate::store::StoreError;

use super::{Chat, ChatError};

impl Chat {
    /// The bot user `id` of plugin `plugin` (named after it, metadata `{"bot": true, "plugin": ...}`),
    /// created the first time it is asked for. [`ChatError::Forbidden`] when an admin deactivated it, or
    /// when the id is held by an ordinary user (created before `bot.` ids were reserved): a plugin never
    /// acts as someone else's account.
    pub fn bot_user_blocking(&self, id: &str, plugin: &str) -> Result<User, ChatError> {
        if !crate::store::limits::valid_user_id(id) {
            return Err(ChatError::invalid(
                "plugin",
                format!("the plugin name {plugin:?} cannot name a bot user"),
            ));
        }
        if let Some(account) = self.read(|c| Ok(c.find_account(id)?))? {
            return usable_bot(account);
        }
        let new = crate::store::NewUser {
            id: id.to_owned(),
            name: plugin.to_owned(),
            metadata: json!({ "bot": true, "plugin": plugin }),
        };
        let now = self.now_ms();
        let account = self.db().write(|tx| {
            match tx.create_bot_user(&new, now) {
                // Conflict: created meanwhile by another call of the same plugin (or held by a user).
                Ok(_) | Err(StoreError::Conflict(_)) => tx.get_account(id),
                Err(other) => Err(other),
            }
        })?;
        usable_bot(account)
    }

    /// Adds `bot` to a conversation, with `member.added` if it was not a participant. A plugin's grant
    /// (`chat_join`) is its authorization: no conversation admin is involved, but a banned bot stays out
    /// ([`ChatError::Banned`]).
    pub fn join_bot_blocking(&self, bot: &User, conversation_id: &str) -> Result<(), ChatError> {
        self.commit(|tx, rec| {
            tx.get_conversation(conversation_id)?;
            super::bans::refuse_banned(tx, conversation_id, std::slice::from_ref(&bot.id))?;
            let added =
                tx.add_participants(conversation_id, std::slice::from_ref(&bot.id), rec.now)?;
            if !added.is_empty() {
                let conversation = tx.get_conversation(conversation_id)?;
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
        self.read(|c| Ok(c.get_conversation(conversation_id)?))
    }

    /// The newest `limit` messages of a conversation, newest first, for a plugin granted `chat_read`.
    pub fn recent_messages_blocking(
        &self,
        conversation_id: &str,
        limit: u32,
    ) -> Result<Vec<Message>, ChatError> {
        self.read(|c| {
            c.get_conversation(conversation_id)?;
            let page = crate::store::MessagePage {
                thread: None,
                before: None,
                after: None,
                limit: Some(limit),
                oldest_first: false,
            };
            Ok(c.list_messages(conversation_id, &page)?)
        })
    }

    /// The conversation message `message_id` belongs to (a bot's reply goes there).
    pub fn conversation_of_message_blocking(&self, message_id: &str) -> Result<String, ChatError> {
        self.read(|c| Ok(c.get_message(message_id)?.conversation_id))
    }

    /// Everyone in a conversation now, in the order they joined (`chat.participants`).
    pub fn participants_blocking(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<crate::model::Participant>, ChatError> {
        self.read(|c| {
            c.get_conversation(conversation_id)?;
            Ok(c.participants(conversation_id)?)
        })
    }

    /// The users a live event about `conversation_id` goes to: its participants.
    pub fn audience_blocking(&self, conversation_id: &str) -> Result<Vec<String>, ChatError> {
        Ok(self.conversation_blocking(conversation_id)?.participant_ids)
    }

    /// Whether user `id` exists ([`ChatError::NotFound`] if not).
    pub fn require_user_blocking(&self, id: &str) -> Result<(), ChatError> {
        self.read(|c| Ok(c.get_user(id).map(|_| ())?))
    }
}

/// The bot user of `account` if a plugin may act as it: a bot user, and active.
fn usable_bot(account: UserAccount) -> Result<User, ChatError> {
    let id = &account.user.id;
    if !account.bot {
        return Err(ChatError::Forbidden(format!(
            "user {id:?} is an ordinary user holding this plugin's bot id (created before `bot.` ids were \
             reserved); the plugin may not act as it"
        )));
    }
    if !account.active {
        return Err(ChatError::Forbidden(format!(
            "bot user {id:?} is deactivated; an admin can reactivate it"
        )));
    }
    Ok(account.user)
}

#[cfg(test)]
mod tests {
    use crate::plugins::host::chat::bot_id;
    use crate::store::limits::{BOT_ID_PREFIX, is_bot_id};

    #[test]
    fn bot_ids_are_in_the_reserved_namespace() {
        let id = bot_id("command_bot");
        assert!(id.starts_with(BOT_ID_PREFIX) && is_bot_id(&id), "{id}");
    }
}
