//! `GET /v1/ws`: the WebSocket of live events.
//!
//! ## Protocol
//! Authenticate with `Authorization: Bearer <token>` or `?token=<token>` (browsers cannot set headers on
//! a WebSocket). The server then sends one JSON text frame per event of the user's conversations:
//! `{"id": 42, "kind": "message.new", "conversation_id": "...", "payload": {...}, "created_at": ...}`.
//! `id` is the event id (0 for typing, which is live only); after a reconnect, `?since=<last id seen>`
//! first replays every stored event the user missed, then continues live, without gaps or duplicates.
//!
//! A `since` beyond the newest stored event cannot be a position in this server's log: its database was
//! restored from an older backup (or replaced), and the ids after its newest event will name events the
//! client has never seen. Refusing the connection would leave such a client reconnecting forever, and
//! honouring the number would skip every event until the log caught up with it (the client would get
//! nothing live for a long time). So the server resumes from its newest event and says so first: one
//! [`RESUME_RESET`] frame (`id` 0, `payload: {"since": <asked>, "latest_id": <newest>}`), then every event
//! after `latest_id`. The client should reload its state over the REST API and keep `latest_id` as its
//! position.
//! The server pings every [`PING_INTERVAL`] and drops a connection that has not answered for
//! [`PONG_TIMEOUT`]; it answers the client's pings. Frames the client sends are otherwise ignored.
//!
//! ## Shape
//! [`run_socket`] is generic over any `Sink`/`Stream` of WebSocket messages, so it can be tested without
//! a network. It runs two tasks: a watcher that reads the client's frames (pongs, close), times the
//! pings and watches for shutdown, and the sender (replay, then the user's live events from the hub), to
//! which the watcher hands its pings and close frames over a small channel. Whichever ends first ends
//! the other.
//!
//! ## Cost per event
//! The hub routes each event to its audience's connections only and hands them the JSON text it
//! serialized once ([`LiveFrame`]); a connection sends those shared bytes as they are, and an event wakes
//! only its sender: the socket is read when the client sends something, not each time an event goes out.
//! Clients only send pongs and close frames, so each socket reads through a small buffer
//! ([`READ_BUFFER_SIZE`]).

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{bearer_from_headers, user_for_token};
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use crate::chat::Chat;
use crate::live::{LiveEvent, LiveFrame, UserEvents};
use crate::model::User;
use crate::server::AppState;
use crate::store::ids::now_ms;

/// How often the server pings an idle client: often enough that proxies with a one-minute idle timeout
/// keep the connection open and a vanished client is noticed within a minute.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);

/// A client silent (no pong, no frame) this long is disconnected: two missed pings plus slack.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(50);

/// Events read from the database per query while replaying (`?since=`).
pub const REPLAY_PAGE: u32 = 500;

/// Bytes each socket reads at a time (tungstenite's default is 128 KiB). Clients send only pongs and close
/// frames, a few bytes each; a larger frame still arrives, over several reads. tungstenite zeroes this
/// much before every read; with 1,000 sockets the default also held 125 MiB of read buffers.
pub const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Bytes a socket buffers before writing (tungstenite's default is 128 KiB). Every event is flushed as
/// soon as it is queued, so the buffer never needs to gather more than one frame.
pub const WRITE_BUFFER_SIZE: usize = 0;

/// The kind of the frame sent first when `?since=` is ahead of the newest stored event (see the module
/// docs): the client's position is unknown to this server, which resumes from its newest event.
pub const RESUME_RESET: &str = "resume.reset";

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ws))
}

/// `GET /v1/ws` query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WsParams {
    /// The user token, for clients that cannot send an `Authorization` header.
    #[serde(default)]
    pub token: Option<String>,
    /// Replay the stored events after this event id before streaming live ones. An id beyond the newest
    /// stored event (a server restored from an older backup) resumes from the newest one, announced by a
    /// first `resume.reset` frame whose payload holds `since` and `latest_id`.
    #[serde(default)]
    pub since: Option<i64>,
}

/// Opens the WebSocket of live events: one JSON text frame per event of the user's conversations,
/// `{"id", "kind", "conversation_id", "payload", "created_at"}`. With `?since=<last id seen>` the stored
/// events after it are replayed first, without gaps or duplicates. A `since` beyond the newest stored
/// event (the server's database was restored from an older backup) is answered by a first frame of kind
/// `resume.reset` (`id` 0, `payload: {"since", "latest_id"}`), then every event after `latest_id`: reload
/// your state over the REST API and keep `latest_id` as your position.
#[utoipa::path(get, path = "/v1/ws", tag = "live", security(("user_token" = [])),
    params(WsParams),
    responses((status = 101, description = "Switching to the WebSocket protocol; events follow as JSON text frames"),
              (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
              (status = 401, description = "Missing or unknown token", body = ErrorBody),
              (status = 422, description = "`since` is not a number", body = ErrorBody)))]
