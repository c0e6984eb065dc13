//! What a case file says about plugin powers: the config values and grants a case runs with, the HTTP
//! answer it gets, and the bot posts, joins, custom events, HTTP requests, push notifications and timers
//! it must have asked for.
//!
//! ```json
//! { "name": "welcomes alice",
//!   "config": { "greeting": "Hi {name}" },
//!   "grants": { "chat_post": true, "chat_join": true },
//!   "http_response": { "status": 202, "body": "queued" },
//!   "events": [ ... ],
//!   "expect": {
//!     "posts": [ { "conversation_id": "c1", "body": "Hi Alice", "depth": 1 } ],
//!     "http": [ { "method": "POST", "url": "http://127.0.0.1:9000/", "body_contains": "message_sent" } ]
//!   } }
//! ```
//!
//! Each expected list, when given, must match what the plugin did one for one, in order. An expected item
//! is a JSON object whose fields must equal the recorded call's (objects compare field by field, so only
//! the named fields matter), and a field `<name>_contains` checks that the text of `<name>` contains it.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::CaseExpect;
use crate::plugins::powers::{InboundResponse, ManifestGrants, PluginPowers, Recorded};

/// A case's power settings (the case's `config` and `grants` fields).
#[derive(Debug, Default)]
pub struct CasePowers<'a> {
    /// Config values, laid over the manifest's.
    pub config: Option<&'a Map<String, Value>>,
    /// Grants, replacing the manifest's (same keys as its `[grants]`).
    pub grants: Option<&'a Value>,
}

/// The canned HTTP answer of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAnswer {
    /// Status code (default 200).
    #[serde(default = "ok_status")]
    pub status: u16,
    /// Body text.
    #[serde(default)]
    pub body: String,
    /// Headers.
    #[serde(default)]
    pub headers: Map<String, Value>,
}

fn ok_status() -> u16 {
    200
}

impl HttpAnswer {
    /// As the services hand it over.
    pub fn to_response(&self) -> InboundResponse {
        InboundResponse {
            status: self.status,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.to_ascii_lowercase(), v)
                })
                .collect(),
            body: self.body.clone().into_bytes(),
        }
    }
}

impl CasePowers<'_> {
    /// The powers a case runs with: `base` (the manifest's) with this case's config laid over it and its
    /// grants, if any, instead of the manifest's.
    pub fn apply(&self, base: &PluginPowers) -> Result<PluginPowers, String> {
        let mut powers = base.clone();
        if let Some(config) = self.config {
            for (k, v) in config {
                powers.config.insert(k.clone(), v.clone());
            }
        }
        if let Some(grants) = self.grants {
            let grants: ManifestGrants =
                serde_json::from_value(grants.clone()).map_err(|e| format!("grants: {e}"))?;
            powers.grants = grants.into_grants();
        }
        Ok(powers)
    }

    /// Whether the case changes anything.
    pub fn is_empty(&self) -> bool {
        self.config.is_none() && self.grants.is_none()
    }
}

/// Checks the recorded calls against the case's expectations; one message per mismatch.
pub fn check(expect: &CaseExpect, recorded: &[Recorded]) -> Vec<String> {
    let mut posts = Vec::new();
    let mut joins = Vec::new();
    let mut events = Vec::new();
    let mut http = Vec::new();
    let mut push = Vec::new();
    let mut timers = Vec::new();
    for call in recorded {
        match call {
            Recorded::Post(p) => posts.push(to_json(p)),
            Recorded::Join {
                conversation_id, ..
            } => joins.push(serde_json::json!({ "conversation_id": conversation_id })),
            Recorded::Event(e) => events.push(to_json(e)),
            Recorded::Http(r) => http.push(to_json(r)),
            Recorded::Push(n) => push.push(to_json(n)),
            Recorded::Timer(t) => timers.push(to_json(t)),
            Recorded::CancelTimer { name, .. } => {
                timers.push(serde_json::json!({ "cancel": name }));
            }
        }
    }
    let mut failures = Vec::new();
    let lists = [
        ("posts", &expect.posts, posts),
        ("joins", &expect.joins, joins),
        ("custom_events", &expect.custom_events, events),
        ("http", &expect.http, http),
        ("push", &expect.push, push),
        ("timers", &expect.timers, timers),
    ];
    for (what, want, got) in lists {
        let Some(want) = want else { continue };
        if want.len() != got.len() {
            failures.push(format!(
                "{what}: expected {} call(s), the plugin made {}: {}",
                want.len(),
                got.len(),
                Value::Array(got.clone())
            ));
            continue;
        }
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            if let Err(why) = matches(w, g, "") {
                failures.push(format!("{what}[{i}]: {why}; the call was {g}"));
            }
        }
    }
    failures
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Whether `got` has what `want` asks for (see the module docs).
fn matches(want: &Value, got: &Value, path: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, wv) in w {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if let Some(field) = key.strip_suffix("_contains") {
                    let text = match g.get(field) {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => return Err(format!("{at}: no field {field:?}")),
                    };
                    let needle = wv.as_str().map_or_else(|| wv.to_string(), str::to_owned);
                    if !text.contains(&needle) {
                        return Err(format!("{at}: {text:?} does not contain {needle:?}"));
                    }
                    continue;
                }
                match g.get(key) {
                    Some(gv) => matches(wv, gv, &at)?,
                    None if wv.is_null() => {}
                    None => return Err(format!("{at}: missing")),
                }
            }
            Ok(())
        }
        _ if want == got => Ok(()),
        _ => Err(format!(
            "{}: expected {want}, found {got}",
            if path.is_empty() { "value" } else { path }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_and_contains() {
        let got = json!({"body": "you rolled 7", "depth": 1, "metadata": {"a": 1, "b": 2}});
        assert!(
            matches(
                &json!({"body_contains": "rolled", "metadata": {"a": 1}}),
                &got,
                ""
            )
            .is_ok()
        );
        assert!(matches(&json!({"depth": 2}), &got, "").is_err());
        assert!(matches(&json!({"body_contains": "nope"}), &got, "").is_err());
    }
}
