//! Bans (bearer user token): moderators and admins keep users out of a conversation. See
//! [`crate::chat::bans`] for the rules.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use crate::chat::bans::BanUser;
use crate::model::Ban;
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ban_user, list_bans))
        .routes(routes!(unban_user))
}

/// Bans a user (moderators and admins): removes them if they are a member and keeps them from being
/// added again until unbanned. 201 with the new ban; 200 with the existing one if already banned.
#[utoipa::path(post, path = "/v1/conversations/{id}/bans", tag = "moderation",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    request_body = BanUser,
    responses((status = 201, description = "Banned (and removed if a member)", body = Ban),
              (status = 200, description = "Already banned: the existing ban", body = Ban),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not a moderator or admin, or may not ban this user (the owner, themselves; an admin, unless the caller is one)", body = ErrorBody),
              (status = 404, description = "No such conversation or user, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "A field is missing or unacceptable", body = ErrorBody)))]
pub async fn ban_user(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<BanUser>,
) -> Result<(StatusCode, Json<Ban>), ApiError> {
    let (ban, new) = state.chat.ban_user(&user, &id, input).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ban)))
}

/// The conversation's bans, oldest first (moderators and admins).
#[utoipa::path(get, path = "/v1/conversations/{id}/bans", tag = "moderation",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    responses((status = 200, description = "The bans, oldest first", body = Vec<Ban>),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not a moderator or admin", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody)))]
pub async fn list_bans(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Ban>>, ApiError> {
    Ok(Json(state.chat.list_bans(&user, &id).await?))
}

/// Lifts a ban (moderators and admins); the user is not added back.
#[utoipa::path(delete, path = "/v1/conversations/{id}/bans/{user_id}", tag = "moderation",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id"),
           ("user_id" = String, Path, description = "The banned user")),
    responses((status = 204, description = "Unbanned"),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not a moderator or admin", body = ErrorBody),
              (status = 404, description = "No such conversation or ban, or the caller is not in it", body = ErrorBody)))]
pub async fn unban_user(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.chat.unban_user(&user, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
