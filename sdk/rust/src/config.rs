//! The plugin's configuration (WIT interface `chathooks:plugin/config`): the `[config]` table of its
//! manifest, `<name>.toml` beside `<name>.wasm`. Always available.
//!
//! ```no_run
//! use chathooks_sdk::config;
//!
//! let greeting: String = config::get_or("greeting", "Welcome, {name}!".to_owned());
//! let sides: Option<u32> = config::get("sides");
//! ```

use serde::de::DeserializeOwned;

use crate::__bindings::chathooks::plugin::config as raw;

/// The value of `key` parsed as a `T`, or `None` when the manifest does not set it or it is not a `T`.
pub fn get<T: DeserializeOwned>(key: &str) -> Option<T> {
    raw::get(key).and_then(|json| serde_json::from_str(&json).ok())
}

/// The value of `key` as a `T`, or `default`.
pub fn get_or<T: DeserializeOwned>(key: &str, default: T) -> T {
    get(key).unwrap_or(default)
}

/// The value of `key` as JSON text, as the manifest set it (`"text"`, `42`, `{...}`), if set.
pub fn get_json(key: &str) -> Option<String> {
    raw::get(key)
}

/// Every value, as one JSON object.
pub fn all() -> serde_json::Value {
    serde_json::from_str(&raw::get_all()).unwrap_or_else(|_| serde_json::json!({}))
}
