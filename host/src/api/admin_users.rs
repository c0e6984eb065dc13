//! User administration (bearer admin key): create and list users, deactivate and reactivate them, issue,
//! list and revoke their tokens. What each operation means is in [`crate::chat::users`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::chat::{CreatedUser, IssueToken, IssuedToken, NewUser, UsersPage};
use crate::model::{TokenInfo, UserAccount};
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user))
        .routes(routes!(deactivate_user))
        .routes(routes!(reactivate_user))
        .routes(routes!(issue_token, list_tokens))
        .routes(routes!(revoke_token))
}

/// Creates a user and their first token. Ids starting with `bot.` are refused: they belong to plugins'
/// bot users.
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", security(("admin_key" = [])),
    request_body = NewUser,
    responses((status = 201, description = "Created", body = CreatedUser),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 409, description = "The id is taken", body = ErrorBody),
              (status = 422, description = "A field is missing, of the wrong type or unacceptable", body = ErrorBody)))]
pub async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let created = state.chat.create_user(input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Users by id, bots included, each with whether it is a bot and active. Page with `after` (the last id
/// of the previous page).
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", security(("admin_key" = [])),
    params(UsersPage),
    responses((status = 200, description = "A page of users", body = Vec<UserAccount>),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 422, description = "A query parameter has the wrong type or is out of range", body = ErrorBody)))]
pub async fn list_users(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<UsersPage>,
) -> Result<Json<Vec<UserAccount>>, ApiError> {
    Ok(Json(state.chat.list_users(page.after, page.limit).await?))
}

/// One user, as admins see them.
#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 200, description = "The user", body = UserAccount),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn get_user(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserAccount>, ApiError> {
    Ok(Json(state.chat.user_account(&id).await?))
}

/// Deactivates a user: their tokens answer 401 from the next request on and their WebSocket connections
/// close (code 1008); their messages and memberships stay. Deactivating a bot user stops its plugin from
/// posting and joining as it.
#[utoipa::path(post, path = "/v1/admin/users/{id}/deactivate", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 200, description = "The user, deactivated", body = UserAccount),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn deactivate_user(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserAccount>, ApiError> {
    Ok(Json(state.chat.deactivate_user(&id).await?))
}

/// Reactivates a user: the tokens they still hold work again.
#[utoipa::path(post, path = "/v1/admin/users/{id}/reactivate", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 200, description = "The user, active", body = UserAccount),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody),
              (status = 422, description = "An ordinary user holding a bot's id (from before `bot.` ids were reserved) stays deactivated", body = ErrorBody)))]
pub async fn reactivate_user(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserAccount>, ApiError> {
    Ok(Json(state.chat.reactivate_user(&id).await?))
}

/// Issues another token for a user (earlier tokens stay valid). The body is optional:
/// `{"expires_in_seconds": N}` makes the token expire. Bots get no token; a deactivated user gets none
/// until reactivated.
#[utoipa::path(post, path = "/v1/admin/users/{id}/tokens", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    request_body(content = Option<IssueToken>, description = "Optional: when the token expires"),
    responses((status = 201, description = "Issued; the token is shown only here", body = IssuedToken),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody),
              (status = 409, description = "The user is deactivated, or holds the most tokens a user may", body = ErrorBody),
              (status = 422, description = "The user is a bot, or `expires_in_seconds` is out of range", body = ErrorBody)))]
pub async fn issue_token(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(input): OptionalJson<IssueToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let issued = state.chat.issue_token(&id, input).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A user's tokens, newest first: id, when issued, expiry, when last used (to the minute). Never the
/// tokens themselves, which are stored only as hashes.
#[utoipa::path(get, path = "/v1/admin/users/{id}/tokens", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 200, description = "The user's tokens", body = Vec<TokenInfo>),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn list_tokens(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(state.chat.list_tokens(&id).await?))
}

/// Revokes one of a user's tokens: it answers 401 from the next request on, and the user's WebSocket
/// connections close (those opened with another token reconnect and resume with `?since=`).
#[utoipa::path(delete, path = "/v1/admin/users/{id}/tokens/{token_id}", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The user id"),
           ("token_id" = String, Path, description = "The token's id, from the token list")),
    responses((status = 204, description = "Revoked"),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such user, or no such token of theirs", body = ErrorBody)))]
pub async fn revoke_token(
    _: Admin,
    State(state): State<AppState>,
    ApiPath((id, token_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.chat.revoke_token(&id, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
