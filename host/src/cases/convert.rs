//! JSON → WIT values for case files and the harness: snake_case field names, generous defaults, and
//! errors that name the exact field path that was wrong.

use crate::plugins::HookCall;
use crate::plugins::bindings::types::{
    Conversation, Decision, Draft, EventContext, Message, Origin, Participant, PluginOrigin,
    Reaction, Receipt, TypingEvent, TypingState, User,
};
use serde_json::{Map, Value, json};

/// A case-file value that does not fit the WIT type it stands for.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    /// Where in the input, e.g. `input.message.sender.id`.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

type Result<T> = std::result::Result<T, InputError>;

fn err<T>(path: &str, message: impl Into<String>) -> Result<T> {
    Err(InputError {
        path: path.to_string(),
        message: message.into(),
    })
}

/// A JSON object being read field by field.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

fn obj<'a>(value: &'a Value, path: &'a str) -> Result<Obj<'a>> {
    match value {
        Value::Object(map) => Ok(Obj { map, path }),
        other => err(path, format!("expected an object, found {other}")),
    }
}

impl Obj<'_> {
    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<String> {
        Ok(self.opt_string(key)?.unwrap_or_default())
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => err(&self.at(key), format!("expected a string, found {other}")),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(()).or_else(|_| {
                err(
                    &self.at(key),
                    format!("expected a non-negative integer, found {v}"),
                )
            }),
        }
    }

    fn u64(&self, key: &str, default: u64) -> Result<u64> {
        Ok(self.opt_u64(key)?.unwrap_or(default))
    }

    fn u32(&self, key: &str, default: u32) -> Result<u32> {
        let v = self.u64(key, u64::from(default))?;
        u32::try_from(v).or_else(|_| err(&self.at(key), "does not fit in 32 bits"))
    }

    fn bool(&self, key: &str) -> Result<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => err(
                &self.at(key),
                format!("expected true or false, found {other}"),
            ),
        }
    }

    /// A JSON-object field passed to plugins as JSON text; `{}` when absent. A string is taken as JSON text.
    fn json_text(&self, key: &str) -> Result<String> {
        match self.get(key) {
            None => Ok("{}".to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ Value::Object(_)) => Ok(v.to_string()),
            Some(other) => err(
                &self.at(key),
                format!("expected a JSON object, found {other}"),
            ),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.list(key, |v, path| match v {
            Value::String(s) => Ok(s.clone()),
            other => err(path, format!("expected a string, found {other}")),
        })
    }

    fn list<T>(&self, key: &str, item: impl Fn(&Value, &str) -> Result<T>) -> Result<Vec<T>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| item(v, &format!("{}[{i}]", self.at(key))))
                .collect(),
            Some(other) => err(&self.at(key), format!("expected a list, found {other}")),
        }
    }

    fn required<T>(&self, key: &str, item: impl Fn(&Value, &str) -> Result<T>) -> Result<T> {
        match self.get(key) {
            Some(v) => item(v, &self.at(key)),
            None => err(&self.at(key), "is required"),
        }
    }

    fn optional<T>(
        &self,
        key: &str,
        item: impl Fn(&Value, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        self.get(key).map(|v| item(v, &self.at(key))).transpose()
    }
}

/// A user: `{"id": "alice", "name"?: "Alice", "metadata"?: {}}`; name defaults to the id.
pub fn user(v: &Value, path: &str) -> Result<User> {
    let o = obj(v, path)?;
    let id = o.string("id")?;
    Ok(User {
        name: o.opt_string("name")?.unwrap_or_else(|| id.clone()),
        metadata: o.json_text("metadata")?,
        id,
    })
}

fn sender(o: &Obj<'_>) -> Result<User> {
    Ok(o.optional("sender", user)?.unwrap_or(User {
        id: String::new(),
        name: String::new(),
        metadata: "{}".into(),
    }))
}

/// A conversation; `participant_count` defaults to the length of `participant_ids`.
pub fn conversation(v: &Value, path: &str) -> Result<Conversation> {
    let o = obj(v, path)?;
    let participant_ids = o.strings("participant_ids")?;
    let count = u32::try_from(participant_ids.len()).unwrap_or(u32::MAX);
    Ok(Conversation {
        id: o.string("id")?,
        title: o.opt_string("title")?,
        admin_ids: o.strings("admin_ids")?,
        participant_count: o.u32("participant_count", count)?,
        participant_ids,
        distinct_by_participants: o.bool("distinct_by_participants")?,
        metadata: o.json_text("metadata")?,
        last_message_id: o.opt_string("last_message_id")?,
        created_at: o.u64("created_at", 0)?,
        updated_at: o.u64("updated_at", 0)?,
    })
}

