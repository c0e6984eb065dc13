//! Threads (bearer user token): a message's replies, and a conversation's threads. Replying is sending
//! with `parent_id` (`POST /v1/conversations/{id}/messages`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use crate::chat::MessagePage;
use crate::model::Message;
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_replies))
        .routes(routes!(list_threads))
}

/// A page of a message's replies by `seq`, newest first (with only `after`: oldest first), like a
/// conversation's messages.
#[utoipa::path(get, path = "/v1/messages/{id}/replies", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The parent message's id"), MessagePage),
    responses((status = 200, description = "The page of replies", body = Vec<Message>),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such message, or the caller is not in its conversation", body = ErrorBody),
              (status = 422, description = "A query parameter has the wrong type", body = ErrorBody)))]
pub async fn list_replies(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<MessagePage>,
) -> Result<Json<Vec<Message>>, ApiError> {
    Ok(Json(state.chat.list_replies(&user, &id, page).await?))
}

/// `GET /v1/conversations/{id}/threads` query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThreadsQuery {
    /// At most this many threads (1 to 100, default 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The conversation's messages that have replies, the most recently replied to first, each with its
/// `reply_count` and `last_reply_at`.
#[utoipa::path(get, path = "/v1/conversations/{id}/threads", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id"), ThreadsQuery),
    responses((status = 200, description = "Thread parents", body = Vec<Message>),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "A query parameter has the wrong type", body = ErrorBody)))]
pub async fn list_threads(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ThreadsQuery>,
) -> Result<Json<Vec<Message>>, ApiError> {
    Ok(Json(state.chat.threads(&user, &id, query.limit).await?))
}
