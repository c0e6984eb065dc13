//! Push notifications (WIT interface `chathooks:plugin/push`, grant `push`). The server shows each one to
//! the users' live connections (`notification.new`) and posts it to its push gateway with their device
//! tokens. A plugin's notifications are rate-limited ([`PushError::RateLimited`],
//! [`PushError::retry_after`]).
//!
//! ```no_run
//! use chathooks_sdk::push::{self, Notification};
//!
//! # fn demo() -> Result<(), String> {
//! push::send(&Notification::new(["bob"], "Lunch", "alice: pizza?").data(&serde_json::json!({"c": "c_1"})))?;
//! # Ok(()) }
//! ```

use crate::__bindings::chathooks::plugin::push as raw;

pub use raw::{Error as PushError, Notification};

/// Queues `notification`; delivery happens in the background.
pub fn send(notification: &Notification) -> Result<(), PushError> {
    raw::send(notification)
}

impl Notification {
    /// A notification to `user_ids` with a title and body, no badge and no data.
    pub fn new<I, S>(user_ids: I, title: &str, body: &str) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Notification {
            user_ids: user_ids.into_iter().map(Into::into).collect(),
            title: title.to_owned(),
            body: body.to_owned(),
            badge: None,
            data: "{}".to_owned(),
        }
    }

    /// With this badge number.
    pub fn badge(mut self, badge: u32) -> Self {
        self.badge = Some(badge);
        self
    }

    /// With this data (a JSON object).
    pub fn data(mut self, data: &serde_json::Value) -> Self {
        self.data = data.to_string();
        self
    }
}

impl PushError {
    /// If the call was refused by the plugin's rate limit of push notifications (`[limits]` `pushes_per_second`
    /// and `pushes_burst` in its manifest): how long until a call would be allowed. Nothing was done;
    /// wait (a timer) or give up rather than retry in a loop, which only uses up the call's time budget.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            PushError::RateLimited(ms) => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// A one-line explanation of a [`PushError`].
pub fn describe(error: &PushError) -> String {
    match error {
        PushError::Denied(why) => format!("push: denied: {why}"),
        PushError::Invalid(why) => format!("push: invalid: {why}"),
        PushError::Failed(why) => format!("push: failed: {why}"),
        PushError::RateLimited(ms) => format!("push: rate limited: retry in {ms} ms"),
    }
}

impl From<PushError> for String {
    fn from(error: PushError) -> Self {
        describe(&error)
    }
}
