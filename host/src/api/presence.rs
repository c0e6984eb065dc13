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

/// The longest `user_ids` the document allows: 100 ids of the longest kind (64 characters) and their
/// commas. Shorter ids fit more of them; past [`MAX_PRESENCE_IDS`] the rest are not looked up.
pub const MAX_PRESENCE_QUERY_CHARS: usize = MAX_PRESENCE_IDS * 65 - 1;

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
    /// Comma-separated user ids; the first 100 are looked up.
    #[param(
        min_length = 1,
        max_length = 6499,
        pattern = r"^[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*$"
    )]
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
              (status = 414, description = "The query string is longer than the server reads (64 KiB); ask for fewer ids"),
              (status = 422, description = "`user_ids` is missing, empty or not comma-separated user ids", body = ErrorBody)))]
pub async fn presence_of(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PresenceQuery>,
) -> Result<Json<PresenceList>, ApiError> {
    if query.user_ids.chars().count() > MAX_PRESENCE_QUERY_CHARS {
        return Err(ApiError::invalid(
            "user_ids",
            format!("is longer than {MAX_PRESENCE_QUERY_CHARS} characters"),
        ));
    }
    let is_id = |id: &str| {
        !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    if !query.user_ids.split(',').all(is_id) {
        return Err(ApiError::invalid(
            "user_ids",
            "expected user ids (letters, digits, `_`, `.`, `-`) separated by commas, e.g. `alice,bob`",
        ));
    }
    let ids: Vec<String> = query
        .user_ids
        .split(',')
        .take(MAX_PRESENCE_IDS)
        .map(str::to_owned)
        .collect();
    let presence = state.chat.presence_of(&user, ids).await?;
    Ok(Json(PresenceList { presence }))
}
