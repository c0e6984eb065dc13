//! The SQLite backend: the embedded default, one file in the data folder.
//!
//! ## Overview
//! [`Db`] owns the file (WAL mode, migrated on open) and runs closures in transactions, several
//! concurrent ones committed together (group commit, see [`db`]). The query functions of the files below
//! take a `&Writing` (the writer, in a transaction) or `&Connection` (reads) plus typed inputs; `seam`
//! implements the store's [`Read`](super::Read) and [`Tx`](super::Tx) traits on a `Connection` and a
//! `Writing` by calling them, so the layers above compose one operation from several calls and commit
//! them together with the operation's event, without naming rusqlite.
//!
//! ## Layout
//! - [`db`]: opening, durability and the read pool; [`writer`]: the writer connection and group commit;
//!   `wal_vfs`: the VFS the writers open their file through, which writes each commit's WAL frames with
//!   one system call.
//! - [`migrations`]: the schema, versioned by `PRAGMA user_version`.
//! - [`users`]: users, bot users and whether each is active; [`tokens`]: their hashed bearer tokens.
//! - [`conversations`]: conversations (create, distinct lookup, list, update, delete).
//! - [`participants`]: membership, roles and each member's read state; [`roles`]: role changes and
//!   ownership; [`bans`]: users kept out of a conversation; [`blocks`]: users blocking users.
//! - [`messages`]: gapless `seq`, idempotent sends, paging, edit, soft delete, mentions.
//! - [`receipts`]: delivered / read receipts, unread counts, per-message status.
//! - `unread`: the unread counter of each participant row, kept up to date by sends, deletes and reads.
//! - [`reactions`]: emoji reactions.
//! - [`events`]: the event log that WebSocket clients resume from.
//! - [`outbox`]: durable after-hook delivery: the outbox and per-plugin deliveries in order.
//! - [`dead_letters`]: deliveries that gave up, to list and replay.
//! - [`plugin_overrides`]: admins' overrides of plugins (disabled, setting values).
//! - [`timers`]: plugin timers (the `scheduler` power); [`devices`]: users' push device tokens.
//! - [`kv`] and [`kv_quota`]: the plugins' key-value store, in its own file; `kv_writes`: its writes,
//!   which may wait for a commit; `kv_statements`: the statements it runs most, kept prepared.

pub mod bans;
pub mod blocks;
pub mod checkpoint;
pub mod conversations;
pub mod db;
pub mod dead_letters;
pub mod devices;
pub mod events;
mod file;
pub mod held;
pub mod kv;
pub mod kv_quota;
mod kv_statements;
mod kv_writes;
mod message_rows;
pub mod messages;
pub mod migrations;
#[cfg(test)]
mod migrations_tests;
pub mod outbox;
pub mod participants;
pub mod plugin_overrides;
pub mod presence;
pub mod reactions;
pub mod receipts;
pub mod roles;
mod seam;
pub mod timers;
pub mod tokens;
pub(crate) mod unread;
pub mod users;
mod wal_vfs;
pub mod writer;

#[cfg(test)]
pub(crate) mod testutil;

pub use db::Db;
