//! `/v1/me/devices`: the caller's push device tokens, which the push gateway receives with each
//! notification for the caller (bearer user token).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use crate::chat::devices::AddDevice;
use crate::server::AppState;
use crate::store::Device;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_device, list_devices))
        .routes(routes!(remove_device))
}

/// Registers a device token of the caller (registering it again updates its platform).
#[utoipa::path(post, path = "/v1/me/devices", tag = "users", security(("user_token" = [])),
    request_body = AddDevice,
    responses((status = 201, description = "The device", body = Device),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 422, description = "`platform` or `token` is missing or unacceptable", body = ErrorBody)))]
pub async fn add_device(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<AddDevice>,
) -> Result<(StatusCode, Json<Device>), ApiError> {
    let device = state.chat.add_device(&user, input).await?;
    Ok((StatusCode::CREATED, Json(device)))
}

/// The caller's registered devices.
#[utoipa::path(get, path = "/v1/me/devices", tag = "users", security(("user_token" = [])),
    responses((status = 200, description = "The devices", body = [Device]),
              (status = 401, description = "Missing or unknown token", body = ErrorBody)))]
pub async fn list_devices(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<Device>>, ApiError> {
    Ok(Json(state.chat.list_devices(&user).await?))
}

/// Removes one of the caller's device tokens (percent-encoded in the path).
#[utoipa::path(delete, path = "/v1/me/devices/{token}", tag = "users", security(("user_token" = [])),
    params(("token" = String, Path, description = "The device token, percent-encoded")),
    responses((status = 204, description = "Removed"),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "The caller has no such device", body = ErrorBody)))]
pub async fn remove_device(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.remove_device(&user, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
