//! SQLite storage: the only code in the server that speaks SQL.
//!
//! ## Overview
//! [`Db`] owns the file (WAL mode, migrated on open) and runs closures in transactions. Every other
//! function here takes a `&Transaction` (writes) or `&Connection` (reads) plus typed inputs, so the chat
//! layer can compose one operation from several calls and commit them together with the operation's event:
//!
//! ```ignore
//! let sent = db.write(|tx| {
//!     let sent = messages::send_message(tx, &new, now)?;
//!     if sent.changed {
//!         events::append_event(tx, "message.new", Some(&conv_id), &audience, &payload, now)?;
//!     }
//!     Ok(sent)
//! })?;
//! ```
//!
//! ## Layout
//! - [`db`]: opening, durability, the writer lock and read pool.
//! - [`migrations`]: the schema, versioned by `PRAGMA user_version`.
//! - [`users`]: users, bot users and whether each is active; [`tokens`]: their hashed bearer tokens.
//! - [`conversations`]: conversations (create, distinct lookup, list, update, delete).
//! - [`participants`]: membership, admins and each member's read state.
//! - [`messages`]: gapless `seq`, idempotent sends, paging, edit, soft delete, mentions.
//! - [`receipts`]: delivered / read receipts, unread counts, per-message status.
//! - [`unread`]: the unread counter of each participant row, kept up to date by sends, deletes and reads.
//! - [`reactions`]: emoji reactions.
//! - [`events`]: the event log that WebSocket clients resume from.
//! - [`outbox`]: durable after-hook delivery: the outbox and per-plugin deliveries in order.
//! - [`dead_letters`]: deliveries that gave up, to list and replay.
//! - [`data_lock`]: one server per data folder (an OS file lock holding the server's pid).
//! - [`timers`]: plugin timers (the `scheduler` power); [`devices`]: users' push device tokens.
//! - [`ids`]: id, token and clock helpers; [`error`]: [`StoreError`].

pub mod conversations;
pub mod data_lock;
pub mod db;
pub mod dead_letters;
pub mod devices;
pub mod error;
pub mod events;
pub mod ids;
pub mod kv;
pub mod kv_quota;
mod message_rows;
pub mod messages;
pub mod migrations;
pub mod outbox;
pub mod participants;
pub mod postgres;
pub mod reactions;
pub mod receipts;
pub mod timers;
pub mod tokens;
pub(crate) mod unread;
pub mod users;

#[cfg(test)]
pub(crate) mod testutil;

pub use db::{Db, Durability};
pub use error::{Result, StoreError};

/// The result of a write that may find its work already done (an idempotent send, a repeated receipt, a
/// distinct conversation that already exists).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    /// The record as it now is.
    pub value: T,
    /// True when this call changed the database: only then should the caller append an event.
    pub changed: bool,
}
