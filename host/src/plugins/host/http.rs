//! `chathooks:plugin/http`: outbound HTTP and HTTPS requests to the hosts the manifest grants (`http_hosts`), with a
//! time limit and a response size cap. The URL is parsed and checked here; the request itself is made by
//! the runtime's services (the server's HTTP client, or a recording in tests). Time spent waiting for the
//! answer does not count against an after-hook's time budget (see `HostWait`).

use std::sync::Arc;
use std::time::Duration;

use crate::plugins::bindings::http::{Error, Host, Method, Request, Response};
use crate::plugins::powers::{
    HttpFailure, OutboundRequest, PluginPowers, Power, PowerLimiter, ServicesSlot,
};

/// Longest a request may take, and what a request without `timeout-ms` gets. An after-hook's budget is a
/// second of CPU, but waiting on the network costs no CPU; five seconds covers a slow webhook consumer
/// while keeping a hung one from holding a delivery (and its conversation's queue) for long.
pub const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response body handed to a plugin: webhook answers and small JSON APIs fit easily, and the
/// bytes are copied into the plugin's memory.
pub const MAX_HTTP_RESPONSE_BYTES: usize = 1 << 20;

/// Largest request body a plugin may send: a webhook payload, not an upload.
pub const MAX_HTTP_REQUEST_BYTES: usize = 1 << 20;

/// What `http` needs.
pub struct HttpCtx {
    plugin: Arc<str>,
    powers: Arc<PluginPowers>,
    services: ServicesSlot,
    /// The plugin's rate limits ([`Power::HttpRequests`]).
    limiter: Arc<PowerLimiter>,
    /// Where time spent waiting for answers is recorded.
    wait: super::HostWait,
}

impl HttpCtx {
    /// A context for `plugin`.
    pub(crate) fn new(
        plugin: Arc<str>,
        powers: Arc<PluginPowers>,
        services: ServicesSlot,
        limiter: Arc<PowerLimiter>,
        wait: super::HostWait,
    ) -> Self {
        HttpCtx {
            plugin,
            powers,
            services,
            limiter,
            wait,
        }
    }
}

/// Host (lower case) and port of an `http://` or `https://` URL, read by the parser the HTTP client uses
/// (so the host checked is the host connected to); the port is the URL's, else the scheme's (80, 443).
pub fn http_authority(url: &str) -> Result<(String, u16), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{url:?} has a user name or password before the host; send credentials in a header"
        ));
    }
    match (parsed.host_str(), parsed.port_or_known_default()) {
        (Some(host), Some(port)) if !host.is_empty() => Ok((host.to_ascii_lowercase(), port)),
        _ => Err(format!("{url:?} has no usable host")),
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
    }
}

