//! Chat records: the shapes the server stores, serves as JSON and hands to hooks.
//!
//! They mirror the WIT records in `wit/types.wit` field for field (so mapping to the WIT types in
//! `events.rs` is mechanical), plus a few server-side fields the REST API shows but hooks do not need
//! (`mentions`, `status`, `client_id`). JSON is snake_case because that is what the REST API speaks.
//!
//! Timestamps are [`Millis`]: milliseconds since the Unix epoch as `i64`, because that is SQLite's integer
//! type and chat clients order and display by milliseconds. The WIT `timestamp` is `u64`; the conversion
//! happens where WIT values are built.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC). Signed because SQLite integers are `i64`.
pub type Millis = i64;

/// A person or bot that can take part in conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Stable id chosen by the server's admin (e.g. `alice`); what other records refer to.
    pub id: String,
    /// Display name, shown to other participants.
    pub name: String,
    /// Application-specific data (a JSON object), passed through untouched.
    pub metadata: serde_json::Value,
}

/// A user as admins see them: the user plus what the admin API manages (`GET /v1/admin/users`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserAccount {
    /// The user, as everyone else sees them.
    #[serde(flatten)]
    pub user: User,
    /// True for a plugin's bot user (`bot.<plugin>`), which the server creates and which gets no token.
    pub bot: bool,
    /// False once an admin deactivated the user: their tokens are refused; their messages stay.
    pub active: bool,
    /// When the user was created.
    pub created_at: Millis,
    /// When the user was deactivated, while they are.
    pub deactivated_at: Option<Millis>,
}

/// A bearer token as admins see it: never the secret, which is shown once when issued and stored only
/// as its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The token's id, what revoking takes; not a credential.
    pub id: String,
    /// The user it acts as.
    pub user_id: String,
    /// When it was issued.
    pub created_at: Millis,
    /// When it stops working, if it expires.
    pub expires_at: Option<Millis>,
    /// When it was last presented, to the minute (see [`LAST_USED_RESOLUTION_MS`]), if ever.
    ///
    /// [`LAST_USED_RESOLUTION_MS`]: crate::store::limits::LAST_USED_RESOLUTION_MS
    pub last_used_at: Option<Millis>,
    /// True once `expires_at` has passed: the token answers 401.
    pub expired: bool,
}

/// A conversation: a direct chat or a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conversation {
    /// Server-assigned id.
    pub id: String,
    /// Title, if one was set; direct chats often have none.
    pub title: Option<String>,
    /// Users who may update or delete the conversation, change roles and remove others from it (role
    /// `admin`).
    pub admin_ids: Vec<String>,
    /// Users who may ban members and review held messages without administering the conversation (role
    /// `moderator`; admins may do all of that too and are not listed here).
    #[serde(default)]
    pub moderator_ids: Vec<String>,
    /// The user who owns the conversation: its creator, or whoever ownership was transferred to. The owner
    /// is always an admin and cannot be demoted, removed or banned by other admins. `null` for a
    /// conversation whose owner left (any admin may then transfer ownership).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Every current participant, admins included, in the order they joined (ties by id).
    pub participant_ids: Vec<String>,
    /// The number of participants, kept as a field because the WIT record and the Skygear model carry it
    /// (and because events of large conversations leave `participant_ids` out).
    pub participant_count: u32,
    /// Set only in an event's copy of a conversation of more than 100 participants, whose
    /// `participant_ids` is then empty (as Stream's events carry a channel's member count, not its
    /// members): copying the list into every frame to every member was most of a large fan-out's cost.
    /// `GET /v1/conversations/{id}` has the list. Absent (false) everywhere else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub participant_ids_omitted: bool,
    /// When true, creating a conversation with the same participant set returns this one.
    pub distinct_by_participants: bool,
    /// Application-specific data (a JSON object).
    pub metadata: serde_json::Value,
    /// The newest message, if any, so lists can show it without another query.
    pub last_message_id: Option<String>,
    /// When the conversation was created.
    pub created_at: Millis,
    /// When the title, metadata or participants last changed (not when a message was sent).
    pub updated_at: Millis,
}

impl Conversation {
    /// Who may moderate it (ban members, review held messages): its admins, then its moderators.
    pub fn moderators(&self) -> impl Iterator<Item = &str> {
        self.admin_ids
            .iter()
            .chain(&self.moderator_ids)
            .map(String::as_str)
    }

    /// The role of `user_id`, if they participate.
    pub fn role_of(&self, user_id: &str) -> Option<Role> {
        if self.admin_ids.iter().any(|a| a == user_id) {
            Some(Role::Admin)
        } else if self.moderator_ids.iter().any(|m| m == user_id) {
            Some(Role::Moderator)
        } else if self.participant_ids.iter().any(|p| p == user_id) {
            Some(Role::Member)
        } else {
            None
        }
    }

    /// Whether `user_id` may moderate it (an admin or a moderator).
    pub fn may_moderate(&self, user_id: &str) -> bool {
        self.moderators().any(|m| m == user_id)
    }

