//! `GET /metrics`: the server's metrics in the Prometheus text format.
//!
//! ## What is measured
//! | family | type | labels |
//! | --- | --- | --- |
//! | `chathooks_http_requests_total` | counter | `method` (one of [`COUNTED_METHODS`], else `other`), `route` (the route template, `unmatched` for 404s), `status` |
//! | `chathooks_hook_calls_total` | counter | `plugin`, `hook` |
//! | `chathooks_hook_failures_total` | counter | `plugin`, `hook` |
//! | `chathooks_hook_timeouts_total` | counter | `plugin`, `hook` |
//! | `chathooks_hook_duration_seconds` | histogram | `plugin`, `hook` |
//! | `chathooks_plugin_state` | gauge (1 for the current state) | `plugin`, `state` |
//! | `chathooks_plugin_breaker_trips_total` | counter | `plugin` |
//! | `chathooks_plugin_log_lines_dropped_total` | counter | `plugin` |
//! | `chathooks_plugin_log_bytes_dropped_total` | counter | `plugin` |
//! | `chathooks_plugin_rate_limited_total` | counter | `plugin`, `power` (`posts`, `events`, `http_requests`, `pushes`, `timers`) |
//! | `chathooks_plugin_kv_keys`, `chathooks_plugin_kv_bytes` | gauge | `plugin` |
//! | `chathooks_outbox_depth` | gauge | events committed whose after-hooks are not yet fanned out, or are delivered straight from the outbox and not all done (or done within the last 0.1 s) |
//! | `chathooks_deliveries_pending` | gauge | `plugin`: after-hook deliveries not yet done |
//! | `chathooks_dead_letters` | gauge | dead letters waiting for replay (attempts used up, backlog full, plugin unloaded) |
//! | `chathooks_deliveries_dead_lettered_total` | counter | `plugin`, `reason` (`attempts`, `backlog`, `unloaded`) |
//! | `chathooks_websocket_connections` | gauge | open WebSocket connections |
//! | `chathooks_websocket_connections_total` | counter | WebSocket connections accepted |
//! | `chathooks_store_writer_busy_seconds_total` | counter | seconds the database's one writer was held: SQLite's (writes, and reads lent its connection), or on PostgreSQL the writer mutex of a node on its own; a rate near 1 means every write queues for it (not on a node of a cluster, which has none) |
//! | `chathooks_cluster_sequencer` | gauge | `node`: 1 while this cluster node is the sequencer (cluster nodes only) |
//!
//! Every label value comes from a set the server or its operator fixes (route templates, the standard
//! methods, status codes the handlers choose, plugin names from the plugins folder), never from what a
//! request carries: each distinct value is a series kept for the life of the process, so a label a client
//! could choose would let anyone grow the server's memory and every scrape without bound.
//!
//! Counters live in memory and start from zero when the server starts, as Prometheus expects. The route
//! is unauthenticated, like `/healthz`: it holds no message content and no user ids, only route
//! templates, plugin names and counts. Keep the server on a private address (the default) or put it
//! behind a proxy that restricts `/metrics` if plugin names are sensitive.

pub mod history;
pub mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiError;
use crate::dispatch::DispatchStats;
use crate::plugins::powers::Power;
use crate::plugins::registry::{PluginState, PluginStatus, Registry};
use crate::server::AppState;

use text::{Exposition, Kind};

/// The request methods counted under their own name: the methods of RFC 9110 and `PATCH`. Any other
/// method (a client may send any token) is counted as `other`, so clients cannot add series.
pub const COUNTED_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The `method` label of a request: its name if it is one of [`COUNTED_METHODS`], else `other`.
pub fn method_label(method: &Method) -> &'static str {
    COUNTED_METHODS
        .iter()
        .find(|known| **known == method.as_str())
        .copied()
        .unwrap_or("other")
}

/// The server's own counters (plugin statistics live in the registry, queue sizes in the database).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (method label, route template, status).
    http: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    /// Open WebSocket connections.
    ws_open: AtomicI64,
    /// WebSocket connections accepted.
    ws_total: AtomicU64,
}

/// Counts one open WebSocket connection until dropped.
#[derive(Debug)]
pub struct WsConnection {
    metrics: Arc<Metrics>,
}

impl Drop for WsConnection {
    fn drop(&mut self) {
        self.metrics.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a finished HTTP request. `route` must be a route template (or `unmatched`), never the
    /// request's path.
    pub fn record_http(&self, method: &Method, route: &str, status: u16) {
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        *http
            .entry((method_label(method), route.to_owned(), status))
            .or_default() += 1;
    }

    /// Counts a WebSocket connection as open until the returned guard is dropped.
    pub fn websocket_opened(self: &Arc<Self>) -> WsConnection {
        self.ws_open.fetch_add(1, Ordering::Relaxed);
        self.ws_total.fetch_add(1, Ordering::Relaxed);
        WsConnection {
            metrics: self.clone(),
        }
    }

    /// Open WebSocket connections now.
    pub fn websockets_open(&self) -> i64 {
        self.ws_open.load(Ordering::Relaxed)
    }
}

/// Middleware counting every request by method (bounded by [`method_label`]), route template (the
/// matched route, `unmatched` when none matched: never the raw path) and status.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    metrics.record_http(&method, &route, response.status().as_u16());
    response
}

