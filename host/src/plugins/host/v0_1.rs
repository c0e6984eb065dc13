//! The host interfaces of `chathooks:plugin@0.1.0`, for components built against that frozen version
//! (`wit/versions/0.1.0/`): each delegates to the 0.2.0 implementation ([`super::v0_2`], which delegates
//! to the current one) on the same context and translates the values whose types are the version's own.
//!
//! Version 0.2.0 only added the error case `rate-limited(u64)` to `chat`, `events`, `http`, `push` and
//! `scheduler`. A 0.1.0 component has no such case, so a refused call gets the nearest one it knows, with
//! the wait in its text: `failed("rate limited: too many posts; retry in 100 ms")` (and `denied(...)` from
//! `events`, whose error has no `failed`). Everything else maps one to one.
//!
//! The translations live together in this one file, rather than beside each interface, because they are
//! one decision (how an old contract is served by the new one) and disappear together when 0.1.0 does.

use crate::plugins::bindings::v0_1::chathooks::plugin as old;
use crate::plugins::bindings::v0_2::chathooks::plugin::{
    chat, config, events, http, kv, log, push, scheduler, types,
};
use crate::plugins::powers::Power;

use super::chat::ChatCtx;
use super::config::ConfigCtx;
use super::events::EventsCtx;
use super::http::HttpCtx;
use super::kv::KvCtx;
use super::log::LogCtx;
use super::push::PushCtx;
use super::scheduler::SchedulerCtx;

/// What a 0.1.0 component is told when a call of `power` is refused by its rate limit.
fn rate_limited(power: Power, retry_after_ms: u64) -> String {
    format!(
        "rate limited: too many {}; retry in {retry_after_ms} ms",
        power.name().replace('_', " ")
    )
}

impl old::log::Host for LogCtx {
    fn log(&mut self, level: old::log::Level, message: String) {
        use old::log::Level as Old;
        let level = match level {
            Old::Trace => log::Level::Trace,
            Old::Debug => log::Level::Debug,
            Old::Info => log::Level::Info,
            Old::Warn => log::Level::Warn,
            Old::Error => log::Level::Error,
        };
        log::Host::log(self, level, message);
    }
}

fn kv_error(error: kv::Error) -> old::kv::Error {
    match error {
        kv::Error::InvalidKey(m) => old::kv::Error::InvalidKey(m),
        kv::Error::ValueTooLarge(n) => old::kv::Error::ValueTooLarge(n),
        kv::Error::QuotaExceeded => old::kv::Error::QuotaExceeded,
        kv::Error::NotANumber => old::kv::Error::NotANumber,
        kv::Error::Storage(m) => old::kv::Error::Storage(m),
    }
}

impl old::kv::Host for KvCtx {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, old::kv::Error> {
        kv::Host::get(self, key).map_err(kv_error)
    }

    fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), old::kv::Error> {
        kv::Host::set(self, key, value, ttl_ms).map_err(kv_error)
    }

    fn delete(&mut self, key: String) -> Result<bool, old::kv::Error> {
        kv::Host::delete(self, key).map_err(kv_error)
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, old::kv::Error> {
        kv::Host::list_keys(self, prefix).map_err(kv_error)
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, old::kv::Error> {
        kv::Host::compare_and_swap(self, key, expected, new).map_err(kv_error)
    }

    fn increment(&mut self, key: String, delta: i64) -> Result<i64, old::kv::Error> {
        kv::Host::increment(self, key, delta).map_err(kv_error)
    }
}

impl old::config::Host for ConfigCtx {
    fn get(&mut self, key: String) -> Option<String> {
        config::Host::get(self, key)
    }

    fn get_all(&mut self) -> String {
        config::Host::get_all(self)
    }
}

fn chat_error(error: chat::Error) -> old::chat::Error {
    match error {
        chat::Error::Denied(m) => old::chat::Error::Denied(m),
        chat::Error::NotFound(m) => old::chat::Error::NotFound(m),
        chat::Error::Rejected(m) => old::chat::Error::Rejected(m),
        chat::Error::TooDeep(d) => old::chat::Error::TooDeep(d),
        chat::Error::Failed(m) => old::chat::Error::Failed(m),
        chat::Error::RateLimited(ms) => old::chat::Error::Failed(rate_limited(Power::Posts, ms)),
    }
}

impl old::chat::Host for ChatCtx {
    fn bot_id(&mut self) -> String {
        chat::Host::bot_id(self)
    }

    fn post_message(
        &mut self,
        conversation_id: String,
        body: String,
        metadata: Option<String>,
    ) -> Result<types::Message, old::chat::Error> {
        chat::Host::post_message(self, conversation_id, body, metadata).map_err(chat_error)
    }

    fn join_conversation(&mut self, conversation_id: String) -> Result<(), old::chat::Error> {
        chat::Host::join_conversation(self, conversation_id).map_err(chat_error)
    }

    fn get_conversation(
        &mut self,
        conversation_id: String,
    ) -> Result<types::Conversation, old::chat::Error> {
        chat::Host::get_conversation(self, conversation_id).map_err(chat_error)
    }

    fn recent_messages(
        &mut self,
        conversation_id: String,
        limit: u32,
    ) -> Result<Vec<types::Message>, old::chat::Error> {
        chat::Host::recent_messages(self, conversation_id, limit).map_err(chat_error)
    }
}

fn events_error(error: events::Error) -> old::events::Error {
    match error {
        events::Error::Denied(m) => old::events::Error::Denied(m),
        events::Error::Invalid(m) => old::events::Error::Invalid(m),
        events::Error::NotFound(m) => old::events::Error::NotFound(m),
        events::Error::RateLimited(ms) => {
            old::events::Error::Denied(rate_limited(Power::Events, ms))
        }
    }
}

impl old::events::Host for EventsCtx {
    fn to_conversation(
        &mut self,
        conversation_id: String,
        event_type: String,
        data: String,
    ) -> Result<(), old::events::Error> {
        events::Host::to_conversation(self, conversation_id, event_type, data).map_err(events_error)
    }

    fn to_user(
        &mut self,
        user_id: String,
        event_type: String,
        data: String,
    ) -> Result<(), old::events::Error> {
        events::Host::to_user(self, user_id, event_type, data).map_err(events_error)
    }
}

impl old::http::Host for HttpCtx {
    fn send(
        &mut self,
        request: old::http::Request,
    ) -> Result<old::http::Response, old::http::Error> {
        use old::http::Method as Old;
        let method = match request.method {
            Old::Get => http::Method::Get,
            Old::Post => http::Method::Post,
            Old::Put => http::Method::Put,
            Old::Patch => http::Method::Patch,
            Old::Delete => http::Method::Delete,
            Old::Head => http::Method::Head,
        };
        let request = http::Request {
            method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout_ms: request.timeout_ms,
        };
        match http::Host::send(self, request) {
            Ok(r) => Ok(old::http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(e) => Err(match e {
                http::Error::Denied(m) => old::http::Error::Denied(m),
                http::Error::InvalidRequest(m) => old::http::Error::InvalidRequest(m),
                http::Error::Timeout => old::http::Error::Timeout,
                http::Error::TooLarge(n) => old::http::Error::TooLarge(n),
                http::Error::Failed(m) => old::http::Error::Failed(m),
                http::Error::RateLimited(ms) => {
                    old::http::Error::Failed(rate_limited(Power::HttpRequests, ms))
                }
            }),
        }
    }
}

impl old::push::Host for PushCtx {
    fn send(&mut self, n: old::push::Notification) -> Result<(), old::push::Error> {
        let notification = push::Notification {
            user_ids: n.user_ids,
            title: n.title,
            body: n.body,
            badge: n.badge,
            data: n.data,
        };
        push::Host::send(self, notification).map_err(|e| match e {
            push::Error::Denied(m) => old::push::Error::Denied(m),
            push::Error::Invalid(m) => old::push::Error::Invalid(m),
            push::Error::Failed(m) => old::push::Error::Failed(m),
            push::Error::RateLimited(ms) => {
                old::push::Error::Failed(rate_limited(Power::Pushes, ms))
            }
        })
    }
}

fn scheduler_error(error: scheduler::Error) -> old::scheduler::Error {
    match error {
        scheduler::Error::Denied(m) => old::scheduler::Error::Denied(m),
        scheduler::Error::Invalid(m) => old::scheduler::Error::Invalid(m),
        scheduler::Error::Failed(m) => old::scheduler::Error::Failed(m),
        scheduler::Error::RateLimited(ms) => {
            old::scheduler::Error::Failed(rate_limited(Power::Timers, ms))
        }
    }
}

impl old::scheduler::Host for SchedulerCtx {
    fn once(
        &mut self,
        name: String,
        delay_ms: u64,
        payload: String,
    ) -> Result<(), old::scheduler::Error> {
        scheduler::Host::once(self, name, delay_ms, payload).map_err(scheduler_error)
    }

    fn every(
        &mut self,
        name: String,
        interval_ms: u64,
        payload: String,
    ) -> Result<(), old::scheduler::Error> {
        scheduler::Host::every(self, name, interval_ms, payload).map_err(scheduler_error)
    }

    fn cancel(&mut self, name: String) -> Result<bool, old::scheduler::Error> {
        scheduler::Host::cancel(self, name).map_err(scheduler_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_map_to_the_nearest_old_case_with_the_wait() {
        assert!(matches!(
            chat_error(chat::Error::RateLimited(100)),
            old::chat::Error::Failed(m) if m == "rate limited: too many posts; retry in 100 ms"
        ));
        assert!(matches!(
            events_error(events::Error::RateLimited(20)),
            old::events::Error::Denied(m) if m == "rate limited: too many events; retry in 20 ms"
        ));
        assert!(matches!(
            scheduler_error(scheduler::Error::RateLimited(1)),
            old::scheduler::Error::Failed(m) if m == "rate limited: too many timers; retry in 1 ms"
        ));
        assert_eq!(
            rate_limited(Power::HttpRequests, 50),
            "rate limited: too many http requests; retry in 50 ms"
        );
    }
}
