//! Plugin powers: what a plugin may do beyond `log`, `kv` and `config` (post as its bot, send custom
//! events, make HTTP requests, queue push notifications, set timers), the grants that allow it, and the
//! [`HostServices`] that carry it out.
//!
//! ## Overview
//! The host interfaces (`plugins/host/{chat,events,http,push,scheduler}.rs`) check the plugin's
//! [`Grants`] and the arguments, then hand the call to the runtime's [`HostServices`]. The server installs
//! services that act on the real chat (`crate::powers`); the harness and `chathooks test` install ones
//! that record what the plugin asked for ([`RecordingServices`]); a runtime with neither answers every
//! call with an error value ([`NoServices`]). Services are installed after the runtime is built
//! ([`ServicesSlot`]) because the chat service they need is itself built on the plugin registry.
//!
//! ## Threads
//! Host functions run on the thread of the plugin call, which is always a blocking thread (the
//! dispatcher's and the before-hook chain's `spawn_blocking`, the scheduler's, or a tool's own thread),
//! never an async worker. Services therefore block: chat operations run synchronously on the same thread
//! (they are synchronous underneath: SQLite plus nested plugin calls), and work that is async (an HTTP
//! request) is spawned onto the server's runtime and waited for on a channel, which works from any thread
//! and never starts a runtime inside a runtime.

use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

use super::bindings::types::{Conversation, Message, Participant};

mod rate_limit;
mod recording;
pub use rate_limit::{Power, PowerLimiter, PowerRates, Rate, RateLimited, RateLimitedCounts};
pub use recording::{Recorded, RecordingServices};

#[cfg(test)]
pub(crate) use rate_limit::one_per_second;

/// What a plugin's manifest grants beyond `log`, `kv` and `config`. Everything defaults to not granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Grants {
    /// `chat.post-message` as the plugin's bot.
    pub chat_post: bool,
    /// `chat.join-conversation`: add the bot to a conversation.
    pub chat_join: bool,
    /// `chat.get-conversation` and `chat.recent-messages`.
    pub chat_read: bool,
    /// `events`: custom live events.
    pub events: bool,
    /// `http`: requests to these hosts only (`host` or `host:port`, lower case).
    pub http_hosts: Vec<String>,
    /// `push`: queue push notifications.
    pub push: bool,
    /// `scheduler`: timers that call `on-timer`.
    pub scheduler: bool,
}

impl Grants {
    /// The grants as short names, for `chathooks check` and the admin API (e.g. `chat_post`,
    /// `http_hosts: 127.0.0.1:9000`).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let flags = [
            ("chat_post", self.chat_post),
            ("chat_join", self.chat_join),
            ("chat_read", self.chat_read),
            ("events", self.events),
            ("push", self.push),
            ("scheduler", self.scheduler),
        ];
        out.extend(
            flags
                .iter()
                .filter(|(_, on)| *on)
                .map(|(name, _)| (*name).to_owned()),
        );
        if !self.http_hosts.is_empty() {
            out.push(format!("http_hosts: {}", self.http_hosts.join(", ")));
        }
        out
    }

    /// Whether `host` (`host` or `host:port` of a URL, lower case) may be reached: listed with its port,
    /// or listed without a port.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        let with_port = format!("{host}:{port}");
        self.http_hosts.iter().any(|h| *h == with_port || h == host)
    }
}

/// `[grants]` as written in a manifest. Unknown keys are errors (toml names the key and its line).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestGrants {
    #[serde(default)]
    chat_post: bool,
    #[serde(default)]
    chat_join: bool,
    #[serde(default)]
    chat_read: bool,
    #[serde(default)]
    events: bool,
    #[serde(default, deserialize_with = "http_hosts")]
    http_hosts: Vec<String>,
    #[serde(default)]
    push: bool,
    #[serde(default)]
    scheduler: bool,
}

impl ManifestGrants {
    /// The grants these keys give.
    pub fn into_grants(self) -> Grants {
        Grants {
            chat_post: self.chat_post,
            chat_join: self.chat_join,
            chat_read: self.chat_read,
            events: self.events,
            http_hosts: self.http_hosts,
            push: self.push,
            scheduler: self.scheduler,
        }
    }
}

