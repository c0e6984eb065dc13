//! The dispatch benchmark's event, as JSON for the variants that cross a serialization boundary (the
//! webhook and the Extism plugin). It carries the same fields as the WIT records, so every variant moves
//! the same data. Included with `#[path]` by the Extism host and guest too; it needs only `serde`.

use serde::{Deserialize, Serialize};

/// A user, as in the WIT `user` record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub metadata: String,
}

/// A participant, as in the WIT `participant` record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Participant {
    pub user: User,
    pub is_admin: bool,
    pub unread_count: u32,
    pub last_read_message_id: Option<String>,
}

/// A conversation, as in the WIT `conversation` record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub title: Option<String>,
    pub admin_ids: Vec<String>,
    pub participant_ids: Vec<String>,
    pub participant_count: u32,
    pub distinct_by_participants: bool,
    pub metadata: String,
    pub last_message_id: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A draft, as in the WIT `draft` record (origin: a user).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Draft {
    pub conversation_id: String,
    pub sender: User,
    pub body: String,
    pub metadata: String,
}

/// A stored message, as in the WIT `message` record (origin: a user).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub sender: User,
    pub body: String,
    pub metadata: String,
    pub seq: u64,
    pub created_at: u64,
    pub edited_at: Option<u64>,
    pub deleted: bool,
}

/// The arguments of `before-message-sent`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeforeMessageSent {
    pub draft: Draft,
    pub conversation: Conversation,
    pub participants: Vec<Participant>,
}

/// The arguments of `after-message-sent`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AfterMessageSent {
    pub event_id: u64,
    pub attempt: u32,
    pub at: u64,
    pub message: Message,
    pub conversation: Conversation,
    pub participants: Vec<Participant>,
}

/// A before-hook's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Modify { body: String },
    Reject { reason: String },
}

/// An after-hook's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub ok: bool,
}

/// The text of every benchmark message: one blocked word among ordinary ones.
pub const BODY: &str = "what the heck is going on with the build today";

fn user(id: &str) -> User {
    User {
        id: id.to_owned(),
        name: id.to_uppercase(),
        metadata: "{}".to_owned(),
    }
}

/// The conversation of the benchmark: three participants, as in a small group chat.
pub fn sample_conversation() -> (Conversation, Vec<Participant>) {
    let ids = ["alice", "bob", "carol"];
    let conversation = Conversation {
        id: "c-bench".to_owned(),
        title: Some("release planning".to_owned()),
        admin_ids: vec!["alice".to_owned()],
        participant_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        participant_count: 3,
        distinct_by_participants: false,
        metadata: "{}".to_owned(),
        last_message_id: Some("m-0".to_owned()),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
    };
    let participants = ids
        .iter()
        .map(|id| Participant {
            user: user(id),
            is_admin: *id == "alice",
            unread_count: 2,
            last_read_message_id: Some("m-0".to_owned()),
        })
        .collect();
    (conversation, participants)
}

/// `before-message-sent` for a message from alice.
pub fn sample_before() -> BeforeMessageSent {
    let (conversation, participants) = sample_conversation();
    BeforeMessageSent {
        draft: Draft {
            conversation_id: conversation.id.clone(),
            sender: user("alice"),
            body: BODY.to_owned(),
            metadata: "{}".to_owned(),
        },
        conversation,
        participants,
    }
}

/// `after-message-sent` for event `event_id` (the stored message carries the masked body).
pub fn sample_after(event_id: u64) -> AfterMessageSent {
    let (conversation, participants) = sample_conversation();
    AfterMessageSent {
        event_id,
        attempt: 1,
        at: 1_700_000_000_000,
        message: Message {
            id: format!("m-{event_id}"),
            conversation_id: conversation.id.clone(),
            sender: user("alice"),
            body: BODY.replace("heck", "****"),
            metadata: "{}".to_owned(),
            seq: event_id,
            created_at: 1_700_000_000_000,
            edited_at: None,
            deleted: false,
        },
        conversation,
        participants,
    }
}
