//! The records the store's seam speaks: what operations take ([`NewMessage`], [`NewConversation`], ...)
//! and what they return beyond the chat model of [`crate::model`] ([`StoredEvent`], [`Delivery`],
//! [`Timer`], ...). Every backend reads and writes these same types; none of them names a database.

use serde::{Deserialize, Serialize};

use super::limits::LAST_USED_RESOLUTION_MS;
use crate::model::{Millis, Origin, TokenInfo, User};

/// The result of a write that may find its work already done (an idempotent send, a repeated receipt, a
/// distinct conversation that already exists).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    /// The record as it now is.
    pub value: T,
    /// True when this call changed the database: only then should the caller append an event.
    pub changed: bool,
}

/// What creating a conversation needs.
#[derive(Debug, Clone, Default)]
pub struct NewConversation {
    /// Optional title.
    pub title: Option<String>,
    /// The members. Admins are added to it if missing; duplicates are ignored.
    pub participant_ids: Vec<String>,
    /// The members who administer the conversation.
    pub admin_ids: Vec<String>,
    /// Who owns it (its creator): kept when among `admin_ids`, else the first admin owns it.
    pub owner_id: Option<String>,
    /// Return the existing distinct conversation with the same participant set instead of a new one.
    pub distinct_by_participants: bool,
    /// A JSON object, or `null` for `{}`.
    pub metadata: serde_json::Value,
}

/// A partial update; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct ConversationPatch {
    /// `Some(None)` clears the title.
    pub title: Option<Option<String>>,
    /// The new metadata (replaces the old object).
    pub metadata: Option<serde_json::Value>,
}

/// What sending a message needs (after before-hooks have had their say).
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// The conversation to post in; the caller has checked the sender participates.
    pub conversation_id: String,
    /// The sending user (or plugin bot user).
    pub sender_id: String,
    /// The text.
    pub body: String,
    /// A JSON object, or `null` for `{}`.
    pub metadata: serde_json::Value,
    /// Who produced it.
    pub origin: Origin,
    /// Mentioned user ids (e.g. [`crate::model::mentions_in`]); ids that are not users are dropped.
    pub mentions: Vec<String>,
    /// The sender's idempotency key: a second send with the same key returns the first message.
    pub client_id: Option<String>,
    /// The message it replies to (the caller has checked it is a top-level message of the same
    /// conversation): its reply count and last reply time are updated in the same transaction.
    pub parent_id: Option<String>,
    /// The id to store it under (a held message keeps its id when approved); `None` makes a new one.
    pub id: Option<String>,
}

/// A message to hold for review (`Tx::hold_message`).
#[derive(Debug, Clone, Default)]
pub struct NewHeld {
    /// The conversation; the caller has checked the sender participates.
    pub conversation_id: String,
    /// The sender.
    pub sender_id: String,
    /// The text.
    pub body: String,
    /// A JSON object.
    pub metadata: serde_json::Value,
    /// Mentioned user ids.
    pub mentions: Vec<String>,
    /// Who produced it.
    pub origin: Origin,
    /// The sender's idempotency key.
    pub client_id: Option<String>,
    /// The message it replies to.
    pub parent_id: Option<String>,
    /// The before-hook's reason.
    pub reason: String,
    /// The plugin that held it.
    pub held_by: String,
}

/// Which page of a conversation's messages to read: its top-level messages, or one thread's replies.
#[derive(Debug, Clone, Default)]
pub struct MessagePage {
    /// Only the replies to this message (a thread), instead of the conversation's top-level messages.
    pub thread: Option<String>,
    /// Only messages with a smaller seq.
    pub before: Option<i64>,
    /// Only messages with a larger seq.
    pub after: Option<i64>,
    /// Page size; `None` means [`DEFAULT_PAGE_LIMIT`](super::limits::DEFAULT_PAGE_LIMIT), capped at
    /// [`MAX_PAGE_LIMIT`](super::limits::MAX_PAGE_LIMIT).
    pub limit: Option<u32>,
    /// Return oldest first instead of the default newest first.
    pub oldest_first: bool,
}

