//! # chathooks-harness
//!
//! Test a chathooks plugin's hooks without a server, with the server's own runtime: the same engine,
//! limits, instance pools, `log` and `kv` host interfaces. Fire any hook with JSON or typed values, then
//! look at the decision, the log lines and the KV state.
//!
//! ## Overview
//! ```no_run
//! use chathooks_harness::Harness;
//! use serde_json::json;
//!
//! let harness = Harness::load("target/wasm32-wasip2/release/profanity_filter.wasm")?;
//! let decision = harness.decide("before-message-sent", json!({
//!     "draft": { "body": "well darn", "sender": { "id": "alice" } },
//!     "conversation": { "id": "c1" },
//! }))?;
//! assert_eq!(decision, json!({ "modify": { "body": "well ****" } }));
//!
//! harness.fire("after-message-sent", json!({
//!     "message": { "id": "m1", "body": "hi" },
//!     "conversation": { "id": "c1" },
//! }))?;
//! println!("{:?}", harness.take_logs());
//! println!("{:?}", harness.kv()?);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Plugin powers (bot posts, custom events, HTTP, push, timers) are recorded, not carried out:
//! [`Harness::take_power_calls`] returns what the plugin asked for, [`Harness::set_http_response`] sets what
//! its HTTP requests get back, and [`Harness::fire_timer`] calls its `on-timer` export. The plugin runs with
//! the config values and grants of its manifest (`<name>.toml` beside the `.wasm`), or those given to
//! [`Harness::load_with_powers`].
//!
//! JSON inputs use the WIT parameter names in snake_case with the defaults of the case-file format (see
//! the README): a message needs little more than an id and a body. A `"participants"` list beside a
//! `"conversation"` is what the plugin's `chat.participants` calls get for that conversation (hooks do
//! not take the list since WIT 0.3.0). For whole scenarios, write a case file
//! and call [`Harness::run_cases`] (the same runner as `chathooks test`).
//!
//! ## Layout
//! One type, [`Harness`]; the types it returns are re-exported from the `chathooks` crate.

use anyhow::Context;
use chathooks::cases::{self, CaseResult, CaseRunner, convert};
use chathooks::plugins::manifest::PluginSettings;
use chathooks::plugins::powers::{InboundResponse, RecordingServices};
use chathooks::plugins::runtime::plugin_name;
use chathooks::plugins::{CaptureSink, PluginLimits, Runtime, RuntimeConfig};
use chathooks::store::kv::KvStore;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use chathooks::plugins::bindings::types;
pub use chathooks::plugins::powers::{Grants, PluginPowers, Recorded};
pub use chathooks::plugins::{CallError, Hook, HookCall, HookOutput, LogLevel, LogLine, Plugin};

/// One plugin loaded into a private runtime with an in-memory KV store and captured logs.
pub struct Harness {
    runtime: Runtime,
    plugin: Plugin,
    logs: Arc<CaptureSink>,
    services: Arc<RecordingServices>,
    next_event_id: AtomicU64,
}

