//! [`Tx`] on a PostgreSQL transaction: every change, each running the query function of the same name
//! to completion (see the parent module). A change to a conversation or its participants beyond a send's
//! and a read's counters says so first ([`PgConn::conversation_changed`]), and so does a change to a user
//! or a token ([`PgConn::account_changed`]); a send reports its last message.

use super::super::leases;
use super::super::{
    bans, blocks, conversations, dead_letters, devices, events, held, messages, outbox,
    participants, plugin_overrides, presence, reactions, receipts, roles, timers, tokens, users,
};
use super::PgConn;
use crate::model::{
    Ban, Block, Conversation, HeldMessage, HoldState, Message, Millis, Reaction, Receipt, Role,
    User, UserAccount,
};
use crate::store::records::{
    ConversationPatch, DeadLetter, Device, Issued, NewBan, NewConversation, NewHeld, NewMessage,
    NewUser, Outcome, OwnerChange, PluginOverridesRow, PresenceChange, ReadOutcome, ReceiptCounts,
    RoleChange, Timer,
};
use crate::store::{Result, Tx};

impl Tx for PgConn<'_, '_> {
    fn create_user(&self, user: &NewUser, now: Millis) -> Result<User> {
        self.account_changed();
        self.run(|tx| users::create_user(tx, user, now))
    }

    fn create_bot_user(&self, user: &NewUser, now: Millis) -> Result<User> {
        self.account_changed();
        self.run(|tx| users::create_bot_user(tx, user, now))
    }

    fn set_deactivated(&self, id: &str, now: Option<Millis>) -> Result<UserAccount> {
        self.account_changed();
        self.conversation_changed();
        self.run(|tx| users::set_deactivated(tx, id, now))
    }

    fn issue_token(
        &self,
        user_id: &str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<Issued> {
        self.account_changed();
        self.run(|tx| tokens::issue_token(tx, user_id, expires_at, now))
    }

    fn note_use(&self, token_id: &str, now: Millis) -> Result<()> {
        self.account_changed();
        self.run(|tx| tokens::note_use(tx, token_id, now))
    }

    fn revoke_token(&self, user_id: &str, token_id: &str) -> Result<bool> {
        self.account_changed();
        self.run(|tx| tokens::revoke_token(tx, user_id, token_id))
    }

    fn revoke_tokens(&self, user_id: &str) -> Result<usize> {
        self.account_changed();
        self.run(|tx| tokens::revoke_tokens(tx, user_id))
    }

    fn create_conversation(
        &self,
        new: &NewConversation,
        now: Millis,
    ) -> Result<Outcome<Conversation>> {
        self.conversation_changed();
        self.run(|tx| conversations::create_conversation(tx, new, now))
    }

    fn update_conversation(
        &self,
        id: &str,
        patch: &ConversationPatch,
        now: Millis,
    ) -> Result<Conversation> {
        self.conversation_changed();
        self.run(|tx| conversations::update_conversation(tx, id, patch, now))
    }

    fn delete_conversation(&self, id: &str) -> Result<Conversation> {
        self.conversation_changed();
        self.run(|tx| conversations::delete_conversation(tx, id))
    }

    fn add_participants(&self, id: &str, user_ids: &[String], now: Millis) -> Result<Vec<String>> {
        self.conversation_changed();
        self.run(|tx| participants::add_participants(tx, id, user_ids, now))
    }

    fn remove_participant(&self, id: &str, user_id: &str, now: Millis) -> Result<bool> {
        self.conversation_changed();
        self.run(|tx| participants::remove_participant(tx, id, user_id, now))
    }

    fn send_message(&self, new: &NewMessage, now: Millis) -> Result<Outcome<Message>> {
        let sent = self.run(|tx| messages::send_message(tx, new, now))?;
        if sent.changed {
            self.last_message(&new.conversation_id, &sent.value.id);
        }
        Ok(sent)
    }

    fn edit_message(
        &self,
        id: &str,
        body: &str,
        metadata: Option<&serde_json::Value>,
        mentions: &[String],
        now: Millis,
    ) -> Result<Message> {
        self.conversation_changed();
        self.run(|tx| messages::edit_message(tx, id, body, metadata, mentions, now))
    }

    fn delete_message(&self, id: &str, now: Millis) -> Result<Outcome<Message>> {
        self.conversation_changed();
        self.run(|tx| messages::delete_message(tx, id, now))
    }

    fn mark_delivered(
        &self,
        message_id: &str,
        user_id: &str,
        now: Millis,
    ) -> Result<Outcome<Receipt>> {
        self.run(|tx| receipts::mark_delivered(tx, message_id, user_id, now))
    }

    fn mark_read(
        &self,
        conversation_id: &str,
        user_id: &str,
        up_to: Option<&str>,
        now: Millis,
    ) -> Result<ReadOutcome> {
        self.run(|tx| receipts::mark_read(tx, conversation_id, user_id, up_to, now))
    }

    fn add_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        now: Millis,
    ) -> Result<Outcome<Reaction>> {
        self.run(|tx| reactions::add_reaction(tx, message_id, user_id, emoji, now))
    }

