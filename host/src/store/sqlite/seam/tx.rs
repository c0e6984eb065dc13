//! [`Tx`] on the writer in a transaction ([`Writing`]): every change, each calling the function of the
//! same name in this backend's modules.

use super::super::writer::Writing;

use super::super::{
    bans, blocks, conversations, dead_letters, devices, events, held, messages, outbox,
    participants, plugin_overrides, presence, reactions, receipts, roles, timers, tokens, users,
};
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

impl Tx for Writing<'_> {
    fn create_user(&self, user: &NewUser, now: Millis) -> Result<User> {
        users::create_user(self, user, now)
    }

    fn create_bot_user(&self, user: &NewUser, now: Millis) -> Result<User> {
        users::create_bot_user(self, user, now)
    }

    fn set_deactivated(&self, id: &str, now: Option<Millis>) -> Result<UserAccount> {
        users::set_deactivated(self, id, now)
    }

    fn issue_token(
        &self,
        user_id: &str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<Issued> {
        tokens::issue_token(self, user_id, expires_at, now)
    }

    fn note_use(&self, token_id: &str, now: Millis) -> Result<()> {
        tokens::note_use(self, token_id, now)
    }

    fn revoke_token(&self, user_id: &str, token_id: &str) -> Result<bool> {
        tokens::revoke_token(self, user_id, token_id)
    }

    fn revoke_tokens(&self, user_id: &str) -> Result<usize> {
        tokens::revoke_tokens(self, user_id)
    }

    fn create_conversation(
        &self,
        new: &NewConversation,
        now: Millis,
    ) -> Result<Outcome<Conversation>> {
        conversations::create_conversation(self, new, now)
    }

    fn update_conversation(
        &self,
        id: &str,
        patch: &ConversationPatch,
        now: Millis,
    ) -> Result<Conversation> {
        conversations::update_conversation(self, id, patch, now)
    }

    fn delete_conversation(&self, id: &str) -> Result<Conversation> {
        conversations::delete_conversation(self, id)
    }

    fn add_participants(&self, id: &str, user_ids: &[String], now: Millis) -> Result<Vec<String>> {
        participants::add_participants(self, id, user_ids, now)
    }

    fn remove_participant(&self, id: &str, user_id: &str, now: Millis) -> Result<bool> {
        participants::remove_participant(self, id, user_id, now)
    }

    fn send_message(&self, new: &NewMessage, now: Millis) -> Result<Outcome<Message>> {
        messages::send_message(self, new, now)
    }

    fn edit_message(
        &self,
        id: &str,
        body: &str,
        metadata: Option<&serde_json::Value>,
        mentions: &[String],
        now: Millis,
    ) -> Result<Message> {
        messages::edit_message(self, id, body, metadata, mentions, now)
    }

    fn delete_message(&self, id: &str, now: Millis) -> Result<Outcome<Message>> {
        messages::delete_message(self, id, now)
    }

    fn mark_delivered(
        &self,
        message_id: &str,
        user_id: &str,
        now: Millis,
    ) -> Result<Outcome<Receipt>> {
        receipts::mark_delivered(self, message_id, user_id, now)
    }

    fn mark_read(
        &self,
        conversation_id: &str,
        user_id: &str,
        up_to: Option<&str>,
        now: Millis,
    ) -> Result<ReadOutcome> {
        receipts::mark_read(self, conversation_id, user_id, up_to, now)
    }

    fn add_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        now: Millis,
    ) -> Result<Outcome<Reaction>> {
        reactions::add_reaction(self, message_id, user_id, emoji, now)
    }

    fn remove_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
    ) -> Result<Option<Reaction>> {
        reactions::remove_reaction(self, message_id, user_id, emoji)
    }

    fn append_event(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
        audience: &[String],
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<i64> {
        let queue = events::Queue::ForAfterHooks;
        events::append_event(self, kind, conversation_id, audience, payload, now, queue)
    }

    fn append_event_unqueued(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
        audience: &[String],
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<i64> {
        let queue = events::Queue::No;
        events::append_event(self, kind, conversation_id, audience, payload, now, queue)
    }

    fn fan_out(&self, event_id: i64, plugins: &[String], now: Millis) -> Result<usize> {
        outbox::fan_out(self, event_id, plugins, now)
    }

    fn start_delivery(&self, event_id: i64, plugin: &str) -> Result<u32> {
        outbox::start_delivery(self, event_id, plugin)
    }

    fn recover_in_flight(&self) -> Result<usize> {
        outbox::recover_in_flight(self)
    }

    fn replay_dead_letter(&self, id: i64, now: Millis) -> Result<DeadLetter> {
        dead_letters::replay_dead_letter(self, id, now)
    }

    fn add_device(
        &self,
        user_id: &str,
        platform: &str,
        token: &str,
        now: Millis,
    ) -> Result<Device> {
        devices::add_device(self, user_id, platform, token, now)
    }

    fn remove_device(&self, user_id: &str, token: &str) -> Result<bool> {
        devices::remove_device(self, user_id, token)
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
        timers::set_timer(self, plugin, name, due_at, interval_ms, payload, now)
    }

    fn cancel_timer(&self, plugin: &str, name: &str) -> Result<bool> {
        timers::cancel_timer(self, plugin, name)
    }

    fn finish_firing(&self, timer: &Timer, next: Option<Millis>, attempts: u32) -> Result<bool> {
        timers::finish_firing(self, timer, next, attempts)
    }

    fn hold_message(&self, new: &NewHeld, now: Millis) -> Result<Outcome<HeldMessage>> {
        held::hold_message(self, new, now)
    }

    fn decide_held(
        &self,
        id: &str,
        state: HoldState,
        decided_by: &str,
        reason: Option<&str>,
        now: Millis,
    ) -> Result<HeldMessage> {
        held::decide_held(self, id, state, decided_by, reason, now)
    }

    fn receipt_counts(&self, message_id: &str) -> Result<ReceiptCounts> {
        receipts::receipt_counts(self, message_id)
    }

    fn set_presence(
        &self,
        user_id: &str,
        node: &str,
        online: bool,
        now: Millis,
    ) -> Result<PresenceChange> {
        presence::set_presence(self, user_id, node, online, now)
    }

    fn clear_node_presence(&self, node: &str, now: Millis) -> Result<Vec<PresenceChange>> {
        presence::clear_node_presence(self, node, now)
    }

    fn set_role(
        &self,
        conversation_id: &str,
        user_id: &str,
        role: Role,
        now: Millis,
    ) -> Result<RoleChange> {
        roles::set_role(self, conversation_id, user_id, role, now)
    }

    fn transfer_owner(
        &self,
        conversation_id: &str,
        new_owner: &str,
        now: Millis,
    ) -> Result<OwnerChange> {
        roles::transfer_owner(self, conversation_id, new_owner, now)
    }

    fn add_ban(&self, new: &NewBan, now: Millis) -> Result<Outcome<Ban>> {
        bans::add_ban(self, new, now)
    }

    fn remove_ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
        bans::remove_ban(self, conversation_id, user_id)
    }

    fn block_user(&self, blocker: &str, blocked: &str, now: Millis) -> Result<Outcome<Block>> {
        blocks::block_user(self, blocker, blocked, now)
    }

    fn unblock_user(&self, blocker: &str, blocked: &str) -> Result<Option<Block>> {
        blocks::unblock_user(self, blocker, blocked)
    }

    fn put_plugin_overrides(
        &self,
        name: &str,
        disabled: bool,
        settings: &serde_json::Map<String, serde_json::Value>,
        now: Millis,
    ) -> Result<PluginOverridesRow> {
        plugin_overrides::put_plugin_overrides(self, name, disabled, settings, now)
    }
}
