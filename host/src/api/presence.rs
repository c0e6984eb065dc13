//! Users' presence (bearer user token): online or not, and when last seen. Changes arrive live as
//! `user.presence.changed` to the user's contacts (see [`crate::presence`]).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use crate::model::Presence;
use crate::server::AppState;

/// Most users one `GET /v1/presence` asks about: a screen's worth of contacts, and a bounded query.
pub const MAX_PRESENCE_IDS: usize = 100;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_presence))
        .routes(routes!(presence_of))
}

/// The presence of one user.
#[utoipa::path(get, path = "/v1/users/{id}/presence", tag = "users", security(("user_token" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 200, description = "Whether the user is connected, and when last seen", body = Presence),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn user_presence(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Presence>, ApiError> {
    let mut found = state.chat.presence_of(&user, vec![id.clone()]).await?;
    found
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user {id:?}")))
}

/// `GET /v1/presence` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PresenceQuery {
    /// Comma-separated user ids, at most 100.
    pub user_ids: String,
}

/// The presence of several users.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceList {
    /// One entry per id that is a user, in the order asked; unknown ids are left out.
    pub presence: Vec<Presence>,
}

/// The presence of several users at once (unknown ids are left out).
#[utoipa::path(get, path = "/v1/presence", tag = "users", security(("user_token" = [])),
    params(PresenceQuery),
    responses((status = 200, description = "The presence of each user asked about", body = PresenceList),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 422, description = "`user_ids` is missing, empty or lists more than 100 ids", body = ErrorBody)))]
pub async fn presence_of(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PresenceQuery>,
) -> Result<Json<PresenceList>, ApiError> {
    let ids: Vec<String> = query
        .user_ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() || ids.len() > MAX_PRESENCE_IDS {
        return Err(ApiError::invalid(
            "user_ids",
            format!(
                "must list 1 to {MAX_PRESENCE_IDS} comma-separated user ids (got {})",
                ids.len()
            ),
        ));
    }
    let presence = state.chat.presence_of(&user, ids).await?;
    Ok(Json(PresenceList { presence }))
}
