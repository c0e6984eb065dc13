//! Admin routes (bearer admin key): users and their tokens, plugins, dead letters.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use crate::model::User;
use crate::server::AppState;
use crate::store::ids::now_ms;
use crate::store::users::{self, NewUser};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(issue_token))
}

/// `POST /v1/admin/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The new user's id: 1-64 ASCII letters, digits, `_`, `-` or `.` (it is what `@mentions` name).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Application-specific data: a JSON object.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// A user and a bearer token for them (shown only in this response).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserWithToken {
    /// The user.
    pub user: User,
    /// A bearer token that acts as this user; the server keeps only its hash.
    pub token: String,
}

/// A newly issued token.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The user it acts as.
    pub user_id: String,
    /// The bearer token (shown only in this response).
    pub token: String,
}

/// Creates a user and their first token.
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", security(("admin_key" = [])),
    request_body = CreateUser,
    responses((status = 201, description = "Created", body = UserWithToken),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 409, description = "The id is taken", body = ErrorBody),
              (status = 422, description = "A field is missing, of the wrong type or unacceptable", body = ErrorBody)))]
pub async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserWithToken>), ApiError> {
    if !users::valid_user_id(&input.id) {
        return Err(ApiError::invalid(
            "id",
            format!(
                "{:?} must be 1-{} ASCII letters, digits, '_', '-' or '.'",
                input.id,
                users::MAX_USER_ID_LEN
            ),
        ));
    }
    let metadata = input.metadata.unwrap_or(serde_json::Value::Null);
    if !(metadata.is_null() || metadata.is_object()) {
        return Err(ApiError::invalid("metadata", "must be a JSON object"));
    }
    let new = NewUser {
        id: input.id,
        name: input.name,
        metadata,
    };
    let db = state.db.clone();
    let (user, token) = tokio::task::spawn_blocking(move || {
        db.write(|tx| {
            let now = now_ms();
            let user = users::create_user(tx, &new, now)?;
            let token = users::issue_token(tx, &user.id, now)?;
            Ok((user, token))
        })
    })
    .await??;
    Ok((StatusCode::CREATED, Json(UserWithToken { user, token })))
}

/// Issues another token for a user (earlier tokens stay valid).
#[utoipa::path(post, path = "/v1/admin/users/{id}/tokens", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 201, description = "Issued", body = IssuedToken),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn issue_token(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let db = state.db.clone();
    let user_id = id.clone();
    let token =
        tokio::task::spawn_blocking(move || db.write(|tx| users::issue_token(tx, &id, now_ms())))
            .await??;
    Ok((StatusCode::CREATED, Json(IssuedToken { user_id, token })))
}
