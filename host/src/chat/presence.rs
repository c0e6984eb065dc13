//! Presence as the chat sees it: recording a node's change of a user's presence (with the
//! `user.presence.changed` event when the user's overall state flips) and reading users' presence. The
//! connection counting is in [`crate::presence`].
//!
//! The event is live only, like typing: with 1,000 contacts a stored event would write 1,000 audience
//! rows per connect and disconnect, to be replayed to clients who only need the current state (one
//! `GET /v1/presence` after a reconnect). It is stored, with an empty audience, only when a plugin
//! implements `after-user-presence-changed`, so the hook is delivered durably like every after-hook.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::events::{self, ChatEvent};
use crate::live::LiveEvent;
use crate::model::{Presence, User};
use crate::plugins::Hook;
use crate::store::{PresenceChange, Tx};

use super::{Chat, ChatError, Recorder};

/// The event of one presence flip, for the user and their contacts. Live only, as typing is: recorded
/// in `tx` (stored for the hook, published after the commit) when a plugin implements
/// `after-user-presence-changed` (`hooked`), else returned to publish after the commit without storing.
fn announce(
    tx: &dyn Tx,
    rec: &mut Recorder,
    change: PresenceChange,
    hooked: bool,
) -> Result<Option<LiveEvent>, ChatError> {
    let user = tx.get_user(&change.presence.user_id)?;
    let contacts = tx.contacts_of(&user.id)?;
    let event = ChatEvent::UserPresenceChanged {
        user,
        presence: change.presence,
    };
    if hooked {
        rec.record_for(tx, &event, &contacts)?;
        Ok(None)
    } else {
        Ok(Some(events::live_only_for(&event, &contacts, rec.now)))
    }
}

impl Chat {
    /// Records that `user_id` is (or is no longer) connected to `node`; when that flips the user online
    /// or offline everywhere, announces `user.presence.changed` to the user and their contacts. Blocking.
    pub fn record_presence_blocking(
        &self,
        user_id: &str,
        node: &str,
        online: bool,
    ) -> Result<(), ChatError> {
        let hooked = self.registry.any_implements(Hook::AfterUserPresenceChanged);
        let live = self.commit(|tx, rec| {
            let change = tx.set_presence(user_id, node, online, rec.now)?;
            let mut live = Vec::new();
            if change.changed {
                live.extend(announce(tx, rec, change, hooked)?);
            }
            Ok(live)
        })?;
        self.publish_presence(live);
        Ok(())
    }

    /// Drops the presence rows of `node` (it is starting: its connections are gone), announcing each
    /// user that left offline. Blocking.
    pub fn clear_node_presence_blocking(&self, node: &str) -> Result<(), ChatError> {
        let hooked = self.registry.any_implements(Hook::AfterUserPresenceChanged);
        let live = self.commit(|tx, rec| {
            let mut live = Vec::new();
            for change in tx.clear_node_presence(node, rec.now)? {
                live.extend(announce(tx, rec, change, hooked)?);
            }
            Ok(live)
        })?;
        self.publish_presence(live);
        Ok(())
    }

    /// Drops the presence rows of the nodes other than `me` that died with users connected (their
    /// heartbeat is more than `alive_within` old, [`crate::store::Read::silent_presence_nodes`]),
    /// announcing each user that left offline; the nodes cleared. Blocking.
    pub fn clear_silent_nodes_blocking(
        &self,
        me: &str,
        alive_within: Duration,
    ) -> Result<Vec<String>, ChatError> {
        let alive_ms = i64::try_from(alive_within.as_millis()).unwrap_or(i64::MAX);
        let mut nodes = self.db.read(|c| c.silent_presence_nodes(alive_ms))?;
        nodes.retain(|node| node != me);
        for node in &nodes {
            self.clear_node_presence_blocking(node)?;
        }
        Ok(nodes)
    }

    /// Makes `node`'s presence rows those of `connected` (the users it holds connections of, or held
    /// within the grace period), recording each difference as [`Chat::record_presence_blocking`] does: a
    /// node whose rows another node swept while the database could not hear its heartbeat puts its
    /// users back online. One count when nothing differs. Blocking.
    pub fn reconcile_node_presence_blocking(
        &self,
        node: &str,
        connected: &BTreeSet<String>,
    ) -> Result<(), ChatError> {
        let count = self.db.read(|c| c.node_presence_count(node))?;
        if usize::try_from(count).is_ok_and(|count| count == connected.len()) {
            return Ok(());
        }
        let stored: BTreeSet<String> = self
            .db
            .read(|c| c.node_presence_users(node))?
            .into_iter()
            .collect();
        for user in connected.difference(&stored) {
            self.record_presence_blocking(user, node, true)?;
        }
        for user in stored.difference(connected) {
            self.record_presence_blocking(user, node, false)?;
        }
        Ok(())
    }

    /// Publishes presence changes that were not stored (no plugin implements the hook).
    fn publish_presence(&self, live: Vec<LiveEvent>) {
        for event in live {
            self.hub.publish(event);
        }
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