pub async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<WsParams>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = match (bearer_from_headers(&headers)?, params.token) {
        (Some(token), _) => token.to_owned(),
        (None, Some(token)) => token,
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing credentials: send `Authorization: Bearer <token>` or `?token=`",
            ));
        }
    };
    let user = user_for_token(&state, token.clone()).await?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "expected a WebSocket upgrade: {}",
            rejection.body_text()
        ))
    })?;
    // Read before subscribing: whatever commits after this read is replayed from the database.
    let (since, reset) = match params.since {
        None => (None, None),
        Some(asked) => {
            let db = state.db().clone();
            let latest =
                tokio::task::spawn_blocking(move || db.read(|c| c.latest_event_id())).await??;
            resume_point(asked, latest)
        }
    };
    // Subscribe before answering, so every event committed after the client sees the 101 reaches it.
    let events = state.chat.hub().subscribe_user(&user.id);
    // Check the token again now that the channel exists: a deactivation or revocation committed between
    // the first check and the subscription ended no channel (there was none yet), so it is caught here;
    // one committed after this check ends the channel just made.
    let user = user_for_token(&state, token).await?;
    let session = Session {
        chat: state.chat.clone(),
        events,
        user,
        since,
        reset,
        closing: state.closing(),
        ping_interval: PING_INTERVAL,
        pong_timeout: PONG_TIMEOUT,
    };
    let metrics = state.metrics.clone();
    let presence = state.presence.clone();
    let upgrade = upgrade
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(WRITE_BUFFER_SIZE);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let _counted = metrics.websocket_opened();
        let _online = presence.connected(&session.user.id);
        let (sink, stream) = socket.split();
        run_socket(sink, stream, session).await;
    }))
}

/// One connection's inputs.
#[derive(Debug)]
pub struct Session {
    /// For replaying from the database.
    pub chat: Chat,
    /// The user's live events, subscribed before the connection was accepted.
    pub events: UserEvents,
    /// Whose events to deliver.
    pub user: User,
    /// Replay stored events after this id first.
    pub since: Option<i64>,
    /// The client asked to resume from beyond the newest event: announce it before anything else.
    pub reset: Option<ResumeReset>,
    /// Becomes `true` when the server shuts down.
    pub closing: watch::Receiver<bool>,
    /// How often to ping.
    pub ping_interval: Duration,
    /// How long the client may stay silent.
    pub pong_timeout: Duration,
}

/// A `?since=` beyond the newest stored event, and where the connection resumes instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeReset {
    /// The `since` the client asked for.
    pub since: i64,
    /// The newest stored event when the client connected: replay starts after it.
    pub latest_id: i64,
}

impl ResumeReset {
    /// The [`RESUME_RESET`] frame (live only, id 0).
    fn notice(&self) -> LiveEvent {
        LiveEvent {
            id: 0,
            kind: RESUME_RESET.to_owned(),
            conversation_id: None,
            audience: Vec::new(),
            payload: serde_json::json!({"since": self.since, "latest_id": self.latest_id}),
            created_at: now_ms(),
        }
    }
}

/// Where a connection asking for `?since=asked` resumes, given the newest stored event `latest`: after
/// `asked` (negative counts as 0), or after `latest` with a reset notice when `asked` is beyond it.
pub fn resume_point(asked: i64, latest: i64) -> (Option<i64>, Option<ResumeReset>) {
    let asked = asked.max(0);
    if asked > latest {
        let reset = ResumeReset {
            since: asked,
            latest_id: latest,
        };
        (Some(latest), Some(reset))
    } else {
        (Some(asked), None)
    }
}

/// Serves one connection until the client leaves, stops answering, or the server shuts down.
///
/// Two tasks: this one sends (replay, then live events), and a watcher spawned beside it reads the
/// client's frames, times the pings and watches for shutdown, handing the sender its orders over a small
/// channel. An event wakes the sender alone: with the reader, the ping timer and the shutdown watch in
/// the same `select!`, every event polled all three again (a read attempt and a zeroed read buffer per
/// event per socket).
pub async fn run_socket<S, R, E>(sink: S, stream: R, session: Session)
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin + Send + 'static,
    E: Send + 'static,
{
    let (orders, received) = mpsc::channel(ORDERS_CAPACITY);
    let watcher = tokio::spawn(watch_client(
        stream,
        session.closing.clone(),
        session.ping_interval,
        session.pong_timeout,
        orders,
    ));
    let _watcher = AbortOnDrop(watcher);
    send_loop(sink, session, received).await;
}

/// What the watcher asks of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Ping the client.
    Ping,
    /// Send a close frame and end the connection.
    Close { code: u16, reason: &'static str },
}

/// Orders waiting for the sender at most: a stalled client's pings are dropped beyond it.
const ORDERS_CAPACITY: usize = 2;