/// A delivery that used up its attempts, kept for an admin to inspect and replay.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The dead letter's own id (what the admin API names).
    pub id: i64,
    /// The event that was not delivered.
    pub event: StoredEvent,
    /// The plugin it was not delivered to.
    pub plugin: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: String,
    /// When it was dead-lettered.
    pub created_at: Millis,
}

/// One registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    /// The owner.
    pub user_id: String,
    /// `ios`, `android`, `web`, ... as the app says.
    pub platform: String,
    /// The push service's token for the device.
    pub token: String,
    /// When it was registered (or registered again).
    pub created_at: Millis,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The event id (increasing, never reused).
    pub id: i64,
    /// What happened, e.g. `message.new` (the WebSocket event name).
    pub kind: String,
    /// The conversation it belongs to, if any; the unit of ordering for after-hooks.
    pub conversation_id: Option<String>,
    /// The users allowed to see it.
    pub audience: Vec<String>,
    /// The event's data as the chat layer encoded it.
    pub payload: serde_json::Value,
    /// When it happened.
    pub created_at: Millis,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry at `next_attempt_at`.
    Pending,
    /// A hook call is running (or was, when the process died).
    InFlight,
}

/// One event owed to one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The event to deliver.
    pub event: StoredEvent,
    /// The plugin's name.
    pub plugin: String,
    /// Attempts started so far (0 before the first).
    pub attempt: u32,
    /// Not to be tried before this time.
    pub next_attempt_at: Millis,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Pending or in flight.
    pub state: DeliveryState,
}

/// One delivery as the dispatcher's in-memory queues hold it: where it sits and when it is due, without
/// the event itself (read when the delivery starts), so the whole backlog fits in memory cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedDelivery {
    /// The event's id: its place in the queue.
    pub event_id: i64,
    /// The plugin's name.
    pub plugin: String,
    /// The event's conversation, `""` for events outside any: with `plugin`, the ordering queue.
    pub conversation: String,
    /// Not to be tried before this time.
    pub next_attempt_at: Millis,
    /// A call is running (or was, when the process died).
    pub in_flight: bool,
}

/// A run of one plugin's deliveries to start ([`Deliveries::start_runs`](super::Deliveries::start_runs)): its
/// head, then the events right behind it in its queue, in order.
#[derive(Debug, Clone, Copy)]
pub struct RunStart<'a> {
    /// The plugin.
    pub plugin: &'a str,
    /// The event at the head of the queue.
    pub head: i64,
    /// The events behind it.
    pub behind: &'a [i64],
}

/// What [`Deliveries::start_head`](super::Deliveries::start_head) returns for a delivery it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedRow {
    /// The attempt number to pass to the hook (1 for the first).
    pub attempt: u32,
    /// When it was due.
    pub next_attempt_at: Millis,
    /// Why the previous attempt failed, if one did.
    pub last_error: Option<String>,
    /// On a node of a cluster, when this node's lease on it runs out (after that, another node may start
    /// it again); `None` where the delivery is this server's alone.
    pub leased_until: Option<Millis>,
}

/// What [`Tx::mark_read`](super::Tx::mark_read) did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutcome {
    /// The newest message the user has now read (unchanged if nothing new was read).
    pub last_read_message_id: Option<String>,
    /// Its seq (0 before any read).
    pub last_read_seq: i64,
    /// Messages newly marked read by this call, oldest first; empty means nothing changed and no event
    /// is due.
    pub newly_read: Vec<String>,
    /// Those of `newly_read` this call also marked delivered (reading implies delivery; they had no
    /// delivery receipt before).
    pub newly_delivered: Vec<String>,
    /// The user's unread count afterwards.
    pub unread_count: u32,
}

/// How far one message has got with the participants who were present when it was sent (other than its
/// sender, and still members): what "delivered to all" and "read by all" are decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiptCounts {
    /// Those participants.
    pub others: u32,
    /// How many of them have it delivered (reading counts as delivering).
    pub delivered: u32,
    /// How many of them have read it.
    pub read: u32,
}

