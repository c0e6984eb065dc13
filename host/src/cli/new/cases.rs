//! A starter's case file: cases for each of its hooks, which the starter passes as generated.

use super::render::{params, snake};
use crate::plugins::{Hook, HookKind};
use anyhow::bail;
use serde_json::{Value, json};

/// A case file with cases for every hook of the starter, which the starter passes as generated. Written
/// by hand rather than by `serde_json` so that fields keep a reader's order (name, events, expect) and the
/// file looks like the ones in `plugins-examples/`.
pub(super) fn cases(hooks: &[Hook]) -> anyhow::Result<String> {
    let mut cases = Vec::new();
    for &hook in hooks {
        let params = params(hook)?;
        let input = |body: &str| -> anyhow::Result<String> {
            let mut fields = Vec::new();
            for p in params.iter().filter(|p| p.name != "context") {
                fields.push(format!(
                    "\"{}\": {}",
                    snake(p.name),
                    inline(&sample(p.ty, body)?)
                ));
            }
            Ok(format!(
                "{{\n            {}\n          }}",
                fields.join(",\n            ")
            ))
        };
        let event = |context: &str, body: &str, expect: Value| -> anyhow::Result<String> {
            Ok(format!(
                "        {{\n          \"hook\": \"{}\",\n{context}          \"input\": {},\n          \"expect\": {}\n        }}",
                hook.name(),
                input(body)?,
                inline(&expect)
            ))
        };
        let case = |name: String, events: Vec<String>, expect: Option<Value>| {
            let expect = expect
                .map(|e| format!(",\n      \"expect\": {}", inline(&e)))
                .unwrap_or_default();
            format!(
                "    {{\n      \"name\": {},\n      \"events\": [\n{}\n      ]{expect}\n    }}",
                inline(&json!(name)),
                events.join(",\n")
            )
        };
        let name = hook.name();
        if hook.kind() == HookKind::Before {
            let allow = event("", "hello there", json!({ "decision": "allow" }))?;
            cases.push(case(
                format!("{name} allows an ordinary message"),
                vec![allow],
                None,
            ));
            let reject = json!({ "decision": { "reject": "no spam, please" } });
            let reject = event("", "Cheap SPAM, buy now", reject)?;
            cases.push(case(format!("{name} rejects spam"), vec![reject], None));
        } else {
            let attempt = |n: u32| {
                let context = json!({ "event_id": 1, "attempt": n, "at": 1_700_000_000_000u64 });
                event(
                    &format!("          \"context\": {},\n", inline(&context)),
                    "hello there",
                    json!({ "ok": true }),
                )
            };
            let expect = json!({
                "kv": { format!("events:{name}"): 1, "seen:1": 1 },
                "logs": [{ "level": "info", "contains": format!("{name}: event 1, 1 so far") }],
            });
            cases.push(case(
                format!("{name} counts an event once, even when it is retried"),
                vec![attempt(1)?, attempt(2)?],
                Some(expect),
            ));
        }
    }
    Ok(format!(
        "{{\n  \"cases\": [\n{}\n  ]\n}}\n",
        cases.join(",\n")
    ))
}

/// `value` as JSON on one line, with a space after each `:` and `,` as people write it.
fn inline(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), inline(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

/// Sample input for a hook parameter of WIT type `ty` (case-file JSON); `body` is the message's text.
fn sample(ty: &str, body: &str) -> anyhow::Result<Value> {
    let alice = json!({ "id": "alice", "name": "Alice" });
    let bob = json!({ "id": "bob", "name": "Bob" });
    let at = 1_700_000_000_000u64;
    let draft = json!({ "conversation_id": "c1", "sender": alice, "body": body });
    Ok(match ty {
        "draft" => draft,
        "message" => {
            json!({ "id": "m1", "conversation_id": "c1", "sender": alice, "body": body, "seq": 1 })
        }
        "conversation" => json!({ "id": "c1", "owner_id": "alice", "participant_count": 2 }),
        "list<typing-event>" => json!([{ "user": alice, "state": "begin", "at": at }]),
        "user" => bob,
        "option<user>" => alice,
        "list<user>" => json!([bob]),
        "receipt" => json!({ "message_id": "m1", "user": bob, "delivered_at": at, "read_at": at }),
        "reaction" => json!({ "message_id": "m1", "user": bob, "emoji": "👍", "created_at": at }),
        "participant" => json!({ "user": bob, "role": "moderator" }),
        "role" => json!("member"),
        "presence" => json!({ "user_id": "bob", "online": true, "last_seen_at": at }),
        "ban" => json!({
            "conversation_id": "c1", "user": bob, "banned_by": "alice", "reason": "spam", "at": at,
        }),
        "held-message" => json!({
            "id": "m2", "draft": draft, "reason": "held for review", "held_by": "filter", "held_at": at,
        }),
        "string" | "option<string>" => json!(body),
        other => bail!("no sample input for a hook parameter of type `{other}`"),
    })
}
