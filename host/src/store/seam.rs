//! The storage seam: what the chat layer, the dispatcher, the powers and the API may ask of a database.
//!
//! [`Read`] is every query, [`Tx`] every change; a backend implements both on its own transaction type,
//! and [`Db`](super::Db) hands a closure `&dyn Read` (one consistent snapshot) or `&dyn Tx` (one
//! transaction, committed when the closure returns `Ok`). The traits are object-safe on purpose: one
//! `&dyn Tx` keeps `chat/` and `dispatch/` free of generics and of any backend's types, at the price of one
//! indirect call per statement, which is nothing beside the statement itself. [`Deliveries`], a part of
//! `Tx`, is what the dispatcher's rounds change (the outbox and the after-hooks' deliveries): a round is
//! handed only that, so that each backend begins a round's transaction with its first statement.
//!
//! Each method is one statement or one short group of them on the backend, so on a networked database it is
//! one round trip. The methods keep the names of the SQLite query functions they delegate to
//! (`store/sqlite/*.rs`), where each is documented in full with the SQL and its invariants.
//!
//! A closure given to [`Db::write`](super::Db::write) may run more than once (a backend may retry a
//! transaction that lost a race), so it must not have effects outside the transaction.

use super::Result;
use super::error::StoreError;
use super::records::{
    ConversationPatch, DeadLetter, Delivery, Device, Issued, MessagePage, NewBan, NewConversation,
    NewHeld, NewMessage, NewUser, Outcome, OwnerChange, PluginOverridesRow, PresenceChange,
    QueuedDelivery, ReadOutcome, ReceiptCounts, RoleChange, RunStart, StartedRow, StoredEvent,
    Timer, TokenOwner,
};
use crate::model::{
    Ban, Block, Conversation, HeldMessage, HoldState, Message, Millis, Participant, Presence,
    Reaction, Receipt, Role, TokenInfo, User, UserAccount, UserConversation,
};

/// Every query, on one consistent snapshot of the database.
pub trait Read {
    /// Answers a trivial query: the database is reachable (`/healthz`).
    fn ping(&self) -> Result<()>;

    // Users and tokens.

