//! JSON → WIT values for case files and the harness: snake_case field names, generous defaults, and
//! errors that name the exact field path that was wrong.

use crate::plugins::bindings::types::{
    Ban, Conversation, Decision, Draft, EventContext, HeldMessage, Message, Origin, Participant,
    PluginOrigin, Presence, Reaction, Receipt, Role, TypingEvent, TypingState, User,
};
use crate::plugins::{Hook, HookCall};
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

/// A conversation; `participant_count` defaults to the length of `participant_ids` (which case files
/// written for 0.2.0 give; 0.3.0 conversations do not carry it).
pub fn conversation(v: &Value, path: &str) -> Result<Conversation> {
    let o = obj(v, path)?;
    let participant_ids = o.strings("participant_ids")?;
    let count = u32::try_from(participant_ids.len()).unwrap_or(u32::MAX);
    Ok(Conversation {
        id: o.string("id")?,
        title: o.opt_string("title")?,
        owner_id: o.opt_string("owner_id")?,
        participant_count: o.u32("participant_count", count)?,
        distinct_by_participants: o.bool("distinct_by_participants")?,
        metadata: o.json_text("metadata")?,
        last_message_id: o.opt_string("last_message_id")?,
        created_at: o.u64("created_at", 0)?,
        updated_at: o.u64("updated_at", 0)?,
    })
}

