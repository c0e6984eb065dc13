//! A WebSocket client of `GET /v1/ws` that collects every frame in the background, so a case can send
//! through other nodes meanwhile and then look at everything this client received, in order.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::node::Node;
use crate::wait::{eventually, must};

/// What the background reader saw.
#[derive(Default)]
struct Seen {
    /// Every JSON text frame, in arrival order.
    frames: Vec<Value>,
    /// Whether the connection ended (closed by the server, or broke).
    closed: bool,
}

/// A connected client; dropping it ends the connection.
pub struct Collector {
    /// The user's label, for failure messages (`alice@n2`).
    pub label: String,
    seen: Arc<Mutex<Seen>>,
    reader: JoinHandle<()>,
}

impl Collector {
    /// Connects to `node` as `token` (resuming after `since` when given) and starts collecting.
    pub async fn connect(node: &Node, label: &str, token: &str, since: Option<i64>) -> Collector {
        let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
        let mut request = must(
            format!("{}/v1/ws{query}", node.ws_base()).into_client_request(),
            "a WebSocket request",
        );
        let header = must(format!("Bearer {token}").parse(), "a header value");
        request.headers_mut().insert("authorization", header);
        let (stream, _) = must(
            tokio_tungstenite::connect_async(request).await,
            &format!("WebSocket connect to {}", node.id),
        );
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        let reader = tokio::spawn(async move {
            let (_write, mut read) = stream.split();
            while let Some(Ok(frame)) = read.next().await {
                let WsMessage::Text(text) = frame else {
                    continue;
                };
                if let Ok(value) = serde_json::from_str::<Value>(text.as_str()) {
                    lock(&sink).frames.push(value);
                }
            }
            lock(&sink).closed = true;
        });
        Collector {
            label: format!("{label}@{}", node.id),
            seen,
            reader,
        }
    }

    /// Every frame so far, in arrival order.
    pub fn frames(&self) -> Vec<Value> {
        lock(&self.seen).frames.clone()
    }

    /// The stored events so far (frames with an id above 0), in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.frames()
            .into_iter()
            .filter(|f| f["id"].as_i64().is_some_and(|id| id > 0))
            .collect()
    }

    /// The frames of `kind`, in arrival order.
    pub fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.frames()
            .into_iter()
            .filter(|f| f["kind"] == kind)
            .collect()
    }

    /// The ids of the `message.new` events, in arrival order (the message ids, not the event ids).
    pub fn message_ids(&self) -> Vec<String> {
        self.of_kind("message.new")
            .iter()
            .filter_map(|f| f["payload"]["message"]["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// The id of the newest stored event received, 0 if none.
    pub fn last_id(&self) -> i64 {
        self.events()
            .iter()
            .filter_map(|f| f["id"].as_i64())
            .max()
            .unwrap_or(0)
    }

    /// Whether the connection has ended.
    pub fn closed(&self) -> bool {
        lock(&self.seen).closed
    }

    /// Waits until `n` `message.new` events arrived.
    pub async fn wait_messages(&self, n: usize) {
        eventually(&format!("{} got {n} messages", self.label), || async {
            (self.of_kind("message.new").len() >= n).then_some(())
        })
        .await;
    }

    /// Waits until a frame of `kind` arrived; returns the first.
    pub async fn wait_kind(&self, kind: &str) -> Value {
        eventually(&format!("{} got a {kind}", self.label), || async {
            self.of_kind(kind).into_iter().next()
        })
        .await
    }

    /// Panics unless the stored event ids arrived strictly increasing (so each at most once, in order).
    pub fn assert_ids_increasing(&self) {
        let ids: Vec<i64> = self
            .events()
            .iter()
            .filter_map(|f| f["id"].as_i64())
            .collect();
        for pair in ids.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{}: event ids not strictly increasing: {} then {} (all: {ids:?})",
                self.label,
                pair[0],
                pair[1]
            );
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}
