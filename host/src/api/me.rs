//! `GET /v1/me`: the user the token belongs to.

use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use crate::model::User;
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The calling user.
#[utoipa::path(get, path = "/v1/me", tag = "users", security(("user_token" = [])),
    responses((status = 200, description = "The user the token belongs to", body = User),
              (status = 401, description = "Missing or unknown token", body = ErrorBody)))]
pub async fn me(CurrentUser(user): CurrentUser) -> Result<Json<User>, ApiError> {
    Ok(Json(user))
}
