//! The HTTP server: shared state, the router, and serving with graceful shutdown.
//!
//! ## Overview
//! [`AppState`] is one `Clone` bundle of `Arc`s that every handler receives. [`router`] builds the whole
//! API from it (see [`crate::api`]). [`serve`] runs the router on a listener the caller bound, so tests
//! bind `127.0.0.1:0` and the binary binds the configured address, and stops when `shutdown` resolves:
//! it stops accepting, tells WebSocket connections to close, and waits for in-flight requests.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::AdminKey;
use crate::store::Db;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The chat database, for authentication and reads that need no chat operation.
    pub db: Arc<Db>,
    /// The admin bearer key.
    pub admin_key: Arc<AdminKey>,
    /// Largest request body in bytes (for the 413 message; the limit itself is a router layer).
    pub body_limit: usize,
    /// Flips to `true` when the server starts shutting down, so long-lived WebSocket connections close
    /// instead of holding the shutdown up.
    closing: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db.path())
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over an open database with the given admin key and body limit.
    pub fn new(db: Arc<Db>, admin_key: AdminKey, body_limit: usize) -> Self {
        let (closing, _) = watch::channel(false);
        AppState {
            db,
            admin_key: Arc::new(admin_key),
            body_limit,
            closing: Arc::new(closing),
        }
    }

    /// A receiver that sees `true` once shutdown begins.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Starts shutting down long-lived connections (what [`serve`] does when its `shutdown` resolves).
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
    }
}

/// The whole HTTP API over `state`.
pub fn router(state: AppState) -> Router {
    crate::api::router(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then shuts down gracefully: stops accepting,
/// closes WebSocket connections, and returns once in-flight requests have finished.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            state.begin_shutdown();
        })
        .await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: the `shutdown` future of the `serve` subcommand.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
