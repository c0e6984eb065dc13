//! What plugins do as their bot users (the `chat` power), as chat operations: every write goes through
//! [`Chat::commit`] with its events, like a user's. All blocking: they run on the plugin call's thread.
//!
//! Posting is [`Chat::send_blocking`] itself (with [`Origin::Plugin`](crate::model::Origin::Plugin)).

use serde_json::json;

use crate::events::ChatEvent;
use crate::model::{Conversation, Message, User, UserAccount};
use crate::store::{
    StoreError, conversations as conv_store, ids::now_ms, messages as msg_store,
    participants as member_store, users as user_store,
};

use super::{Chat, ChatError};

impl Chat {
    /// The bot user `id` of plugin `plugin` (named after it, metadata `{"bot": true, "plugin": ...}`),
    /// created the first time it is asked for. [`ChatError::Forbidden`] when an admin deactivated it, or
    /// when the id is held by an ordinary user (created before `bot.` ids were reserved): a plugin never
    /// acts as someone else's account.
    pub fn bot_user_blocking(&self, id: &str, plugin: &str) -> Result<User, ChatError> {
        if !user_store::valid_user_id(id) {
            return Err(ChatError::invalid(
                "plugin",
                format!("the plugin name {plugin:?} cannot name a bot user"),
            ));
        }
        if let Some(account) = self.read(|c| Ok(user_store::find_account(c, id)?))? {
            return usable_bot(account);
        }
        let new = user_store::NewUser {
            id: id.to_owned(),
            name: plugin.to_owned(),
            metadata: json!({ "bot": true, "plugin": plugin }),
        };
        let account = self.db().write(|tx| {
            match user_store::create_bot_user(tx, &new, now_ms()) {
                // Conflict: created meanwhile by another call of the same plugin (or held by a user).
                Ok(_) | Err(StoreError::Conflict(_)) => user_store::get_account(tx, id),
                Err(other) => Err(other),
            }
        })?;
        usable_bot(account)
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
    use crate::store::users::{BOT_ID_PREFIX, is_bot_id};

    #[test]
    fn bot_ids_are_in_the_reserved_namespace() {
        let id = bot_id("command_bot");
        assert!(id.starts_with(BOT_ID_PREFIX) && is_bot_id(&id), "{id}");
    }
}
