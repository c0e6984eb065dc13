//! [`Read`] and [`Tx`] on a PostgreSQL transaction: each method runs the async query function of the same
//! name in this backend's modules to completion with `Handle::block_on`, on the calling thread, while the
//! connection's I/O task runs on the backend's own runtime ([`PgDb`](super::PgDb) says why).
//!
//! [`PgConn`] also notices when a statement lost a race that PostgreSQL resolved by failing it
//! (serialization failure, deadlock): the chat layer turns store errors into its own before they reach
//! [`PgDb::write_then`](super::PgDb::write_then), so the write loop asks the connection, not the error,
//! whether to run the closure again.

use std::cell::Cell;
use std::future::Future;

use deadpool_postgres::Transaction;
use tokio::runtime::Handle;

use super::error::{PgError, must_retry};
use super::leases::{self, LeaseHolder};
use super::{
    bans, blocks, conversations, dead_letters, devices, events, held, messages, outbox,
    participants, presence, reactions, receipts, roles, timers, tokens, users,
};
use crate::model::{
    Ban, Block, Conversation, HeldMessage, HoldState, Message, Millis, Participant, Presence,
    Reaction, Receipt, Role, TokenInfo, User, UserAccount, UserConversation,
};
use crate::store::error::StoreError;
use crate::store::records::{
    ConversationPatch, DeadLetter, Delivery, Device, Issued, MessagePage, NewBan, NewConversation,
    NewHeld, NewMessage, NewUser, Outcome, OwnerChange, PresenceChange, QueuedDelivery,
    ReadOutcome, ReceiptCounts, RoleChange, StartedRow, StoredEvent, Timer, TokenOwner,
};
use crate::store::{Read, Result, Tx};

/// One open transaction, as the seam's closures see it.
pub(super) struct PgConn<'c, 't> {
    /// The transaction every statement runs in.
    tx: &'c Transaction<'t>,
    /// The backend's runtime, which drives the connection.
    rt: &'c Handle,
    /// A statement failed with a serialization failure or a deadlock: the transaction is doomed, and the
    /// whole closure should run again on a fresh one.
    lost_race: Cell<bool>,
    /// On a node of a cluster: events are appended as drafts for the sequencer and deliveries are
    /// leased ([`leases`]).
    cluster: Option<&'c LeaseHolder>,
}

impl<'c, 't> PgConn<'c, 't> {
    pub(super) fn new(tx: &'c Transaction<'t>, rt: &'c Handle) -> Self {
        Self {
            tx,
            rt,
            lost_race: Cell::new(false),
            cluster: None,
        }
    }

    /// The same connection on a node of a cluster (`Some`): [`Tx::append_event`] appends a draft and
    /// deliveries are leased by `holder`.
    pub(super) fn in_cluster(mut self, holder: Option<&'c LeaseHolder>) -> Self {
        self.cluster = holder;
        self
    }

    /// Whether a statement failed in a way that running the transaction again may fix.
    pub(super) fn lost_race(&self) -> bool {
        self.lost_race.get()
    }

    /// Runs one query function to completion on this thread.
    fn run<T>(&self, query: impl Future<Output = Result<T>>) -> Result<T> {
        let result = self.rt.block_on(query);
        if let Err(StoreError::Postgres(PgError::Postgres(error))) = &result
            && must_retry(error)
        {
            self.lost_race.set(true);
        }
        result
    }
}