/// `http_hosts`: each `host` or `host:port`, no scheme, path or wildcard; stored lower case. An error here
/// is raised inside the deserializer, so toml reports it with the line of the value.
fn http_hosts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    let hosts: Vec<String> = serde::Deserialize::deserialize(d)?;
    hosts
        .into_iter()
        .map(|host| {
            let lower = host.trim().to_ascii_lowercase();
            let (name, port) = match lower.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (lower.as_str(), None),
            };
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
            if name_ok && port_ok {
                Ok(lower)
            } else {
                Err(D::Error::custom(format!(
                    "grants.http_hosts: {host:?} is not a host or host:port (no scheme, path or wildcard)"
                )))
            }
        })
        .collect()
}

/// `[config]` as a JSON object.
pub fn config_json(table: toml::Table) -> serde_json::Map<String, serde_json::Value> {
    table
        .into_iter()
        .map(|(k, v)| {
            let json = serde_json::to_value(&v).unwrap_or(serde_json::Value::Null);
            (k, json)
        })
        .collect()
}

/// Prefixes `message` (which names a key as `section.key` or `key`) with the line where that key is set
/// in `text`, when it can be found: `line 4: limits.after_hook_ms must be at least 1`.
pub fn with_line(text: &str, message: &str) -> String {
    let name: String = message
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
        .collect();
    let key = name.rsplit('.').next().unwrap_or_default();
    if key.is_empty() {
        return message.to_owned();
    }
    let line = text.lines().position(|l| {
        l.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    match line {
        Some(n) => format!("line {}: {message}", n + 1),
        None => message.to_owned(),
    }
}

/// What a plugin gets from its manifest besides limits: config values and grants. Shared by every
/// instance of one plugin version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginPowers {
    /// `[config]` as a JSON object.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// `[grants]`.
    pub grants: Grants,
}

/// Why a service refused or failed; each host interface maps it onto its own WIT error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowerError {
    /// Not granted, or not possible for this plugin.
    #[error("denied: {0}")]
    Denied(String),
    /// No such conversation or user (or the bot is not in it).
    #[error("not found: {0}")]
    NotFound(String),
    /// Not acceptable: invalid input, or a before-hook rejected the message.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A post deeper than the loop guard allows.
    #[error("too deep: depth {0}")]
    TooDeep(u32),
    /// The server failed.
    #[error("failed: {0}")]
    Failed(String),
}

/// A message a plugin's bot posts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotPost {
    /// The plugin's name (its bot is `bot.<name>`).
    pub plugin: String,
    /// Where.
    pub conversation_id: String,
    /// The text.
    pub body: String,
    /// A JSON object.
    pub metadata: serde_json::Value,
    /// The loop guard's depth of the new message.
    pub depth: u32,
    /// The message it replies to (`chat.post-reply`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
}

/// Who a custom event goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTarget {
    /// The connected participants of a conversation.
    Conversation(String),
    /// One user's connections.
    User(String),
}

/// A custom live event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomEvent {
    /// The full kind, `plugin.<name>.<type>`.
    pub kind: String,
    /// Who gets it.
    pub target: EventTarget,
    /// A JSON object.
    pub data: serde_json::Value,
}

/// An outbound HTTP request, already checked against the grants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundRequest {
    /// The plugin's name.
    pub plugin: String,
    /// Upper-case method.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body (as text in recordings; bytes on the wire).
    #[serde(serialize_with = "body_as_text")]
    pub body: Vec<u8>,
    /// Time limit.
    #[serde(skip)]
    pub timeout: std::time::Duration,
    /// Response size cap, bytes.
    #[serde(skip)]
    pub max_response_bytes: usize,
}

fn body_as_text<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}

/// The answer to an [`OutboundRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Why an HTTP request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpFailure {
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The body was larger than the cap (bytes).
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// A push notification, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushNotification {
    /// The plugin that sent it.
    pub plugin: String,
    /// Who gets it.
    pub user_ids: Vec<String>,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Badge number.
    pub badge: Option<u32>,
    /// A JSON object.
    pub data: serde_json::Value,
}

