//! The plugin's private key-value store (WIT interface `chathooks:plugin/kv`).
//!
//! Keys are strings; values are bytes, and the helpers here store JSON in them ([`get_json`], [`set_json`]),
//! which is also how `chathooks test` case files compare them. Every operation returns a [`KvError`] value on
//! failure (never a trap), so a hook can decide to carry on or to return `Err` and be retried. Both
//! [`KvError`] and [`KvJsonError`] convert into `String`, so `?` works inside after-hooks.
//!
//! ```no_run
//! use chathooks_sdk::kv;
//!
//! # fn demo() -> Result<(), String> {
//! let total = kv::increment("messages", 1)?;
//! kv::set_json("last-total", &total, None)?;
//! let last: Option<i64> = kv::get_json("last-total")?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::chathooks::plugin::kv as raw;

/// Why a KV operation failed (the WIT variant `kv.error`).
pub use raw::Error as KvError;

/// The value stored under `key`, or `None` if there is none (or it expired).
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    raw::get(key)
}

/// Stores `value` under `key`, replacing any earlier value. With a `ttl`, the key disappears after that long
/// (counted in whole milliseconds).
pub fn set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
    raw::set(key, value, ttl.map(millis))
}

/// Removes `key`. Returns whether it existed.
pub fn delete(key: &str) -> Result<bool, KvError> {
    raw::delete(key)
}

/// Every key that starts with `prefix`, in byte order (an empty prefix lists all keys).
pub fn list_keys(prefix: &str) -> Result<Vec<String>, KvError> {
    raw::list_keys(prefix)
}

/// Atomically stores `new` under `key` if its current value equals `expected` (`None` meaning absent).
/// Passing `new` as `None` deletes the key. Returns whether the swap happened.
///
/// `compare_and_swap(key, None, Some(b"1"))` is a claim: exactly one caller sees `true`.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<bool, KvError> {
    raw::compare_and_swap(key, expected, new)
}

/// Atomically adds `delta` to the integer stored under `key` (absent counts as 0) and returns the new value.
/// The value is stored as decimal text, so [`get_json::<i64>`](get_json) reads it back.
pub fn increment(key: &str, delta: i64) -> Result<i64, KvError> {
    raw::increment(key, delta)
}

/// The value under `key`, parsed as JSON into a `T`; `None` if the key is absent.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, KvJsonError> {
    match raw::get(key)? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| KvJsonError::Json {
                    key: key.to_owned(),
                    error,
                })
        }
    }
}

/// Stores `value` as JSON under `key`, replacing any earlier value, with an optional time to live.
pub fn set_json<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    ttl: Option<Duration>,
) -> Result<(), KvJsonError> {
    let bytes = serde_json::to_vec(value).map_err(|error| KvJsonError::Json {
        key: key.to_owned(),
        error,
    })?;
    raw::set(key, &bytes, ttl.map(millis))?;
    Ok(())
}

/// Why [`get_json`] or [`set_json`] failed: the store refused, or the value is not the JSON you expected.
#[derive(Debug)]
pub enum KvJsonError {
    /// The store returned an error.
    Kv(KvError),
    /// The value could not be turned into (or made from) JSON of the requested type.
    Json {
        /// The key being read or written.
        key: String,
        /// What serde_json said.
        error: serde_json::Error,
    },
}

impl From<KvError> for KvJsonError {
    fn from(error: KvError) -> Self {
        KvJsonError::Kv(error)
    }
}

impl fmt::Display for KvJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvJsonError::Kv(error) => f.write_str(&describe(error)),
            KvJsonError::Json { key, error } => write!(f, "kv: value of `{key}` as JSON: {error}"),
        }
    }
}

impl std::error::Error for KvJsonError {}

impl From<KvJsonError> for String {
    fn from(error: KvJsonError) -> Self {
        error.to_string()
    }
}

impl From<KvError> for String {
    fn from(error: KvError) -> Self {
        describe(&error)
    }
}

/// A one-line explanation of a [`KvError`], for logs and for `Err` returns from hooks.
pub fn describe(error: &KvError) -> String {
    match error {
        KvError::InvalidKey(why) => format!("kv: invalid key: {why}"),
        KvError::ValueTooLarge(size) => format!("kv: value too large ({size} bytes)"),
        KvError::QuotaExceeded => "kv: quota of keys or bytes exceeded".to_owned(),
        KvError::NotANumber => "kv: increment of a value that is not a decimal integer".to_owned(),
        KvError::Storage(why) => format!("kv: storage failed: {why}"),
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}
