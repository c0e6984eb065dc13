//! PostgreSQL storage: the chat database and the plugins' KV store behind the same seam as SQLite.
//!
//! ## Overview
//! [`PgDb`] implements the store's [`Read`](super::Read) and [`Tx`](super::Tx) seam on PostgreSQL for a
//! single node, with SQLite's behaviour in every case the SQLite backend handles: the same records, the
//! same errors (with the same messages, since the chat layer derives a field from the first word), the
//! same `Outcome.changed`. [`Db::connect`](super::Db::connect) picks it for a `postgres://` setting:
//!
//! ```ignore
//! let setting = "postgres://chathooks:pw@db/chathooks";
//! let db = Db::connect(setting, Durability::Process, PoolOptions::default())?;
//! let kv = KvStore::beside(&db, &data_dir.join("kv.db"))?; // the same database's plugin_kv tables
//! ```
//!
//! The query functions are async (tokio-postgres); the seam is synchronous and [`db`] bridges the two,
//! each call driving its connection on its own thread ([`driven`]): see there for why, for the writer
//! mutex that keeps event ids in commit order on one node, for retries and for durability.
//!
//! ## What differs from SQLite
//! - A NUL character in a text field the store keeps is refused
//!   ([`StoreError::Invalid`](super::StoreError::Invalid) naming the field) where SQLite stores it, and
//!   in an id looked up it is `Invalid` where SQLite finds nothing; inside JSON it round-trips on both
//!   (`values`).
//! - A unique violation that reaches a statement (none can under the writer mutex) is
//!   [`StoreError::Conflict`](super::StoreError::Conflict), where SQLite's would be a server fault.
//! - Ids of the event log and of dead letters can skip numbers after a rolled-back write ([`events`]).
//! - A failed statement aborts its transaction: a closure that catches a store error and carries on
//!   would see every later statement fail. No caller does that with a database error today (the
//!   errors callers catch, such as `Conflict` from `create_bot_user`, come from checks, not failed
//!   statements).
//! - [`StoreError::is_unavailable`](super::StoreError::is_unavailable) can be true.
//!
//! ## Layout
//! - [`setting`]: parsing `postgres://` URLs and key-value strings, and their redacted form.
//! - [`connect`]: the bounded pool of the node's background work and the start-up checks (reachable, not
//!   CockroachDB); [`driven`]: the connections the store's calls run on, each driven by its caller's
//!   thread; [`statements`]: what query functions that run in a transaction or alone take.
//! - [`migrations`]: the schema (`schema/*.sql`), versioned in `schema_version`, applied under an advisory
//!   lock whose key [`locks`] derives.
//! - [`db`]: [`PgDb`], its runtime, transactions, writer mutex and retries; `seam`: the traits on its
//!   transactions.
//! - Query modules, one per area as in `store/sqlite/`: [`users`], [`tokens`], [`conversations`],
//!   [`participants`] (with the unread counters), [`messages`], [`receipts`], [`reactions`], [`events`],
//!   [`outbox`], [`dead_letters`], [`devices`], [`timers`], [`roles`], [`bans`], [`blocks`],
//!   [`plugin_overrides`] (per cluster, '' on a server on its own); `values`:
//!   what they share (NUL rules, conversions).
//! - [`sequencer`]: cluster mode's sequencer role and batches (drafts become events).
//! - [`leases`]: a cluster node's after-hook deliveries (one fan-out at a time, leased starts).
//! - [`kv`]: [`PgKv`], the plugins' KV store in the same database.
//! - [`error`]: [`PgError`], what setting up or reaching the backend can fail with.
//! - Cluster mode only, not on the seam: [`catalog`], the plugins every node runs; [`nodes`], the nodes'
//!   heartbeats.

pub mod bans;
pub mod blocks;
pub mod catalog;
pub mod connect;
pub mod conversations;
pub mod db;
pub mod dead_letters;
pub mod devices;
pub mod driven;
pub mod error;
pub mod events;
pub mod held;
pub mod kv;
pub mod leases;
pub mod locks;
pub mod messages;
pub mod migrations;
pub mod nodes;
pub mod outbox;
pub mod owner;
pub mod participants;
pub mod plugin_overrides;
pub mod presence;
pub mod reactions;
pub mod receipts;
mod remembered;
pub mod roles;
mod runtime;
mod seam;
pub mod sequencer;
pub mod setting;
pub mod statements;
pub mod timers;
pub mod tokens;
pub mod transaction;
pub mod users;
mod values;
mod writer;

#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod conversation_cache_tests;
#[cfg(test)]
mod db_tests;
#[cfg(test)]
mod driven_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod kv_tests;
#[cfg(test)]
mod lazy_tx_tests;
#[cfg(test)]
mod leases_tests;
#[cfg(test)]
mod parity_tests;
#[cfg(test)]
mod plugin_overrides_tests;
#[cfg(test)]
mod sequencer_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timer_lease_tests;
#[cfg(test)]
mod token_cache_tests;
#[cfg(test)]
mod transaction_tests;

pub use connect::{DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT, PgPool, PoolOptions};
pub use db::PgDb;
pub use error::{PgError, Result};
pub use kv::PgKv;
pub use migrations::{Migrated, migrate};
pub use setting::PgSetting;