/// A participant: `{"user": {...}, "is_admin"?, "unread_count"?, "last_read_message_id"?}`.
pub fn participant(v: &Value, path: &str) -> Result<Participant> {
    let o = obj(v, path)?;
    Ok(Participant {
        user: o.required("user", user)?,
        is_admin: o.bool("is_admin")?,
        unread_count: o.u32("unread_count", 0)?,
        last_read_message_id: o.opt_string("last_read_message_id")?,
    })
}

/// `"user"` or `{"plugin": {"name": "x", "depth": 1}}`.
pub fn origin(v: &Value, path: &str) -> Result<Origin> {
    match v {
        Value::String(s) if s == "user" => Ok(Origin::User),
        Value::Object(map) if map.len() == 1 && map.contains_key("plugin") => {
            let o = obj(&map["plugin"], path)?;
            Ok(Origin::Plugin(PluginOrigin {
                name: o.string("name")?,
                depth: o.u32("depth", 1)?,
            }))
        }
        other => err(
            path,
            format!(
                "expected \"user\" or {{\"plugin\": {{\"name\": ..., \"depth\": ...}}}}, found {other}"
            ),
        ),
    }
}

/// A message; `seq` defaults to 1.
pub fn message(v: &Value, path: &str) -> Result<Message> {
    let o = obj(v, path)?;
    Ok(Message {
        id: o.string("id")?,
        conversation_id: o.string("conversation_id")?,
        sender: sender(&o)?,
        body: o.string("body")?,
        metadata: o.json_text("metadata")?,
        seq: o.u64("seq", 1)?,
        created_at: o.u64("created_at", 0)?,
        edited_at: o.opt_u64("edited_at")?,
        deleted: o.bool("deleted")?,
        origin: o.optional("origin", origin)?.unwrap_or(Origin::User),
    })
}

/// A draft (what before-hooks see).
pub fn draft(v: &Value, path: &str) -> Result<Draft> {
    let o = obj(v, path)?;
    Ok(Draft {
        conversation_id: o.string("conversation_id")?,
        sender: sender(&o)?,
        body: o.string("body")?,
        metadata: o.json_text("metadata")?,
        origin: o.optional("origin", origin)?.unwrap_or(Origin::User),
    })
}

/// A receipt.
pub fn receipt(v: &Value, path: &str) -> Result<Receipt> {
    let o = obj(v, path)?;
    Ok(Receipt {
        message_id: o.string("message_id")?,
        user: o.required("user", user)?,
        delivered_at: o.opt_u64("delivered_at")?,
        read_at: o.opt_u64("read_at")?,
    })
}

/// A reaction.
pub fn reaction(v: &Value, path: &str) -> Result<Reaction> {
    let o = obj(v, path)?;
    Ok(Reaction {
        message_id: o.string("message_id")?,
        user: o.required("user", user)?,
        emoji: o.string("emoji")?,
        created_at: o.u64("created_at", 0)?,
    })
}

/// A typing event: `{"user": {...}, "state": "begin" | "pause" | "finished", "at"?}`.
pub fn typing_event(v: &Value, path: &str) -> Result<TypingEvent> {
    let o = obj(v, path)?;
    let state = match o.string("state")?.as_str() {
        "begin" => TypingState::Begin,
        "pause" => TypingState::Pause,
        "finished" => TypingState::Finished,
        other => {
            return err(
                &o.at("state"),
                format!("expected begin, pause or finished, found {other:?}"),
            );
        }
    };
    Ok(TypingEvent {
        user: o.required("user", user)?,
        state,
        at: o.u64("at", 0)?,
    })
}

/// An event context; `event_id` defaults to `default_id`, `attempt` to 1.
pub fn context(v: Option<&Value>, path: &str, default_id: u64) -> Result<EventContext> {
    let Some(v) = v else {
        return Ok(EventContext {
            event_id: default_id,
            attempt: 1,
            at: 0,
        });
    };
    let o = obj(v, path)?;
    Ok(EventContext {
        event_id: o.u64("event_id", default_id)?,
        attempt: o.u32("attempt", 1)?,
        at: o.u64("at", 0)?,
    })
}