    fn remove_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
    ) -> Result<Option<Reaction>> {
        self.run(|tx| reactions::remove_reaction(tx, message_id, user_id, emoji))
    }

    fn append_event(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
        audience: &[String],
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<i64> {
        self.may_append()?;
        if self.cluster.is_some() {
            return self
                .run(|tx| events::append_draft(tx, kind, conversation_id, audience, payload, now));
        }
        self.run(|tx| events::append_event(tx, kind, conversation_id, audience, payload, now, true))
    }

    fn append_event_unqueued(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
        audience: &[String],
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<i64> {
        self.may_append()?;
        if self.cluster.is_some() {
            return self.append_event(kind, conversation_id, audience, payload, now);
        }
        self.run(|tx| {
            events::append_event(tx, kind, conversation_id, audience, payload, now, false)
        })
    }

    fn fan_out(&self, event_id: i64, plugins: &[String], now: Millis) -> Result<usize> {
        self.run(|tx| outbox::fan_out(tx, event_id, plugins, now))
    }

    fn start_delivery(&self, event_id: i64, plugin: &str) -> Result<u32> {
        self.run(|tx| outbox::start_delivery(tx, event_id, plugin))
    }

    fn recover_in_flight(&self) -> Result<usize> {
        if let Some(holder) = self.cluster {
            return self.run(|tx| leases::recover_own(tx, holder));
        }
        self.run(|tx| outbox::recover_in_flight(tx))
    }

    fn replay_dead_letter(&self, id: i64, now: Millis) -> Result<DeadLetter> {
        self.run(|tx| dead_letters::replay_dead_letter(tx, id, now))
    }

    fn add_device(
        &self,
        user_id: &str,
        platform: &str,
        token: &str,
        now: Millis,
    ) -> Result<Device> {
        self.run(|tx| devices::add_device(tx, user_id, platform, token, now))
    }

    fn remove_device(&self, user_id: &str, token: &str) -> Result<bool> {
        self.run(|tx| devices::remove_device(tx, user_id, token))
    }

    fn set_timer(
        &self,
        plugin: &str,
        name: &str,
        due_at: Millis,
        interval_ms: Option<u64>,
        payload: &str,
        now: Millis,
    ) -> Result<()> {
        self.run(|tx| timers::set_timer(tx, plugin, name, due_at, interval_ms, payload, now))
    }

    fn cancel_timer(&self, plugin: &str, name: &str) -> Result<bool> {
        self.run(|tx| timers::cancel_timer(tx, plugin, name))
    }

    fn finish_firing(&self, timer: &Timer, next: Option<Millis>, attempts: u32) -> Result<bool> {
        self.run(|tx| timers::finish_firing(tx, timer, next, attempts))
    }

    fn hold_message(&self, new: &NewHeld, now: Millis) -> Result<Outcome<HeldMessage>> {
        self.run(|tx| held::hold_message(tx, new, now))
    }

    fn decide_held(
        &self,
        id: &str,
        state: HoldState,
        decided_by: &str,
        reason: Option<&str>,
        now: Millis,
    ) -> Result<HeldMessage> {
        self.conversation_changed();
        self.run(|tx| held::decide_held(tx, id, state, decided_by, reason, now))
    }

    fn receipt_counts(&self, message_id: &str) -> Result<ReceiptCounts> {
        self.run(|tx| receipts::receipt_counts(tx, message_id))
    }

    fn set_presence(
        &self,
        user_id: &str,
        node: &str,
        online: bool,
        now: Millis,
    ) -> Result<PresenceChange> {
        self.run(|tx| presence::set_presence(tx, user_id, node, online, now))
    }

    fn clear_node_presence(&self, node: &str, now: Millis) -> Result<Vec<PresenceChange>> {
        self.run(|tx| presence::clear_node_presence(tx, node, now))
    }

    fn set_role(
        &self,
        conversation_id: &str,
        user_id: &str,
        role: Role,
        now: Millis,
    ) -> Result<RoleChange> {
        self.conversation_changed();
        self.run(|tx| roles::set_role(tx, conversation_id, user_id, role, now))
    }

    fn transfer_owner(
        &self,
        conversation_id: &str,
        new_owner: &str,
        now: Millis,
    ) -> Result<OwnerChange> {
        self.conversation_changed();
        self.run(|tx| roles::transfer_owner(tx, conversation_id, new_owner, now))
    }

    fn add_ban(&self, new: &NewBan, now: Millis) -> Result<Outcome<Ban>> {
        self.conversation_changed();
        self.run(|tx| bans::add_ban(tx, new, now))
    }

    fn remove_ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
        self.conversation_changed();
        self.run(|tx| bans::remove_ban(tx, conversation_id, user_id))
    }

    fn block_user(&self, blocker: &str, blocked: &str, now: Millis) -> Result<Outcome<Block>> {
        self.run(|tx| blocks::block_user(tx, blocker, blocked, now))
    }

    fn unblock_user(&self, blocker: &str, blocked: &str) -> Result<Option<Block>> {
        self.run(|tx| blocks::unblock_user(tx, blocker, blocked))
    }

    fn put_plugin_overrides(
        &self,
        name: &str,
        disabled: bool,
        settings: &serde_json::Map<String, serde_json::Value>,
        now: Millis,
    ) -> Result<PluginOverridesRow> {
        let scope = self.overrides_scope();
        self.run(|tx| {
            plugin_overrides::put_plugin_overrides(tx, scope, name, disabled, settings, now)
        })
    }
}
