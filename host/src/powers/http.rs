//! The server's outbound HTTP client for the `http` power and the push gateway.
//!
//! A plugin's request arrives in the plugin call's blocking work. It is spawned onto the server's tokio
//! runtime and the call waits for the answer on a channel: this works from any thread (it never starts
//! a runtime inside a runtime, unlike `Handle::block_on` from an async worker; on a worker the wait
//! hands the worker's tasks over first, [`crate::blocking::off_worker`]), and the wait is bounded by
//! the request's own timeout.
//!
//! `https://` URLs are spoken over TLS (rustls; what it trusts and how its failures read: [`super::tls`]).
//! A plugin's `https://` request is never downgraded to plain HTTP, and no redirect is followed.

use std::path::Path;
use std::time::Duration;

use tokio::runtime::Handle;

use super::tls::failure_text;
use crate::plugins::powers::{HttpFailure, InboundResponse, OutboundRequest};

/// Extra time the waiting thread allows beyond a request's timeout before giving up on the task.
const WAIT_MARGIN: Duration = Duration::from_millis(500);

/// Why the HTTP client cannot be built (at server start).
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    /// The extra CA file is missing or unusable; the text names it.
    #[error(transparent)]
    CaFile(#[from] super::tls::CaFileError),
    /// The TLS client could not be set up.
    #[error("setting up the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// An HTTP client bound to the server's runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    runtime: Handle,
}

impl HttpClient {
    /// A client whose requests run on `runtime`, trusting the built-in roots and the certificates in the
    /// PEM file `extra_ca`, if given. Redirects are not followed: a redirect to another host would bypass
    /// the manifest's host list (and one from `https` to `http` would downgrade the request).
    pub fn new(runtime: Handle, extra_ca: Option<&Path>) -> Result<Self, HttpClientError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(path) = extra_ca {
            for certificate in super::tls::load_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(HttpClientError::Build)?;
        Ok(HttpClient { client, runtime })
    }

    /// The underlying async client (for the push gateway's background deliveries).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Makes `request` and waits for it. Blocking: call from blocking work ([`crate::blocking::run`]) or a
    /// blocking thread.
    pub fn send_blocking(&self, request: OutboundRequest) -> Result<InboundResponse, HttpFailure> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = request.timeout;
        let client = self.client.clone();
        self.runtime.spawn(async move {
            let result = tokio::time::timeout(timeout, send(&client, request)).await;
            let _ = tx.send(result.unwrap_or(Err(HttpFailure::Timeout)));
        });
        crate::blocking::off_worker(|| rx.recv_timeout(timeout + WAIT_MARGIN))
            .unwrap_or(Err(HttpFailure::Timeout))
    }
}

async fn send(
    client: &reqwest::Client,
    request: OutboundRequest,
) -> Result<InboundResponse, HttpFailure> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| HttpFailure::Failed(e.to_string()))?;
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if !request.body.is_empty() {
        builder = builder.body(request.body);
    }
    let response = builder.send().await.map_err(|e| {
        if e.is_timeout() {
            HttpFailure::Timeout
        } else {
            HttpFailure::Failed(failure_text(&e))
        }
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let cap = request.max_response_bytes;
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(HttpFailure::TooLarge(cap as u64));
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpFailure::Failed(failure_text(&e)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(HttpFailure::TooLarge(cap as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(InboundResponse {
        status,
        headers,
        body,
    })
}
