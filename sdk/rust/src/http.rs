//! Outbound HTTP (WIT interface `chathooks:plugin/http`): `http://` and `https://` requests to the hosts
//! the manifest lists under `[grants]` as `http_hosts = ["host:port", ...]`; others are
//! [`HttpError::Denied`]. Each request has a time limit (5 s at most) and a response size cap, and a
//! plugin's requests are rate-limited ([`HttpError::RateLimited`], [`HttpError::retry_after`]).
//!
//! ```no_run
//! use chathooks_sdk::http;
//! use chathooks_sdk::serde_json::json;
//!
//! # fn demo() -> Result<(), String> {
//! let response = http::post_json("http://127.0.0.1:9000/hook", &json!({"hello": "world"}), &[])?;
//! if response.status >= 300 {
//!     return Err(format!("the webhook answered {}", response.status));
//! }
//! # Ok(()) }
//! ```

use crate::__bindings::chathooks::plugin::http as raw;

pub use raw::{Error as HttpError, Method, Request, Response};

/// Sends `request` and waits for the whole response.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    raw::send(request)
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request {
        method: Method::Get,
        url: url.to_owned(),
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    })
}

/// `POST url` with `value` as a JSON body (`Content-Type: application/json`) and extra `headers`.
pub fn post_json(
    url: &str,
    value: &serde_json::Value,
    headers: &[(&str, &str)],
) -> Result<Response, HttpError> {
    post_bytes(
        url,
        "application/json",
        value.to_string().into_bytes(),
        headers,
    )
}

/// `POST url` with `body` of `content_type` and extra `headers`.
pub fn post_bytes(
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Result<Response, HttpError> {
    let mut all = vec![("content-type".to_owned(), content_type.to_owned())];
    all.extend(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    send(&Request {
        method: Method::Post,
        url: url.to_owned(),
        headers: all,
        body: Some(body),
        timeout_ms: None,
    })
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HttpError {
    /// If the call was refused by the plugin's rate limit of HTTP requests (`[limits]` `http_requests_per_second`
    /// and `http_requests_burst` in its manifest): how long until a call would be allowed. Nothing was done;
    /// wait (a timer) or give up rather than retry in a loop, which only uses up the call's time budget.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            HttpError::RateLimited(ms) => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// A one-line explanation of an [`HttpError`].
pub fn describe(error: &HttpError) -> String {
    match error {
        HttpError::Denied(why) => format!("http: denied: {why}"),
        HttpError::InvalidRequest(why) => format!("http: invalid request: {why}"),
        HttpError::Timeout => "http: timed out".to_owned(),
        HttpError::TooLarge(cap) => format!("http: response larger than {cap} bytes"),
        HttpError::Failed(why) => format!("http: failed: {why}"),
        HttpError::RateLimited(ms) => format!("http: rate limited: retry in {ms} ms"),
    }
}

impl From<HttpError> for String {
    fn from(error: HttpError) -> Self {
        describe(&error)
    }
}
