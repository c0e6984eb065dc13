//! [`Read`] and [`Tx`] on the SQLite connections: a `Connection` (a read snapshot or the writer) answers
//! every query, the writer in a transaction ([`Writing`]) every query and change. Each method calls the query
//! function of the same name in this backend's modules, so the SQLite path keeps its cached statements and
//! its numbers. `Tx` is in [`tx`], the dispatcher's part of it ([`Deliveries`](crate::store::Deliveries)) in
//! [`deliveries`].
//!
//! [`Tx`]: crate::store::Tx

use rusqlite::Connection;

use super::writer::Writing;

use super::{
    bans, blocks, conversations, dead_letters, devices, events, held, messages, outbox,
    participants, plugin_overrides, presence, receipts, timers, tokens, users,
};
use crate::model::{
    Ban, Block, Conversation, HeldMessage, HoldState, Message, Millis, Participant, Presence,
    Receipt, TokenInfo, User, UserAccount, UserConversation,
};
use crate::store::records::{
    DeadLetter, Delivery, Device, MessagePage, PluginOverridesRow, QueuedDelivery, StoredEvent,
    Timer, TokenOwner,
};
use crate::store::{Read, Result};

/// `Read` for a type that dereferences to a `Connection` (both the connection and a transaction on it).
macro_rules! impl_read {
    ($ty:ty) => {
        impl Read for $ty {
            fn ping(&self) -> Result<()> {
                self.query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            }

            fn get_user(&self, id: &str) -> Result<User> {
                users::get_user(self, id)
            }

            fn find_user(&self, id: &str) -> Result<Option<User>> {
                users::find_user(self, id)
            }

            fn get_account(&self, id: &str) -> Result<UserAccount> {
                users::get_account(self, id)
            }

            fn find_account(&self, id: &str) -> Result<Option<UserAccount>> {
                users::find_account(self, id)
            }

            fn list_accounts(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserAccount>> {
                users::list_accounts(self, after, limit)
            }

            fn squatted_bot_ids(&self) -> Result<Vec<String>> {
                users::squatted_bot_ids(self)
            }

            fn missing_users(&self, ids: &[String]) -> Result<Vec<String>> {
                users::missing_users(self, ids)
            }

            fn token_owner(&self, token: &str) -> Result<Option<TokenOwner>> {
                tokens::token_owner(self, token)
            }

            fn list_tokens(&self, user_id: &str, now: Millis) -> Result<Vec<TokenInfo>> {
                tokens::list_tokens(self, user_id, now)
            }

            fn get_conversation(&self, id: &str) -> Result<Conversation> {
                conversations::get_conversation(self, id)
            }

            fn list_for_user(&self, user_id: &str, limit: u32) -> Result<Vec<UserConversation>> {
                conversations::list_for_user(self, user_id, limit)
            }

            fn participant(
                &self,
                conversation_id: &str,
                user_id: &str,
            ) -> Result<Option<Participant>> {
                participants::participant(self, conversation_id, user_id)
            }

            fn is_participant(&self, conversation_id: &str, user_id: &str) -> Result<bool> {
                participants::is_participant(self, conversation_id, user_id)
            }

            fn participants(&self, conversation_id: &str) -> Result<Vec<Participant>> {
                participants::participants(self, conversation_id)
            }

            fn get_message(&self, id: &str) -> Result<Message> {
                messages::get_message(self, id)
            }

            fn find_by_client_id(
                &self,
                sender_id: &str,
                client_id: &str,
            ) -> Result<Option<Message>> {
                messages::find_by_client_id(self, sender_id, client_id)
            }

            fn list_messages(
                &self,
                conversation_id: &str,
                page: &MessagePage,
            ) -> Result<Vec<Message>> {
                messages::list_messages(self, conversation_id, page)
            }

            fn unread_count(&self, conversation_id: &str, user_id: &str) -> Result<u32> {
                receipts::unread_count(self, conversation_id, user_id)
            }

            fn receipt(&self, message_id: &str, user_id: &str) -> Result<Option<Receipt>> {
                receipts::receipt(self, message_id, user_id)
            }

            fn threads(&self, conversation_id: &str, limit: u32) -> Result<Vec<Message>> {
                messages::threads(self, conversation_id, limit)
            }

            fn get_held(&self, id: &str) -> Result<HeldMessage> {
                held::get_held(self, id)
            }

            fn find_held_by_client_id(
                &self,
                sender_id: &str,
                client_id: &str,
            ) -> Result<Option<HeldMessage>> {
                held::find_held_by_client_id(self, sender_id, client_id)
            }

            fn held_messages(
                &self,
                conversation_id: &str,
                sender: Option<&str>,
                state: Option<HoldState>,
                limit: u32,
            ) -> Result<Vec<HeldMessage>> {
                held::held_messages(self, conversation_id, sender, state, limit)
            }

            fn events_since(
                &self,
                user_id: &str,
                since_id: i64,
                limit: u32,
            ) -> Result<Vec<StoredEvent>> {
                events::events_since(self, user_id, since_id, limit)
            }

            fn get_event(&self, id: i64) -> Result<StoredEvent> {
                events::get_event(self, id)
            }

            fn latest_event_id(&self) -> Result<i64> {
                events::latest_event_id(self)
            }

            fn pending_events_after(
                &self,
                after: i64,
                limit: u32,
                except: &[i64],
            ) -> Result<Vec<StoredEvent>> {
                outbox::pending_events(self, after, limit, except)
            }

            fn pending_event_ids_after(
                &self,
                after: i64,
                limit: u32,
                except: &[i64],
            ) -> Result<Vec<i64>> {
                outbox::pending_event_ids_after(self, after, limit, except)
            }

            fn events_commit_in_id_order(&self) -> bool {
                true
            }

            fn queued_deliveries(&self) -> Result<Vec<QueuedDelivery>> {
                outbox::queued_deliveries(self)
            }

            fn delivery_queue(
                &self,
                plugin: &str,
                conversation: &str,
            ) -> Result<Vec<QueuedDelivery>> {
                outbox::queue(self, plugin, conversation)
            }

            fn next_deliveries(
                &self,
                now: Millis,
                plugins: &[String],
                limit: u32,
            ) -> Result<Vec<Delivery>> {
                outbox::next_deliveries(self, now, plugins, limit)
            }

            fn outbox_depth(&self) -> Result<u64> {
                outbox::outbox_depth(self)
            }

            fn backlog(&self) -> Result<Vec<(String, u64)>> {
                outbox::backlog(self)
            }

            fn dead_letter_count(&self) -> Result<u64> {
                dead_letters::count(self)
            }

            fn dead_letters(&self, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>> {
                dead_letters::dead_letters(self, after_id, limit)
            }

            fn devices_of(&self, user_ids: &[String]) -> Result<Vec<Device>> {
                devices::devices_of(self, user_ids)
            }

            fn due_timers(&self, now: Millis, limit: u32) -> Result<Vec<Timer>> {
                timers::due_timers(self, now, limit)
            }

            fn next_timer_due(&self) -> Result<Option<Millis>> {
                timers::next_due(self)
            }

            fn timers_of(&self, plugin: &str) -> Result<Vec<Timer>> {
                timers::timers_of(self, plugin)
            }

            fn presence_of(&self, user_ids: &[String]) -> Result<Vec<Presence>> {
                presence::presence_of(self, user_ids)
            }

            fn contacts_of(&self, user_id: &str) -> Result<Vec<String>> {
                presence::contacts_of(self, user_id)
            }

            fn silent_presence_nodes(&self, _alive_within_ms: i64) -> Result<Vec<String>> {
                // No heartbeats here: a SQLite server is never a node of a cluster.
                Ok(Vec::new())
            }

            fn node_presence_count(&self, node: &str) -> Result<u64> {
                presence::node_presence_count(self, node)
            }

            fn node_presence_users(&self, node: &str) -> Result<Vec<String>> {
                presence::node_presence_users(self, node)
            }

            fn ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
                bans::ban(self, conversation_id, user_id)
            }

            fn bans(&self, conversation_id: &str) -> Result<Vec<Ban>> {
                bans::bans(self, conversation_id)
            }

            fn banned_among(
                &self,
                conversation_id: &str,
                user_ids: &[String],
            ) -> Result<Vec<String>> {
                bans::banned_among(self, conversation_id, user_ids)
            }

            fn block(&self, blocker: &str, blocked: &str) -> Result<Option<Block>> {
                blocks::block(self, blocker, blocked)
            }

            fn blocks_of(&self, blocker: &str) -> Result<Vec<Block>> {
                blocks::blocks_of(self, blocker)
            }

            fn plugin_overrides(&self, name: &str) -> Result<Option<PluginOverridesRow>> {
                plugin_overrides::plugin_overrides(self, name)
            }

            fn all_plugin_overrides(&self) -> Result<Vec<PluginOverridesRow>> {
                plugin_overrides::all_plugin_overrides(self)
            }
        }
    };
}

impl_read!(Connection);
impl_read!(Writing<'_>);

mod deliveries;
mod tx;
