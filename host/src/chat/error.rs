//! [`ChatError`]: what a chat operation can fail with. The API matches on it to pick the HTTP status.

use crate::store::StoreError;

/// Why a chat operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The record does not exist, or the actor may not know that it does (a non-participant asking for a
    /// conversation's data gets this too, never [`ChatError::Forbidden`]). HTTP 404.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// The kind of record, e.g. `"conversation"`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The actor can see the record but may not do this to it (a participant who is not an admin, an
    /// edit of someone else's message). HTTP 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The input is well-formed but not acceptable. HTTP 422.
    #[error("{field}: {message}")]
    Invalid {
        /// The input field at fault (empty when it cannot be pinned on one field).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A before-hook rejected the message. HTTP 422, code `rejected_by_plugin`.
    #[error("rejected by plugin {plugin}: {reason}")]
    Rejected {
        /// The plugin that said no.
        plugin: String,
        /// Its reason, shown to the sender.
        reason: String,
    },
    /// A before-hook held the message for review: it is in the moderation queue, not the conversation.
    /// An outcome, not a failure, for callers that can only report a sent message (a plugin's bot post);
    /// `POST /v1/conversations/{id}/messages` answers 202 with the held message instead.
    #[error("held for review by plugin {}: {}", held.held_by, held.reason)]
    Held {
        /// The held message.
        held: Box<crate::model::HeldMessage>,
    },
    /// Users named to join a conversation are banned from it (adding participants, a bot joining). HTTP
    /// 409, code `banned`: a moderator or admin must unban them first.
    #[error(
        "{} banned from conversation {conversation_id:?}: unban first (DELETE /v1/conversations/{conversation_id}/bans/{{user_id}})",
        banned_list(user_ids)
    )]
    Banned {
        /// The conversation.
        conversation_id: String,
        /// The banned users among those named, in the order given.
        user_ids: Vec<String>,
    },
    /// The other participant of a one-to-one conversation blocked the sender. HTTP 403, code `blocked`.
    #[error(
        "{blocker:?} blocked you: you cannot message them in this one-to-one conversation {conversation_id:?} until they unblock you"
    )]
    Blocked {
        /// The one-to-one conversation.
        conversation_id: String,
        /// Who blocked the sender.
        blocker: String,
    },
    /// The operation contradicts the current state (editing a deleted message, reusing a `client_id`
    /// elsewhere, a user id that is taken). HTTP 409.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The bearer token the operation was asked with is refused (see [`Chat::as_user`]). HTTP 401.
    ///
    /// [`Chat::as_user`]: super::Chat::as_user
    #[error("{refusal}")]
    Unauthenticated {
        /// Why.
        refusal: super::users::TokenRefusal,
    },
    /// The database cannot be reached now (PostgreSQL down or restarting, every pooled connection busy
    /// past the wait). HTTP 503: the client may retry; nothing was changed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A server fault (database, I/O, a bug). HTTP 500; details are logged, not shown.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ChatError {
    /// Shorthand for [`ChatError::NotFound`].
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            id: id.into(),
        }
    }

    /// Shorthand for [`ChatError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A stable machine-readable code for the API's `{"error": {"code": ...}}`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::Invalid { .. } => "invalid",
            Self::Rejected { .. } => "rejected_by_plugin",
            Self::Held { .. } => "held_for_review",
            Self::Conflict(_) => "conflict",
            Self::Banned { .. } => "banned",
            Self::Blocked { .. } => "blocked",
            Self::Unauthenticated { .. } => "unauthorized",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// `user "x" is` or `users "x", "y" are`, for [`ChatError::Banned`].
fn banned_list(user_ids: &[String]) -> String {
    let quoted: Vec<String> = user_ids.iter().map(|u| format!("{u:?}")).collect();
    match quoted.as_slice() {
        [one] => format!("user {one} is"),
        many => format!("users {} are", many.join(", ")),
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return Self::Unavailable(e.to_string());
        }
        match e {
            StoreError::NotFound { what, id } => Self::NotFound { what, id },
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::Invalid(message) => Self::Invalid {
                field: field_of(&message).to_owned(),
                message,
            },
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::blocking::NotFinished> for ChatError {
    fn from(e: crate::blocking::NotFinished) -> Self {
        Self::Internal(anyhow::anyhow!("chat operation did not finish: {e}"))
    }
}

/// Input fields the store's validation messages start with.
const KNOWN_FIELDS: &[&str] = &[
    "participant_ids",
    "admin_ids",
    "user_ids",
    "title",
    "metadata",
    "body",
    "client_id",
    "emoji",
];

/// The field a store validation message is about: its first word when that is a known input field
/// (`"participant_ids must not be empty"` → `participant_ids`), else empty.
fn field_of(message: &str) -> &str {
    let first = message.split_whitespace().next().unwrap_or("");
    KNOWN_FIELDS
        .iter()
        .copied()
        .find(|f| *f == first)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_chat_errors_with_fields() {
        let e: ChatError = StoreError::Invalid("title is longer than 500 characters".into()).into();
        assert!(matches!(&e, ChatError::Invalid { field, .. } if field == "title"));
        assert_eq!(e.code(), "invalid");
        let e: ChatError = StoreError::Invalid("a conversation has at most 1000".into()).into();
        assert!(matches!(&e, ChatError::Invalid { field, .. } if field.is_empty()));
        let e: ChatError = StoreError::not_found("user", "zed").into();
        assert!(matches!(e, ChatError::NotFound { what: "user", .. }));
        let e: ChatError = StoreError::Conflict("x".into()).into();
        assert_eq!(e.code(), "conflict");
    }

    #[test]
    fn a_ban_names_the_banned_users_and_what_to_do() {
        let one = ChatError::Banned {
            conversation_id: "c_1".into(),
            user_ids: vec!["bob".into()],
        };
        assert_eq!(
            one.to_string(),
            "user \"bob\" is banned from conversation \"c_1\": unban first \
             (DELETE /v1/conversations/c_1/bans/{user_id})"
        );
        let two = ChatError::Banned {
            conversation_id: "c_1".into(),
            user_ids: vec!["bob".into(), "carol".into()],
        };
        assert!(
            two.to_string()
                .starts_with("users \"bob\", \"carol\" are banned")
        );
        assert_eq!(two.code(), "banned");
    }
}
