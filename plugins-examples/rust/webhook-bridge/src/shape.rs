//! chathooks records in the JSON shape of CometChat's webhook payloads (see the CometChat webhook
//! triggers reference): users are `{uid, name, role, status, ...}` entities, conversations are groups
//! (`guid`), times are Unix seconds.

use chathooks_sdk::serde_json::{Map, Value, json};
use chathooks_sdk::types::{Conversation, Message, Reaction, Receipt, User};

/// Milliseconds → Unix seconds.
fn seconds(ms: u64) -> u64 {
    ms / 1000
}

/// A user entity.
pub fn user(u: &User) -> Value {
    json!({
        "uid": u.id,
        "name": if u.name.is_empty() { &u.id } else { &u.name },
        "role": "default",
        "status": "offline",
    })
}

/// Users keyed by uid, as `members` and `mentions` are.
pub fn users_by_uid(users: &[User]) -> Value {
    let map: Map<String, Value> = users.iter().map(|u| (u.id.clone(), user(u))).collect();
    Value::Object(map)
}

/// A conversation as a group.
pub fn group(c: &Conversation) -> Value {
    json!({
        "guid": c.id,
        "name": c.title.clone().unwrap_or_default(),
        "type": "private",
        "membersCount": c.participant_count,
        "conversationId": format!("group_{}", c.id),
        "createdAt": seconds(c.created_at),
        "owner": c.owner_id.clone().unwrap_or_default(),
    })
}

/// The `entities` of a message: its sender and receiver (the group).
fn entities(m: &Message, c: &Conversation) -> Value {
    json!({
        "sender": { "entity": user(&m.sender), "entityType": "user" },
        "receiver": { "entity": group(c), "entityType": "group" },
    })
}

/// A text message (`message_sent`, `user_mentioned`).
pub fn message(m: &Message, c: &Conversation) -> Value {
    let mut data = json!({ "text": m.body, "entities": entities(m, c) });
    if let Ok(metadata) = m.metadata_value()
        && metadata.as_object().is_some_and(|o| !o.is_empty())
    {
        data["metadata"] = metadata;
    }
    json!({
        "id": m.id,
        "conversationId": format!("group_{}", c.id),
        "sender": m.sender.id,
        "receiverType": "group",
        "receiver": c.id,
        "category": "message",
        "type": "text",
        "data": data,
        "sentAt": seconds(m.created_at),
        "updatedAt": seconds(m.edited_at.unwrap_or(m.created_at)),
    })
}

/// An action message about `m` (`message_edited`, `message_deleted`): `by` the sender, `for` the group,
/// `on` the message as it is now.
pub fn action(m: &Message, c: &Conversation, action: &str) -> Value {
    let now = seconds(m.edited_at.unwrap_or(m.created_at));
    let mut on = message(m, c);
    match action {
        "edited" => {
            on["editedAt"] = json!(now);
            on["editedBy"] = json!(m.sender.id);
        }
        _ => {
            on["deletedAt"] = json!(now);
            on["deletedBy"] = json!(m.sender.id);
        }
    }
    json!({
        "id": m.id,
        "conversationId": format!("group_{}", c.id),
        "sender": m.sender.id,
        "receiverType": "group",
        "receiver": c.id,
        "category": "action",
        "type": "message",
        "data": {
            "action": action,
            "entities": {
                "by": { "entity": user(&m.sender), "entityType": "user" },
                "for": { "entity": group(c), "entityType": "group" },
                "on": { "entity": on, "entityType": "message" },
            },
        },
        "sentAt": now,
        "updatedAt": now,
    })
}

/// A reaction (`message_reaction_added` / `_removed`).
pub fn reaction(m: &Message, r: &Reaction) -> Value {
    json!({
        "id": format!("{}:{}:{}", m.id, r.user.id, r.emoji),
        "messageId": m.id,
        "reaction": r.emoji,
        "uid": r.user.id,
        "reactedAt": seconds(r.created_at),
        "reactedBy": user(&r.user),
    })
}

/// A receipt (`message_delivery_receipt`, `message_read_receipt`).
pub fn receipt(m: &Message, c: &Conversation, r: &Receipt, action: &str) -> Value {
    let at = match action {
        "read" => r.read_at,
        _ => r.delivered_at,
    };
    json!({
        "receiver": c.id,
        "receiverType": "group",
        "type": "receipts",
        "sender": r.user.id,
        "messageSender": m.sender.id,
        "body": {
            "action": action,
            "messageId": m.id,
            "user": user(&r.user),
            "timestamp": seconds(at.unwrap_or(m.created_at)),
        },
    })
}
