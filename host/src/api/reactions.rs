//! Emoji reactions to messages (bearer user token).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use crate::chat::AddReaction;
use crate::model::Reaction;
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_reaction))
        .routes(routes!(remove_reaction))
}

/// Adds the caller's reaction; adding the same emoji again changes nothing.
#[utoipa::path(post, path = "/v1/messages/{id}/reactions", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The message id")),
    request_body = AddReaction,
    responses((status = 201, description = "The reaction", body = Reaction),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such message, or the caller is not in its conversation", body = ErrorBody),
              (status = 409, description = "The message is deleted", body = ErrorBody),
              (status = 422, description = "`emoji` is missing, of the wrong type or unacceptable", body = ErrorBody)))]
pub async fn add_reaction(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<AddReaction>,
) -> Result<(StatusCode, Json<Reaction>), ApiError> {
    let reaction = state.chat.add_reaction(&user, &id, &input.emoji).await?;
    Ok((StatusCode::CREATED, Json(reaction)))
}

/// Removes the caller's reaction (the emoji is percent-encoded in the path).
#[utoipa::path(delete, path = "/v1/messages/{id}/reactions/{emoji}", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The message id"),
           ("emoji" = String, Path, description = "The emoji, percent-encoded")),
    responses((status = 204, description = "Removed"),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such message or reaction, or the caller is not in its conversation", body = ErrorBody)))]
pub async fn remove_reaction(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath((id, emoji)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.chat.remove_reaction(&user, &id, &emoji).await?;
    Ok(StatusCode::NO_CONTENT)
}