/// The route of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// What the database says about the queues.
struct Queues {
    outbox_depth: u64,
    pending: Vec<(String, u64)>,
    dead_letters: u64,
}

/// The server's metrics in the Prometheus text format (see the module docs for the families).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
               content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let db = state.db().clone();
    let registry = state.chat.registry().clone();
    let (queues, statuses) = tokio::task::spawn_blocking(move || {
        let queues = db.read(|c| {
            Ok(Queues {
                outbox_depth: c.outbox_depth()?,
                pending: c.backlog()?,
                dead_letters: c.dead_letter_count()?,
            })
        })?;
        Ok::<_, crate::store::StoreError>((queues, registry.plugins_status()))
    })
    .await??;
    let queues = Queues {
        pending: state.chat.dispatch().stats().pending_with(queues.pending),
        ..queues
    };
    let mut body = render(
        &state.metrics,
        state.chat.registry(),
        &statuses,
        &queues,
        state.chat.dispatch().stats(),
        state.cluster.as_deref(),
    );
    if let Some(busy) = state.db().writer_busy() {
        body.push_str(&render_writer_busy(busy));
    }
    Ok(([(header::CONTENT_TYPE, text::CONTENT_TYPE)], body).into_response())
}

fn render(
    metrics: &Metrics,
    registry: &Registry,
    statuses: &[PluginStatus],
    queues: &Queues,
    dispatch: &DispatchStats,
    cluster: Option<&crate::cluster::nodes::NodeState>,
) -> String {
    let mut e = Exposition::default();
    e.family(
        "chathooks_http_requests_total",
        "HTTP requests answered, by method, route template and status.",
        Kind::Counter,
    );
    let http = metrics
        .http
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for ((method, route, status), count) in &http {
        let status = status.to_string();
        let labels = [("method", *method), ("route", route), ("status", &status)];
        e.sample("chathooks_http_requests_total", &labels, count);
    }

    render_hooks(&mut e, registry);
    render_plugins(&mut e, statuses);
    render_rate_limited(&mut e, statuses);

    e.family(
        "chathooks_outbox_depth",
        "Events committed but not yet fanned out to the plugins subscribed to them.",
        Kind::Gauge,
    );
    e.sample("chathooks_outbox_depth", &[], queues.outbox_depth);
    e.family(
        "chathooks_deliveries_pending",
        "After-hook deliveries not yet done (waiting, retrying or in flight), by plugin.",
        Kind::Gauge,
    );
    for (plugin, n) in &queues.pending {
        e.sample("chathooks_deliveries_pending", &[("plugin", plugin)], n);
    }
    e.family(
        "chathooks_dead_letters",
        "Dead letters waiting for an admin to replay them: deliveries that used up their attempts, were \
         not queued because their plugin's backlog was full, or waited too long for an unloaded plugin.",
        Kind::Gauge,
    );
    e.sample("chathooks_dead_letters", &[], queues.dead_letters);
    e.family(
        "chathooks_deliveries_dead_lettered_total",
        "Deliveries turned into dead letters since the start, by plugin and reason: attempts (the last \
         attempt failed), backlog (the plugin's backlog was full: not queued), unloaded (the plugin \
         stayed unloaded past the grace period).",
        Kind::Counter,
    );
    for (plugin, cause, n) in dispatch.dead_lettered_counts() {
        let labels = [("plugin", plugin.as_str()), ("reason", cause.label())];
        e.sample("chathooks_deliveries_dead_lettered_total", &labels, n);
    }
    e.family(
        "chathooks_websocket_connections",
        "Open WebSocket connections.",
        Kind::Gauge,
    );
    e.sample(
        "chathooks_websocket_connections",
        &[],
        metrics.websockets_open(),
    );
    e.family(
        "chathooks_websocket_connections_total",
        "WebSocket connections accepted.",
        Kind::Counter,
    );
    e.sample(
        "chathooks_websocket_connections_total",
        &[],
        metrics.ws_total.load(Ordering::Relaxed),
    );
    if let Some(node) = cluster {
        e.family(
            "chathooks_cluster_sequencer",
            "1 while this node of a cluster holds the sequencer role, else 0.",
            Kind::Gauge,
        );
        let holding = u64::from(node.is_sequencer.load(Ordering::Acquire));
        e.sample(
            "chathooks_cluster_sequencer",
            &[("node", node.node_id.as_str())],
            holding,
        );
    }
    e.finish()
}

