//! `GET /v1/admin/tail` and `GET /v1/admin/history` (admin key): what the console shows live.
//!
//! The tail is a stream of newline-delimited JSON objects, one per line, until the client goes away or
//! the server shuts down; a browser reads it with `fetch` (an `EventSource` cannot send the admin key in
//! a header):
//! - `{"type":"hello","node":<node id or null>,"at":<ms>}` first;
//! - `{"type":"event","event":{"id","kind","conversation_id","payload","created_at"}}` for every chat
//!   event of every conversation (on a cluster node, every node's events), as the WebSocket sends them;
//! - `{"type":"log","plugin","level","message","at"}` for every line a plugin logs on this node;
//! - `{"type":"ping","at":<ms>}` every [`TAIL_PING_INTERVAL`], so proxies keep the stream open;
//! - `{"type":"lagged","missed":<n>}` when the reader fell so far behind that `n` items were dropped
//!   (the server never buffers without bound for a slow reader).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use crate::live::LiveEvent;
use crate::metrics::history::HistoryView;
use crate::plugins::TailedLine;
use crate::server::AppState;
use crate::store::ids::now_ms;

/// How often an idle tail says it is alive: below the one-minute idle timeout of common proxies.
pub const TAIL_PING_INTERVAL: Duration = Duration::from_secs(15);

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tail))
        .routes(routes!(history))
}

/// A live stream of every chat event and plugin log line (NDJSON; see the module docs for the lines).
#[utoipa::path(get, path = "/v1/admin/tail", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, description = "Newline-delimited JSON objects until the client disconnects", content_type = "application/x-ndjson", body = String),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody)))]
pub async fn tail(_: Admin, State(state): State<AppState>) -> Response {
    let mut ping = tokio::time::interval(TAIL_PING_INTERVAL);
    ping.reset(); // the first tick after one interval, not at once
    let tail = Tail {
        hello: Some(json!({
            "type": "hello",
            "node": state.cluster.as_ref().map(|node| node.node_id.clone()),
            "at": now_ms(),
        })),
        events: state.chat.hub().subscribe(),
        logs: state.log_tail.subscribe(),
        closing: state.closing(),
        ping,
    };
    let lines = futures_util::stream::unfold(tail, |mut tail| async move {
        let line = tail.next().await?;
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(bytes)), tail))
    });
    (
        [
            (CONTENT_TYPE, "application/x-ndjson"),
            (CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

/// The sources of one tail.
struct Tail {
    hello: Option<serde_json::Value>,
    events: Receiver<Arc<LiveEvent>>,
    logs: Receiver<Arc<TailedLine>>,
    closing: watch::Receiver<bool>,
    ping: tokio::time::Interval,
}

impl Tail {
    /// The next line; `None` ends the stream (shutdown).
    async fn next(&mut self) -> Option<serde_json::Value> {
        if let Some(hello) = self.hello.take() {
            return Some(hello);
        }
        if *self.closing.borrow() {
            return None;
        }
        tokio::select! {
            changed = self.closing.changed() => match changed {
                Ok(()) if !*self.closing.borrow() => Some(json!({"type": "ping", "at": now_ms()})),
                _ => None,
            },
            event = self.events.recv() => match event {
                Ok(event) => Some(json!({"type": "event", "event": &*event})),
                Err(RecvError::Lagged(missed)) => Some(json!({"type": "lagged", "missed": missed})),
                Err(RecvError::Closed) => None,
            },
            line = self.logs.recv() => match line {
                Ok(line) => {
                    let mut value = json!({"type": "log"});
                    if let (Some(object), Ok(serde_json::Value::Object(fields))) =
                        (value.as_object_mut(), serde_json::to_value(&*line))
                    {
                        object.extend(fields);
                    }
                    Some(value)
                }
                Err(RecvError::Lagged(missed)) => Some(json!({"type": "lagged", "missed": missed})),
                Err(RecvError::Closed) => None,
            },
            _ = self.ping.tick() => Some(json!({"type": "ping", "at": now_ms()})),
        }
    }
}

/// The last 15 minutes, one sample every 5 seconds: outbox depth, events stored, and per plugin its
/// call totals and the latency of the calls in each interval (for charts).
#[utoipa::path(get, path = "/v1/admin/history", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, description = "Samples, oldest first", body = HistoryView),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody)))]
pub async fn history(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<HistoryView>, ApiError> {
    let view = state
        .history
        .view()
        .await
        .map_err(crate::chat::ChatError::Internal)?;
    Ok(Json(view))
}
