//! Threads: a message may reply to a top-level message of its conversation (`parent_id` on send; one
//! level deep, as in Stream and CometChat). The parent carries its reply count and the time of its
//! newest reply; the conversation's message list shows top-level messages, and a thread's replies are
//! listed through their parent.

use crate::model::{Message, User};

use super::fields;
use super::inputs::MessagePage;
use super::{Chat, ChatError, member_conversation, member_message};

/// Most threads one listing returns.
pub const MAX_THREADS_PAGE: u32 = 100;

impl Chat {
    /// A page of the replies to `parent_id` (participants only), by seq, newest first unless only
    /// `after` is given, like a conversation's messages.
    pub async fn list_replies(
        &self,
        actor: &User,
        parent_id: &str,
        page: MessagePage,
    ) -> Result<Vec<Message>, ChatError> {
        if let Some(limit) = page.limit {
            fields::MESSAGES_LIMIT.check(limit.into())?;
        }
        let (user, id) = (actor.id.clone(), parent_id.to_owned());
        self.blocking(move |chat| {
            chat.read(|c| {
                let (parent, _) = member_message(c, &id, &user)?;
                let page = crate::store::MessagePage {
                    thread: Some(parent.id.clone()),
                    before: page.before,
                    after: page.after,
                    limit: page.limit,
                    oldest_first: false,
                };
                Ok(c.list_messages(&parent.conversation_id, &page)?)
            })
        })
        .await
    }

    /// The messages of a conversation that have replies (participants only), the most recently replied
    /// to first, at most `limit` (default and cap [`MAX_THREADS_PAGE`]).
    pub async fn threads(
        &self,
        actor: &User,
        conversation_id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Message>, ChatError> {
        if let Some(limit) = limit {
            fields::THREADS_LIMIT.check(limit.into())?;
        }
        let (user, id) = (actor.id.clone(), conversation_id.to_owned());
        let limit = limit.unwrap_or(MAX_THREADS_PAGE);
        self.blocking(move |chat| {
            chat.read(|c| {
                member_conversation(c, &id, &user)?;
                Ok(c.threads(&id, limit)?)
            })
        })
        .await
    }
}