/// A participant: `{"user": {...}, "role"?, "unread_count"?, "last_read_message_id"?}`; `role` defaults to
/// `admin` when a 0.2.0 case file says `"is_admin": true`, else `member`.
pub fn participant(v: &Value, path: &str) -> Result<Participant> {
    let o = obj(v, path)?;
    let legacy_admin = if o.bool("is_admin")? {
        Role::Admin
    } else {
        Role::Member
    };
    Ok(Participant {
        user: o.required("user", user)?,
        role: o.optional("role", role)?.unwrap_or(legacy_admin),
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
        parent_id: o.opt_string("parent_id")?,
        reply_count: o.u32("reply_count", 0)?,
        last_reply_at: o.opt_u64("last_reply_at")?,
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
        parent_id: o.opt_string("parent_id")?,
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

/// `"admin"`, `"moderator"` or `"member"`.
pub fn role(v: &Value, path: &str) -> Result<Role> {
    match v.as_str() {
        Some("admin") => Ok(Role::Admin),
        Some("moderator") => Ok(Role::Moderator),
        Some("member") => Ok(Role::Member),
        _ => err(
            path,
            format!("expected \"admin\", \"moderator\" or \"member\", found {v}"),
        ),
    }
}

/// A presence: `{"user_id", "online"?, "last_seen_at"?}`.
pub fn presence(v: &Value, path: &str) -> Result<Presence> {
    let o = obj(v, path)?;
    Ok(Presence {
        user_id: o.string("user_id")?,
        online: o.bool("online")?,
        last_seen_at: o.opt_u64("last_seen_at")?,
    })
}

/// A ban: `{"conversation_id", "user": {...}, "banned_by", "reason"?, "at"?}`.
pub fn ban(v: &Value, path: &str) -> Result<Ban> {
    let o = obj(v, path)?;
    Ok(Ban {
        conversation_id: o.string("conversation_id")?,
        user: o.required("user", user)?,
        banned_by: o.string("banned_by")?,
        reason: o.opt_string("reason")?,
        at: o.u64("at", 0)?,
    })
}

/// A held message: `{"id", "draft": {...}, "reason", "held_by", "held_at"?}`.
pub fn held_message(v: &Value, path: &str) -> Result<HeldMessage> {
    let o = obj(v, path)?;
    Ok(HeldMessage {
        id: o.string("id")?,
        draft: o.required("draft", draft)?,
        reason: o.string("reason")?,
        held_by: o.string("held_by")?,
        held_at: o.u64("held_at", 0)?,
    })
}

/// A WIT value a hook argument can be read as from a case file (see [`HookCall::from_case`]). Records
/// are required; lists default to empty, options to `none`, strings to empty.
pub trait FromCase: Sized {
    /// The value at `path`, given as `value` (`None` when the key is absent or null).
    fn from_case(value: Option<&Value>, path: &str) -> Result<Self>;
}

/// Implements [`FromCase`] for required records with their reader function above.
macro_rules! required_records {
    ($( $ty:ty => $read:path, )*) => {
        $( impl FromCase for $ty {
            fn from_case(value: Option<&Value>, path: &str) -> Result<Self> {
                match value {
                    Some(v) => $read(v, path),
                    None => err(path, "is required"),
                }
            }
        } )*
    };
}

required_records! {
    User => user,
    Conversation => conversation,
    Participant => participant,
    Message => message,
    Draft => draft,
    Receipt => receipt,
    Reaction => reaction,
    TypingEvent => typing_event,
    Role => role,
    Presence => presence,
    Ban => ban,
    HeldMessage => held_message,
}

impl<T: FromCase> FromCase for Vec<T> {
    fn from_case(value: Option<&Value>, path: &str) -> Result<Self> {
        match value {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| T::from_case(Some(v), &format!("{path}[{i}]")))
                .collect(),
            Some(other) => err(path, format!("expected a list, found {other}")),
        }
    }
}

impl<T: FromCase> FromCase for Option<T> {
    fn from_case(value: Option<&Value>, path: &str) -> Result<Self> {
        value.map(|v| T::from_case(Some(v), path)).transpose()
    }
}

impl FromCase for String {
    fn from_case(value: Option<&Value>, path: &str) -> Result<Self> {
        match value {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => err(path, format!("expected a string, found {other}")),
        }
    }
}

/// A case's `input` object, read one hook argument at a time.
pub struct CaseInput<'a>(Obj<'a>);

impl<'a> CaseInput<'a> {
    /// `input` as an object (an error naming `input` otherwise).
    pub fn new(input: &'a Value) -> Result<Self> {
        obj(input, "input").map(CaseInput)
    }

    /// The argument `key` (a WIT parameter name in snake_case).
    pub fn arg<T: FromCase>(&self, key: &str) -> Result<T> {
        T::from_case(self.0.get(key), &self.0.at(key))
    }
}

/// Build the call of hook `hook` (its WIT name) from `input` (the WIT parameter names in snake_case).
pub fn hook_call(hook: &str, input: &Value, context: EventContext) -> Result<HookCall> {
    let Some(hook) = Hook::from_name(hook) else {
        return err(
            "hook",
            format!(
                "unknown hook {hook:?}; hooks are the WIT interface names, such as \"after-message-sent\""
            ),
        );
    };
    HookCall::from_case(hook, &CaseInput::new(input)?, context)
}

/// The participants a case gives its conversation (`input.participants`, with the conversation's id from
/// `input.conversation.id`), for `chat.participants` and for components built against 0.2.0 or older,
/// whose hooks still take them.
pub fn case_participants(input: &Value) -> Result<Option<(String, Vec<Participant>)>> {
    let o = CaseInput::new(input)?;
    let participants: Vec<Participant> = o.arg("participants")?;
    let id =
        o.0.get("conversation")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str);
    Ok(match id {
        Some(id) if !participants.is_empty() => Some((id.to_owned(), participants)),
        _ => None,
    })
}

/// A decision as case files write it: `"allow"`, `{"modify": {"body"?, "metadata"?}}`, `{"reject": "..."}`,
/// `{"hold": "..."}`.
/// Metadata is shown as parsed JSON when it parses.
pub fn decision_to_json(decision: &Decision) -> Value {
    match decision {
        Decision::Allow => json!("allow"),
        Decision::Reject(reason) => json!({ "reject": reason }),
        Decision::Hold(reason) => json!({ "hold": reason }),
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
