//! PostgreSQL storage for cluster mode: the setting, the connection pool and the schema.
//!
//! ## Overview
//! In cluster mode (SCALE-OUT.md) N stateless nodes keep their state in one PostgreSQL database. This
//! module holds what every later part of that backend stands on:
//!
//! ```ignore
//! let setting = PgSetting::parse("postgres://chathooks:pw@db:5432/chathooks")?;
//! let pool = PgPool::connect(setting, PoolOptions::default()).await?; // reachable? really PostgreSQL?
//! let migrated = migrations::migrate(&pool).await?;                   // safe with N nodes at once
//! ```
//!
//! The store operations themselves (the `Read`/`Tx` seam implemented over a `tokio_postgres::Transaction`,
//! plugin KV, timers, the sequencer) come after the storage seam is cut; until then nothing serves from
//! PostgreSQL, and `chathooks migrate --database postgres://...` is the way in.
//!
//! The API is async, as tokio-postgres is. The synchronous store seam will call it from the blocking
//! threads store calls already run on, through `Handle::block_on` (SCALE-OUT.md 2.2).
//!
//! ## Layout
//! - [`setting`]: parsing `postgres://` URLs and key-value strings, and their redacted form.
//! - [`connect`]: the bounded pool and the start-up checks (reachable, not CockroachDB).
//! - [`migrations`]: the schema (`schema/*.sql`), versioned in `schema_version`, applied under an advisory
//!   lock whose key [`locks`] derives.
//! - [`error`]: [`PgError`], what setting up the backend can fail with.

pub mod connect;
pub mod error;
pub mod locks;
pub mod migrations;
pub mod setting;

#[cfg(test)]
mod tests;

pub use connect::{DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT, PgPool, PoolOptions};
pub use error::{PgError, Result};
pub use migrations::{Migrated, migrate};
pub use setting::PgSetting;
