//! Case files: language-neutral tests of a plugin's hooks, run by `chathooks test` and the harness.
//!
//! A case file is JSON:
//!
//! ```json
//! { "cases": [ {
//!     "name": "masks a listed word",
//!     "kv": { "seed": 1 },
//!     "events": [ {
//!         "hook": "before-message-sent",
//!         "context": { "event_id": 7, "attempt": 1, "at": 0 },
//!         "input": { "draft": { "body": "darn it" }, "conversation": { "id": "c1" }, "participants": [] },
//!         "expect": { "decision": { "modify": { "body": "**** it" } } }
//!     } ],
//!     "expect": { "kv": { "seed": 1, "gone": null }, "logs": [ { "level": "info", "contains": "masked" } ] }
//! } ] }
//! ```
//!
//! Each case starts from an empty KV store (plus its `kv` seeds, stored as JSON) and a fresh instance, then
//! fires its events in order. See the README for every field and default. The fields about plugin powers
//! (`config`, `grants`, `http_response`, and `posts`, `joins`, `custom_events`, `http`, `push`, `timers`
//! under `expect`) are described in [`powers`]; an event with `"hook": "on-timer"` and input
//! `{"name", "payload"}` calls the plugin's timer export.

pub mod convert;
pub mod powers;

use crate::plugins::powers::RecordingServices;
use crate::plugins::{CallError, HookOutput, LogLevel, LogLine, Plugin};
use crate::store::kv::KvStore;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A whole case file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The cases, run in order.
    pub cases: Vec<Case>,
}

/// One case: a fresh KV state, some events, and what should hold afterwards.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Shown in the report.
    pub name: String,
    /// KV keys to store (as JSON) before the first event.
    #[serde(default)]
    pub kv: Map<String, Value>,
    /// Config values laid over the manifest's for this case.
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
    /// Grants for this case instead of the manifest's (the keys of its `[grants]`).
    #[serde(default)]
    pub grants: Option<Value>,
    /// What HTTP requests get back (default: 200, empty body).
    #[serde(default)]
    pub http_response: Option<powers::HttpAnswer>,
    /// The events to fire, in order.
    pub events: Vec<EventSpec>,
    /// What must hold after the last event.
    #[serde(default)]
    pub expect: CaseExpect,
}

/// One hook call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The WIT hook name, e.g. `after-message-sent`.
    pub hook: String,
    /// For after-hooks: `{"event_id", "attempt", "at"}`, each optional.
    #[serde(default)]
    pub context: Option<Value>,
    /// The hook's parameters by WIT name in snake_case.
    #[serde(default)]
    pub input: Value,
    /// What this call must return.
    #[serde(default)]
    pub expect: Option<EventExpect>,
}

/// What one call must return.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventExpect {
    /// A before-hook's decision, exactly.
    pub decision: Option<Value>,
    /// An after-hook succeeded.
    pub ok: Option<bool>,
    /// An after-hook (or any call) failed with an error containing this text.
    pub error: Option<String>,
}

/// What must hold after a case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseExpect {
    /// These keys hold these JSON values (`null`: the key is absent). Other keys are not checked.
    #[serde(default)]
    pub kv: Map<String, Value>,
    /// Each must match a logged line, in this order (other lines may come between).
    #[serde(default)]
    pub logs: Vec<LogExpect>,
    /// Bot posts, one for one (see [`powers`]).
    pub posts: Option<Vec<Value>>,
    /// Conversations the bot joined.
    pub joins: Option<Vec<Value>>,
    /// Custom live events.
    pub custom_events: Option<Vec<Value>>,
    /// HTTP requests.
    pub http: Option<Vec<Value>>,
    /// Push notifications.
    pub push: Option<Vec<Value>>,
    /// Timers set and cancelled.
    pub timers: Option<Vec<Value>>,
}

/// A log line a case expects.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogExpect {
    /// The level, if it matters.
    pub level: Option<LogLevel>,
    /// Text the line contains.
    pub contains: String,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Every expectation that did not hold; empty when the case passed.
    pub failures: Vec<String>,
}

impl CaseResult {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Parse a case file, naming the line and column of a JSON mistake.
pub fn parse(text: &str) -> Result<CaseFile, serde_json::Error> {
    serde_json::from_str(text)
}

/// What a case run needs from its surroundings: the plugin, its KV store, and its captured logs.
pub struct CaseRunner<'a> {
    /// The plugin under test.
    pub plugin: &'a Plugin,
    /// The store the plugin's runtime uses.
    pub kv: &'a Arc<KvStore>,
    /// Takes the lines logged since the last call.
    pub take_logs: &'a dyn Fn() -> Vec<LogLine>,
    /// The recording services installed in the plugin's runtime, if any: what the plugin did with its
    /// powers.
    pub services: Option<&'a RecordingServices>,
}

