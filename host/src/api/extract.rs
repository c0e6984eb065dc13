//! Request extractors whose failures are [`ApiError`]s, so every bad request gets the API's error shape
//! and a message that names the problem (axum's own extractors answer in plain text).
//!
//! - [`ApiJson`]: the body as JSON. Empty → 400 `empty_body`; not JSON → 400 `malformed_json` with the
//!   line and column; JSON of the wrong shape → 422 `invalid` naming the field path
//!   (`participant_ids[1]: invalid type: integer, expected a string`); over the limit → 413.
//! - [`OptionalJson`]: like [`ApiJson`], but no body at all or `null` means `T::default()`.
//! - [`ApiPath`]: path parameters; a parameter that does not parse → 400.
//! - [`ApiQuery`]: query parameters; a wrong type → 422 naming the parameter.
//!
//! The body's `Content-Type` is not checked: the body is always JSON, and requiring the header would only
//! trip up `curl -d`.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::error::ApiError;
use crate::server::AppState;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_error(&rejection, state.body_limit))?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::bad_request(format!(
            "cannot read the request body: {}",
            rejection.body_text()
        ))
    }
}

/// Parses a JSON body, classifying failures as described in the module docs.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the request body is empty; this route expects a JSON object",
        ));
    }
    // Every body of this API is an object; serde would otherwise read a struct from an array too.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::invalid("", "the request body must be a JSON object"),
                Err(err) => json_error(".", err),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        json_error(&path, err.into_inner())
    })?;
    de.end().map_err(|err| json_error(".", err))?;
    Ok(value)
}

fn json_error(path: &str, err: serde_json::Error) -> ApiError {
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {err}"),
        ),
        Category::Data => {
            // serde's message ends with " at line 1 column 17", which is noise next to the field path.
            let text = err.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text).to_owned();
            ApiError::invalid(if path == "." { "" } else { path }, text)
        }
    }
}

/// An optional JSON request body: no body at all or `null` (what the OpenAPI document allows for an optional
/// body) is `T::default()`, anything else as [`ApiJson`].
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_error(&rejection, state.body_limit))?;
        optional_json(&bytes).map(OptionalJson)
    }
}

/// An optional body: none at all, or `null`, is `T::default()`; anything else must parse as
/// [`parse_json`] does. Whitespace alone is not JSON, so it is malformed, not absent.
fn optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() || is_null(bytes) {
        return Ok(T::default());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is only whitespace, which is not JSON; send no body at all, or a JSON object",
        ));
    }
    parse_json(bytes)
}

/// Whether `bytes` is the JSON `null` (with any whitespace around it).
fn is_null(bytes: &[u8]) -> bool {
    bytes.trim_ascii() == b"null"
}

/// Path parameters of type `T`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// Query parameters of type `T`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                let text = rejection.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::invalid("", format!("query string: {text}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        ids: Vec<String>,
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    struct Optional {
        n: Option<u32>,
    }

    #[test]
    fn an_optional_body_is_none_null_or_an_object_but_not_whitespace() {
        let parse = |body: &str| optional_json::<Optional>(body.as_bytes());
        assert_eq!(parse("").ok(), Some(Optional::default()));
        assert_eq!(parse(" null\n").ok(), Some(Optional::default()));
        assert_eq!(parse("{\"n\": 3}").ok(), Some(Optional { n: Some(3) }));
        let e = parse("\n").err().map(|e| (e.status, e.code));
        assert_eq!(e, Some((StatusCode::BAD_REQUEST, "malformed_json")));
        let e = parse("{").err().map(|e| (e.status, e.code));
        assert_eq!(e, Some((StatusCode::BAD_REQUEST, "malformed_json")));
    }

    #[test]
    fn json_failures_are_classified_and_name_the_field() {
        let err = |body: &str| parse_json::<Input>(body.as_bytes()).err();
        let e = err("").map(|e| (e.status, e.code));
        assert_eq!(e, Some((StatusCode::BAD_REQUEST, "empty_body")));
        let e = err("{\"name\": ").map(|e| (e.status, e.code));
        assert_eq!(e, Some((StatusCode::BAD_REQUEST, "malformed_json")));
        let e = err("{\"name\": \"a\", \"ids\": [\"x\", 3]}");
        assert!(
            e.is_some_and(|e| e.status == StatusCode::UNPROCESSABLE_ENTITY
                && e.message.starts_with("ids[1]: invalid type: integer"))
        );
        let e = err("{\"name\": \"a\"}");
        assert!(e.is_some_and(|e| e.message.contains("missing field `ids`")));
        let e = err("{\"name\": \"a\", \"ids\": [], \"nmae\": 1}");
        assert!(e.is_some_and(|e| e.message.contains("unknown field `nmae`")));
        assert!(parse_json::<Input>(b"{\"name\": \"a\", \"ids\": []} ").is_ok());
        let e = err("[\"a\", []]").map(|e| (e.status, e.message));
        assert_eq!(
            e,
            Some((
                StatusCode::UNPROCESSABLE_ENTITY,
                "the request body must be a JSON object".to_owned()
            ))
        );
        let e = err("nope").map(|e| e.code);
        assert_eq!(e, Some("malformed_json"));
    }
}
