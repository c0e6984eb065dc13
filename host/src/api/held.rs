//! The moderation queue (bearer user token): what before-hooks held for review, and the moderators'
//! decisions. See [`crate::chat::held`].

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::chat::held::RejectHeld;
use crate::model::{HeldMessage, HoldState, Message};
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_held))
        .routes(routes!(approve_held))
        .routes(routes!(reject_held))
}

/// Which held messages to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeldFilter {
    /// Waiting for a moderator.
    Pending,
    /// Approved (and sent).
    Approved,
    /// Rejected.
    Rejected,
    /// Every state.
    All,
}

/// `GET /v1/conversations/{id}/held` query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeldQuery {
    /// Only held messages in this state (default `pending`).
    #[serde(default)]
    pub state: Option<HeldFilter>,
}

/// Held messages of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldList {
    /// Oldest first.
    pub held: Vec<HeldMessage>,
}

/// The conversation's held messages: every sender's for its moderators and admins, the caller's own
/// for anyone else in it.
#[utoipa::path(get, path = "/v1/conversations/{id}/held", tag = "moderation",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id"), HeldQuery),
    responses((status = 200, description = "Held messages, oldest first", body = HeldList),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "`state` is not pending, approved, rejected or all", body = ErrorBody)))]
pub async fn list_held(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HeldQuery>,
) -> Result<Json<HeldList>, ApiError> {
    let wanted = match query.state {
        None | Some(HeldFilter::Pending) => Some(HoldState::Pending),
        Some(HeldFilter::Approved) => Some(HoldState::Approved),
        Some(HeldFilter::Rejected) => Some(HoldState::Rejected),
        Some(HeldFilter::All) => None,
    };
    let held = state.chat.held_messages(&user, &id, wanted).await?;
    Ok(Json(HeldList { held }))
}

/// Approves a held message (the conversation's moderators and admins): it is sent as its sender sent it,
/// keeping its id, with `message.new` and every after-hook, then `message.approved`.
#[utoipa::path(post, path = "/v1/held/{id}/approve", tag = "moderation",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The held message's id")),
    responses((status = 200, description = "The message as published", body = Message),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller does not moderate the conversation", body = ErrorBody),
              (status = 404, description = "No such held message, or the caller is not in its conversation", body = ErrorBody),
              (status = 409, description = "It was already approved or rejected", body = ErrorBody)))]
pub async fn approve_held(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(state.chat.approve_held(&user, &id).await?))
}

/// Rejects a held message (the conversation's moderators and admins); its sender gets
/// `message.rejected` with the reason.
#[utoipa::path(post, path = "/v1/held/{id}/reject", tag = "moderation",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The held message's id")),
    request_body = RejectHeld,
    responses((status = 200, description = "The held message, now rejected", body = HeldMessage),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller does not moderate the conversation", body = ErrorBody),
              (status = 404, description = "No such held message, or the caller is not in its conversation", body = ErrorBody),
              (status = 409, description = "It was already approved or rejected", body = ErrorBody),
              (status = 422, description = "`reason` is too long", body = ErrorBody)))]
pub async fn reject_held(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<RejectHeld>,
) -> Result<Json<HeldMessage>, ApiError> {
    Ok(Json(state.chat.reject_held(&user, &id, input).await?))
}