/// Ends the watcher with the sender, however the sender ends (the connection's task may be dropped).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the client's frames, pings it, and watches for shutdown. Ends (dropping `orders`, which stops
/// the sender) when the client closes or its stream fails, or after ordering a close frame because the
/// client has been silent for `pong_timeout` or the server shuts down.
async fn watch_client<R, E>(
    mut stream: R,
    mut closing: watch::Receiver<bool>,
    ping_interval: Duration,
    pong_timeout: Duration,
    orders: mpsc::Sender<Order>,
) where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => heard = Instant::now(),
            },
            _ = ping.tick() => {
                if heard.elapsed() > pong_timeout {
                    let order = Order::Close { code: close_code::POLICY, reason: "no pong" };
                    let _ = orders.send(order).await;
                    return;
                }
                if let Err(mpsc::error::TrySendError::Closed(_)) = orders.try_send(Order::Ping) {
                    return;
                }
            }
            changed = closing.changed() => {
                if changed.is_err() || *closing.borrow() {
                    let order = Order::Close { code: close_code::AWAY, reason: "server shutting down" };
                    let _ = orders.send(order).await;
                    return;
                }
            }
        }
    }
}

/// Replays, then forwards live events and the watcher's orders, until the client is gone or an order
/// closes the connection.
async fn send_loop<S>(mut sink: S, mut session: Session, mut orders: mpsc::Receiver<Order>)
where
    S: Sink<Message> + Unpin,
{
    let mut last = session.since.unwrap_or(0);
    if let Some(reset) = session.reset
        && !send_event(&mut sink, &reset.notice()).await
    {
        return;
    }
    if session.since.is_some()
        && !replay_unless_stopped(&mut sink, &session, &mut last, &mut orders).await
    {
        return;
    }
    loop {
        tokio::select! {
            received = session.events.recv() => match received {
                Ok(frame) => {
                    // Stored events at or below `last` were already replayed; live-only ones (id 0)
                    // always go.
                    if frame.id != 0 && frame.id <= last {
                        continue;
                    }
                    if !send_frame(&mut sink, &frame).await {
                        return;
                    }
                    last = last.max(frame.id);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(user = %session.user.id, missed, "live subscriber lagged; catching up from the database");
                    if !replay_unless_stopped(&mut sink, &session, &mut last, &mut orders).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The hub ended the user's channel: deactivated, or a token revoked.
                    let _ = close(&mut sink, close_code::POLICY, "signed out: sign in again").await;
                    return;
                }
            },
            order = orders.recv() => match order {
                Some(Order::Ping) => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                Some(Order::Close { code, reason }) => {
                    let _ = close(&mut sink, code, reason).await;
                    return;
                }
                // The watcher ended: the client closed or its stream failed.
                None => return,
            },
        }
    }
}

/// [`replay`], cut short when the watcher ends the connection meanwhile (pings wait until it is done).
/// False if the connection ended.
async fn replay_unless_stopped<S: Sink<Message> + Unpin>(
    sink: &mut S,
    session: &Session,
    last: &mut i64,
    orders: &mut mpsc::Receiver<Order>,
) -> bool {
    let stop = async {
        loop {
            match orders.recv().await {
                Some(Order::Ping) => continue,
                other => return other,
            }
        }
    };
    let stopped = tokio::select! {
        replayed = replay(sink, session, last) => return replayed,
        stopped = stop => stopped,
    };
    if let Some(Order::Close { code, reason }) = stopped {
        let _ = close(sink, code, reason).await;
    }
    false
}

/// Sends every stored event visible to the user after `last`, advancing `last`. False if the client is
/// gone or the database failed (the connection then closes; the client reconnects with `since`).
async fn replay<S: Sink<Message> + Unpin>(sink: &mut S, session: &Session, last: &mut i64) -> bool {
    loop {
        let page = match session
            .chat
            .events_since(&session.user, *last, REPLAY_PAGE)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::error!("replaying events for {}: {err}", session.user.id);
                let _ = close(sink, close_code::ERROR, "cannot read events").await;
                return false;
            }
        };
        let full = page.len() >= REPLAY_PAGE as usize;
        for event in &page {
            if !send_event(sink, event).await {
                return false;
            }
            *last = (*last).max(event.id);
        }
        if !full {
            return true;
        }
    }
}

/// Sends one replayed event (serialized here: a replay is for this connection alone). False if the
/// client is gone.
async fn send_event<S: Sink<Message> + Unpin>(sink: &mut S, event: &LiveEvent) -> bool {
    match event.to_frame() {
        Ok(frame) => send_frame(sink, &frame).await,
        Err(err) => {
            tracing::error!("cannot encode event {}: {err}", event.id);
            true
        }
    }
}

/// Sends one event's shared JSON text. False if the client is gone.
async fn send_frame<S: Sink<Message> + Unpin>(sink: &mut S, frame: &LiveFrame) -> bool {
    sink.send(Message::Text(frame.text.clone())).await.is_ok()
}

async fn close<S: Sink<Message> + Unpin>(sink: &mut S, code: u16, reason: &str) -> bool {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    sink.send(Message::Close(Some(frame))).await.is_ok()
}

#[cfg(test)]
mod tests;