/// Build the call of hook `hook` (its WIT name) from `input` (the WIT parameter names in snake_case).
pub fn hook_call(hook: &str, input: &Value, context: EventContext) -> Result<HookCall> {
    let o = obj(input, "input")?;
    let conversation = || o.required("conversation", conversation);
    let participants = || o.list("participants", participant);
    let message = || o.required("message", message);
    Ok(match hook {
        "before-message-sent" => HookCall::BeforeMessageSent {
            draft: o.required("draft", draft)?,
            conversation: conversation()?,
            participants: participants()?,
        },
        "before-message-updated" => HookCall::BeforeMessageUpdated {
            current: o.required("current", self::message)?,
            draft: o.required("draft", draft)?,
            conversation: conversation()?,
            participants: participants()?,
        },
        "after-message-sent" => HookCall::AfterMessageSent {
            context,
            message: message()?,
            conversation: conversation()?,
            participants: participants()?,
        },
        "after-message-updated" => HookCall::AfterMessageUpdated {
            context,
            message: message()?,
            conversation: conversation()?,
            participants: participants()?,
        },
        "after-message-deleted" => HookCall::AfterMessageDeleted {
            context,
            message: message()?,
            conversation: conversation()?,
            participants: participants()?,
        },
        "typing-started" => HookCall::TypingStarted {
            context,
            conversation: conversation()?,
            participants: participants()?,
            events: o.list("events", typing_event)?,
        },
        "after-conversation-created" => HookCall::AfterConversationCreated {
            context,
            conversation: conversation()?,
            participants: participants()?,
        },
        "after-conversation-updated" => HookCall::AfterConversationUpdated {
            context,
            conversation: conversation()?,
            participants: participants()?,
        },
        "after-conversation-deleted" => HookCall::AfterConversationDeleted {
            context,
            conversation: conversation()?,
            participants: participants()?,
        },
        "after-users-added-to-conversation" => HookCall::AfterUsersAddedToConversation {
            context,
            conversation: conversation()?,
            participants: participants()?,
            new_users: o.list("new_users", user)?,
        },
        "after-users-removed-from-conversation" => HookCall::AfterUsersRemovedFromConversation {
            context,
            conversation: conversation()?,
            participants: participants()?,
            old_users: o.list("old_users", user)?,
        },
        "after-message-delivered" => HookCall::AfterMessageDelivered {
            context,
            message: message()?,
            conversation: conversation()?,
            receipt: o.required("receipt", receipt)?,
        },
        "after-message-read" => HookCall::AfterMessageRead {
            context,
            message: message()?,
            conversation: conversation()?,
            receipt: o.required("receipt", receipt)?,
        },
        "after-reaction-added" => HookCall::AfterReactionAdded {
            context,
            message: message()?,
            conversation: conversation()?,
            reaction: o.required("reaction", reaction)?,
        },
        "after-reaction-removed" => HookCall::AfterReactionRemoved {
            context,
            message: message()?,
            conversation: conversation()?,
            reaction: o.required("reaction", reaction)?,
        },
        "after-user-mentioned" => HookCall::AfterUserMentioned {
            context,
            message: message()?,
            conversation: conversation()?,
            mentioned_users: o.list("mentioned_users", user)?,
        },
        other => {
            return err(
                "hook",
                format!(
                    "unknown hook {other:?}; hooks are the WIT interface names, such as \"after-message-sent\""
                ),
            );
        }
    })
}

/// A decision as case files write it: `"allow"`, `{"modify": {"body"?, "metadata"?}}`, `{"reject": "..."}`.
/// Metadata is shown as parsed JSON when it parses.
pub fn decision_to_json(decision: &Decision) -> Value {
    match decision {
        Decision::Allow => json!("allow"),
        Decision::Reject(reason) => json!({ "reject": reason }),
        Decision::Modify(m) => {
            let mut fields = Map::new();
            if let Some(body) = &m.body {
                fields.insert("body".into(), json!(body));
            }
            if let Some(metadata) = &m.metadata {
                let parsed = serde_json::from_str(metadata).unwrap_or_else(|_| json!(metadata));
                fields.insert("metadata".into(), parsed);
            }
            json!({ "modify": fields })
        }
    }
}

/// A stored KV value as case files write it: parsed JSON, or a JSON string when it is not JSON.
pub fn kv_value_to_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_short_message() {
        let m = message(
            &json!({"id": "m1", "body": "hi", "sender": {"id": "alice"}}),
            "message",
        )
        .expect("valid");
        assert_eq!(m.seq, 1);
        assert_eq!(m.sender.name, "alice");
        assert_eq!(m.metadata, "{}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = hook_call(
            "after-message-sent",
            &json!({"message": {"seq": "x"}, "conversation": {}}),
            context(None, "c", 1).expect("ctx"),
        )
        .expect_err("bad seq");
        assert_eq!(e.path, "input.message.seq");
    }

    #[test]
    fn unknown_hook_is_refused() {
        let e = hook_call(
            "after-nothing",
            &json!({}),
            context(None, "c", 1).expect("ctx"),
        )
        .expect_err("unknown");
        assert!(e.message.contains("unknown hook"));
    }
}
