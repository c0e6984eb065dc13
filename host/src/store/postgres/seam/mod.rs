//! [`Read`] and [`Tx`] on a PostgreSQL transaction: each method runs the async query function of the same
//! name in this backend's modules to completion with the `block_on` of its connection's own runtime, which
//! does the connection's I/O on the calling thread ([`super::driven`] says why). `Tx` is in
//! [`tx`], the dispatcher's part of it ([`Deliveries`](crate::store::Deliveries)) in [`deliveries`].
//!
//! [`PgConn`] also notices when a statement lost a race that PostgreSQL resolved by failing it
//! (serialization failure, deadlock): the chat layer turns store errors into its own before they reach
//! [`PgDb::write_then`](super::PgDb::write_then), so the write loop asks the connection, not the error,
//! whether to run the closure again.
//!
//! [`Tx`]: crate::store::Tx

use std::cell::Cell;
use std::future::Future;

use tokio::runtime::Runtime;

use super::error::{PgError, must_retry};
use super::leases::{self, LeaseHolder};
use super::remembered::Remembered;
use super::transaction::Transaction;
use super::{
    bans, blocks, conversations, dead_letters, devices, events, held, messages, outbox,
    participants, plugin_overrides, presence, receipts, timers, tokens, users,
};
use crate::model::{
    Ban, Block, Conversation, HeldMessage, HoldState, Message, Millis, Participant, Presence,
    Receipt, TokenInfo, User, UserAccount, UserConversation,
};
use crate::store::error::StoreError;
use crate::store::records::{
    DeadLetter, Delivery, Device, MessagePage, PluginOverridesRow, QueuedDelivery, StoredEvent,
    Timer, TokenOwner,
};
use crate::store::{Read, Result};

/// One transaction, as the seam's closures see it.
pub(super) struct PgConn<'c, 't> {
    /// The transaction every statement runs in (begun by the first, if it waits for one).
    tx: &'c Transaction<'t>,
    /// The connection's runtime, which drives it on this thread ([`super::driven`]).
    rt: &'c Runtime,
    /// A statement failed with a serialization failure or a deadlock: the transaction is doomed, and the
    /// whole closure should run again on a fresh one.
    lost_race: Cell<bool>,
    /// On a node of a cluster: events are appended as drafts for the sequencer and deliveries are
    /// leased ([`leases`]).
    cluster: Option<&'c LeaseHolder>,
    /// Whether events commit in id order ([`Read::events_commit_in_id_order`]): on the database's only
    /// server, where every event is appended under the writer mutex.
    in_order: bool,
    /// Whether events may be appended: not in a transaction run without the writer mutex
    /// ([`PgDb::write_without_events`](super::PgDb::write_without_events)).
    events: bool,
    /// What a server on its own remembers, told of what this transaction changes in it.
    remembered: Option<&'c Remembered>,
}

impl<'c, 't> PgConn<'c, 't> {
    pub(super) fn new(tx: &'c Transaction<'t>, rt: &'c Runtime) -> Self {
        Self {
            tx,
            rt,
            lost_race: Cell::new(false),
            cluster: None,
            in_order: false,
            events: true,
            remembered: None,
        }
    }

    /// The same connection, where events commit in id order if `in_order`.
    pub(super) fn events_in_id_order(mut self, in_order: bool) -> Self {
        self.in_order = in_order;
        self
    }

    /// The same connection, refusing to append events unless `events`.
    pub(super) fn appending_events(mut self, events: bool) -> Self {
        self.events = events;
        self
    }

    /// The same connection, telling `remembered` what it changes.
    pub(super) fn remembering(mut self, remembered: Option<&'c Remembered>) -> Self {
        self.remembered = remembered;
        self
    }

    /// This transaction changes a conversation or its participants beyond the counters a send or a read
    /// moves: a remembered conversation is read anew. Every [`Tx`](crate::store::Tx) method that may do
    /// so calls it before its statements (PostgreSQL has no update hook to see it).
    fn conversation_changed(&self) {
        if let Some(remembered) = self.remembered {
            remembered.conversation_changed();
        }
    }

    /// This transaction changes a user or a token: a remembered token owner is read anew. Every
    /// [`Tx`](crate::store::Tx) method that may do so calls it before its statements.
    fn account_changed(&self) {
        if let Some(remembered) = self.remembered {
            remembered.account_changed();
        }
    }

    /// A send in this transaction made `message_id` the last message of `conversation_id`.
    fn last_message(&self, conversation_id: &str, message_id: &str) {
        if let Some(remembered) = self.remembered {
            remembered.last_message(conversation_id, message_id);
        }
    }

    /// [`StoreError::Invalid`] if this transaction may not append events.
    fn may_append(&self) -> Result<()> {
        if self.events {
            return Ok(());
        }
        Err(StoreError::Invalid(
            "an event was appended in a transaction that runs without the writer mutex \
             (PgDb::write_without_events); append it in Db::write"
                .to_owned(),
        ))
    }

