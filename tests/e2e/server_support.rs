//! A real server for the `server_*` tests: the library's own start-up on `127.0.0.1:0`, a temporary data
//! folder, real compiled plugins copied into its plugins folder, a real HTTP client and a real WebSocket
//! client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chathooks::config::{AdminKey, Config};
use chathooks::server::{self, Running};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The admin key every test server uses.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// `CHATHOOKS_E2E_DATABASE=postgres` puts every in-process test server on a fresh PostgreSQL database (of
/// the throwaway cluster `chathooks-testservers` starts once per test run) instead of SQLite in its data
/// folder, so the same tests check the PostgreSQL backend end to end.
pub const E2E_DATABASE_ENV: &str = "CHATHOOKS_E2E_DATABASE";

/// The database setting for a server whose data folder is `data_dir`, under [`E2E_DATABASE_ENV`]: `None`
/// for SQLite; else a new PostgreSQL database, or the one a server on the same folder had before (a
/// restart finds its data, as it does in the folder's `chat.db`).
pub fn e2e_database(data_dir: &Path) -> Option<String> {
    if std::env::var(E2E_DATABASE_ENV).ok()?.as_str() != "postgres" {
        return None;
    }
    let remembered = data_dir.with_extension("database");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return Some(url);
    }
    let pg = chathooks_testservers::Postgres::shared()
        .unwrap_or_else(|| panic!("{E2E_DATABASE_ENV}=postgres needs PostgreSQL installed"));
    let url = must(pg.url_for_new_database(), "a fresh PostgreSQL database");
    if let Some(parent) = remembered.parent() {
        must(std::fs::create_dir_all(parent), "create the test folder");
    }
    must(std::fs::write(&remembered, &url), "remember the database");
    Some(url)
}

/// How long a test waits for something that should happen promptly (an event, a hook call).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running server and a client for it. Stops (gracefully) when [`TestServer::stop`] is awaited.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Data and plugins folders live in here; removed when the server is dropped.
    _dir: tempfile::TempDir,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The server's state (chat service, database), to look behind the API in tests.
    pub running: Running,
    /// The PostgreSQL database it runs on, if not SQLite ([`e2e_database`]).
    database: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _release: ReleaseOnDrop,
}

/// Makes a server a test did not stop (it failed before [`TestServer::stop`]) let go of its plugins: the
/// services hold the chat service, which holds the registry that holds them, and the registry's engine
/// reserves some 17 TB of address space, so each such server kept would make later tests of the process
/// fail to start theirs.
struct ReleaseOnDrop(chathooks::plugins::powers::ServicesSlot);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.clear();
    }
}

impl TestServer {
    /// A server with no plugins.
    pub async fn start() -> TestServer {
        Self::with_plugins(&[]).await
    }

    /// A server whose plugins folder holds copies of `plugins` (built `.wasm` files).
    pub async fn with_plugins(plugins: &[PathBuf]) -> TestServer {
        Self::with_config(plugins, |_| {}).await
    }