/// Per plugin and hook: calls, failures, timeouts, latency.
fn render_hooks(e: &mut Exposition, registry: &Registry) {
    let stats = registry.stats();
    let families = [
        (
            "chathooks_hook_calls_total",
            "Hook calls made (not counting calls refused while disabled).",
        ),
        (
            "chathooks_hook_failures_total",
            "Hook calls that failed: trap, timeout, memory cap, oversized answer, after-hook error.",
        ),
        (
            "chathooks_hook_timeouts_total",
            "Hook calls that ran out of their time budget.",
        ),
    ];
    for (index, (family, help)) in families.iter().enumerate() {
        e.family(family, help, Kind::Counter);
        for (plugin, s) in &stats {
            for (hook, h) in s.called_hooks() {
                let value = match index {
                    0 => &h.calls,
                    1 => &h.failures,
                    _ => &h.timeouts,
                };
                let labels = [("plugin", plugin.as_str()), ("hook", hook.name())];
                e.sample(family, &labels, value.load(Ordering::Relaxed));
            }
        }
    }
    e.family(
        "chathooks_hook_duration_seconds",
        "How long hook calls took, failed ones included.",
        Kind::Histogram,
    );
    for (plugin, s) in &stats {
        for (hook, h) in s.called_hooks() {
            let labels = [("plugin", plugin.as_str()), ("hook", hook.name())];
            e.histogram(
                "chathooks_hook_duration_seconds",
                &labels,
                &h.latency.snapshot(),
            );
        }
    }
}

/// The store's writer's busy time (`chathooks_store_writer_busy_seconds_total`).
fn render_writer_busy(busy: std::time::Duration) -> String {
    let mut e = Exposition::default();
    e.family(
        "chathooks_store_writer_busy_seconds_total",
        "Seconds the database's one writer was held (SQLite's, by writes and by reads lent its \
         connection; on PostgreSQL, a node on its own's writer mutex): a rate near 1 means every write \
         queues for it.",
        Kind::Counter,
    );
    e.sample(
        "chathooks_store_writer_busy_seconds_total",
        &[],
        busy.as_secs_f64(),
    );
    e.finish()
}

/// Per plugin and power: calls refused by the plugin's rate limits.
fn render_rate_limited(e: &mut Exposition, statuses: &[PluginStatus]) {
    const FAMILY: &str = "chathooks_plugin_rate_limited_total";
    e.family(
        FAMILY,
        "Power calls refused by the plugin's rate limits (answered rate-limited), by power.",
        Kind::Counter,
    );
    for s in statuses {
        for power in Power::ALL {
            let labels = [("plugin", s.name.as_str()), ("power", power.name())];
            e.sample(FAMILY, &labels, s.rate_limited.get(power));
        }
    }
}

/// Per plugin: state, breaker trips, dropped log lines, KV usage.
fn render_plugins(e: &mut Exposition, statuses: &[PluginStatus]) {
    const STATES: [(PluginState, &str); 4] = [
        (PluginState::Active, "active"),
        (PluginState::Failing, "failing"),
        (PluginState::Disabled, "disabled"),
        (PluginState::LoadError, "load-error"),
    ];
    e.family(
        "chathooks_plugin_state",
        "1 for the plugin's current state (active, failing, disabled, load-error), 0 for the others.",
        Kind::Gauge,
    );
    for s in statuses {
        for (state, name) in STATES {
            let labels = [("plugin", s.name.as_str()), ("state", name)];
            e.sample(
                "chathooks_plugin_state",
                &labels,
                u8::from(s.state == state),
            );
        }
    }
    type Family = (&'static str, &'static str, Kind, fn(&PluginStatus) -> u64);
    let per_plugin: [Family; 5] = [
        (
            "chathooks_plugin_breaker_trips_total",
            "Times the circuit breaker disabled the plugin.",
            Kind::Counter,
            |s| s.breaker_trips,
        ),
        (
            "chathooks_plugin_log_lines_dropped_total",
            "Log lines dropped by the plugin's rate limit.",
            Kind::Counter,
            |s| s.log_lines_dropped,
        ),
        (
            "chathooks_plugin_log_bytes_dropped_total",
            "Bytes of the log lines dropped by the plugin's rate limits.",
            Kind::Counter,
            |s| s.log_bytes_dropped,
        ),
        (
            "chathooks_plugin_kv_keys",
            "Keys the plugin keeps in its KV store.",
            Kind::Gauge,
            |s| s.kv.keys,
        ),
        (
            "chathooks_plugin_kv_bytes",
            "Bytes (keys and values) the plugin keeps in its KV store.",
            Kind::Gauge,
            |s| s.kv.bytes,
        ),
    ];
    for (family, help, kind, value) in per_plugin {
        e.family(family, help, kind);
        for s in statuses {
            e.sample(family, &[("plugin", s.name.as_str())], value(s));
        }
    }
}
