//! The headers of every page and file: the security policy, and revalidation by ETag.

use axum::body::Body;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY as CSP, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::assets::Asset;

/// What the pages may load and where they may connect: this origin only (its WebSocket included), no
/// inline scripts or styles, no `eval`, no plugins, not framed, forms posting nowhere else. Images may
/// also be `data:` URLs (charts and icons drawn by the pages).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `asset` with its content type, ETag and the security headers; a bodiless 304 when `request`'s
/// `If-None-Match` already names its ETag.
pub fn respond(asset: Asset, request: &HeaderMap) -> Response {
    let cached = request
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|tag| tag.trim().trim_start_matches("W/"))
                .any(|tag| tag == asset.etag || tag == "*")
        });
    let mut response = if cached {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Body::from(asset.bytes));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        response.headers_mut().insert(ETAG, etag);
    }
    secured(response)
}

/// `response` with the security headers and `Cache-Control: no-cache` (use the copy only after asking
/// whether it is current).
pub fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CSP, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
