//! Timers (WIT interface `chathooks:plugin/scheduler`, grant `scheduler`): the server calls the plugin's
//! [`Plugin::on_timer`](crate::Plugin::on_timer) when one is due. Timers are stored by the server and
//! survive restarts. Setting a name again replaces that timer. Setting and cancelling timers is
//! rate-limited per plugin ([`SchedulerError::RateLimited`], [`SchedulerError::retry_after`]).
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

impl SchedulerError {
    /// If the call was refused by the plugin's rate limit of timer changes (`[limits]` `timers_per_second`
    /// and `timers_burst` in its manifest): how long until a call would be allowed. Nothing was done;
    /// wait (a timer) or give up rather than retry in a loop, which only uses up the call's time budget.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SchedulerError::RateLimited(ms) => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// A one-line explanation of a [`SchedulerError`].
pub fn describe(error: &SchedulerError) -> String {
    match error {
        SchedulerError::Denied(why) => format!("scheduler: denied: {why}"),
        SchedulerError::Invalid(why) => format!("scheduler: invalid: {why}"),
        SchedulerError::Failed(why) => format!("scheduler: failed: {why}"),
        SchedulerError::RateLimited(ms) => format!("scheduler: rate limited: retry in {ms} ms"),
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