impl Harness {
    /// Load the plugin at `path` with the server's default limits and the config values and grants of
    /// its manifest, if it has one.
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        Self::load_with_limits(path, PluginLimits::default())
    }

    /// Load the plugin at `path` with the given limits (to test how it behaves under a tight cap, say) and
    /// its manifest's config values and grants.
    pub fn load_with_limits(path: impl AsRef<Path>, limits: PluginLimits) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let settings = PluginSettings::for_wasm(path).map_err(anyhow::Error::msg)?;
        Self::load_inner(path, limits, settings.powers)
    }

    /// Load the plugin at `path` with default limits and exactly these config values and grants.
    pub fn load_with_powers(path: impl AsRef<Path>, powers: PluginPowers) -> anyhow::Result<Self> {
        Self::load_inner(path.as_ref(), PluginLimits::default(), powers)
    }

    fn load_inner(path: &Path, limits: PluginLimits, powers: PluginPowers) -> anyhow::Result<Self> {
        let logs = Arc::new(CaptureSink::default());
        let kv = Arc::new(KvStore::open_in_memory().context("opening an in-memory KV store")?);
        let runtime = Runtime::new(RuntimeConfig {
            compilers: chathooks::plugins::Compilers::Cranelift,
            cache_dir: None,
            kv,
            logs: logs.clone(),
        })?;
        let services = Arc::new(RecordingServices::default());
        runtime.services().install(services.clone());
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read plugin {}", path.display()))?;
        let plugin = runtime
            .load_with(&plugin_name(path), &bytes, limits, powers)
            .with_context(|| format!("cannot load plugin {}", path.display()))?;
        Ok(Harness {
            runtime,
            plugin,
            logs,
            services,
            next_event_id: AtomicU64::new(1),
        })
    }

    /// The loaded plugin (its name, hash and the hooks it exports).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Call a hook with typed WIT values.
    pub fn call(&self, call: &HookCall) -> Result<HookOutput, CallError> {
        self.plugin.call(call)
    }

    /// Call `hook` (its WIT name) with JSON `input`. After-hooks get a fresh event id each time unless
    /// `input` has a `"context"` object. Fails if the input is malformed, the call fails, or an after-hook
    /// returns an error.
    pub fn fire(&self, hook: &str, input: Value) -> anyhow::Result<HookOutput> {
        let id = self.next_event_id.fetch_add(1, Ordering::Relaxed);
        let context = convert::context(input.get("context"), "input.context", id)?;
        let mut input = input;
        if let Value::Object(map) = &mut input {
            map.remove("context");
        }
        let call = convert::hook_call(hook, &input, context)?;
        // `participants` (with `conversation.id`) is what `chat.participants` answers for the conversation,
        // and what a component built against WIT 0.2.0 or older gets as its argument, as in case files.
        if let Some((conversation_id, participants)) = convert::case_participants(&input)? {
            self.services
                .set_participants(&conversation_id, participants);
        }
        let output = self.plugin.call(&call)?;
        if let HookOutput::Done(Err(reason)) = &output {
            anyhow::bail!("{hook} returned an error: {reason}");
        }
        Ok(output)
    }

    /// Call a before-hook with JSON `input`; its decision in case-file JSON (`"allow"`,
    /// `{"modify": {...}}`, `{"reject": "..."}`).
    pub fn decide(&self, hook: &str, input: Value) -> anyhow::Result<Value> {
        match self.fire(hook, input)? {
            HookOutput::Decision(decision) => Ok(convert::decision_to_json(&decision)),
            HookOutput::Done(_) => anyhow::bail!("{hook} is an after-hook; it makes no decision"),
        }
    }

    /// Call the plugin's `on-timer(name, payload)`. Fails if the call fails or the plugin returns an error.
    pub fn fire_timer(&self, name: &str, payload: &str) -> anyhow::Result<()> {
        match self.plugin.call_timer(name, payload)? {
            Ok(()) => Ok(()),
            Err(reason) => anyhow::bail!("on-timer returned an error: {reason}"),
        }
    }

    /// What the plugin asked its powers to do since the last call of this method: bot posts, joins,
    /// custom events, HTTP requests, push notifications, timers.
    pub fn take_power_calls(&self) -> Vec<Recorded> {
        self.services.take()
    }

    /// What the plugin's HTTP requests get back from now on (`None`: 200 with an empty body).
    pub fn set_http_response(&self, status: u16, body: &str) {
        self.services.set_http_response(Some(InboundResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }));
    }

    /// The lines logged since the last call of this method.
    pub fn take_logs(&self) -> Vec<LogLine> {
        self.logs.take()
    }

    /// The plugin's whole KV state, values as JSON (or as a JSON string when not JSON).
    pub fn kv(&self) -> anyhow::Result<BTreeMap<String, Value>> {
        let rows = self.runtime.kv().dump(self.plugin.name())?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (k, convert::kv_value_to_json(&v)))
            .collect())
    }

    /// One KV value as JSON, if present.
    pub fn kv_get(&self, key: &str) -> anyhow::Result<Option<Value>> {
        Ok(self
            .runtime
            .kv()
            .get(self.plugin.name(), key)?
            .map(|v| convert::kv_value_to_json(&v)))
    }

    /// Store `value` (as JSON) under `key` in the plugin's KV, as state for the next call.
    pub fn kv_set(&self, key: &str, value: &Value) -> anyhow::Result<()> {
        self.runtime
            .kv()
            .set(self.plugin.name(), key, value.to_string().as_bytes(), None)?;
        Ok(())
    }

    /// Run a case file (the `chathooks test` format) and return each case's result. Each case starts with
    /// an empty KV store and a fresh instance.
    pub fn run_cases(&self, path: impl AsRef<Path>) -> anyhow::Result<Vec<CaseResult>> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file = cases::parse(&text)
            .with_context(|| format!("{} is not a valid case file", path.display()))?;
        let take_logs = || self.logs.take();
        let runner = CaseRunner {
            plugin: &self.plugin,
            kv: self.runtime.kv(),
            take_logs: &take_logs,
            services: Some(&self.services),
        };
        Ok(runner.run(&file))
    }
}
