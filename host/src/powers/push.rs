//! Push notifications: each one goes to the users' live connections as a `notification.new` WebSocket
//! event and, when the server has a push gateway configured, to the gateway as an HTTP POST with the
//! users' device tokens, signed with HMAC-SHA256 and retried with backoff.
//!
//! ## The gateway request
//! `POST <push_gateway_url>` with `Content-Type: application/json`, a body
//! `{"notification": {...}, "devices": [{"user_id", "platform", "token", "created_at"}]}`, and the headers
//! `X-Chathooks-Signature: sha256=<hex HMAC-SHA256 of the body under push_gateway_secret>` and
//! `X-Chathooks-Delivery: <notification id>`. A 2xx answer is success; anything else (or no answer) is
//! retried [`PUSH_ATTEMPTS`] times in all. Deliveries are in memory: a notification whose gateway
//! delivery is still retrying when the server stops is not sent again after the restart. The backoff
//! between attempts waits on the server's [`Clock`], so a test moves a manual clock instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::runtime::Handle;

use super::hmac::signature;
use super::http::HttpClient;
use super::tls::failure_text;
use crate::clock::Clock;
use crate::live::{Hub, LiveEvent};
use crate::plugins::powers::{PowerError, PushNotification};
use crate::store::{Db, ids};

/// Attempts at delivering one notification to the gateway. With [`FIRST_PUSH_BACKOFF`] doubling, four
/// attempts span about three seconds: a gateway restarting is ridden out, a gateway that is down does not
/// pile up work in memory.
pub const PUSH_ATTEMPTS: u32 = 4;

/// Delay after the first failed gateway attempt; doubled after each further failure.
pub const FIRST_PUSH_BACKOFF: Duration = Duration::from_millis(500);

/// Time limit of one gateway request.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-chathooks-signature";

/// Where notifications go besides live connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushGateway {
    /// The gateway's URL; `None`: live connections only.
    pub url: Option<String>,
    /// The HMAC key of the signature header (empty when unset: the header is still sent).
    pub secret: String,
}

/// Delivers push notifications.
#[derive(Debug, Clone)]
pub struct Pusher {
    db: Arc<Db>,
    hub: Hub,
    http: HttpClient,
    runtime: Handle,
    gateway: PushGateway,
    /// What the backoff between gateway attempts waits on.
    clock: Arc<dyn Clock>,
}

impl Pusher {
    /// A pusher publishing to `hub` and posting to `gateway` with `http` on `runtime`, its retries'
    /// backoff on `clock`.
    pub fn new(
        db: Arc<Db>,
        hub: Hub,
        http: HttpClient,
        runtime: Handle,
        gateway: PushGateway,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Pusher {
            db,
            hub,
            http,
            runtime,
            gateway,
            clock,
        }
    }

    /// Queues `n`: publishes it to the live connections of its (existing) users now, and starts its
    /// gateway delivery in the background. Blocking (reads the database).
    pub fn send(&self, n: PushNotification) -> Result<(), PowerError> {
        let failed = |e: crate::store::StoreError| PowerError::Failed(e.to_string());
        let (id, known, devices) = self
            .db
            .read(|c| {
                let missing = c.missing_users(&n.user_ids)?;
                let known: Vec<String> = n
                    .user_ids
                    .iter()
                    .filter(|u| !missing.contains(u))
                    .cloned()
                    .collect();
                let devices = c.devices_of(&known)?;
                Ok((format!("n_{}", ids::random_hex(8)?), known, devices))
            })
            .map_err(failed)?;
        if known.is_empty() {
            return Ok(());
        }
        let now = ids::now_ms();
        let notification = json!({
            "id": id,
            "plugin": n.plugin,
            "user_ids": known,
            "title": n.title,
            "body": n.body,
            "badge": n.badge,
            "data": n.data,
            "created_at": now,
        });
        let conversation_id = n
            .data
            .get("conversation_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        self.hub.publish(LiveEvent {
            id: 0,
            kind: "notification.new".into(),
            conversation_id,
            audience: known,
            payload: json!({ "notification": notification }),
            created_at: now,
        });
        if let Some(url) = self.gateway.url.clone() {
            let body = json!({ "notification": notification, "devices": devices }).to_string();
            let client = self.http.client().clone();
            let secret = self.gateway.secret.clone();
            let clock = self.clock.clone();
            self.runtime
                .spawn(deliver(client, url, secret, id, body.into_bytes(), clock));
        }
        Ok(())
    }
}

/// Posts one notification to the gateway, retrying with backoff on `clock`.
async fn deliver(
    client: reqwest::Client,
    url: String,
    secret: String,
    id: String,
    body: Vec<u8>,
    clock: Arc<dyn Clock>,
) {
    let signed = signature(&secret, &body);
    let mut delay = FIRST_PUSH_BACKOFF;
    for attempt in 1..=PUSH_ATTEMPTS {
        let result = client
            .post(&url)
            .timeout(PUSH_TIMEOUT)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, &signed)
            .header("x-chathooks-delivery", &id)
            .header("x-chathooks-attempt", attempt.to_string())
            .body(body.clone())
            .send()
            .await;
        let error = match result {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(notification = %id, attempt, "push delivered to the gateway");
                return;
            }
            Ok(r) => format!("status {}", r.status()),
            Err(e) => failure_text(&e),
        };
        if attempt == PUSH_ATTEMPTS {
            tracing::warn!(notification = %id, attempt, "push gateway failed for the last time, dropped: {error}");
            return;
        }
        tracing::info!(notification = %id, attempt, retry_in = ?delay, "push gateway failed: {error}");
        clock.sleep(delay).await;
        delay = delay.saturating_mul(2);
    }
}
