//! Presence as the chat sees it: recording a node's change of a user's presence (with the
//! `user.presence.changed` event when the user's overall state flips) and reading users' presence. The
//! connection counting is in [`crate::presence`].

use crate::events::ChatEvent;
use crate::model::{Presence, User};

use super::{Chat, ChatError};

impl Chat {
    /// Records that `user_id` is (or is no longer) connected to `node`; when that flips the user online
    /// or offline everywhere, appends `user.presence.changed` for the user and their contacts. Blocking.
    pub fn record_presence_blocking(
        &self,
        user_id: &str,
        node: &str,
        online: bool,
    ) -> Result<(), ChatError> {
        self.commit(|tx, rec| {
            let change = tx.set_presence(user_id, node, online, rec.now)?;
            if change.changed {
                let user = tx.get_user(user_id)?;
                let contacts = tx.contacts_of(user_id)?;
                let event = ChatEvent::UserPresenceChanged {
                    user,
                    presence: change.presence,
                };
                rec.record_for(tx, &event, &contacts)?;
            }
            Ok(())
        })
    }

    /// Drops the presence rows of `node` (it is starting: its connections are gone), with an event for
    /// each user that left offline. Blocking.
    pub fn clear_node_presence_blocking(&self, node: &str) -> Result<(), ChatError> {
        self.commit(|tx, rec| {
            for change in tx.clear_node_presence(node, rec.now)? {
                let user = tx.get_user(&change.presence.user_id)?;
                let contacts = tx.contacts_of(&user.id)?;
                let event = ChatEvent::UserPresenceChanged {
                    user,
                    presence: change.presence,
                };
                rec.record_for(tx, &event, &contacts)?;
            }
            Ok(())
        })
    }

    /// The presence of `user_ids` (ids that are not users are left out), for any signed-in user, as Stream
    /// and CometChat show it.
    pub async fn presence_of(
        &self,
        _actor: &User,
        user_ids: Vec<String>,
    ) -> Result<Vec<Presence>, ChatError> {
        self.blocking(move |chat| Ok(chat.db.read(|c| c.presence_of(&user_ids))?))
            .await
    }
}