    /// The user `id` ([`StoreError::NotFound`] if absent).
    fn get_user(&self, id: &str) -> Result<User>;
    /// The user `id`, if there is one.
    fn find_user(&self, id: &str) -> Result<Option<User>>;
    /// The account (user plus bot and deactivation state) of `id`.
    fn get_account(&self, id: &str) -> Result<UserAccount>;
    /// The account of `id`, if there is one.
    fn find_account(&self, id: &str) -> Result<Option<UserAccount>>;
    /// Accounts in id order after `after`, at most `limit`.
    fn list_accounts(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserAccount>>;
    /// Ordinary users holding an id in the bot namespace (made before it was reserved).
    fn squatted_bot_ids(&self) -> Result<Vec<String>>;
    /// The ids of `ids` that are not users, in the order given.
    fn missing_users(&self, ids: &[String]) -> Result<Vec<String>>;
    /// Who a presented bearer token belongs to, if the server knows it.
    fn token_owner(&self, token: &str) -> Result<Option<TokenOwner>>;
    /// The tokens of `user_id`, with their expiry as of `now`.
    fn list_tokens(&self, user_id: &str, now: Millis) -> Result<Vec<TokenInfo>>;

    // Conversations and members.

    /// The conversation `id` with its participants and admins.
    fn get_conversation(&self, id: &str) -> Result<Conversation>;
    /// The conversations of `user_id`, most recently active first, at most `limit`.
    fn list_for_user(&self, user_id: &str, limit: u32) -> Result<Vec<UserConversation>>;
    /// The member `user_id` of `conversation_id`, if a member.
    fn participant(&self, conversation_id: &str, user_id: &str) -> Result<Option<Participant>>;
    /// Whether `user_id` is a member of `conversation_id`.
    fn is_participant(&self, conversation_id: &str, user_id: &str) -> Result<bool>;
    /// Every member of `conversation_id` with their read state.
    fn participants(&self, conversation_id: &str) -> Result<Vec<Participant>>;

    // Messages, receipts.

    /// The message `id`.
    fn get_message(&self, id: &str) -> Result<Message>;
    /// The message `sender_id` sent with `client_id`, if any (idempotent send).
    fn find_by_client_id(&self, sender_id: &str, client_id: &str) -> Result<Option<Message>>;
    /// A page of `conversation_id`'s messages.
    fn list_messages(&self, conversation_id: &str, page: &MessagePage) -> Result<Vec<Message>>;
    /// Messages of `conversation_id` that `user_id` has not read.
    fn unread_count(&self, conversation_id: &str, user_id: &str) -> Result<u32>;
    /// The messages of `conversation_id` with replies, most recently replied to first, at most `limit`.
    fn threads(&self, conversation_id: &str, limit: u32) -> Result<Vec<Message>>;
    /// `user_id`'s receipt of `message_id`, if any.
    fn receipt(&self, message_id: &str, user_id: &str) -> Result<Option<Receipt>>;

    // The event log.

    /// Events whose audience includes `user_id`, after `since_id`, oldest first, at most `limit`.
    fn events_since(&self, user_id: &str, since_id: i64, limit: u32) -> Result<Vec<StoredEvent>>;
    /// The stored event `id`.
    fn get_event(&self, id: i64) -> Result<StoredEvent>;
    /// The newest event id (0 for an empty log).
    fn latest_event_id(&self) -> Result<i64>;

    // After-hook deliveries.

    /// Events not yet fanned out to plugins, oldest first, at most `limit`.
    fn pending_events(&self, limit: u32) -> Result<Vec<StoredEvent>> {
        self.pending_events_after(0, limit, &[])
    }
    /// Like [`Read::pending_events`], only those with an id above `after`, and leaving out `except`:
    /// events the dispatcher is delivering straight from the outbox ([`Deliveries::queue_event`]).
    fn pending_events_after(
        &self,
        after: i64,
        limit: u32,
        except: &[i64],
    ) -> Result<Vec<StoredEvent>>;
    /// The ids of [`Read::pending_events_after`], without the events: what a dispatcher round reads
    /// when the commits already handed it the events themselves (`dispatch::arrivals`).
    fn pending_event_ids_after(&self, after: i64, limit: u32, except: &[i64]) -> Result<Vec<i64>>;
    /// Whether events become visible in the order of their ids: no event commits after one with a
    /// larger id was seen. Then a reader that saw every event up to some id may read on from there. True
    /// on SQLite, whose one writer assigns ids as it commits, and on the only server of a PostgreSQL
    /// database, whose appends take turns under its writer mutex; not on a node of a cluster.
    fn events_commit_in_id_order(&self) -> bool {
        false
    }
    /// Every delivery, without payloads: the dispatcher's picture of its queues.
    fn queued_deliveries(&self) -> Result<Vec<QueuedDelivery>>;
    /// The deliveries of one queue (`plugin`, `conversation`), in event order.
    fn delivery_queue(&self, plugin: &str, conversation: &str) -> Result<Vec<QueuedDelivery>>;
    /// Due queue heads of `plugins` at `now`, at most `limit` (tests and tools; scans every delivery).
    fn next_deliveries(&self, now: Millis, plugins: &[String], limit: u32)
    -> Result<Vec<Delivery>>;
    /// Events waiting in the outbox to be fanned out.
    fn outbox_depth(&self) -> Result<u64>;
    /// Deliveries waiting per plugin.
    fn backlog(&self) -> Result<Vec<(String, u64)>>;
    /// Dead letters kept.
    fn dead_letter_count(&self) -> Result<u64>;
    /// Dead letters after `after_id`, oldest first, at most `limit`.
    fn dead_letters(&self, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>>;

    // Push devices and plugin timers.

    /// The push devices of `user_ids`.
    fn devices_of(&self, user_ids: &[String]) -> Result<Vec<Device>>;
    /// Timers due at `now`, earliest first, at most `limit`.
    fn due_timers(&self, now: Millis, limit: u32) -> Result<Vec<Timer>>;
    /// When the next timer is due, if any is set.
    fn next_timer_due(&self) -> Result<Option<Millis>>;
    /// The timers of `plugin`, by name.
    fn timers_of(&self, plugin: &str) -> Result<Vec<Timer>>;

    // The moderation queue.

    /// The held message `id`.
    fn get_held(&self, id: &str) -> Result<HeldMessage>;
    /// The sender's held message with this `client_id`, if any.
    fn find_held_by_client_id(
        &self,
        sender_id: &str,
        client_id: &str,
    ) -> Result<Option<HeldMessage>>;
    /// The held messages of `conversation_id`, oldest first, at most `limit`: `sender`'s only if given,
    /// in `state` only if given.
    fn held_messages(
        &self,
        conversation_id: &str,
        sender: Option<&str>,
        state: Option<HoldState>,
        limit: u32,
    ) -> Result<Vec<HeldMessage>>;

    // Presence.

    /// The presence of each of `user_ids` that is a user, in the order given.
    fn presence_of(&self, user_ids: &[String]) -> Result<Vec<Presence>>;
    /// The users who share a conversation with `user_id`, by id (who hears of its presence).
    fn contacts_of(&self, user_id: &str) -> Result<Vec<String>>;
    /// The cluster nodes (not [`crate::presence::LOCAL_NODE`]) holding presence rows whose last heartbeat
    /// is more than `alive_within_ms` old by the database's clock, or that have none: nodes that died
    /// with users connected. None on a backend without heartbeats (SQLite: never a cluster).
    fn silent_presence_nodes(&self, alive_within_ms: i64) -> Result<Vec<String>>;
    /// How many users `node` holds presence rows for.
    fn node_presence_count(&self, node: &str) -> Result<u64>;
    /// The users `node` holds presence rows for, by id.
    fn node_presence_users(&self, node: &str) -> Result<Vec<String>>;

    // Bans and blocks (`store/sqlite/bans.rs`, `store/sqlite/blocks.rs`).

    /// `user_id`'s ban from `conversation_id`, if banned.
    fn ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>>;
    /// The bans of `conversation_id`, oldest first.
    fn bans(&self, conversation_id: &str) -> Result<Vec<Ban>>;
    /// The users of `user_ids` banned from `conversation_id`, in the order given, each once.
    fn banned_among(&self, conversation_id: &str, user_ids: &[String]) -> Result<Vec<String>>;
    /// `blocker`'s block of `blocked`, if any.
    fn block(&self, blocker: &str, blocked: &str) -> Result<Option<Block>>;
    /// The users `blocker` blocked, oldest block first.
    fn blocks_of(&self, blocker: &str) -> Result<Vec<Block>>;

    // Admins' overrides of plugins (`store/sqlite/plugin_overrides.rs`); on PostgreSQL, of this
    // node's cluster (or of the server on its own).

    /// The overrides of plugin `name`, if an admin ever set any.
    fn plugin_overrides(&self, name: &str) -> Result<Option<PluginOverridesRow>>;
    /// Every plugin's overrides, by name.
    fn all_plugin_overrides(&self) -> Result<Vec<PluginOverridesRow>>;
}

/// Every change, inside one transaction; queries see the transaction's own writes.
pub trait Tx: Read + Deliveries {
    // Users and tokens.

    /// Creates an ordinary user (ids in the bot namespace are refused).
    fn create_user(&self, user: &NewUser, now: Millis) -> Result<User>;
    /// Creates (or returns) the bot user of a plugin.
    fn create_bot_user(&self, user: &NewUser, now: Millis) -> Result<User>;
    /// Deactivates `id` at `now`, or reactivates it with `None`.
    fn set_deactivated(&self, id: &str, now: Option<Millis>) -> Result<UserAccount>;
    /// Issues a new bearer token for `user_id`.
    fn issue_token(&self, user_id: &str, expires_at: Option<Millis>, now: Millis)
    -> Result<Issued>;
    /// Records that token `token_id` was used at `now`.
    fn note_use(&self, token_id: &str, now: Millis) -> Result<()>;
    /// Revokes one token of `user_id`; whether it existed.
    fn revoke_token(&self, user_id: &str, token_id: &str) -> Result<bool>;
    /// Revokes every token of `user_id`; how many.
    fn revoke_tokens(&self, user_id: &str) -> Result<usize>;

    // Conversations and members.

    /// Creates a conversation (or finds the distinct one with the same members).
    fn create_conversation(
        &self,
        new: &NewConversation,
        now: Millis,
    ) -> Result<Outcome<Conversation>>;
    /// Applies `patch` to conversation `id`.
    fn update_conversation(
        &self,
        id: &str,
        patch: &ConversationPatch,
        now: Millis,
    ) -> Result<Conversation>;
    /// Deletes conversation `id` and everything in it; the conversation as it was.
    fn delete_conversation(&self, id: &str) -> Result<Conversation>;
    /// Adds `user_ids` to conversation `id`; the ids that were not members yet.
    fn add_participants(&self, id: &str, user_ids: &[String], now: Millis) -> Result<Vec<String>>;
    /// Removes `user_id` from conversation `id`; whether it was a member.
    fn remove_participant(&self, id: &str, user_id: &str, now: Millis) -> Result<bool>;

    // Messages, receipts, reactions.

    /// Stores a message with the conversation's next `seq` (or returns the earlier one with the same
    /// `client_id`).
    fn send_message(&self, new: &NewMessage, now: Millis) -> Result<Outcome<Message>>;
    /// Replaces the body, metadata and mentions of message `id`.
    fn edit_message(
        &self,
        id: &str,
        body: &str,
        metadata: Option<&serde_json::Value>,
        mentions: &[String],
        now: Millis,
    ) -> Result<Message>;
    /// Soft-deletes message `id`.
    fn delete_message(&self, id: &str, now: Millis) -> Result<Outcome<Message>>;
    /// Records that `user_id` received `message_id`.
    fn mark_delivered(
        &self,
        message_id: &str,
        user_id: &str,
        now: Millis,
    ) -> Result<Outcome<Receipt>>;
    /// Records that `user_id` read `conversation_id` up to `up_to` (the newest message if `None`).
    fn mark_read(
        &self,
        conversation_id: &str,
        user_id: &str,
        up_to: Option<&str>,
        now: Millis,
    ) -> Result<ReadOutcome>;
    /// How far `message_id` has got with the participants who were there when it was sent, counted
    /// after taking the message's row lock (PostgreSQL), so that of two transactions storing the last
    /// two receipts at once the second counts the first's: exactly one sees the message complete.
    fn receipt_counts(&self, message_id: &str) -> Result<ReceiptCounts>;
    /// Adds `user_id`'s `emoji` to `message_id`.
    fn add_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        now: Millis,
    ) -> Result<Outcome<Reaction>>;
    /// Removes `user_id`'s `emoji` from `message_id`; the reaction if it was there.
    fn remove_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
    ) -> Result<Option<Reaction>>;