    /// Whether `user_id` owns it.
    pub fn is_owner(&self, user_id: &str) -> bool {
        self.owner_id.as_deref() == Some(user_id)
    }

    /// The other participant of a one-to-one conversation (distinct, two participants) for `user_id`,
    /// if it is one and `user_id` is in it: where blocking applies.
    pub fn one_to_one_peer(&self, user_id: &str) -> Option<&str> {
        if !self.distinct_by_participants || self.participant_ids.len() != 2 {
            return None;
        }
        if !self.participant_ids.iter().any(|p| p == user_id) {
            return None;
        }
        self.participant_ids
            .iter()
            .map(String::as_str)
            .find(|p| *p != user_id)
    }
}

/// What a participant may do in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages the conversation, its members and their roles.
    Admin,
    /// Bans members and approves or rejects held messages.
    Moderator,
    /// Takes part.
    #[default]
    Member,
}

impl Role {
    /// The role as stored and shown (`admin`, `moderator`, `member`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::Member => "member",
        }
    }

    /// The role stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Role> {
        [Role::Admin, Role::Moderator, Role::Member]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// A ban: `user` may not be added to (or join) the conversation until a moderator or admin lifts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ban {
    /// The conversation.
    pub conversation_id: String,
    /// The banned user.
    pub user: User,
    /// The moderator or admin who banned them.
    pub banned_by: String,
    /// Why, if they said.
    pub reason: Option<String>,
    /// When.
    pub created_at: Millis,
}

/// A block: `blocked` may no longer message `blocker_id` in their one-to-one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Block {
    /// The user who blocked.
    pub blocker_id: String,
    /// The user they blocked.
    pub blocked: User,
    /// When.
    pub created_at: Millis,
}

/// One user's membership of one conversation, as that user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Participant {
    /// The participating user.
    pub user: User,
    /// Whether this user may administer the conversation: true exactly when `role` is `admin` (kept for
    /// clients that predate roles).
    pub is_admin: bool,
    /// What this user may do in the conversation.
    #[serde(default)]
    pub role: Role,
    /// Messages from others, not deleted, newer than what this user has read.
    pub unread_count: u32,
    /// The newest message this user has read, if any; reading is a high-water mark.
    pub last_read_message_id: Option<String>,
}

/// Whether a user is connected (`GET /v1/users/{id}/presence`, `user.presence.changed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Presence {
    /// The user.
    pub user_id: String,
    /// True while the user has at least one live WebSocket connection (to any node of a cluster).
    pub online: bool,
    /// When the user last connected or disconnected; `null` if never.
    pub last_seen_at: Option<Millis>,
}

/// A conversation as one user lists it: the conversation plus that user's unread state and the newest
/// message. This is Skygear's `UserConversation`, shaped for `GET /v1/conversations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserConversation {
    /// The conversation itself; flattened so clients see one object.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// Messages this user has not read yet.
    pub unread_count: u32,
    /// The newest message this user has read, if any.
    pub last_read_message_id: Option<String>,
    /// The newest message, so a conversation list can show a preview.
    pub last_message: Option<Message>,
}

/// Who produced a message. Stored with every message so hooks can stop bots answering bots forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A user, through the REST API.
    #[default]
    User,
    /// A plugin posting as its bot user.
    Plugin {
        /// The plugin's name (its file name without `.wasm`).
        name: String,
        /// How many plugin actions led to this message (1 = a plugin answering a user).
        depth: u32,
    },
}

/// A summary of the receipts of one message, from the point of view of the participants other than the
/// sender. Computed from receipts when read, so it can never disagree with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Stored, but no other participant has reported it delivered or read.
    #[default]
    Sent,
    /// At least one other participant's device has it; nobody has read it.
    Delivered,
    /// At least one other participant has read it, but not all of them.
    SomeRead,
    /// Every other current participant has read it.
    AllRead,
}

/// A message in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    /// Server-assigned id.
    pub id: String,
    /// The conversation the message belongs to.
    pub conversation_id: String,
    /// The user (or plugin bot) who sent it; embedded so clients and hooks need no extra lookup.
    pub sender: User,
    /// The text; empty once deleted.
    pub body: String,
    /// Application-specific data (a JSON object); emptied once deleted.
    pub metadata: serde_json::Value,
    /// Position in the conversation: 1, 2, 3, ... with no gaps, so clients can page and spot holes.
    pub seq: i64,
    /// When the message was sent.
    pub created_at: Millis,
    /// When the message was last edited, if ever.
    pub edited_at: Option<Millis>,
    /// True once deleted (soft delete keeps the row so `seq` stays gapless).
    pub deleted: bool,
    /// Whether a user or a plugin produced it.
    pub origin: Origin,
    /// Ids of users mentioned with `@user_id` in the body who exist on the server, sorted by id.
    pub mentions: Vec<String>,
    /// Receipt summary (delivered / some_read / all_read).
    pub status: MessageStatus,
    /// The sender's idempotency key, if the send carried one, so a client can match its optimistic copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The message this one replies to, if it is a reply in a thread (threads are one level deep).
    #[serde(default)]
    pub parent_id: Option<String>,
    /// How many replies this message has.
    #[serde(default)]
    pub reply_count: u32,
    /// When its newest reply was sent, if it has one.
    #[serde(default)]
    pub last_reply_at: Option<Millis>,
}

