//! Who is calling: bearer credentials as extractors.
//!
//! - [`Admin`]: `Authorization: Bearer <admin key>`, for `/v1/admin/*`.
//! - [`CurrentUser`]: `Authorization: Bearer <user token>`, for everything a user does.
//!
//! Both answer 401 `unauthorized` when the header is missing, malformed or names an unknown credential; a
//! user token is also refused once it expired or its user was deactivated, and the message says which.
//! The admin key is not a user token and a user token is not the admin key: the two never overlap.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::model::User;
use crate::server::AppState;

/// The caller presented the admin key.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?;
        if state.admin_key.matches(key) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("wrong admin key"))
        }
    }
}

/// The user whose token the caller presented.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?.to_owned();
        user_for_token(state, token).await.map(CurrentUser)
    }
}

/// A bearer token, checked for form only (401 when missing or malformed): the route looks its user up in
/// the same blocking call as its operation ([`crate::chat::Chat::as_user`]), one trip to the blocking
/// pool instead of two. For the hottest routes; the others take [`CurrentUser`].
#[derive(Debug, Clone)]
pub struct BearerToken(pub String);

impl FromRequestParts<AppState> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(BearerToken(bearer(parts)?.to_owned()))
    }
}

/// The user a token belongs to, or 401 saying why not (unknown or revoked, expired, deactivated user).
pub async fn user_for_token(state: &AppState, token: String) -> Result<User, ApiError> {
    state
        .chat
        .authenticate(&token)
        .await?
        .map_err(|refusal| ApiError::unauthorized(refusal.to_string()))
}

/// The credential in `Authorization: Bearer <credential>`, if the header is there.
pub fn bearer_from_headers(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    let (scheme, credential) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(Some(credential.trim()))
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    bearer_from_headers(&parts.headers)?.ok_or_else(|| {
        ApiError::unauthorized("missing credentials: send `Authorization: Bearer <token>`")
    })
}
