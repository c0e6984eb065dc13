//! Server-generated ids, tokens and the clock, plus small row helpers shared by the query files.
//!
//! Randomness comes from the operating system (`getrandom`), the same for every backend.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{Result, StoreError};
use crate::model::Millis;

/// Milliseconds since the Unix epoch, now. A clock before 1970 reads as 0 rather than failing.
pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
    })
}

/// `bytes` random bytes from the operating system's generator, as lowercase hex.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
    Ok(hex::encode(buf))
}

/// A new id: `prefix`, the current time in milliseconds as 11 hex digits, then 16 random hex digits.
///
/// Time first so ids created later sort later and land at the end of B-tree indexes (cheap inserts,
/// readable logs); 64 random bits so ids made in the same millisecond do not collide even across the
/// nodes of a cluster (with 32 bits, 10,000 ids a second would collide about once a day; a collision
/// fails the primary key, never overwrites).
pub fn new_id(prefix: &str) -> Result<String> {
    Ok(format!(
        "{prefix}{:011x}{}",
        now_ms().max(0),
        random_hex(8)?
    ))
}

/// Parses a JSON text column (metadata, payloads, id lists).
pub(crate) fn json_value(text: &str) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(text)?)
}

/// `value` as JSON text for a column (payloads, id lists).
pub(crate) fn json_text(value: &serde_json::Value) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

/// Metadata as JSON text. Metadata is always a JSON object for hooks and clients, so `null` (absent) is
/// stored as `{}` and anything else that is not an object is refused.
pub(crate) fn metadata_text(value: &serde_json::Value) -> Result<String> {
    match value {
        serde_json::Value::Null => Ok("{}".to_owned()),
        serde_json::Value::Object(_) => json_text(value),
        _ => Err(StoreError::Invalid(
            "metadata must be a JSON object".to_owned(),
        )),
    }
}

/// Converts a SQLite count to the `u32` the records use, saturating instead of failing.
pub(crate) fn count_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}
