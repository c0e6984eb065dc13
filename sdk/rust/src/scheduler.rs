//! Timers (WIT interface `chathooks:plugin/scheduler`, grant `scheduler`): the server calls the plugin's
//! [`Plugin::on_timer`](crate::Plugin::on_timer) when one is due. Timers are stored by the server and
//! survive restarts. Setting a name again replaces that timer.
//!
//! ```no_run
//! use std::time::Duration;
//! use chathooks_sdk::scheduler;
//!
//! # fn demo() -> Result<(), String> {
//! scheduler::once("remind:42", Duration::from_secs(600), "stretch your legs")?;
//! scheduler::every("digest", Duration::from_secs(3600), "")?;
//! scheduler::cancel("digest")?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::__bindings::chathooks::plugin::scheduler as raw;

/// Why a timer was not set (the WIT variant `scheduler.error`).
pub use raw::Error as SchedulerError;

/// Calls `on_timer(name, payload)` once, after `delay`.
pub fn once(name: &str, delay: Duration, payload: &str) -> Result<(), SchedulerError> {
    raw::once(name, millis(delay), payload)
}

/// Calls `on_timer(name, payload)` every `interval` (at least a second) until cancelled.
pub fn every(name: &str, interval: Duration, payload: &str) -> Result<(), SchedulerError> {
    raw::every(name, millis(interval), payload)
}

/// Cancels timer `name`; whether there was one.
pub fn cancel(name: &str) -> Result<bool, SchedulerError> {
    raw::cancel(name)
}

/// A one-line explanation of a [`SchedulerError`].
pub fn describe(error: &SchedulerError) -> String {
    match error {
        SchedulerError::Denied(why) => format!("scheduler: denied: {why}"),
        SchedulerError::Invalid(why) => format!("scheduler: invalid: {why}"),
        SchedulerError::Failed(why) => format!("scheduler: failed: {why}"),
    }
}

impl From<SchedulerError> for String {
    fn from(error: SchedulerError) -> Self {
        describe(&error)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