    // The event log and deliveries.

    /// Appends an event to the log, visible to `audience`, and queues it for the after-hooks; its id.
    fn append_event(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
        audience: &[String],
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<i64>;
    /// Like [`Tx::append_event`], without queueing the event for the after-hooks: what a change is
    /// recorded with while no running plugin exports its hook. On a node of a cluster the sequencer
    /// queues every event it sequences, so this is [`Tx::append_event`] there.
    fn append_event_unqueued(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
        audience: &[String],
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<i64>;
    /// Creates one delivery per plugin of `plugins` for outbox event `event_id`; how many.
    fn fan_out(&self, event_id: i64, plugins: &[String], now: Millis) -> Result<usize>;
    /// Starts the delivery of `event_id` to `plugin` regardless of its queue; the attempt number.
    fn start_delivery(&self, event_id: i64, plugin: &str) -> Result<u32>;
    /// Makes every in-flight delivery pending again (start-up after a crash); how many.
    fn recover_in_flight(&self) -> Result<usize>;
    /// Queues dead letter `id` for delivery again; the dead letter.
    fn replay_dead_letter(&self, id: i64, now: Millis) -> Result<DeadLetter>;

    // Push devices and plugin timers.

    /// Registers a push device of `user_id`.
    fn add_device(&self, user_id: &str, platform: &str, token: &str, now: Millis)
    -> Result<Device>;
    /// Removes a push device of `user_id`; whether it was there.
    fn remove_device(&self, user_id: &str, token: &str) -> Result<bool>;
    /// Sets (or replaces) `plugin`'s timer `name`.
    #[allow(clippy::too_many_arguments)]
    fn set_timer(
        &self,
        plugin: &str,
        name: &str,
        due_at: Millis,
        interval_ms: Option<u64>,
        payload: &str,
        now: Millis,
    ) -> Result<()>;
    /// Cancels `plugin`'s timer `name`; whether it was set.
    fn cancel_timer(&self, plugin: &str, name: &str) -> Result<bool>;
    /// After a firing: reschedules `timer` to `next` (or removes it), unless it was set again meanwhile.
    fn finish_firing(&self, timer: &Timer, next: Option<Millis>, attempts: u32) -> Result<bool>;

    // The moderation queue.

    /// Holds a message for review (or returns the sender's earlier one with the same `client_id`).
    fn hold_message(&self, new: &NewHeld, now: Millis) -> Result<Outcome<HeldMessage>>;
    /// Records a moderator's decision (`Approved` or `Rejected`) on a pending held message.
    fn decide_held(
        &self,
        id: &str,
        state: HoldState,
        decided_by: &str,
        reason: Option<&str>,
        now: Millis,
    ) -> Result<HeldMessage>;

    // Presence.

    /// Records that `user_id` is (or no longer is) connected to `node`; whether the user's overall state
    /// flipped.
    fn set_presence(
        &self,
        user_id: &str,
        node: &str,
        online: bool,
        now: Millis,
    ) -> Result<PresenceChange>;
    /// Drops every presence row of `node`; the users that went offline.
    fn clear_node_presence(&self, node: &str, now: Millis) -> Result<Vec<PresenceChange>>;

    // Roles, ownership, bans and blocks (`store/sqlite/roles.rs`, `bans.rs`, `blocks.rs`).

    /// Gives member `user_id` of `conversation_id` `role`; the participant now and their old role.
    fn set_role(
        &self,
        conversation_id: &str,
        user_id: &str,
        role: Role,
        now: Millis,
    ) -> Result<RoleChange>;
    /// Makes member `new_owner` the owner of `conversation_id` (and an admin).
    fn transfer_owner(
        &self,
        conversation_id: &str,
        new_owner: &str,
        now: Millis,
    ) -> Result<OwnerChange>;
    /// Records a ban (the caller removes the member in the same transaction); an existing ban stays.
    fn add_ban(&self, new: &NewBan, now: Millis) -> Result<Outcome<Ban>>;
    /// Lifts a ban; the ban, if there was one.
    fn remove_ban(&self, conversation_id: &str, user_id: &str) -> Result<Option<Ban>>;
    /// Records that `blocker` blocks `blocked`; an existing block stays.
    fn block_user(&self, blocker: &str, blocked: &str, now: Millis) -> Result<Outcome<Block>>;
    /// Lifts `blocker`'s block of `blocked`; the block, if there was one.
    fn unblock_user(&self, blocker: &str, blocked: &str) -> Result<Option<Block>>;

    /// Sets plugin `name`'s overrides (the row is created, or replaced whole with its revision + 1).
    fn put_plugin_overrides(
        &self,
        name: &str,
        disabled: bool,
        settings: &serde_json::Map<String, serde_json::Value>,
        now: Millis,
    ) -> Result<PluginOverridesRow>;
}

/// The dispatcher's changes, inside one transaction: the outbox, the after-hooks' deliveries and their
/// dead letters. A part of every [`Tx`]; a dispatcher round is handed only this
/// ([`Db::write_deliveries`](super::Db::write_deliveries)), so that a backend may begin its transaction
/// with the round's first statement, and a round that makes none takes no lock and costs nothing.
pub trait Deliveries {
    /// The ids of [`Read::pending_events`], without reading the events.
    fn pending_event_ids(&self, limit: u32) -> Result<Vec<i64>>;
    /// Whether this transaction may fan events out: always on a server on its own; on a node of a
    /// cluster, only while no other node's transaction does (PostgreSQL's `leases`).
    fn may_fan_out(&self) -> Result<bool> {
        Ok(true)
    }
    /// Like [`Tx::fan_out`] for an event already read; the deliveries created.
    fn fan_out_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>>;
    /// [`Deliveries::fan_out_event`] for each of `events` (each with the plugins it goes to, maybe none:
    /// it still leaves the outbox), in order; per event, the deliveries created. In two statements on
    /// PostgreSQL, where one per event made a cluster node's round of 256 events about 100 ms long.
    fn fan_out_events(
        &self,
        events: &[(&StoredEvent, &[String])],
        now: Millis,
    ) -> Result<Vec<Vec<QueuedDelivery>>> {
        events
            .iter()
            .map(|(event, plugins)| self.fan_out_event(event, plugins, now))
            .collect()
    }
    /// Whether the dispatcher may make an event's first attempts straight from the outbox, with no
    /// delivery row unless one fails (see `dispatch::direct`): on a server on its own, where only its own
    /// dispatcher fans out and starts. Never on a node of a cluster, where each start is a lease the
    /// other nodes must see.
    fn may_start_from_outbox(&self) -> bool {
        false
    }
    /// Like [`Deliveries::fan_out_event`], leaving the event in the outbox: its first attempts to other
    /// plugins are made straight from there. The deliveries queued.
    fn queue_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>>;
    /// Removes events `event_ids` from the outbox once each plugin they are owed to has a delivery or was
    /// called (one statement on PostgreSQL).
    fn leave_outbox(&self, event_ids: &[i64]) -> Result<()>;
    /// Writes the delivery row of an attempt made straight from the outbox that did not succeed (or was
    /// not made): `attempts` made, the last one's `last_error`, due at `delivery.next_attempt_at` (or in
    /// flight, to dead-letter it next). A row already there is kept.
    fn requeue_delivery(
        &self,
        delivery: &QueuedDelivery,
        attempts: u32,
        last_error: Option<&str>,
    ) -> Result<()>;
    /// Starts the delivery of `event_id` to `plugin` if it heads its queue and is due at `now`.
    fn start_head(&self, event_id: i64, plugin: &str, now: Millis) -> Result<Option<StartedRow>>;
    /// Starts the delivery of `event_id` to `plugin` right behind `previous`, which this transaction started
    /// (by [`Deliveries::start_head`] or this) in the same queue: only if it is pending, due at `now`,
    /// `previous` is in flight in the same queue, and no delivery of the queue lies between the two. `None`
    /// otherwise, and always on a node of a cluster (each start there is a lease of its own).
    fn start_next(
        &self,
        event_id: i64,
        plugin: &str,
        previous: i64,
        now: Millis,
    ) -> Result<Option<StartedRow>>;
    /// Starts runs of deliveries, each of a different queue: its head as [`Deliveries::start_head`] does,
    /// then each event behind it in order as [`Deliveries::start_next`] does behind the one before, stopping
    /// at the first that does not start. Per run, in order, the rows started (empty: the head did not). How
    /// the dispatcher starts a round's runs; one round trip on a PostgreSQL server on its own.
    fn start_runs(&self, runs: &[RunStart<'_>], now: Millis) -> Result<Vec<Vec<StartedRow>>> {
        runs.iter()
            .map(|run| {
                let Some(first) = self.start_head(run.head, run.plugin, now)? else {
                    return Ok(Vec::new());
                };
                let mut rows = vec![first];
                let mut previous = run.head;
                for &event_id in run.behind {
                    let Some(row) = self.start_next(event_id, run.plugin, previous, now)? else {
                        break;
                    };
                    rows.push(row);
                    previous = event_id;
                }
                Ok(rows)
            })
            .collect()
    }
    /// Removes a delivery that succeeded; whether it was there.
    fn delivery_succeeded(&self, event_id: i64, plugin: &str) -> Result<bool>;
    /// [`Deliveries::delivery_succeeded`] for each of `deliveries` (event id, plugin); for each, whether it
    /// was there. One statement on PostgreSQL.
    fn deliveries_succeeded(&self, deliveries: &[(i64, &str)]) -> Result<Vec<bool>> {
        deliveries
            .iter()
            .map(|(event_id, plugin)| self.delivery_succeeded(*event_id, plugin))
            .collect()
    }
    /// Records a failed attempt, to retry at `next_attempt_at`.
    fn delivery_failed(
        &self,
        event_id: i64,
        plugin: &str,
        error: &str,
        next_attempt_at: Millis,
    ) -> Result<()>;
    /// Puts a delivery back without counting an attempt (the plugin's circuit is open, or its call was
    /// not made).
    fn postpone_delivery(&self, event_id: i64, plugin: &str, next_attempt_at: Millis)
    -> Result<()>;
    /// [`Deliveries::postpone_delivery`] for each of `deliveries` (event id, plugin, when due again); for
    /// each, whether it was there. One statement on PostgreSQL.
    fn postpone_deliveries(&self, deliveries: &[(i64, &str, Millis)]) -> Result<Vec<bool>> {
        deliveries
            .iter()
            .map(
                |(event_id, plugin, at)| match self.postpone_delivery(*event_id, plugin, *at) {
                    Ok(()) => Ok(true),
                    Err(StoreError::NotFound { .. }) => Ok(false),
                    Err(e) => Err(e),
                },
            )
            .collect()
    }
    /// Moves a delivery that gave up to the dead letters; the dead letter's id.
    fn dead_letter(&self, event_id: i64, plugin: &str, error: &str, now: Millis) -> Result<i64>;
    /// Dead-letters an event for a plugin that never queued it (its backlog was full).
    fn dead_letter_unqueued(
        &self,
        event_id: i64,
        plugin: &str,
        reason: &str,
        now: Millis,
    ) -> Result<i64>;
    /// Dead-letters every waiting delivery of `plugin`; how many.
    fn dead_letter_waiting(&self, plugin: &str, reason: &str, now: Millis) -> Result<usize>;
}