/// Where a held message is in the moderation queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Waiting for a moderator.
    Pending,
    /// Published as a normal message (same id).
    Approved,
    /// Refused; the sender was told why.
    Rejected,
}

impl HoldState {
    /// The state as stored and shown (`pending`, `approved`, `rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "pending",
            HoldState::Approved => "approved",
            HoldState::Rejected => "rejected",
        }
    }

    /// The state stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<HoldState> {
        [HoldState::Pending, HoldState::Approved, HoldState::Rejected]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A message a before-hook held for review: not in the conversation, visible to its sender and the
/// conversation's moderators and admins, until one of them approves it (it is then sent, keeping this id)
/// or rejects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldMessage {
    /// The id the message has once approved.
    pub id: String,
    /// The conversation it was sent to.
    pub conversation_id: String,
    /// Who sent it.
    pub sender: User,
    /// The text, as the before-hooks before the holder left it.
    pub body: String,
    /// Application-specific data (a JSON object).
    pub metadata: serde_json::Value,
    /// Ids of users it mentions.
    pub mentions: Vec<String>,
    /// Whether a user or a plugin sent it.
    pub origin: Origin,
    /// The sender's idempotency key, if any: sending again with it answers this held message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The message it replies to, if it is a reply.
    pub parent_id: Option<String>,
    /// Why it was held: the before-hook's reason.
    pub reason: String,
    /// The plugin that held it.
    pub held_by: String,
    /// Pending, approved or rejected.
    pub state: HoldState,
    /// The moderator who decided, once decided.
    pub decided_by: Option<String>,
    /// When it was decided.
    pub decided_at: Option<Millis>,
    /// The moderator's reason for a rejection, if they gave one.
    pub decision_reason: Option<String>,
    /// When it was held.
    pub created_at: Millis,
}

/// One user's delivery and read state for one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The message the receipt is for.
    pub message_id: String,
    /// The user who received or read it.
    pub user: User,
    /// When it reached one of the user's devices, if it has (reading implies delivery).
    pub delivered_at: Option<Millis>,
    /// When the user read it, if they have.
    pub read_at: Option<Millis>,
}

/// An emoji reaction by one user to one message; unique per (message, user, emoji).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reaction {
    /// The message reacted to.
    pub message_id: String,
    /// The user who reacted.
    pub user: User,
    /// The emoji or short code, as the client sent it.
    pub emoji: String,
    /// When the reaction was added.
    pub created_at: Millis,
}

/// What a typing user is doing. Typing is never stored as chat state, only sent as events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypingState {
    /// Started typing.
    Begin,
    /// Stopped for a moment without sending.
    Pause,
    /// Stopped: the message was sent or abandoned.
    Finished,
}

/// A change in one user's typing state in one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TypingEvent {
    /// The conversation being typed in.
    pub conversation_id: String,
    /// The typing user.
    pub user: User,
    /// What they are doing now.
    pub state: TypingState,
    /// When the state changed.
    pub at: Millis,
}

/// The user ids mentioned in `body` as `@user_id`, in order of first appearance, without duplicates.
///
/// An id is the run of ASCII letters, digits, `_`, `-` and `.` after an `@` that starts the body or follows
/// a character that is not part of an id (so `bob@example.com` mentions nobody). A trailing `.` is dropped
/// so that "thanks @bob." mentions `bob`. Whether the ids exist is for the caller (the store keeps only
/// existing users).
pub fn mentions_in(body: &str) -> Vec<String> {
    fn is_id_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
    }
    let mut found: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = c == '@' && !prev.is_some_and(is_id_char);
        prev = Some(c);
        if !starts {
            continue;
        }
        let start = i + c.len_utf8();
        let mut end = start;
        while let Some(&(j, d)) = chars.peek() {
            if !is_id_char(d) {
                break;
            }
            end = j + d.len_utf8();
            prev = Some(d);
            chars.next();
        }
        let id = body[start..end].trim_end_matches('.');
        if !id.is_empty() && !found.iter().any(|f| f == id) {
            found.push(id.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_parsed_in_order_without_duplicates() {
        assert_eq!(
            mentions_in("@alice hi @bob.b and @alice, thanks @carol."),
            vec!["alice", "bob.b", "carol"]
        );
        assert!(mentions_in("mail bob@example.com or @ alone").is_empty());
        assert_eq!(mentions_in("(@dave)"), vec!["dave"]);
    }

    #[test]
    fn json_shapes_are_snake_case() -> Result<(), serde_json::Error> {
        let origin = serde_json::to_value(Origin::Plugin {
            name: "echo".into(),
            depth: 1,
        })?;
        assert_eq!(
            origin,
            serde_json::json!({"kind": "plugin", "name": "echo", "depth": 1})
        );
        assert_eq!(serde_json::to_value(MessageStatus::SomeRead)?, "some_read");
        assert_eq!(serde_json::to_value(TypingState::Begin)?, "begin");
        Ok(())
    }
}
