//! The inputs of chat operations, as the REST API receives them (JSON bodies and query strings), and the
//! small records some operations return.
//!
//! Every input refuses unknown fields, so a typo (`"titel"`) is an error naming the field instead of a
//! silently ignored value.

use serde::{Deserialize, Deserializer, Serialize};

use crate::model::{TokenInfo, TypingState, User};

/// `POST /v1/conversations`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    /// Optional title.
    #[serde(default)]
    pub title: Option<String>,
    /// The other members; the creator is always added.
    pub participant_ids: Vec<String>,
    /// Who administers it; empty means the creator alone.
    #[serde(default)]
    pub admin_ids: Vec<String>,
    /// Return the existing distinct conversation with the same participant set instead of a new one.
    #[serde(default)]
    pub distinct_by_participants: bool,
    /// Application data (a JSON object).
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// `PATCH /v1/conversations/{id}`: absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    /// A new title; `null` removes it, absent keeps it.
    #[serde(default, deserialize_with = "present")]
    pub title: Option<Option<String>>,
    /// New metadata (replaces the whole object).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// `POST /v1/conversations/{id}/participants`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddParticipants {
    /// Users to add; existing members are ignored.
    pub user_ids: Vec<String>,
}

/// `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The text (may be empty when `metadata` carries the content, an attachment say).
    #[serde(default)]
    pub body: String,
    /// Application data (a JSON object).
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// The sender's idempotency key: sending again with the same key returns the first message.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Reply in the thread of this message (a top-level message of the same conversation).
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// `PATCH /v1/messages/{id}`: absent fields stay as they are; at least one is required.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    /// The new text.
    #[serde(default)]
    pub body: Option<String>,
    /// New metadata (replaces the whole object).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// `GET /v1/conversations/{id}/messages?before=&after=&limit=`: by seq, newest first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessagePage {
    /// Only messages with a smaller seq.
    #[serde(default)]
    pub before: Option<i64>,
    /// Only messages with a larger seq (alone: the page right after it, for catching up).
    #[serde(default)]
    pub after: Option<i64>,
    /// Page size (default 50, at most 200).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `POST /v1/conversations/{id}/typing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Typing {
    /// `begin`, `pause` or `finished`.
    pub state: TypingState,
}

/// `POST /v1/conversations/{id}/read`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Read up to and including this message; absent means everything.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// `POST /v1/messages/{id}/reactions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddReaction {
    /// The emoji or short code.
    pub emoji: String,
}

/// `POST /v1/admin/users`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1-64 ASCII letters, digits, `_`, `-` or `.`: mentionable as `@id` and usable in URLs. Ids starting
    /// with `bot.` (any letter case) are reserved for plugins' bot users.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Application data (a JSON object).
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// A new user with their first token (shown once).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    /// The user.
    pub user: User,
    /// Their bearer token; only its hash is stored.
    pub token: String,
}

/// `POST /v1/admin/users/{id}/tokens` (the body is optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// The token stops working this many seconds after it is issued (at most a year); absent or `null`:
    /// it works until revoked.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = Option<u64>)]
    pub expires_in_seconds: Option<u64>,
}

/// A newly issued token: the secret, shown only in this answer, and what admins see of it later.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The bearer token; only its hash is stored.
    pub token: String,
    /// Its id (for revoking), user, times and expiry.
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// `GET /v1/admin/users?after=&limit=`: users by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsersPage {
    /// Only users whose id sorts after this one (the last id of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// Page size (default and maximum 500).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A user's read state in a conversation after `mark_read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadState {
    /// The conversation.
    pub conversation_id: String,
    /// The newest message the user has read, if any.
    pub last_read_message_id: Option<String>,
    /// Messages from others the user has not read.
    pub unread_count: u32,
}

/// Deserializes a field that may be absent (outer `None`, via `#[serde(default)]`), `null`
/// (`Some(None)`) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Deserializes an optional whole number given as JSON integer or as a number with no fraction (`60.0`):
/// JSON Schema's `integer` allows both, so a client following the document may send either.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Ok(Some(f as u64)),
        _ => Err(serde::de::Error::custom(format!(
            "expected a whole number of seconds, not {number}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_distinguishes_absent_null_and_value() -> Result<(), serde_json::Error> {
        let absent: UpdateConversation = serde_json::from_str("{}")?;
        let null: UpdateConversation = serde_json::from_str(r#"{"title": null}"#)?;
        let set: UpdateConversation = serde_json::from_str(r#"{"title": "T"}"#)?;
        assert_eq!(
            (absent.title, null.title, set.title),
            (None, Some(None), Some(Some("T".into())))
        );
        let typo = serde_json::from_str::<UpdateConversation>(r#"{"titel": "T"}"#);
        assert!(typo.is_err_and(|e| e.to_string().contains("titel")));
        let whole: IssueToken = serde_json::from_str(r#"{"expires_in_seconds": 60.0}"#)?;
        assert_eq!(whole.expires_in_seconds, Some(60));
        assert!(serde_json::from_str::<IssueToken>(r#"{"expires_in_seconds": 1.5}"#).is_err());
        assert!(serde_json::from_str::<IssueToken>(r#"{"expires_in_seconds": -1}"#).is_err());
        let typing: Typing = serde_json::from_str(r#"{"state": "pause"}"#)?;
        assert_eq!(typing.state, TypingState::Pause);
        Ok(())
    }
}
