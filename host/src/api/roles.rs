//! Roles and ownership (bearer user token): an admin sets a participant's role; the owner hands the
//! conversation to another participant. See [`crate::chat::roles`] for the rules.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use crate::chat::roles::{SetRole, TransferOwner};
use crate::model::{Conversation, Participant};
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_role))
        .routes(routes!(transfer_owner))
}

/// Sets a participant's role (admins only): `admin`, `moderator` or `member`. The owner stays an admin,
/// and the last admin cannot demote themselves. Answers the participant with their new role.
#[utoipa::path(put, path = "/v1/conversations/{id}/participants/{user_id}/role", tag = "conversations",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id"),
           ("user_id" = String, Path, description = "The participant whose role changes")),
    request_body = SetRole,
    responses((status = 200, description = "The participant with the new role", body = Participant),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not an admin, or the change would demote the owner or the last admin", body = ErrorBody),
              (status = 404, description = "No such conversation or participant, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "`role` is missing or not admin, moderator or member", body = ErrorBody)))]
pub async fn set_role(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<SetRole>,
) -> Result<Json<Participant>, ApiError> {
    Ok(Json(
        state.chat.set_role(&user, &id, &user_id, input).await?,
    ))
}

/// Transfers ownership to another participant, who becomes an admin (the owner only; any admin when
/// the conversation has no owner). Answers the conversation with its new `owner_id`.
#[utoipa::path(post, path = "/v1/conversations/{id}/owner", tag = "conversations",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    request_body = TransferOwner,
    responses((status = 200, description = "The conversation with its new owner", body = Conversation),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not the owner (nor an admin of a conversation without one)", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody),
              (status = 409, description = "`user_id` is not a participant: add them first", body = ErrorBody),
              (status = 422, description = "`user_id` is missing or not a user id", body = ErrorBody)))]
pub async fn transfer_owner(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TransferOwner>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(state.chat.transfer_owner(&user, &id, input).await?))
}