impl CaseRunner<'_> {
    /// Run every case of `file` in order.
    pub fn run(&self, file: &CaseFile) -> Vec<CaseResult> {
        let mut next_event_id = 1;
        file.cases
            .iter()
            .map(|case| self.run_case(case, &mut next_event_id))
            .collect()
    }

    fn run_case(&self, case: &Case, next_event_id: &mut u64) -> CaseResult {
        let mut failures = Vec::new();
        let fail = |failures: Vec<String>| CaseResult {
            name: case.name.clone(),
            failures,
        };
        let settings = powers::CasePowers {
            config: case.config.as_ref(),
            grants: case.grants.as_ref(),
        };
        let plugin = if settings.is_empty() {
            self.plugin.clone()
        } else {
            let configured = settings
                .apply(self.plugin.powers())
                .and_then(|p| self.plugin.reconfigured(p).map_err(|e| e.to_string()));
            match configured {
                Ok(plugin) => plugin,
                Err(err) => return fail(vec![format!("cannot apply config/grants: {err}")]),
            }
        };
        if let Err(err) = self.reset(case, &plugin) {
            return fail(vec![format!("cannot prepare KV: {err}")]);
        }
        for (i, event) in case.events.iter().enumerate() {
            let id = *next_event_id;
            *next_event_id += 1;
            if let Err(failure) = self.run_event(&plugin, event, id) {
                failures.push(format!("event {} ({}): {failure}", i + 1, event.hook));
            }
        }
        let logs = (self.take_logs)();
        failures.extend(check_logs(&case.expect.logs, &logs));
        failures.extend(self.check_kv(&case.expect.kv));
        match self.services {
            Some(services) => failures.extend(powers::check(&case.expect, &services.take())),
            None if expects_powers(&case.expect) => failures.push(
                "this runner records no power calls, so posts/joins/custom_events/http/push/timers cannot be checked".into(),
            ),
            None => {}
        }
        CaseResult {
            name: case.name.clone(),
            failures,
        }
    }

    fn reset(&self, case: &Case, plugin: &Plugin) -> Result<(), crate::store::kv::KvError> {
        let name = plugin.name();
        for (key, _) in self.kv.dump(name)? {
            self.kv.delete(name, &key)?;
        }
        for (key, value) in &case.kv {
            self.kv.set(name, key, value.to_string().as_bytes(), None)?;
        }
        plugin.discard_idle_instances();
        (self.take_logs)();
        if let Some(services) = self.services {
            services.reset();
            services.set_http_response(case.http_response.as_ref().map(|a| a.to_response()));
        }
        Ok(())
    }

    fn run_event(&self, plugin: &Plugin, event: &EventSpec, default_id: u64) -> Result<(), String> {
        if event.hook == "on-timer" {
            let field = |key: &str| match event.input.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!("input.{key}: expected a string, found {other}")),
            };
            let result = plugin
                .call_timer(&field("name")?, &field("payload")?)
                .map(HookOutput::Done);
            return check_call(result, event.expect.as_ref());
        }
        let context = convert::context(event.context.as_ref(), "context", default_id)
            .map_err(|e| e.to_string())?;
        let call =
            convert::hook_call(&event.hook, &event.input, context).map_err(|e| e.to_string())?;
        if let (Some(services), Some((conversation_id, participants))) = (
            self.services,
            convert::case_participants(&event.input).map_err(|e| e.to_string())?,
        ) {
            services.set_participants(&conversation_id, participants);
        }
        let result = plugin.call(&call);
        let expect = event.expect.as_ref();
        check_call(result, expect)
    }

    fn check_kv(&self, expected: &Map<String, Value>) -> Vec<String> {
        let mut failures = Vec::new();
        for (key, want) in expected {
            match self.kv.get(self.plugin.name(), key) {
                Err(err) => failures.push(format!("kv {key:?}: cannot read: {err}")),
                Ok(got) => {
                    let got = got
                        .map(|b| convert::kv_value_to_json(&b))
                        .unwrap_or(Value::Null);
                    if &got != want {
                        failures.push(format!("kv {key:?}: expected {want}, found {got}"));
                    }
                }
            }
        }
        failures
    }
}

/// Whether a case expects any power calls.
fn expects_powers(e: &CaseExpect) -> bool {
    [
        &e.posts,
        &e.joins,
        &e.custom_events,
        &e.http,
        &e.push,
        &e.timers,
    ]
    .iter()
    .any(|l| l.is_some())
}

fn check_call(
    result: Result<HookOutput, CallError>,
    expect: Option<&EventExpect>,
) -> Result<(), String> {
    let default = EventExpect::default();
    let expect = expect.unwrap_or(&default);
    match result {
        Err(err) => match &expect.error {
            Some(want) if err.to_string().contains(want.as_str()) => Ok(()),
            _ => Err(format!("call failed: {err}")),
        },
        Ok(HookOutput::Decision(decision)) => {
            let got = convert::decision_to_json(&decision);
            match &expect.decision {
                Some(want) if want != &got => Err(format!("expected decision {want}, found {got}")),
                _ if expect.error.is_some() => {
                    Err(format!("expected an error, but the hook decided {got}"))
                }
                _ => Ok(()),
            }
        }
        Ok(HookOutput::Done(Ok(()))) => match &expect.error {
            Some(want) => Err(format!(
                "expected an error containing {want:?}, but the hook succeeded"
            )),
            None if expect.decision.is_some() => {
                Err("expected a decision, but this is an after-hook".into())
            }
            None => Ok(()),
        },
        Ok(HookOutput::Done(Err(reason))) => match &expect.error {
            Some(want) if reason.contains(want.as_str()) => Ok(()),
            _ => Err(format!("the hook returned an error: {reason}")),
        },
    }
}

fn check_logs(expected: &[LogExpect], logs: &[LogLine]) -> Vec<String> {
    let mut lines = logs.iter();
    for want in expected {
        let found = lines.by_ref().any(|line| {
            want.level.is_none_or(|level| level == line.level)
                && line.message.contains(want.contains.as_str())
        });
        if !found {
            let level = want
                .level
                .map(|l| format!("{} ", l.as_str()))
                .unwrap_or_default();
            let seen: Vec<String> = logs
                .iter()
                .map(|l| format!("[{}] {}", l.level.as_str(), l.message))
                .collect();
            return vec![format!(
                "expected a {level}log line containing {:?} (in order); logged: {}",
                want.contains,
                if seen.is_empty() {
                    "nothing".to_string()
                } else {
                    seen.join(" | ")
                }
            )];
        }
    }
    Vec::new()
}