/// A timer to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerSpec {
    /// The plugin it belongs to.
    pub plugin: String,
    /// Its name (unique per plugin).
    pub name: String,
    /// Milliseconds from now to the first call.
    pub delay_ms: u64,
    /// For repeating timers, the interval.
    pub interval_ms: Option<u64>,
    /// Handed to `on-timer`.
    pub payload: String,
}

/// Carries out plugin powers. Every method is called on the plugin call's (blocking) thread and may
/// block. Grants are checked before a method is called.
pub trait HostServices: Send + Sync {
    /// Posts a message as the plugin's bot.
    fn post_message(&self, post: BotPost) -> Result<Message, PowerError>;
    /// Adds the plugin's bot to a conversation.
    fn join_conversation(&self, plugin: &str, conversation_id: &str) -> Result<(), PowerError>;
    /// A conversation.
    fn conversation(&self, plugin: &str, conversation_id: &str)
    -> Result<Conversation, PowerError>;
    /// The newest `limit` messages, newest first.
    fn recent_messages(
        &self,
        plugin: &str,
        conversation_id: &str,
        limit: u32,
    ) -> Result<Vec<Message>, PowerError>;
    /// The participants of a conversation as they are now (`chat.participants`, and the arguments of a
    /// hook call to a component built against 0.2.0 or older).
    fn participants(
        &self,
        plugin: &str,
        conversation_id: &str,
    ) -> Result<Vec<Participant>, PowerError>;
    /// Publishes a custom live event.
    fn send_event(&self, event: CustomEvent) -> Result<(), PowerError>;
    /// Makes an HTTP request.
    fn http(&self, request: OutboundRequest) -> Result<InboundResponse, HttpFailure>;
    /// Queues a push notification.
    fn push(&self, notification: PushNotification) -> Result<(), PowerError>;
    /// Stores (or replaces) a timer.
    fn set_timer(&self, timer: TimerSpec) -> Result<(), PowerError>;
    /// Removes a timer; whether it existed.
    fn cancel_timer(&self, plugin: &str, name: &str) -> Result<bool, PowerError>;
}

/// Services of a runtime that has none installed: every call fails with a value saying so.
#[derive(Debug, Default)]
pub struct NoServices;

fn unavailable() -> PowerError {
    PowerError::Failed("this power is not available here (no server services installed)".into())
}

impl HostServices for NoServices {
    fn post_message(&self, _: BotPost) -> Result<Message, PowerError> {
        Err(unavailable())
    }
    fn join_conversation(&self, _: &str, _: &str) -> Result<(), PowerError> {
        Err(unavailable())
    }
    fn conversation(&self, _: &str, _: &str) -> Result<Conversation, PowerError> {
        Err(unavailable())
    }
    fn recent_messages(&self, _: &str, _: &str, _: u32) -> Result<Vec<Message>, PowerError> {
        Err(unavailable())
    }
    fn participants(&self, _: &str, _: &str) -> Result<Vec<Participant>, PowerError> {
        Err(unavailable())
    }
    fn send_event(&self, _: CustomEvent) -> Result<(), PowerError> {
        Err(unavailable())
    }
    fn http(&self, _: OutboundRequest) -> Result<InboundResponse, HttpFailure> {
        Err(HttpFailure::Failed(unavailable().to_string()))
    }
    fn push(&self, _: PushNotification) -> Result<(), PowerError> {
        Err(unavailable())
    }
    fn set_timer(&self, _: TimerSpec) -> Result<(), PowerError> {
        Err(unavailable())
    }
    fn cancel_timer(&self, _: &str, _: &str) -> Result<bool, PowerError> {
        Err(unavailable())
    }
}

/// Where a runtime's services live: [`NoServices`] until one is installed. Cheap to clone; clones share
/// the slot, so installing once reaches every plugin already loaded.
#[derive(Clone)]
pub struct ServicesSlot {
    inner: Arc<RwLock<Arc<dyn HostServices>>>,
}

impl std::fmt::Debug for ServicesSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServicesSlot").finish_non_exhaustive()
    }
}

