//! The webhook variant: the same work behind HTTP, as chat services that call out to webhooks do. The
//! server is this binary's `webhook-server` subcommand in its own process (an axum server on loopback,
//! KV in the same SQLite store as everywhere else); the client posts each hook's JSON over one keep-alive
//! connection and reads the answer.

use crate::payload::{self, AfterMessageSent, BeforeMessageSent, Decision, Done};
use crate::{logic, proc};
use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use chathooks::store::kv::KvStore;
use std::sync::Arc;

/// `chathooks-bench webhook-server`: serve the two hooks on `127.0.0.1:0` and print the address.
pub fn serve() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let kv = Arc::new(KvStore::open_in_memory()?);
        let app = axum::Router::new()
            .route("/before-message-sent", post(before))
            .route("/after-message-sent", post(after))
            .with_state(kv);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}

async fn before(Json(event): Json<BeforeMessageSent>) -> Json<Decision> {
    Json(match logic::mask(&event.draft.body) {
        Some(body) => Decision::Modify { body },
        None => Decision::Allow,
    })
}

async fn after(State(kv): State<Arc<KvStore>>, Json(event): Json<AfterMessageSent>) -> Json<Done> {
    let key = logic::counter_key(&event.message.conversation_id);
    Json(Done {
        ok: kv.increment("webhook", &key, 1).is_ok(),
    })
}

/// A client of a webhook server started in a child process.
pub struct Webhook {
    _server: proc::Child,
    base: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    before: BeforeMessageSent,
    after: AfterMessageSent,
}

impl Webhook {
    /// Starts the server process and connects to it.
    pub fn start() -> anyhow::Result<Self> {
        let mut server = proc::Child::spawn_self(&["webhook-server"], &[])?;
        let addr = server.wait_for_line("listening on ", std::time::Duration::from_secs(10))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .build()?;
        Ok(Webhook {
            _server: server,
            base: format!("http://{addr}"),
            client,
            runtime,
            before: payload::sample_before(),
            after: payload::sample_after(0),
        })
    }

    /// One event: POST the before-hook, then the after-hook with `event_id`.
    pub fn event(&mut self, event_id: u64) -> anyhow::Result<()> {
        self.after.event_id = event_id;
        let (client, base, before, after) = (&self.client, &self.base, &self.before, &self.after);
        self.runtime.block_on(async {
            let body = serde_json::to_vec(before)?;
            let decision: Decision = client
                .post(format!("{base}/before-message-sent"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?
                .json()
                .await
                .context("reading the decision")?;
            if !matches!(decision, Decision::Modify { .. }) {
                anyhow::bail!("the webhook did not mask the message: {decision:?}");
            }
            let body = serde_json::to_vec(after)?;
            let done: Done = client
                .post(format!("{base}/after-message-sent"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(done.ok, "the webhook's KV increment failed");
            Ok(())
        })
    }
}
