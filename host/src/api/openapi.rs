//! The OpenAPI 3 document: its header and security schemes here, its paths and schemas collected from
//! the handlers' `#[utoipa::path]` annotations by `utoipa_axum` (see [`super::routes()`]), each input
//! field's rule added by [`super::contract`]; served as JSON.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Security scheme name for routes that take the admin key.
pub const ADMIN_KEY: &str = "admin_key";

/// Security scheme name for routes that take a user token.
pub const USER_TOKEN: &str = "user_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chathooks",
        description = "A chat server whose behaviour is extended by WebAssembly hooks. Errors are \
                       `{\"error\": {\"code\", \"message\"}}`. Live events: `GET /v1/ws` (WebSocket)."
    ),
    modifiers(&BearerSchemes),
    components(schemas(super::error::ErrorBody)),
    tags(
        (name = "meta", description = "Health and this document"),
        (name = "admin", description = "Users, tokens, plugins and dead letters (admin key)"),
        (name = "users", description = "The calling user, and users' presence"),
        (name = "conversations", description = "Conversations and their participants"),
        (name = "messages", description = "Messages, threads, typing, receipts and reactions"),
        (name = "moderation", description = "Messages plugins held for review, and moderators' decisions"),
        (name = "live", description = "The WebSocket of live events"),
    )
)]
struct ApiDoc;

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in [ADMIN_KEY, USER_TOKEN] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The document's header, security schemes and shared schemas, before any path is added.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document, as JSON.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    let text = DOCUMENT.get_or_init(|| Bytes::from(super::openapi_document().to_string()));
    ([(CONTENT_TYPE, "application/json")], text.clone())
}

/// The document as JSON text, written on its first request: the same for every server of a process, and
/// writing it takes milliseconds a start need not pay (BENCHMARKS.md, problem 27).
static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
