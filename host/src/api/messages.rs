//! Messages and typing (bearer user token): send, page, edit, delete, typing.
//!
//! Sending and editing run the before-hooks: a rejection answers 422 `rejected_by_plugin` with the
//! plugin's reason and stores nothing; a modification is what gets stored and broadcast; a hold answers
//! 202 with the held message, which waits for a moderator (see [`super::held`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{BearerToken, CurrentUser};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::chat::messages::Sent;
use crate::chat::{EditMessage, MessagePage, SendMessage, Typing};
use crate::model::{HeldMessage, Message, Origin};
use crate::server::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_message, list_messages))
        .routes(routes!(edit_message, delete_message))
        .routes(routes!(typing))
}

/// Sends a message. A repeated `client_id` returns the message it first created instead of a new one.
/// `@user_id` in the body mentions that user. With `parent_id` it is a reply in that message's thread
/// (a top-level message of the conversation). A plugin may hold it for review: the answer is then 202
/// with the held message (`state: pending`, the plugin's `reason`), which only its sender and the
/// conversation's moderators see until one of them approves or rejects it.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    request_body = SendMessage,
    responses((status = 201, description = "Stored (as the before-hooks left it)", body = Message),
              (status = 202, description = "Held for review by a plugin (`held_for_review`): not in the conversation until a moderator approves it", body = HeldMessage),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The other participant of this one-to-one conversation blocked the caller (`blocked`)", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody),
              (status = 409, description = "The client_id was used for another message, or `parent_id` is not a top-level message of the conversation", body = ErrorBody),
              (status = 422, description = "A field is of the wrong type or unacceptable, or a plugin rejected the message (`rejected_by_plugin`)", body = ErrorBody)))]
pub async fn send_message(
    BearerToken(token): BearerToken,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<SendMessage>,
) -> Result<Response, ApiError> {
    let sent = state
        .chat
        .as_user(token, move |chat, user| {
            chat.submit_blocking(user, &id, input, Origin::User)
        })
        .await?;
    Ok(match sent {
        Sent::Published(message) => (StatusCode::CREATED, Json(message)).into_response(),
        Sent::Held(held) => (StatusCode::ACCEPTED, Json(held)).into_response(),
    })
}

/// A page of messages by `seq`, newest first (with only `after`: the page right after it, oldest first).
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id"), MessagePage),
    responses((status = 200, description = "The page", body = Vec<Message>),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "A query parameter has the wrong type", body = ErrorBody)))]
pub async fn list_messages(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<MessagePage>,
) -> Result<Json<Vec<Message>>, ApiError> {
    Ok(Json(state.chat.list_messages(&user, &id, page).await?))
}

/// Edits a message's body or metadata (its sender only); the before-hooks run again.
#[utoipa::path(patch, path = "/v1/messages/{id}", tag = "messages", security(("user_token" = [])),
    params(("id" = String, Path, description = "The message id")),
    request_body = EditMessage,
    responses((status = 200, description = "The edited message", body = Message),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller did not send it", body = ErrorBody),
              (status = 404, description = "No such message, or the caller is not in its conversation", body = ErrorBody),
              (status = 409, description = "The message is deleted", body = ErrorBody),
              (status = 422, description = "A field is of the wrong type or unacceptable, or a plugin rejected the edit", body = ErrorBody)))]
pub async fn edit_message(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<EditMessage>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(state.chat.edit_message(&user, &id, input).await?))
}

/// Deletes a message (its sender or a conversation admin). Soft: the message keeps its `seq` with an
/// empty body and `deleted: true`.
#[utoipa::path(delete, path = "/v1/messages/{id}", tag = "messages", security(("user_token" = [])),
    params(("id" = String, Path, description = "The message id")),
    responses((status = 200, description = "The deleted message", body = Message),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 403, description = "The caller is neither its sender nor an admin", body = ErrorBody),
              (status = 404, description = "No such message, or the caller is not in its conversation", body = ErrorBody)))]
pub async fn delete_message(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(state.chat.delete_message(&user, &id).await?))
}

/// Tells the other participants the caller began, paused or finished typing (live only, never stored).
#[utoipa::path(post, path = "/v1/conversations/{id}/typing", tag = "messages",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "The conversation id")),
    request_body = Typing,
    responses((status = 204, description = "Sent to the other participants"),
              (status = 400, description = "Malformed or empty body", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 404, description = "No such conversation, or the caller is not in it", body = ErrorBody),
              (status = 422, description = "`state` is not begin, pause or finished", body = ErrorBody)))]
pub async fn typing(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<Typing>,
) -> Result<StatusCode, ApiError> {
    state.chat.typing(&user, &id, input.state).await?;
    Ok(StatusCode::NO_CONTENT)
}
