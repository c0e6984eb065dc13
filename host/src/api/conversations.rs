//! Conversations and their participants (bearer user token).
//!
//! A user who is not a participant gets 404 for everything about a conversation, exactly as for one that
//! does not exist; a participant who may not do something (update, delete, remove others: admins only)
//! gets 403.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::CurrentUser;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use crate::chat::{AddParticipants, CreateConversation, UpdateConversation};
use crate::model::{Conversation, UserConversation};
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_conversation, list_conversations))
        .routes(routes!(
            get_conversation,
            update_conversation,
            delete_conversation
        ))
        .routes(routes!(add_participants))
        .routes(routes!(remove_participant))
}

/// Creates a conversation with the caller and `participant_ids`. With `distinct_by_participants`, the
/// existing distinct conversation of the same participant set is returned (200) instead of a new one.
#[utoipa::path(post, path = "/v1/conversations", tag = "conversations", security(("user_token" = [])),
    request_body = CreateConversation,
    responses((status = 201, description = "Created (or the existing distinct one)", body = Conversation),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "A participant id is not a user", body = ErrorBody),
              (status = 422, description = "A field is missing, of the wrong type or unacceptable", body = ErrorBody)))]
pub async fn create_conversation(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<CreateConversation>,
) -> Result<(StatusCode, Json<Conversation>), ApiError> {
    let conversation = state.chat.create_conversation(&user, input).await?;
    Ok((StatusCode::CREATED, Json(conversation)))
}

/// The caller's conversations, each with its unread count and newest message.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", security(("user_token" = [])),
    responses((status = 200, description = "The caller's conversations", body = Vec<UserConversation>),
              (status = 401, description = "Missing or unknown token", body = ErrorBody)))]
pub async fn list_conversations(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<UserConversation>>, ApiError> {
    Ok(Json(state.chat.list_conversations(&user).await?))
}

/// One conversation the caller participates in.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations", security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    responses((status = 200, description = "The conversation", body = Conversation),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody)))]
pub async fn get_conversation(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(state.chat.get_conversation(&user, &id).await?))
}

/// Changes the title or metadata (admins only); absent fields stay as they are.
#[utoipa::path(patch, path = "/v1/conversations/{id}", tag = "conversations", security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    request_body = UpdateConversation,
    responses((status = 200, description = "The updated conversation", body = Conversation),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not an admin of it", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "A field is of the wrong type or unacceptable", body = ErrorBody)))]
pub async fn update_conversation(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<UpdateConversation>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(
        state.chat.update_conversation(&user, &id, patch).await?,
    ))
}

/// Deletes a conversation and its messages (admins only).
#[utoipa::path(delete, path = "/v1/conversations/{id}", tag = "conversations", security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    responses((status = 204, description = "Deleted"),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not an admin of it", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody)))]
pub async fn delete_conversation(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.delete_conversation(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds users to a conversation (admins only); existing members are ignored.
#[utoipa::path(post, path = "/v1/conversations/{id}/participants", tag = "conversations",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    request_body = AddParticipants,
    responses((status = 200, description = "The conversation with its new participants", body = Conversation),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller may not add participants", body = ErrorBody),
              (status = 409, description = "A user named is banned from the conversation (`banned`, naming them): unban first", body = ErrorBody),
              (status = 404, description = "No such conversation or user, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "A field is missing, of the wrong type or unacceptable", body = ErrorBody)))]
pub async fn add_participants(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<AddParticipants>,
) -> Result<Json<Conversation>, ApiError> {
    let conversation = state
        .chat
        .add_participants(&user, &id, input.user_ids)
        .await?;
    Ok(Json(conversation))
}

/// Removes a participant: admins may remove anyone but the owner, everyone may remove themselves (an
/// owner who leaves leaves the conversation without one).
#[utoipa::path(delete, path = "/v1/conversations/{id}/participants/{user_id}", tag = "conversations",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id"),
           ("user_id" = String, Path, description = "The participant to remove")),
    responses((status = 200, description = "The conversation without them", body = Conversation),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is not an admin and not removing themselves, or is removing the owner", body = ErrorBody),
              (status = 404, description = "No such conversation or participant, or the caller is not in it", body = ErrorBody)))]
pub async fn remove_participant(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> Result<Json<Conversation>, ApiError> {
    let conversation = state.chat.remove_participant(&user, &id, &user_id).await?;
    Ok(Json(conversation))
}
