//! The server's own web pages: the operator console (`/console`, admin key) and a chat client (`/chat`,
//! a user token), with a landing page at `/`.
//!
//! ## Decisions
//! - **No build step.** The pages are plain HTML, CSS and JavaScript modules under `host/web/`, written by
//!   hand; `build.rs` embeds every file there in the binary ([`assets`]), so running the server needs no
//!   Node toolchain and there are no generated files to keep current. They use only the public API, like
//!   any other client.
//! - **Paths that cannot collide with the API**: pages at `/`, `/console` and `/chat`, files at
//!   `/ui/<path under host/web>`; the API keeps `/v1/*`, `/healthz` and `/metrics`. These routes are not
//!   in the OpenAPI document (they are not API).
//! - **Locked down.** Every answer carries a Content-Security-Policy that allows scripts, styles and
//!   connections to this origin only ([`headers::CONTENT_SECURITY_POLICY`]): no inline script, no
//!   `eval`, no framing, no request to another host (no CDN, no web fonts).
//! - **Revalidated, not cached blindly**: `Cache-Control: no-cache` with a content-hash `ETag`, so a new
//!   binary's pages are used at once and an unchanged file costs a 304.
//! - `chathooks serve --web-dir host/web` serves the files from that folder, read on every request, for
//!   working on the pages without rebuilding.
//!
//! ## Layout
//! - [`assets`]: the embedded table, the folder source, path checks, content types.
//! - [`headers`]: the security headers and conditional requests.
//! - `hash`: the content hash of ETags, shared with `build.rs`.

pub mod assets;
pub mod hash;
pub mod headers;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

pub use assets::Source;

use crate::api::ApiError;

/// The pages' routes over `source`.
pub fn router(source: Source) -> Router {
    let source = Arc::new(source);
    Router::new()
        .route("/", get(landing))
        .route("/console", get(console))
        .route("/console/", get(console))
        .route("/chat", get(chat))
        .route("/chat/", get(chat))
        .route("/ui/{*path}", get(file))
        .with_state(source)
}

async fn landing(State(source): State<Arc<Source>>, headers: HeaderMap) -> Response {
    serve(&source, "index.html", &headers).await
}

async fn console(State(source): State<Arc<Source>>, headers: HeaderMap) -> Response {
    serve(&source, "console/index.html", &headers).await
}

async fn chat(State(source): State<Arc<Source>>, headers: HeaderMap) -> Response {
    serve(&source, "chat/index.html", &headers).await
}

async fn file(
    State(source): State<Arc<Source>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&source, &path, &headers).await
}

/// The file at `path` of `source` with the pages' headers (304 when the client has it), or a JSON 404.
async fn serve(source: &Source, path: &str, request: &HeaderMap) -> Response {
    match source.get(path).await {
        Some(asset) => headers::respond(asset, request),
        None => headers::secured(axum::response::IntoResponse::into_response(
            ApiError::not_found(format!(
                "no file `{path}` in the web pages (they are at /, /console, /chat and /ui/...)"
            )),
        )),
    }
}
