//! [`ApiError`]: every error the REST API answers with, rendered as
//! `{"error": {"code": "...", "message": "..."}}` with its HTTP status.
//!
//! | status | code | when |
//! | --- | --- | --- |
//! | 400 | `malformed_json`, `empty_body`, `bad_request` | the body is not JSON, is missing, or a path or query parameter does not parse |
//! | 401 | `unauthorized` | no bearer token, or one the server does not know |
//! | 403 | `forbidden` | a participant who may not do this (not an admin, not the sender) |
//! | 403 | `blocked` | a message to the other participant of a one-to-one conversation who blocked the sender |
//! | 404 | `not_found` | unknown ids, and anything a non-participant asks about a conversation |
//! | 404 | `not_a_cluster` | a cluster-only admin route on a server that runs on its own |
//! | 405 | `method_not_allowed` | a known path with another method |
//! | 409 | `conflict` | the request contradicts current state |
//! | 409 | `banned` | adding (or joining as) a user banned from the conversation; the message names them |
//! | 413 | `payload_too_large` | the body is over the configured limit |
//! | 422 | `invalid` | well-formed JSON with a wrong type, a missing or unknown field, or an unacceptable value; the message names the field |
//! | 422 | `rejected_by_plugin` | a before-hook rejected the message: `message` is `<plugin>: <reason>`, and `plugin` names the plugin |
//! | 500 | `internal` | a server fault; details go to the log only |

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::chat::ChatError;
use crate::store::StoreError;

/// An API failure: an HTTP status, a stable code for programs and a message for people.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable, machine-readable; see the module docs for the list.
    pub code: &'static str,
    /// Human-readable; names the field or id at fault.
    pub message: String,
    /// The plugin that rejected the request (`rejected_by_plugin`), so clients can name it.
    pub plugin: Option<String>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `not_found`, `invalid`, `rejected_by_plugin`.
    pub code: String,
    /// Human-readable explanation naming the field, id or plugin at fault.
    pub message: String,
    /// With `rejected_by_plugin`: the plugin that rejected it (the message starts with its name too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            plugin: None,
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422 `invalid`, for a field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        let message = message.to_string();
        // Store messages already start with the field ("title is longer than ..."): say it once.
        let says_field = message
            .strip_prefix(field)
            .is_some_and(|rest| rest.starts_with([' ', ':']));
        let message = if field.is_empty() || says_field {
            message
        } else {
            format!("{field}: {message}")
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 413 `payload_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 500 `internal`: logs `err` and shows a generic message.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {err:#}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error (see the server log)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                plugin: self.plugin,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> Self {
        let code = err.code();
        match err {
            ChatError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, code, err.to_string()),
            ChatError::Forbidden(message) => Self::new(StatusCode::FORBIDDEN, code, message),
            ChatError::Invalid { field, message } => Self::invalid(&field, message),
            ChatError::Rejected { plugin, reason } => ApiError {
                plugin: Some(plugin.clone()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    code,
                    format!("{plugin}: {reason}"),
                )
            },
            ChatError::Conflict(message) => Self::new(StatusCode::CONFLICT, code, message),
            ChatError::Banned { .. } => Self::new(StatusCode::CONFLICT, code, err.to_string()),
            ChatError::Blocked { .. } => Self::new(StatusCode::FORBIDDEN, code, err.to_string()),
            // The send route answers 202 with the held message itself; any other route that meets a
            // hold reports it as this error.
            ChatError::Held { .. } => Self::new(StatusCode::ACCEPTED, code, err.to_string()),
            ChatError::Unauthenticated { refusal } => Self::unauthorized(refusal.to_string()),
            ChatError::Unavailable(reason) => {
                tracing::warn!("database unavailable: {reason}");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    "the database cannot be reached right now; nothing was changed, try again shortly",
                )
            }
            ChatError::Internal(err) => Self::internal(format!("{err:#}")),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ChatError::from(err).into()
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::internal(format!("a blocking task failed: {err}"))
    }
}

/// The answer to a path that no route has.
pub async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The answer to a known path with a method it does not have.
pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