impl Default for ServicesSlot {
    fn default() -> Self {
        ServicesSlot {
            inner: Arc::new(RwLock::new(Arc::new(NoServices))),
        }
    }
}

impl ServicesSlot {
    /// Installs `services` (replacing any earlier ones).
    pub fn install(&self, services: Arc<dyn HostServices>) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = services;
    }

    /// Puts [`NoServices`] back (a stopping server drops its chat service this way).
    pub fn clear(&self) {
        self.install(Arc::new(NoServices));
    }

    /// The current services.
    pub fn get(&self) -> Arc<dyn HostServices> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The loop-guard depth of the message a hook call is about: its origin's depth for message hooks (0 for
/// a user's message), 0 for every other hook (reactions, receipts and membership changes are a user's
/// doing). A post made during the call gets this plus one.
pub fn call_depth(call: &super::hooks::HookCall) -> u32 {
    use super::bindings::types::Origin;
    use super::hooks::HookCall as C;
    let origin = match call {
        C::BeforeMessageSent { draft, .. } | C::BeforeMessageUpdated { draft, .. } => &draft.origin,
        C::AfterMessageSent { message, .. }
        | C::AfterMessageUpdated { message, .. }
        | C::AfterMessageDeleted { message, .. }
        | C::AfterUserMentioned { message, .. } => &message.origin,
        _ => return 0,
    };
    match origin {
        Origin::User => 0,
        Origin::Plugin(p) => p.depth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_with_or_without_port() {
        let grants = Grants {
            http_hosts: vec!["127.0.0.1:9000".into(), "example.org".into()],
            ..Grants::default()
        };
        assert!(grants.allows_host("127.0.0.1", 9000));
        assert!(!grants.allows_host("127.0.0.1", 9001));
        assert!(grants.allows_host("example.org", 80));
        assert!(!grants.allows_host("example.com", 80));
        assert_eq!(
            grants.describe(),
            vec!["http_hosts: 127.0.0.1:9000, example.org"]
        );
    }

    #[test]
    fn manifests_grant_and_configure() {
        use super::super::manifest::PluginSettings;
        let settings = PluginSettings::parse(
            "priority = 1\n[config]\ngreeting = \"hi\"\nsides = 6\n\n[grants]\nchat_post = true\n\
             http_hosts = [\"127.0.0.1:9000\", \"Example.org\"]\nscheduler = true\n",
        )
        .expect("valid manifest");
        let powers = settings.powers;
        assert_eq!(
            powers.config.get("greeting"),
            Some(&serde_json::json!("hi"))
        );
        assert_eq!(powers.config.get("sides"), Some(&serde_json::json!(6)));
        assert!(powers.grants.chat_post && powers.grants.scheduler);
        assert!(!powers.grants.chat_join && !powers.grants.events && !powers.grants.push);
        assert_eq!(
            powers.grants.http_hosts,
            vec!["127.0.0.1:9000", "example.org"]
        );
        // Nothing is granted without a manifest.
        assert_eq!(
            PluginSettings::parse("").map(|s| s.powers),
            Ok(PluginPowers::default())
        );
    }

    #[test]
    fn manifest_mistakes_name_the_key_and_line() {
        use super::super::manifest::PluginSettings;
        let typo = PluginSettings::parse("[grants]\nchat_post = true\nchat_pots = true\n");
        let typo = typo.expect_err("unknown grant");
        assert!(
            typo.contains("chat_pots") && typo.contains("line 3"),
            "{typo}"
        );
        let host = PluginSettings::parse("[grants]\n\nhttp_hosts = [\"http://x/\"]\n");
        let host = host.expect_err("bad host");
        assert!(
            host.contains("http_hosts") && host.contains("line 3"),
            "{host}"
        );
        let kind = PluginSettings::parse("[grants]\npush = \"yes\"\n").expect_err("wrong type");
        assert!(kind.contains("push") && kind.contains("line 2"), "{kind}");
        let limit = PluginSettings::parse("priority = 2\n[limits]\nafter_hook_ms = 0\n");
        let limit = limit.expect_err("zero budget");
        assert!(limit.starts_with("line 3: limits.after_hook_ms"), "{limit}");
    }
}
