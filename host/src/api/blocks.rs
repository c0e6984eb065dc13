//! The caller's blocks (bearer user token): a blocked user cannot message the caller one to one. See
//! [`crate::chat::blocks`] for the rules.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use crate::model::Block;
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_blocks))
        .routes(routes!(block_user, unblock_user))
}

/// The users the caller blocked, oldest block first.
#[utoipa::path(get, path = "/v1/me/blocks", tag = "users", security(("user_token" = [])),
    responses((status = 200, description = "The caller's blocks", body = Vec<Block>),
              (status = 401, description = "Missing or unknown token", body = ErrorBody)))]
pub async fn list_blocks(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<Block>>, ApiError> {
    Ok(Json(state.chat.list_blocks(&user).await?))
}

/// Blocks a user: they can no longer message the caller in their one-to-one conversation (groups are
/// unaffected). Idempotent: 201 with a new block, 200 with the existing one.
#[utoipa::path(put, path = "/v1/me/blocks/{user_id}", tag = "users", security(("user_token" = [])),
    params(("user_id" = String, Path, description = "The user to block")),
    responses((status = 201, description = "Blocked", body = Block),
              (status = 200, description = "Already blocked: the existing block", body = Block),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller named themselves", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn block_user(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<(StatusCode, Json<Block>), ApiError> {
    let (block, new) = state.chat.block_user(&user, &user_id).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(block)))
}

/// Lifts the caller's block of a user.
#[utoipa::path(delete, path = "/v1/me/blocks/{user_id}", tag = "users", security(("user_token" = [])),
    params(("user_id" = String, Path, description = "The blocked user")),
    responses((status = 204, description = "Unblocked"),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "The caller has not blocked this user", body = ErrorBody)))]
pub async fn unblock_user(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.unblock_user(&user, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