    /// Like [`TestServer::with_plugins`], letting the test adjust the configuration first.
    pub async fn with_config(plugins: &[PathBuf], adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = chathooks_tests::temp_dir();
        let plugins_dir = dir.path().join("plugins");
        must(
            std::fs::create_dir_all(&plugins_dir),
            "create plugins folder",
        );
        for plugin in plugins {
            copy_plugin(plugin, &plugins_dir);
        }
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("data"),
            plugins_dir,
            admin_key: Some(ADMIN_KEY.to_owned()),
            ..Config::default()
        };
        adjust(&mut config);
        if config.database.is_none() {
            config.database = e2e_database(&config.data_dir);
        }
        let running = must(
            server::start(&config, AdminKey::new(ADMIN_KEY)).await,
            "start server",
        );
        let listener = must(tokio::net::TcpListener::bind(config.listen).await, "bind");
        let addr = must(listener.local_addr(), "local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let state = running.state.clone();
        let task = tokio::spawn(server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let release = ReleaseOnDrop(running.state.chat.registry().runtime().services().clone());
        TestServer {
            _release: release,
            database: config.database.clone(),
            base: format!("http://{addr}"),
            addr,
            _dir: dir,
            http: reqwest::Client::new(),
            running,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Runs `sql` on the server's database behind the API, to make a state the API cannot (an old row, a
    /// time in the past), on whichever backend the server runs.
    pub async fn exec_sql(&self, sql: &str) {
        match &self.database {
            Some(url) => {
                let setting = must(chathooks::store::postgres::PgSetting::parse(url), "setting");
                let (client, connection) = must(
                    setting.config().connect(tokio_postgres::NoTls).await,
                    "connect to PostgreSQL",
                );
                tokio::spawn(connection);
                must(client.batch_execute(sql).await, sql);
            }
            None => {
                let db = self.running.state.db().clone();
                let sql = sql.to_owned();
                let done = tokio::task::spawn_blocking(move || {
                    let sqlite = db.as_sqlite().expect("a server on SQLite");
                    sqlite.write(|tx| Ok(tx.execute_batch(&sql)?))
                });
                must(must(done.await, "join"), "run SQL on SQLite");
            }
        }
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(PATIENCE, task).await;
            assert!(
                matches!(result, Ok(Ok(Ok(())))),
                "server did not stop cleanly: {result:?}"
            );
        }
        self.running.finish().await;
    }

    /// Sends a request with an optional bearer token and JSON body; returns the status and the JSON
    /// answer (`null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, token, bytes).await
    }

    /// Like [`TestServer::call`] with a raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = must(request.send().await, &format!("{method} {path}"));
        let status = response.status();
        let text = must(response.text().await, "read response");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// `GET` as `token`, expecting 200; returns the JSON.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// `POST` as `token`, expecting a 2xx; returns the JSON.
    pub async fn post_ok(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, answer) = self.call(Method::POST, path, Some(token), Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    /// Creates user `id` through the admin API; returns their token.
    pub async fn user(&self, id: &str) -> String {
        let body = json!({"id": id, "name": id.to_uppercase()});
        let answer = self.post_ok("/v1/admin/users", ADMIN_KEY, body).await;
        match answer["token"].as_str() {
            Some(token) => token.to_owned(),
            None => panic!("no token in {answer}"),
        }
    }

    /// Creates a conversation as `token` with `others`; returns its id.
    pub async fn conversation(&self, token: &str, others: &[&str]) -> String {
        let body = json!({"participant_ids": others});
        let answer = self.post_ok("/v1/conversations", token, body).await;
        str_field(&answer, "id")
    }

    /// Sends `body` to conversation `conv` as `token`; returns the stored message.
    pub async fn send(&self, token: &str, conv: &str, body: &str) -> Value {
        let path = format!("/v1/conversations/{conv}/messages");
        self.post_ok(&path, token, json!({"body": body})).await
    }

    /// Opens `GET /v1/ws` with the token in the Authorization header (and `?since=` if given).
    pub async fn ws(&self, token: &str, since: Option<i64>) -> WsClient {
        let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
        let mut request = must(
            format!("ws://{}/v1/ws{query}", self.addr).into_client_request(),
            "ws request",
        );
        let header = must(format!("Bearer {token}").parse(), "header value");
        request.headers_mut().insert("authorization", header);
        let (stream, _) = must(
            tokio_tungstenite::connect_async(request).await,
            "ws connect",
        );
        WsClient { stream }
    }

    /// The plugins' KV value `key` of `plugin`, as JSON, if set.
    pub fn kv(&self, plugin: &str, key: &str) -> Option<Value> {
        let kv = self.running.state.chat.registry().runtime().kv();
        let bytes = must(kv.get(plugin, key), "kv get")?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Waits until the KV of `plugin` has `key`; returns its value.
    pub async fn wait_kv(&self, plugin: &str, key: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(value) = self.kv(plugin, key) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{plugin} never recorded {key}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The kind of the presence events every WebSocket connection of a user with contacts causes, which
/// [`WsClient::next_event`] skips.
pub const PRESENCE: &str = "user.presence.changed";

/// A WebSocket client of `GET /v1/ws`.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// The next event (a JSON text frame), skipping pings and presence changes (every connection makes
    /// some: see [`PRESENCE`]); panics after [`PATIENCE`].
    pub async fn next_event(&mut self) -> Value {
        match self.next_within(PATIENCE).await {
            Some(event) => event,
            None => panic!("no WebSocket event within {PATIENCE:?}"),
        }
    }

    /// The next event within `wait` but presence changes, or `None` when none comes (or the socket
    /// closes).
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next_frame_within(left).await?;
            if event["kind"] != PRESENCE {
                return Some(event);
            }
        }
    }

    /// The next event of any kind within `wait`, presence changes included.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            match frame.ok()? {
                WsMessage::Text(text) => return serde_json::from_str(text.as_str()).ok(),
                WsMessage::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Events until one of `kind` arrives (presence changes included); returns it.
    pub async fn next_of_kind(&mut self, kind: &str) -> Value {
        loop {
            let event = match self.next_frame_within(PATIENCE).await {
                Some(event) => event,
                None => panic!("no {kind} within {PATIENCE:?}"),
            };
            if event["kind"] == kind {
                return event;
            }
        }
    }

    /// Sends a ping and expects the pong (the connection is alive and served).
    pub async fn ping(&mut self) {
        must(
            self.stream
                .send(WsMessage::Ping(b"hi".to_vec().into()))
                .await,
            "ws ping",
        );
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await;
            match frame {
                Ok(Some(Ok(WsMessage::Pong(data)))) => {
                    assert_eq!(data.as_ref(), b"hi");
                    return;
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("no pong: {other:?}"),
            }
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Copies a built plugin into `dir`, keeping its file name.
pub fn copy_plugin(plugin: &Path, dir: &Path) {
    let name = plugin.file_name().map(PathBuf::from).unwrap_or_default();
    must(std::fs::copy(plugin, dir.join(name)), "copy plugin");
}

/// `value[field]` as a string; panics naming the field otherwise.
pub fn str_field(value: &Value, field: &str) -> String {
    match value[field].as_str() {
        Some(text) => text.to_owned(),
        None => panic!("no string {field:?} in {value}"),
    }
}

/// Unwraps with a message naming what failed (tests only).
pub fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: {err:?}"),
    }
}