impl Host for HttpCtx {
    fn send(&mut self, request: Request) -> Result<Response, Error> {
        let (host, port) = http_authority(&request.url).map_err(Error::InvalidRequest)?;
        if !self.powers.grants.allows_host(&host, port) {
            return Err(Error::Denied(format!(
                "plugin {} is not granted HTTP to {host}:{port} (list it in `http_hosts` under [grants] in its manifest)",
                self.plugin
            )));
        }
        let body = request.body.unwrap_or_default();
        if body.len() > MAX_HTTP_REQUEST_BYTES {
            return Err(Error::InvalidRequest(format!(
                "the request body is larger than {MAX_HTTP_REQUEST_BYTES} bytes"
            )));
        }
        let timeout = request
            .timeout_ms
            .map_or(MAX_HTTP_TIMEOUT, |ms| Duration::from_millis(ms.into()))
            .min(MAX_HTTP_TIMEOUT);
        self.limiter
            .try_acquire(Power::HttpRequests)
            .map_err(|refused| Error::RateLimited(refused.retry_after_ms()))?;
        let outbound = OutboundRequest {
            plugin: self.plugin.to_string(),
            method: method_name(request.method).to_owned(),
            url: request.url,
            headers: request.headers,
            body,
            timeout,
            max_response_bytes: MAX_HTTP_RESPONSE_BYTES,
        };
        let started = self.wait.start();
        let answer = self.services.get().http(outbound);
        self.wait.record(started);
        match answer {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(HttpFailure::Timeout) => Err(Error::Timeout),
            Err(HttpFailure::TooLarge(n)) => Err(Error::TooLarge(n)),
            Err(HttpFailure::Failed(m)) => Err(Error::Failed(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(
            http_authority("http://127.0.0.1:9000/x?y"),
            Ok(("127.0.0.1".into(), 9000))
        );
        assert_eq!(
            http_authority("http://Example.org/hook"),
            Ok(("example.org".into(), 80))
        );
        assert_eq!(
            http_authority("https://Example.org/hook"),
            Ok(("example.org".into(), 443))
        );
        assert_eq!(
            http_authority("https://127.0.0.1:8443/"),
            Ok(("127.0.0.1".into(), 8443))
        );
        assert_eq!(
            http_authority("http://[::1]:9000/"),
            Ok(("[::1]".into(), 9000))
        );
        assert!(http_authority("ftp://example.org/").is_err());
        assert!(http_authority("https://user:pw@example.org/").is_err());
        assert!(http_authority("http://user@evil/").is_err());
        assert!(http_authority("http://:80/").is_err());
    }

    #[test]
    fn requests_past_the_rate_limit_are_refused() {
        use crate::plugins::powers::{Grants, RecordingServices};
        let (limiter, clock) = crate::plugins::powers::one_per_second(2);
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants: Grants {
                http_hosts: vec!["127.0.0.1:9000".into()],
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let mut ctx = HttpCtx::new(
            Arc::from("p"),
            Arc::new(powers),
            slot,
            limiter.clone(),
            super::super::HostWait::default(),
        );
        let mut send = |url: &str| {
            ctx.send(Request {
                method: Method::Get,
                url: url.into(),
                headers: vec![],
                body: None,
                timeout_ms: None,
            })
        };
        // A request refused for another reason takes no token.
        assert!(matches!(
            send("http://127.0.0.1:9001/"),
            Err(Error::Denied(_))
        ));
        assert!(send("http://127.0.0.1:9000/").is_ok());
        assert!(send("http://127.0.0.1:9000/").is_ok());
        assert!(matches!(
            send("http://127.0.0.1:9000/"),
            Err(Error::RateLimited(1000))
        ));
        clock.advance(Duration::from_secs(1));
        assert!(send("http://127.0.0.1:9000/").is_ok());
        assert_eq!(services.take().len(), 3);
        assert_eq!(limiter.refused().http_requests, 1);
    }

    #[test]
    fn only_granted_hosts_are_asked() {
        use crate::plugins::powers::{Grants, Recorded, RecordingServices};
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants: Grants {
                http_hosts: vec!["127.0.0.1:9000".into()],
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let mut ctx = HttpCtx::new(
            Arc::from("p"),
            Arc::new(powers),
            slot,
            Arc::default(),
            super::super::HostWait::default(),
        );
        let request = |url: &str| Request {
            method: Method::Post,
            url: url.into(),
            headers: vec![],
            body: Some(b"x".to_vec()),
            timeout_ms: Some(60_000),
        };
        let ok = ctx.send(request("http://127.0.0.1:9000/a"));
        assert!(matches!(ok, Ok(r) if r.status == 200));
        let denied = ctx.send(request("http://127.0.0.1:9001/a"));
        assert!(matches!(denied, Err(Error::Denied(m)) if m.contains("127.0.0.1:9001")));
        let bad = ctx.send(request("ftp://127.0.0.1:9000/a"));
        assert!(matches!(bad, Err(Error::InvalidRequest(_))));
        let recorded = services.take();
        assert_eq!(recorded.len(), 1);
        // The plugin's timeout is capped at the server's.
        assert!(matches!(&recorded[0], Recorded::Http(r) if r.timeout == MAX_HTTP_TIMEOUT));
    }
}