impl ReceiptCounts {
    /// Every other participant has it (false when there is no other participant).
    pub fn delivered_to_all(&self) -> bool {
        self.others > 0 && self.delivered >= self.others
    }

    /// Every other participant has read it (false when there is no other participant).
    pub fn read_by_all(&self) -> bool {
        self.others > 0 && self.read >= self.others
    }
}

/// What [`Tx::set_presence`](super::Tx::set_presence) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// The user's presence now.
    pub presence: crate::model::Presence,
    /// Whether the user's overall state flipped (the first connection anywhere, or the last one gone).
    pub changed: bool,
}

/// A stored timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// The plugin it belongs to.
    pub plugin: String,
    /// Its name, unique per plugin.
    pub name: String,
    /// When it is due.
    pub due_at: Millis,
    /// For repeating timers, the interval in ms.
    pub interval_ms: Option<u64>,
    /// What `on-timer` gets.
    pub payload: String,
    /// Failed firings in a row (one-shot timers are retried a few times).
    pub attempts: u32,
    /// Changes on every set: identifies this setting of the timer.
    pub rev: i64,
}

/// A token just issued: the secret (shown once) and what admins see of it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The bearer token.
    pub token: String,
    /// Its id, times and expiry.
    pub info: TokenInfo,
}

/// Who a presented token belongs to and what stands in its way, for the caller to decide.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The token's id.
    pub token_id: String,
    /// Its user.
    pub user: User,
    /// The user is a bot (never true for a token issued by this version; kept so a stray row is refused).
    pub bot: bool,
    /// The user is deactivated.
    pub deactivated: bool,
    /// When the token stops working, if it expires.
    pub expires_at: Option<Millis>,
    /// When its use was last written.
    pub last_used_at: Option<Millis>,
}

impl TokenOwner {
    /// Whether the token has expired at `now`.
    pub fn expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether a use at `now` should be written ([`LAST_USED_RESOLUTION_MS`]).
    pub fn use_is_news(&self, now: Millis) -> bool {
        self.last_used_at
            .is_none_or(|at| now.saturating_sub(at) >= LAST_USED_RESOLUTION_MS)
    }
}

/// What creating a user needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The id, chosen by the admin: 1..=64 ASCII letters, digits, `_`, `-` or `.` so it can be mentioned
    /// as `@id` and used in URLs unescaped.
    pub id: String,
    /// Display name.
    pub name: String,
    /// A JSON object, or `null` for `{}`.
    pub metadata: serde_json::Value,
}

/// What [`Tx::set_role`](super::Tx::set_role) changed.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleChange {
    /// The participant with their new role.
    pub participant: crate::model::Participant,
    /// The role they had before (equal to the new one when nothing changed).
    pub old_role: crate::model::Role,
}

/// What [`Tx::transfer_owner`](super::Tx::transfer_owner) changed.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerChange {
    /// The conversation with its new owner.
    pub conversation: crate::model::Conversation,
    /// Who owned it before, if anyone.
    pub old_owner: Option<String>,
    /// The new owner's promotion to admin, when they were not one yet.
    pub promoted: Option<RoleChange>,
}

/// What banning a user needs.
#[derive(Debug, Clone, Default)]
pub struct NewBan {
    /// The conversation.
    pub conversation_id: String,
    /// The user to keep out.
    pub user_id: String,
    /// The moderator or admin banning them.
    pub banned_by: String,
    /// Why, if they said.
    pub reason: Option<String>,
}

/// An admin's overrides of one plugin (table `plugin_overrides`): whether it is disabled, and values of
/// its manifest's settings. Rows are never deleted, so a plugin removed and deployed again keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginOverridesRow {
    /// The plugin's name.
    pub name: String,
    /// Disabled by an admin.
    pub disabled: bool,
    /// Setting values by name (a JSON object), checked against the manifest when they were set.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Grows by one with every change of the row (1 when it is created), so a node can tell that a row
    /// changed since it last looked.
    pub revision: i64,
    /// When it last changed.
    pub updated_at: Millis,
}