    /// The same connection on a node of a cluster (`Some`): [`Tx::append_event`] appends a draft and
    /// deliveries are leased by `holder`.
    ///
    /// [`Tx::append_event`]: crate::store::Tx::append_event
    pub(super) fn in_cluster(mut self, holder: Option<&'c LeaseHolder>) -> Self {
        self.cluster = holder;
        self
    }

    /// Whose plugin overrides this connection reads and writes: the cluster's name on a node of a
    /// cluster, '' on a server on its own (`schema/v9.sql`).
    fn overrides_scope(&self) -> &str {
        self.cluster.map_or("", |holder| holder.cluster.as_str())
    }

    /// Whether a statement failed in a way that running the transaction again may fix.
    pub(super) fn lost_race(&self) -> bool {
        self.lost_race.get()
    }

    /// Runs one query function on the transaction, to completion on this thread.
    fn run<T, Q>(&self, query: impl FnOnce(&'c Transaction<'t>) -> Q) -> Result<T>
    where
        Q: Future<Output = Result<T>>,
    {
        let result = self.rt.block_on(query(self.tx));
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
        self.run(|tx| async move {
            tx.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    fn get_user(&self, id: &str) -> Result<User> {
        self.run(|tx| users::get_user(tx, id))
    }

    fn find_user(&self, id: &str) -> Result<Option<User>> {
        self.run(|tx| users::find_user(tx, id))
    }

    fn get_account(&self, id: &str) -> Result<UserAccount> {
        self.run(|tx| users::get_account(tx, id))
    }

    fn find_account(&self, id: &str) -> Result<Option<UserAccount>> {
        self.run(|tx| users::find_account(tx, id))
    }

    fn list_accounts(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserAccount>> {
        self.run(|tx| users::list_accounts(tx, after, limit))
    }

    fn squatted_bot_ids(&self) -> Result<Vec<String>> {
        self.run(|tx| users::squatted_bot_ids(tx))
    }

    fn missing_users(&self, ids: &[String]) -> Result<Vec<String>> {
        self.run(|tx| users::missing_users(tx, ids))
    }

    fn token_owner(&self, token: &str) -> Result<Option<TokenOwner>> {
        self.run(|tx| tokens::token_owner(tx, token))
    }

    fn list_tokens(&self, user_id: &str, now: Millis) -> Result<Vec<TokenInfo>> {
        self.run(|tx| tokens::list_tokens(tx, user_id, now))
    }

    fn get_conversation(&self, id: &str) -> Result<Conversation> {
        self.run(|tx| conversations::get_conversation(tx, id))
    }

    fn list_for_user(&self, user_id: &str, limit: u32) -> Result<Vec<UserConversation>> {
        self.run(|tx| conversations::list_for_user(tx, user_id, limit))
    }

    fn participant(&self, conversation_id: &str, user_id: &str) -> Result<Option<Participant>> {
        self.run(|tx| participants::participant(tx, conversation_id, user_id))
    }

    fn is_participant(&self, conversation_id: &str, user_id: &str) -> Result<bool> {
        self.run(|tx| participants::is_participant(tx, conversation_id, user_id))
    }

    fn participants(&self, conversation_id: &str) -> Result<Vec<Participant>> {
        self.run(|tx| participants::participants(tx, conversation_id))
    }

    fn get_message(&self, id: &str) -> Result<Message> {
        self.run(|tx| messages::get_message(tx, id))
    }

    fn find_by_client_id(&self, sender_id: &str, client_id: &str) -> Result<Option<Message>> {
        self.run(|tx| messages::find_by_client_id(tx, sender_id, client_id))
    }

    fn list_messages(&self, conversation_id: &str, page: &MessagePage) -> Result<Vec<Message>> {
        self.run(|tx| messages::list_messages(tx, conversation_id, page))
    }

    fn unread_count(&self, conversation_id: &str, user_id: &str) -> Result<u32> {
        self.run(|tx| participants::unread_count(tx, conversation_id, user_id))
    }

    fn receipt(&self, message_id: &str, user_id: &str) -> Result<Option<Receipt>> {
        self.run(|tx| receipts::receipt(tx, message_id, user_id))
    }

    fn threads(&self, conversation_id: &str, limit: u32) -> Result<Vec<Message>> {
        self.run(|tx| messages::threads(tx, conversation_id, limit))
    }

    fn get_held(&self, id: &str) -> Result<HeldMessage> {
        self.run(|tx| held::get_held(tx, id))
    }

    fn find_held_by_client_id(
        &self,
        sender_id: &str,
        client_id: &str,
    ) -> Result<Option<HeldMessage>> {
        self.run(|tx| held::find_held_by_client_id(tx, sender_id, client_id))
    }

    fn held_messages(
        &self,
        conversation_id: &str,
        sender: Option<&str>,
        state: Option<HoldState>,
        limit: u32,
    ) -> Result<Vec<HeldMessage>> {
        self.run(|tx| held::held_messages(tx, conversation_id, sender, state, limit))
    }

    fn events_since(&self, user_id: &str, since_id: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.run(|tx| events::events_since(tx, user_id, since_id, limit))
    }

    fn get_event(&self, id: i64) -> Result<StoredEvent> {
        self.run(|tx| events::get_event(tx, id))
    }

    fn latest_event_id(&self) -> Result<i64> {
        self.run(|tx| events::latest_event_id(tx))
    }

    fn pending_events_after(
        &self,
        after: i64,
        limit: u32,
        except: &[i64],
    ) -> Result<Vec<StoredEvent>> {
        self.run(|tx| outbox::pending_events(tx, after, limit, except))
    }

    fn pending_event_ids_after(&self, after: i64, limit: u32, except: &[i64]) -> Result<Vec<i64>> {
        self.run(|tx| outbox::pending_event_ids_after(tx, after, limit, except))
    }

    fn events_commit_in_id_order(&self) -> bool {
        self.in_order
    }

    fn queued_deliveries(&self) -> Result<Vec<QueuedDelivery>> {
        if self.cluster.is_some() {
            return self.run(|tx| leases::queued_deliveries(tx));
        }
        self.run(|tx| outbox::queued_deliveries(tx))
    }

    fn delivery_queue(&self, plugin: &str, conversation: &str) -> Result<Vec<QueuedDelivery>> {
        self.run(|tx| outbox::queue(tx, plugin, conversation))
    }

    fn next_deliveries(
        &self,
        now: Millis,
        plugins: &[String],
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.run(|tx| outbox::next_deliveries(tx, now, plugins, limit))
    }

    fn outbox_depth(&self) -> Result<u64> {
        self.run(|tx| outbox::outbox_depth(tx))
    }

    fn backlog(&self) -> Result<Vec<(String, u64)>> {
        self.run(|tx| outbox::backlog(tx))
    }

    fn dead_letter_count(&self) -> Result<u64> {
        self.run(|tx| dead_letters::dead_letter_count(tx))
    }

    fn dead_letters(&self, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>> {
        self.run(|tx| dead_letters::dead_letters(tx, after_id, limit))
    }

    fn devices_of(&self, user_ids: &[String]) -> Result<Vec<Device>> {
        self.run(|tx| devices::devices_of(tx, user_ids))
    }

    fn due_timers(&self, now: Millis, limit: u32) -> Result<Vec<Timer>> {
        self.run(|tx| timers::due_timers(tx, now, limit))
    }

    fn next_timer_due(&self) -> Result<Option<Millis>> {
        self.run(|tx| timers::next_due(tx))
    }

    fn timers_of(&self, plugin: &str) -> Result<Vec<Timer>> {
        self.run(|tx| timers::timers_of(tx, plugin))
    }

    fn presence_of(&self, user_ids: &[String]) -> Result<Vec<Presence>> {
        self.run(|tx| presence::presence_of(tx, user_ids))
    }

    fn contacts_of(&self, user_id: &str) -> Result<Vec<String>> {
        self.run(|tx| presence::contacts_of(tx, user_id))
    }

    fn silent_presence_nodes(&self, alive_within_ms: i64) -> Result<Vec<String>> {
        self.run(|tx| presence::silent_presence_nodes(tx, alive_within_ms))
    }

    fn node_presence_count(&self, node: &str) -> Result<u64> {
        self.run(|tx| presence::node_presence_count(tx, node))
    }

    fn node_presence_users(&self, node: &str) -> Result<Vec<String>> {
        self.run(|tx| presence::node_presence_users(tx, node))
    }

    fn ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>> {
        self.run(|tx| bans::ban(tx, conversation_id, user_id))
    }

    fn bans(&self, conversation_id: &str) -> Result<Vec<Ban>> {
        self.run(|tx| bans::bans(tx, conversation_id))
    }

    fn banned_among(&self, conversation_id: &str, user_ids: &[String]) -> Result<Vec<String>> {
        self.run(|tx| bans::banned_among(tx, conversation_id, user_ids))
    }

    fn block(&self, blocker: &str, blocked: &str) -> Result<Option<Block>> {
        self.run(|tx| blocks::block(tx, blocker, blocked))
    }

    fn blocks_of(&self, blocker: &str) -> Result<Vec<Block>> {
        self.run(|tx| blocks::blocks_of(tx, blocker))
    }

    fn plugin_overrides(&self, name: &str) -> Result<Option<PluginOverridesRow>> {
        let scope = self.overrides_scope();
        self.run(|tx| plugin_overrides::plugin_overrides(tx, scope, name))
    }

    fn all_plugin_overrides(&self) -> Result<Vec<PluginOverridesRow>> {
        let scope = self.overrides_scope();
        self.run(|tx| plugin_overrides::all_plugin_overrides(tx, scope))
    }
}

mod deliveries;
mod tx;
