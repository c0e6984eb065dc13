//! The host interfaces of `chathooks:plugin@0.2.0`, for components built against that frozen version
//! (`wit/versions/0.2.0/`): each delegates to the current (0.3.0) implementation on the same context and
//! translates the values whose types are the version's own. The 0.1.0 interfaces ([`super::v0_1`])
//! delegate to these in turn.
//!
//! 0.3.0 changed no import's behaviour; it added `chat.participants` and changed the records a few calls
//! return (`conversation` lost its id lists, `message` gained thread fields), which
//! `crate::plugins::downgrade` translates. Every error case maps one to one.

use crate::plugins::bindings::v0_2::chathooks::plugin as old;
use crate::plugins::bindings::{chat, config, events, http, kv, log, push, scheduler};
use crate::plugins::downgrade;

use super::chat::ChatCtx;
use super::config::ConfigCtx;
use super::events::EventsCtx;
use super::http::HttpCtx;
use super::kv::KvCtx;
use super::log::LogCtx;
use super::push::PushCtx;
use super::scheduler::SchedulerCtx;

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
        chat::Error::RateLimited(ms) => old::chat::Error::RateLimited(ms),
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
    ) -> Result<old::types::Message, old::chat::Error> {
        chat::Host::post_message(self, conversation_id, body, metadata)
            .map(|m| downgrade::message(&m))
            .map_err(chat_error)
    }

    fn join_conversation(&mut self, conversation_id: String) -> Result<(), old::chat::Error> {
        chat::Host::join_conversation(self, conversation_id).map_err(chat_error)
    }

    fn get_conversation(
        &mut self,
        conversation_id: String,
    ) -> Result<old::types::Conversation, old::chat::Error> {
        let conversation =
            chat::Host::get_conversation(self, conversation_id.clone()).map_err(chat_error)?;
        let participants = chat::Host::participants(self, conversation_id).map_err(chat_error)?;
        Ok(downgrade::conversation(&conversation, &participants))
    }

    fn recent_messages(
        &mut self,
        conversation_id: String,
        limit: u32,
    ) -> Result<Vec<old::types::Message>, old::chat::Error> {
        chat::Host::recent_messages(self, conversation_id, limit)
            .map(|ms| ms.iter().map(downgrade::message).collect())
            .map_err(chat_error)
    }
}

fn events_error(error: events::Error) -> old::events::Error {
    match error {
        events::Error::Denied(m) => old::events::Error::Denied(m),
        events::Error::Invalid(m) => old::events::Error::Invalid(m),
        events::Error::NotFound(m) => old::events::Error::NotFound(m),
        events::Error::RateLimited(ms) => old::events::Error::RateLimited(ms),
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
                http::Error::RateLimited(ms) => old::http::Error::RateLimited(ms),
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
            push::Error::RateLimited(ms) => old::push::Error::RateLimited(ms),
        })
    }
}

fn scheduler_error(error: scheduler::Error) -> old::scheduler::Error {
    match error {
        scheduler::Error::Denied(m) => old::scheduler::Error::Denied(m),
        scheduler::Error::Invalid(m) => old::scheduler::Error::Invalid(m),
        scheduler::Error::Failed(m) => old::scheduler::Error::Failed(m),
        scheduler::Error::RateLimited(ms) => old::scheduler::Error::RateLimited(ms),
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
