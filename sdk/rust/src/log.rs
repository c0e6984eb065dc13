//! Writing to the server's log (WIT interface `chathooks:plugin/log`).
//!
//! Lines are tagged with the plugin's name by the server, and they are what `chathooks test` case files
//! match with `expect.logs`. Use the functions with a ready string, or the `format!`-style macros
//! [`trace!`](crate::trace), [`debug!`](crate::debug), [`info!`](crate::info), [`warn!`](crate::warn) and
//! [`error!`](crate::error):
//!
//! ```no_run
//! chathooks_sdk::log::info("started");
//! chathooks_sdk::info!("message {} in {}", "m1", "c1");
//! ```
//!
//! Long lines are truncated and floods are rate-limited by the server.

use crate::__bindings::chathooks::plugin::log as raw;

/// How important a log line is (the WIT enum `log.level`).
pub use raw::Level;

/// Writes one line at `level`.
pub fn write(level: Level, message: &str) {
    raw::log(level, message);
}

/// Writes one line at [`Level::Trace`]: very detailed tracing, usually filtered out.
pub fn trace(message: &str) {
    raw::log(Level::Trace, message);
}

/// Writes one line at [`Level::Debug`]: information useful while developing a plugin.
pub fn debug(message: &str) {
    raw::log(Level::Debug, message);
}

/// Writes one line at [`Level::Info`]: normal operation worth recording.
pub fn info(message: &str) {
    raw::log(Level::Info, message);
}

/// Writes one line at [`Level::Warn`]: something unexpected that the plugin handled.
pub fn warn(message: &str) {
    raw::log(Level::Warn, message);
}

/// Writes one line at [`Level::Error`]: something failed.
pub fn error(message: &str) {
    raw::log(Level::Error, message);
}

/// Logs a `format!`-style line at trace level: `chathooks_sdk::trace!("x = {x}")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::trace(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at debug level: `chathooks_sdk::debug!("x = {x}")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::debug(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at info level: `chathooks_sdk::info!("x = {x}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::info(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at warn level: `chathooks_sdk::warn!("x = {x}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::warn(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at error level: `chathooks_sdk::error!("x = {x}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::error(&::std::format!($($arg)+)) };
}
