//! Receipts (bearer user token): delivered per message, read up to a message per conversation. Unread
//! counts and each message's `status` (delivered / some_read / all_read) follow from them.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, OptionalJson};
use crate::chat::{MarkRead, ReadState};
use crate::model::Receipt;
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mark_delivered))
        .routes(routes!(mark_read))
}

/// Reports that a message reached one of the caller's devices.
#[utoipa::path(post, path = "/v1/messages/{id}/delivered", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The message id")),
    responses((status = 200, description = "The caller's receipt for the message", body = Receipt),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such message, or the caller is not in its conversation", body = ErrorBody)))]
pub async fn mark_delivered(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Receipt>, ApiError> {
    Ok(Json(state.chat.mark_delivered(&user, &id).await?))
}

/// Marks the conversation read up to `message_id` (or entirely, without a body). Reading is a
/// high-water mark: it never moves back.
#[utoipa::path(post, path = "/v1/conversations/{id}/read", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    request_body(content = Option<MarkRead>, description = "Optional: read up to this message"),
    responses((status = 200, description = "The caller's read state", body = ReadState),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such conversation or message, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "A field is of the wrong type", body = ErrorBody)))]
pub async fn mark_read(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(input): OptionalJson<MarkRead>,
) -> Result<Json<ReadState>, ApiError> {
    Ok(Json(
        state.chat.mark_read(&user, &id, input.message_id).await?,
    ))
}
