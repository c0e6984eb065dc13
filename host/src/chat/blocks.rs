//! Blocking: a user blocks another, who can then no longer message them one to one.
//!
//! ## The rules
//! - A block is the blocker's own: `PUT /v1/me/blocks/{user_id}` (idempotent: blocking again keeps the
//!   first block and fires nothing), `DELETE` to lift it, `GET /v1/me/blocks` lists the caller's blocks
//!   only. No one blocks themselves.
//! - A blocked user cannot send to the blocker in their one-to-one conversation (distinct, exactly the
//!   two of them): [`ChatError::Blocked`], 403 `blocked`, checked before the before-hooks and again in the
//!   send's transaction. Group conversations are unaffected, and a new distinct conversation between
//!   them may still be created (as in Stream and CometChat: a block silences, it does not hide).
//! - `user.blocked` and `user.unblocked` go to the blocker alone (their other devices update); the
//!   blocked user is not told.

use crate::events::ChatEvent;
use crate::model::{Block, Conversation, User};
use crate::store::Read;

use super::{Chat, ChatError};

impl Chat {
    /// `actor` blocks `user_id` with `user.blocked` ([`ChatError::NotFound`] for an unknown user,
    /// [`ChatError::Forbidden`] for themselves). Returns the block and whether it is new.
    pub async fn block_user(
        &self,
        actor: &User,
        user_id: &str,
    ) -> Result<(Block, bool), ChatError> {
        if user_id == actor.id {
            return Err(ChatError::Forbidden("you cannot block yourself".into()));
        }
        let (actor, user_id) = (actor.clone(), user_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let Some(blocked) = tx.find_user(&user_id)? else {
                    return Err(ChatError::not_found("user", user_id.as_str()));
                };
                let block = tx.block_user(&actor.id, &user_id, rec.now)?;
                if block.changed {
                    rec.record(
                        tx,
                        &ChatEvent::UserBlocked {
                            blocker: actor.clone(),
                            blocked,
                        },
                    )?;
                }
                Ok((block.value, block.changed))
            })
        })
        .await
    }

    /// `actor` lifts their block of `user_id` with `user.unblocked`; [`ChatError::NotFound`] (block)
    /// when there was none. Returns the lifted block.
    pub async fn unblock_user(&self, actor: &User, user_id: &str) -> Result<Block, ChatError> {
        let (actor, user_id) = (actor.clone(), user_id.to_owned());
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let Some(block) = tx.unblock_user(&actor.id, &user_id)? else {
                    return Err(ChatError::not_found("block", user_id.as_str()));
                };
                rec.record(
                    tx,
                    &ChatEvent::UserUnblocked {
                        blocker: actor.clone(),
                        blocked: block.blocked.clone(),
                    },
                )?;
                Ok(block)
            })
        })
        .await
    }

    /// The users `actor` blocked, oldest block first.
    pub async fn list_blocks(&self, actor: &User) -> Result<Vec<Block>, ChatError> {
        let actor = actor.id.clone();
        self.blocking(move |chat| chat.read(|c| Ok(c.blocks_of(&actor)?)))
            .await
    }
}

/// [`ChatError::Blocked`] when `sender` may not send to `conversation` because it is one to one and the
/// other participant blocked them.
pub(crate) fn refuse_blocked(
    conn: &dyn Read,
    conversation: &Conversation,
    sender: &str,
) -> Result<(), ChatError> {
    let Some(peer) = conversation.one_to_one_peer(sender) else {
        return Ok(());
    };
    if conn.block(peer, sender)?.is_some() {
        return Err(ChatError::Blocked {
            conversation_id: conversation.id.clone(),
            blocker: peer.to_owned(),
        });
    }
    Ok(())
}