impl Read for PgConn<'_, '_> {
    fn ping(&self) -> Result<()> {
        self.run(async {
            self.tx.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    fn get_user(&self, id: &str) -> Result<User> {
        self.run(users::get_user(self.tx, id))
    }

    fn find_user(&self, id: &str) -> Result<Option<User>> {
        self.run(users::find_user(self.tx, id))
    }

    fn get_account(&self, id: &str) -> Result<UserAccount> {
        self.run(users::get_account(self.tx, id))
    }

    fn find_account(&self, id: &str) -> Result<Option<UserAccount>> {
        self.run(users::find_account(self.tx, id))
    }

    fn list_accounts(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserAccount>> {
        self.run(users::list_accounts(self.tx, after, limit))
    }

    fn squatted_bot_ids(&self) -> Result<Vec<String>> {
        self.run(users::squatted_bot_ids(self.tx))
    }

    fn missing_users(&self, ids: &[String]) -> Result<Vec<String>> {
        self.run(users::missing_users(self.tx, ids))
    }

    fn token_owner(&self, token: &str) -> Result<Option<TokenOwner>> {
        self.run(tokens::token_owner(self.tx, token))
    }

    fn list_tokens(&self, user_id: &str, now: Millis) -> Result<Vec<TokenInfo>> {
        self.run(tokens::list_tokens(self.tx, user_id, now))
    }

    fn get_conversation(&self, id: &str) -> Result<Conversation> {
        self.run(conversations::get_conversation(self.tx, id))
    }

    fn list_for_user(&self, user_id: &str, limit: u32) -> Result<Vec<UserConversation>> {
        self.run(conversations::list_for_user(self.tx, user_id, limit))
    }

    fn participant(&self, conversation_id: &str, user_id: &str) -> Result<Option<Participant>> {
        self.run(participants::participant(self.tx, conversation_id, user_id))
    }

    fn is_participant(&self, conversation_id: &str, user_id: &str) -> Result<bool> {
        self.run(participants::is_participant(
            self.tx,
            conversation_id,
            user_id,
        ))
    }

    fn participants(&self, conversation_id: &str) -> Result<Vec<Participant>> {
        self.run(participants::participants(self.tx, conversation_id))
    }

    fn get_message(&self, id: &str) -> Result<Message> {
        self.run(messages::get_message(self.tx, id))
    }

    fn find_by_client_id(&self, sender_id: &str, client_id: &str) -> Result<Option<Message>> {
        self.run(messages::find_by_client_id(self.tx, sender_id, client_id))
    }

    fn list_messages(&self, conversation_id: &str, page: &MessagePage) -> Result<Vec<Message>> {
        self.run(messages::list_messages(self.tx, conversation_id, page))
    }

    fn unread_count(&self, conversation_id: &str, user_id: &str) -> Result<u32> {
        self.run(participants::unread_count(
            self.tx,
            conversation_id,
            user_id,
        ))
    }

    fn receipt(&self, message_id: &str, user_id: &str) -> Result<Option<Receipt>> {
        self.run(receipts::receipt(self.tx, message_id, user_id))
    }

    fn threads(&self, conversation_id: &str, limit: u32) -> Result<Vec<Message>> {
        self.run(messages::threads(self.tx, conversation_id, limit))
    }

    fn get_held(&self, id: &str) -> Result<HeldMessage> {
        self.run(held::get_held(self.tx, id))
    }

    fn find_held_by_client_id(
        &self,
        sender_id: &str,
        client_id: &str,
    ) -> Result<Option<HeldMessage>> {
        self.run(held::find_held_by_client_id(self.tx, sender_id, client_id))
    }

    fn held_messages(
        &self,
        conversation_id: &str,
        sender: Option<&str>,
        state: Option<HoldState>,
        limit: u32,
    ) -> Result<Vec<HeldMessage>> {
        self.run(held::held_messages(
            self.tx,
            conversation_id,
            sender,
            state,
            limit,
        ))
    }

    fn events_since(&self, user_id: &str, since_id: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.run(events::events_since(self.tx, user_id, since_id, limit))
    }

    fn get_event(&self, id: i64) -> Result<StoredEvent> {
        self.run(events::get_event(self.tx, id))
    }

    fn latest_event_id(&self) -> Result<i64> {
        self.run(events::latest_event_id(self.tx))
    }

    fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>> {
        self.run(outbox::pending_events(self.tx, limit))
    }

    fn queued_deliveries(&self) -> Result<Vec<QueuedDelivery>> {
        if self.cluster.is_some() {
            return self.run(leases::queued_deliveries(self.tx));
        }
        self.run(outbox::queued_deliveries(self.tx))
    }

    fn delivery_queue(&self, plugin: &str, conversation: &str) -> Result<Vec<QueuedDelivery>> {
        self.run(outbox::queue(self.tx, plugin, conversation))
    }

    fn next_deliveries(
        &self,
        now: Millis,
        plugins: &[String],
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.run(outbox::next_deliveries(self.tx, now, plugins, limit))
    }

    fn outbox_depth(&self) -> Result<u64> {
        self.run(outbox::outbox_depth(self.tx))
    }

    fn backlog(&self) -> Result<Vec<(String, u64)>> {
        self.run(outbox::backlog(self.tx))
    }

    fn dead_letter_count(&self) -> Result<u64> {
        self.run(dead_letters::dead_letter_count(self.tx))
    }

    fn dead_letters(&self, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>> {
        self.run(dead_letters::dead_letters(self.tx, after_id, limit))
    }

    fn devices_of(&self, user_ids: &[String]) -> Result<Vec<Device>> {
        self.run(devices::devices_of(self.tx, user_ids))
    }

    fn due_timers(&self, now: Millis, limit: u32) -> Result<Vec<Timer>> {
        self.run(timers::due_timers(self.tx, now, limit))
    }

    fn next_timer_due(&self) -> Result<Option<Millis>> {
        self.run(timers::next_due(self.tx))
    }

    fn timers_of(&self, plugin: &str) -> Result<Vec<Timer>> {
        self.run(timers::timers_of(self.tx, plugin))
    }

    fn presence_of(&self, user_ids: &[String]) -> Result<Vec<Presence>> {
        self.run(presence::presence_of(self.tx, user_ids))
    }

    fn contacts_of(&self, user_id: &str) -> Result<Vec<String>> {
        self.run(presence::contacts_of(self.tx, user_id))
    }

    fn ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
        self.run(bans::ban(self.tx, conversation_id, user_id))
    }

    fn bans(&self, conversation_id: &str) -> Result<Vec<Ban>> {
        self.run(bans::bans(self.tx, conversation_id))
    }

    fn banned_among(&self, conversation_id: &str, user_ids: &[String]) -> Result<Vec<String>> {
        self.run(bans::banned_among(self.tx, conversation_id, user_ids))
    }

    fn block(&self, blocker: &str, blocked: &str) -> Result<Option<Block>> {
        self.run(blocks::block(self.tx, blocker, blocked))
    }

    fn blocks_of(&self, blocker: &str) -> Result<Vec<Block>> {
        self.run(blocks::blocks_of(self.tx, blocker))
    }
}

impl Tx for PgConn<'_, '_> {
    fn create_user(&self, user: &NewUser, now: Millis) -> Result<User> {
        self.run(users::create_user(self.tx, user, now))
    }

    fn create_bot_user(&self, user: &NewUser, now: Millis) -> Result<User> {
        self.run(users::create_bot_user(self.tx, user, now))
    }

    fn set_deactivated(&self, id: &str, now: Option<Millis>) -> Result<UserAccount> {
        self.run(users::set_deactivated(self.tx, id, now))
    }

    fn issue_token(
        &self,
        user_id: &str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<Issued> {
        self.run(tokens::issue_token(self.tx, user_id, expires_at, now))
    }

    fn note_use(&self, token_id: &str, now: Millis) -> Result<()> {
        self.run(tokens::note_use(self.tx, token_id, now))
    }

    fn revoke_token(&self, user_id: &str, token_id: &str) -> Result<bool> {
        self.run(tokens::revoke_token(self.tx, user_id, token_id))
    }

    fn revoke_tokens(&self, user_id: &str) -> Result<usize> {
        self.run(tokens::revoke_tokens(self.tx, user_id))
    }

    fn create_conversation(
        &self,
        new: &NewConversation,
        now: Millis,
    ) -> Result<Outcome<Conversation>> {
        self.run(conversations::create_conversation(self.tx, new, now))
    }

    fn update_conversation(
        &self,
        id: &str,
        patch: &ConversationPatch,
        now: Millis,
    ) -> Result<Conversation> {
        self.run(conversations::update_conversation(self.tx, id, patch, now))
    }

    fn delete_conversation(&self, id: &str) -> Result<Conversation> {
        self.run(conversations::delete_conversation(self.tx, id))
    }

    fn add_participants(&self, id: &str, user_ids: &[String], now: Millis) -> Result<Vec<String>> {
        self.run(participants::add_participants(self.tx, id, user_ids, now))
    }

    fn remove_participant(&self, id: &str, user_id: &str, now: Millis) -> Result<bool> {
        self.run(participants::remove_participant(self.tx, id, user_id, now))
    }

    fn send_message(&self, new: &NewMessage, now: Millis) -> Result<Outcome<Message>> {
        self.run(messages::send_message(self.tx, new, now))
    }

    fn edit_message(
        &self,
        id: &str,
        body: &str,
        metadata: Option<&serde_json::Value>,
        mentions: &[String],
        now: Millis,
    ) -> Result<Message> {
        self.run(messages::edit_message(
            self.tx, id, body, metadata, mentions, now,
        ))
    }

    fn delete_message(&self, id: &str, now: Millis) -> Result<Outcome<Message>> {
        self.run(messages::delete_message(self.tx, id, now))
    }

    fn mark_delivered(
        &self,
        message_id: &str,
        user_id: &str,
        now: Millis,
    ) -> Result<Outcome<Receipt>> {
        self.run(receipts::mark_delivered(self.tx, message_id, user_id, now))
    }

    fn mark_read(
        &self,
        conversation_id: &str,
        user_id: &str,
        up_to: Option<&str>,
        now: Millis,
    ) -> Result<ReadOutcome> {
        self.run(receipts::mark_read(
            self.tx,
            conversation_id,
            user_id,
            up_to,
            now,
        ))
    }

    fn add_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        now: Millis,
    ) -> Result<Outcome<Reaction>> {
        self.run(reactions::add_reaction(
            self.tx, message_id, user_id, emoji, now,
        ))
    }

    fn remove_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
    ) -> Result<Option<Reaction>> {
        self.run(reactions::remove_reaction(
            self.tx, message_id, user_id, emoji,
        ))
    }

    fn append_event(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
        audience: &[String],
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<i64> {
        if self.cluster.is_some() {
            return self.run(events::append_draft(
                self.tx,
                kind,
                conversation_id,
                audience,
                payload,
                now,
            ));
        }
        self.run(events::append_event(
            self.tx,
            kind,
            conversation_id,
            audience,
            payload,
            now,
        ))
    }

    fn fan_out(&self, event_id: i64, plugins: &[String], now: Millis) -> Result<usize> {
        self.run(outbox::fan_out(self.tx, event_id, plugins, now))
    }

    fn fan_out_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>> {
        if self.cluster.is_some() {
            return self.run(leases::fan_out_event(self.tx, event, plugins, now));
        }
        self.run(outbox::fan_out_event(self.tx, event, plugins, now))
    }

    fn may_fan_out(&self) -> Result<bool> {
        match self.cluster {
            Some(holder) => self.run(leases::claim_fan_out(self.tx, holder)),
            None => Ok(true),
        }
    }

    fn start_head(&self, event_id: i64, plugin: &str, now: Millis) -> Result<Option<StartedRow>> {
        if let Some(holder) = self.cluster {
            return self.run(leases::start_head(self.tx, holder, event_id, plugin, now));
        }
        self.run(outbox::start_head(self.tx, event_id, plugin, now))
    }

    fn start_delivery(&self, event_id: i64, plugin: &str) -> Result<u32> {
        self.run(outbox::start_delivery(self.tx, event_id, plugin))
    }

    fn delivery_succeeded(&self, event_id: i64, plugin: &str) -> Result<bool> {
        if let Some(holder) = self.cluster {
            return self.run(leases::delivery_succeeded(
                self.tx, holder, event_id, plugin,
            ));
        }
        self.run(outbox::delivery_succeeded(self.tx, event_id, plugin))
    }

    fn delivery_failed(
        &self,
        event_id: i64,
        plugin: &str,
        error: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        if let Some(holder) = self.cluster {
            return self.run(leases::delivery_returned(
                self.tx,
                holder,
                event_id,
                plugin,
                Some(error),
                next_attempt_at,
            ));
        }
        self.run(outbox::delivery_failed(
            self.tx,
            event_id,
            plugin,
            error,
            next_attempt_at,
        ))
    }

    fn postpone_delivery(
        &self,
        event_id: i64,
        plugin: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        if let Some(holder) = self.cluster {
            return self.run(leases::delivery_returned(
                self.tx,
                holder,
                event_id,
                plugin,
                None,
                next_attempt_at,
            ));
        }
        self.run(outbox::postpone_delivery(
            self.tx,
            event_id,
            plugin,
            next_attempt_at,
        ))
    }

    fn recover_in_flight(&self) -> Result<usize> {
        if let Some(holder) = self.cluster {
            return self.run(leases::recover_own(self.tx, holder));
        }
        self.run(outbox::recover_in_flight(self.tx))
    }

    fn dead_letter(&self, event_id: i64, plugin: &str, error: &str, now: Millis) -> Result<i64> {
        self.run(dead_letters::dead_letter(
            self.tx, event_id, plugin, error, now,
        ))
    }

    fn dead_letter_unqueued(
        &self,
        event_id: i64,
        plugin: &str,
        reason: &str,
        now: Millis,
    ) -> Result<i64> {
        self.run(dead_letters::dead_letter_unqueued(
            self.tx, event_id, plugin, reason, now,
        ))
    }

    fn dead_letter_waiting(&self, plugin: &str, reason: &str, now: Millis) -> Result<usize> {
        if let Some(holder) = self.cluster {
            return self.run(leases::dead_letter_waiting(
                self.tx, holder, plugin, reason, now,
            ));
        }
        self.run(dead_letters::dead_letter_waiting(
            self.tx, plugin, reason, now,
        ))
    }

    fn replay_dead_letter(&self, id: i64, now: Millis) -> Result<DeadLetter> {
        self.run(dead_letters::replay_dead_letter(self.tx, id, now))
    }

    fn add_device(
        &self,
        user_id: &str,
        platform: &str,
        token: &str,
        now: Millis,
    ) -> Result<Device> {
        self.run(devices::add_device(self.tx, user_id, platform, token, now))
    }

    fn remove_device(&self, user_id: &str, token: &str) -> Result<bool> {
        self.run(devices::remove_device(self.tx, user_id, token))
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
        self.run(timers::set_timer(
            self.tx,
            plugin,
            name,
            due_at,
            interval_ms,
            payload,
            now,
        ))
    }

    fn cancel_timer(&self, plugin: &str, name: &str) -> Result<bool> {
        self.run(timers::cancel_timer(self.tx, plugin, name))
    }

    fn finish_firing(&self, timer: &Timer, next: Option<Millis>, attempts: u32) -> Result<bool> {
        self.run(timers::finish_firing(self.tx, timer, next, attempts))
    }

    fn hold_message(&self, new: &NewHeld, now: Millis) -> Result<Outcome<HeldMessage>> {
        self.run(held::hold_message(self.tx, new, now))
    }

    fn decide_held(
        &self,
        id: &str,
        state: HoldState,
        decided_by: &str,
        reason: Option<&str>,
        now: Millis,
    ) -> Result<HeldMessage> {
        self.run(held::decide_held(
            self.tx, id, state, decided_by, reason, now,
        ))
    }

    fn receipt_counts(&self, message_id: &str) -> Result<ReceiptCounts> {
        self.run(receipts::receipt_counts(self.tx, message_id))
    }

    fn set_presence(
        &self,
        user_id: &str,
        node: &str,
        online: bool,
        now: Millis,
    ) -> Result<PresenceChange> {
        self.run(presence::set_presence(self.tx, user_id, node, online, now))
    }

    fn clear_node_presence(&self, node: &str, now: Millis) -> Result<Vec<PresenceChange>> {
        self.run(presence::clear_node_presence(self.tx, node, now))
    }

    fn set_role(
        &self,
        conversation_id: &str,
        user_id: &str,
        role: Role,
        now: Millis,
    ) -> Result<RoleChange> {
        self.run(roles::set_role(
            self.tx,
            conversation_id,
            user_id,
            role,
            now,
        ))
    }

    fn transfer_owner(
        &self,
        conversation_id: &str,
        new_owner: &str,
        now: Millis,
    ) -> Result<OwnerChange> {
        self.run(roles::transfer_owner(
            self.tx,
            conversation_id,
            new_owner,
            now,
        ))
    }

    fn add_ban(&self, new: &NewBan, now: Millis) -> Result<Outcome<Ban>> {
        self.run(bans::add_ban(self.tx, new, now))
    }

    fn remove_ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
        self.run(bans::remove_ban(self.tx, conversation_id, user_id))
    }

    fn block_user(&self, blocker: &str, blocked: &str, now: Millis) -> Result<Outcome<Block>> {
        self.run(blocks::block_user(self.tx, blocker, blocked, now))
    }

    fn unblock_user(&self, blocker: &str, blocked: &str) -> Result<Option<Block>> {
        self.run(blocks::unblock_user(self.tx, blocker, blocked))
    }
}
