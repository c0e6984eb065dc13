//! Keys for PostgreSQL advisory locks.
//!
//! An advisory lock is named by one 64-bit integer, shared by every application using the database, so a
//! small literal (`pg_advisory_lock(1)`) could collide with another program's lock. Keys here are the first
//! eight bytes of a SHA-256 over a fixed prefix, a namespace and a purpose, so they are stable across
//! builds and nodes (every node must compute the same key) and practically never collide. Advisory locks
//! are already per database, so the namespace only has to tell apart users of one database: the schema for
//! migrations ([`super::migrations`]), the cluster name for cluster-wide roles (the sequencer, later).

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

use super::connect::PgPool;
use super::error::{PgError, Result};

/// A session of its own on `pool`'s database (not a pooled connection: a session-level lock lives as long
/// as its session), and the schema it works in, the usual namespace of its locks. The connection's task is
/// spawned on the current runtime, which must stay up as long as the session is used.
pub async fn lock_session(pool: &PgPool) -> Result<(Client, String)> {
    let (client, connection) = pool
        .setting()
        .config()
        .connect(NoTls)
        .await
        .map_err(|error| PgError::Unreachable {
            setting: pool.setting().redacted().to_owned(),
            error,
        })?;
    tokio::spawn(connection);
    let schema: Option<String> = client
        .query_one("SELECT current_schema()", &[])
        .await?
        .get(0);
    Ok((client, schema.unwrap_or_default()))
}

/// The advisory lock key for `purpose` (e.g. `"migrate"`) within `namespace`.
pub fn advisory_key(namespace: &str, purpose: &str) -> i64 {
    let mut hash = Sha256::new();
    for part in ["chathooks", namespace, purpose] {
        hash.update(part.as_bytes());
        // A separator that cannot occur in the parts, so ("ab", "c") and ("a", "bc") differ.
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        // Fixed forever: nodes of different builds must agree on it (SHA-256 of
        // "chathooks\0public\0migrate\0", first 8 bytes, big-endian).
        assert_eq!(
            advisory_key("public", "migrate"),
            -5_699_004_711_015_323_181
        );
        assert_ne!(
            advisory_key("public", "migrate"),
            advisory_key("other", "migrate")
        );
        assert_ne!(advisory_key("ab", "c"), advisory_key("a", "bc"));
    }
}
