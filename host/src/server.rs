//! The HTTP server: shared state, the router, and serving with graceful shutdown.
//!
//! ## Overview
//! [`AppState`] is one `Clone` bundle of `Arc`s that every handler receives. [`router`] builds the whole
//! API from it (see [`crate::api`]). [`serve`] runs the router on a listener the caller bound, so tests
//! bind `127.0.0.1:0` and the binary binds the configured address, and stops when `shutdown` resolves:
//! it stops accepting, tells WebSocket connections to close, and waits for in-flight requests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::chat::Chat;
use crate::clock::Clock;
use crate::cluster::member::{self, Member, MemberDeps};
use crate::cluster::node::{ClusterNode, Link};
use crate::cluster::nodes::NodeState;
use crate::config::{AdminKey, Config};
use crate::dispatch::{DispatchConfig, DispatchHandle, Dispatcher, FanOutSignal};
use crate::live::Hub;
use crate::metrics::Metrics;
use crate::plugin_admin::overrides::DbOverrides;
use crate::plugin_admin::{Home, PluginAdmin};
use crate::plugins::registry::Registry;
use crate::plugins::watcher::{WatchConfig, Watcher};
use crate::plugins::{Promoter, Runtime, RuntimeConfig, TailSink};
use crate::powers::ServerServices;
use crate::powers::http::HttpClient;
use crate::powers::push::{PushGateway, Pusher};
use crate::powers::scheduler::{Scheduler, SchedulerHandle};
use crate::presence::Presence;
use crate::store::Db;
use crate::store::data_lock::DataLock;
use crate::store::kv::KvStore;

/// How long shutting down waits for the dispatcher's in-flight after-hook calls. Each call is bounded by
/// its plugin's time budget (seconds at most), so this only matters for a wedged host; whatever is cut
/// short is delivered again after the restart (delivery is at least once).
pub const DISPATCHER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The chat service: every operation, the database, the plugins and the live hub.
    pub chat: Chat,
    /// The admin bearer key.
    pub admin_key: Arc<AdminKey>,
    /// Largest request body in bytes (for the 413 message; the limit itself is a router layer).
    pub body_limit: usize,
    /// HTTP and WebSocket counters for `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// Who this node is in its cluster; `None` for a server on its own.
    pub cluster: Option<Arc<NodeState>>,
    /// This node's presence: every WebSocket connection is reported to it.
    pub presence: Presence,
    /// Uploading, enabling, disabling and setting plugins (the admin API).
    pub plugin_admin: Arc<PluginAdmin>,
    /// Where the web pages come from (the binary's copy unless `--web-dir`).
    pub web: crate::web::Source,
    /// Plugin log lines as they are written, for `GET /v1/admin/tail`.
    pub log_tail: Arc<TailSink>,
    /// Samples of plugin calls and the outbox over the last minutes, for `GET /v1/admin/history`.
    pub history: Arc<crate::metrics::history::History>,
    /// Flips to `true` when the server starts shutting down, so long-lived WebSocket connections close
    /// instead of holding the shutdown up.
    closing: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.chat.db().location())
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a chat service with the given admin key and body limit. Starts the presence task of
    /// the cluster node `presence.0` (`None`: a server on its own), with grace period `presence.1`.
    pub fn new(
        chat: Chat,
        admin_key: AdminKey,
        body_limit: usize,
        presence: (Option<&str>, Duration),
    ) -> Self {
        let (closing, _) = watch::channel(false);
        let node = presence.0.unwrap_or(crate::presence::LOCAL_NODE);
        let presence = Presence::start(
            chat.clone(),
            node.to_owned(),
            chat.clock().clone(),
            presence.1,
        );
        let plugin_admin = Arc::new(PluginAdmin::new(
            chat.db().clone(),
            chat.registry().clone(),
            chat.clock().clone(),
            Home::Folder,
        ));
        let history = crate::metrics::history::History::start(
            chat.clone(),
            crate::metrics::history::SAMPLE_INTERVAL,
            closing.subscribe(),
        );
        AppState {
            presence,
            plugin_admin,
            chat,
            admin_key: Arc::new(admin_key),
            body_limit,
            metrics: Arc::default(),
            cluster: None,
            web: crate::web::Source::default(),
            log_tail: Arc::default(),
            history,
            closing: Arc::new(closing),
        }
    }

    /// The same state on a node of a cluster: `GET /v1/admin/cluster` answers.
    pub fn with_cluster(mut self, node: Arc<NodeState>) -> Self {
        self.cluster = Some(node);
        self
    }

    /// The same state with the plugin operations on plugins from `home` (a cluster's catalog).
    pub fn with_plugin_home(mut self, home: Home) -> Self {
        self.plugin_admin = Arc::new(PluginAdmin::new(
            self.chat.db().clone(),
            self.chat.registry().clone(),
            self.chat.clock().clone(),
            home,
        ));
        self
    }

    /// The chat database.
    pub fn db(&self) -> &Arc<Db> {
        self.chat.db()
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

/// A started server's state and background work, before and while it serves.
#[derive(Debug)]
pub struct Running {
    /// What handlers get.
    pub state: AppState,
    dispatcher: JoinHandle<()>,
    stop_dispatcher: oneshot::Sender<()>,
    /// The plugins folder watcher (`None` with `--no-watch`).
    watcher: Option<Watcher>,
    /// Moves plugins to optimized code (`None` unless compilation is tiered).
    promoter: Option<Promoter>,
    /// The periodic plugin statistics log line.
    summary: JoinHandle<()>,
    /// The plugin timer loop and its stop signal.
    timers: JoinHandle<()>,
    stop_timers: oneshot::Sender<()>,
    /// A cluster node's feed and sequencer role (`None` for a server on its own).
    cluster: Option<ClusterNode>,
    /// A cluster node's plugin catalog mirror, publisher and heartbeat (`None` on its own).
    member: Option<Member>,
    /// This server's lock on its data folder, released when everything above has stopped.
    _lock: DataLock,
}

impl Running {
    /// Stops the dispatcher (it finishes calls in flight, up to [`DISPATCHER_STOP_TIMEOUT`]) after the
    /// HTTP server has stopped: the last step of a graceful shutdown.
    pub async fn finish(self) {
        if let Some(promoter) = &self.promoter {
            promoter.stop();
        }
        if let Some(watcher) = self.watcher {
            watcher.stop().await;
        }
        self.summary.abort();
        if let Some(member) = self.member {
            member.stop().await;
        }
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
        let _ = self.stop_timers.send(());
        let _ = self.timers.await;
        let _ = self.stop_dispatcher.send(());
        if tokio::time::timeout(DISPATCHER_STOP_TIMEOUT, self.dispatcher)
            .await
            .is_err()
        {
            tracing::warn!(
                "the dispatcher did not stop in time; undelivered events resume on restart"
            );
        }
        // The services hold the chat service, which holds the registry that holds them: drop the cycle.
        self.state.chat.registry().runtime().services().clear();
    }
}

/// Locks the data folder ([`DataLock`]: a second server on the same folder is refused, naming the
/// first one's pid), then [`start_locked`].
pub async fn start(config: &Config, admin_key: AdminKey) -> anyhow::Result<Running> {
    let lock = DataLock::acquire(&config.data_dir)?;
    start_locked(config, admin_key, lock).await
}

/// Opens the data folder `lock` holds (chat database, plugins' KV store, compile cache), loads every
/// plugin in the plugins folder (creating it if missing), starts the after-hook dispatcher and, unless
/// `config.watch` is off, the plugins folder watcher (hot reload). The lock is held until the returned
/// server has finished.
pub async fn start_locked(
    config: &Config,
    admin_key: AdminKey,
    lock: DataLock,
) -> anyhow::Result<Running> {
    // First, so a bad CA file stops the start before anything else is opened.
    let http = HttpClient::new(tokio::runtime::Handle::current(), config.http_ca.as_deref())?;
    let body_limit = config.body_limit;
    let web_dir = config.web_dir.clone();
    let mut dispatch_config = DispatchConfig {
        max_backlog_per_plugin: config.max_plugin_backlog,
        clock: config.clock.clone(),
        ..DispatchConfig::default()
    };
    let (watch, plugins_dir) = (config.watch, config.plugins_dir.clone());
    let push_gateway = PushGateway {
        url: config.push_gateway_url.clone(),
        secret: config.push_gateway_secret.clone().unwrap_or_default(),
    };
    let clock = config.clock.clone();
    // Before the database: a cluster node that cannot reach NATS should not start at all.
    let link = match &config.cluster {
        Some(settings) => Some(Link::connect(settings).await?),
        None => None,
    };
    if let Some(link) = &link {
        dispatch_config.fanned_out = Some(FanOutSignal(link.deliveries_poke()));
    }
    let cluster_config = config.clone();
    let config = config.clone();
    // Plugins load before the dispatcher starts, so events left in the outbox by an earlier run fan out
    // to every plugin that is there.
    let (db, registry, log_tail) = tokio::task::spawn_blocking(move || open(&config)).await??;
    let promoter = if registry.runtime().is_tiered() {
        Some(Promoter::start(&registry)?)
    } else {
        None
    };
    let (stop_dispatcher, stopped) = oneshot::channel::<()>();
    let (dispatch, dispatcher) =
        Dispatcher::spawn_with(db.clone(), registry.clone(), dispatch_config, async move {
            let _ = stopped.await;
        });
    // A cluster node loads the catalog's plugins (below); its plugins folder, if any, feeds the catalog.
    let watcher = if watch && link.is_none() {
        match start_watcher(&registry, plugins_dir, &dispatch).await {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                // Serving without hot reload beats not serving; the admin reload route still works.
                tracing::error!(
                    "hot reload is off: {err:#}; use POST /v1/admin/plugins/reload after changing plugins"
                );
                None
            }
        }
    } else {
        None
    };
    let summary = tokio::spawn(crate::plugins::summary::log_periodically(registry.clone()));
    let hub = link.as_ref().map_or_else(Hub::new, Link::hub);
    let mut chat = Chat::new(db.clone(), registry.clone(), hub, dispatch).with_clock(clock.clone());
    // The catalog's plugins load before this node may become the sequencer, whose registry decides who an
    // event fans out to.
    let (member, node) = match &link {
        Some(link) => {
            let node = NodeState::sharing(&link.settings, link.holding.clone());
            let nats = link.nats.client.clone();
            let member = start_member(
                &cluster_config,
                &db,
                &registry,
                &node,
                chat.dispatch(),
                nats,
            )
            .await?;
            (Some(member), Some(node))
        }
        None => (None, None),
    };
    let cluster = match &link {
        Some(link) => {
            chat = chat.with_stored_signal(link.stored_signal());
            let node = link
                .start(db.clone(), chat.hub().clone(), chat.dispatch().clone())
                .await?;
            Some(node)
        }
        None => None,
    };
    let node_id = link.as_ref().map(|l| l.settings.node_id.as_str());
    let plugin_home = link.as_ref().map(|l| Home::Cluster {
        cluster: l.settings.name.clone(),
        nats: l.nats.client.clone(),
    });
    let (timers, stop_timers) =
        start_powers(&chat, &db, &registry, http, push_gateway, clock, node_id);
    let mut state = AppState::new(
        chat,
        admin_key,
        body_limit,
        (node_id, cluster_config.presence_grace),
    );
    if let Some(node) = node {
        state = state.with_cluster(node);
    }
    if let Some(home) = plugin_home {
        state = state.with_plugin_home(home);
    }
    if let Some(dir) = web_dir {
        state.web = crate::web::Source::Folder(dir);
    }
    state.log_tail = log_tail;
    Ok(Running {
        state,
        dispatcher,
        stop_dispatcher,
        watcher,
        promoter,
        summary,
        timers,
        stop_timers,
        cluster,
        member,
        _lock: lock,
    })
}

/// Starts a cluster node's catalog mirror (into [`plugins_folder`]), the publisher of its plugins folder
/// when that folder exists, and its heartbeat.
async fn start_member(
    config: &Config,
    db: &Arc<Db>,
    registry: &Arc<Registry>,
    node: &Arc<NodeState>,
    dispatch: &DispatchHandle,
    nats: async_nats::Client,
) -> anyhow::Result<Member> {
    let wake = dispatch.clone();
    let publish_dir = config
        .plugins_dir
        .is_dir()
        .then(|| config.plugins_dir.clone());
    member::start(MemberDeps {
        db: db.clone(),
        registry: registry.clone(),
        node: node.clone(),
        nats,
        mirror_dir: plugins_folder(config),
        publish_dir,
        watch: config.watch,
        poll: crate::cluster::catalog::POLL_EVERY,
        on_change: Arc::new(move || wake.wake()),
    })
    .await
}

/// The folder the registry loads from: the plugins folder, or on a node of a cluster the folder the
/// catalog is mirrored into (`<data dir>/cluster-plugins`).
pub fn plugins_folder(config: &Config) -> std::path::PathBuf {
    match &config.cluster {
        Some(_) => config.data_dir.join(crate::cluster::catalog::MIRROR_DIR),
        None => config.plugins_dir.clone(),
    }
}

/// Installs the services behind plugin powers (bot posts, custom events, HTTP, push, timers) in the
/// plugins' runtime and starts the timer loop; push retries and timers run on `clock`. On cluster node
/// `node`, the loop leases the timers it fires.
fn start_powers(
    chat: &Chat,
    db: &Arc<Db>,
    registry: &Arc<Registry>,
    http: HttpClient,
    gateway: PushGateway,
    clock: Arc<dyn Clock>,
    node: Option<&str>,
) -> (JoinHandle<()>, oneshot::Sender<()>) {
    let runtime = tokio::runtime::Handle::current();
    let pusher = Pusher::new(
        db.clone(),
        chat.hub().clone(),
        http.clone(),
        runtime,
        gateway,
        clock.clone(),
    );
    let scheduler = match node {
        Some(node) => SchedulerHandle::new(clock).for_node(node),
        None => SchedulerHandle::new(clock),
    };
    let services = ServerServices::new(chat.clone(), http, pusher, scheduler.clone());
    registry.runtime().services().install(Arc::new(services));
    let (stop, stopped) = oneshot::channel::<()>();
    let timers = Scheduler::spawn(db.clone(), registry.clone(), scheduler, async move {
        let _ = stopped.await;
    });
    (timers, stop)
}

/// Starts the plugins folder watcher, then rescans once, so a file that changed between the first load
/// and the start of the watch is not missed.
async fn start_watcher(
    registry: &Arc<Registry>,
    dir: std::path::PathBuf,
    dispatch: &DispatchHandle,
) -> anyhow::Result<Watcher> {
    let wake = dispatch.clone();
    let watcher = Watcher::spawn(
        registry.clone(),
        dir,
        WatchConfig::default(),
        Arc::new(move || wake.wake()),
    )?;
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || registry.rescan()).await??;
    dispatch.wake();
    Ok(watcher)
}

/// The blocking part of [`start`]: files and plugins.
fn open(config: &Config) -> anyhow::Result<(Arc<Db>, Arc<Registry>, Arc<TailSink>)> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating the data folder {}", data.display()))?;
    let db = Arc::new(open_database(config)?);
    let kv_path = config.kv_db_path();
    let kv = KvStore::beside(&db, &kv_path)
        .with_context(|| format!("opening the plugins' KV store beside {}", db.location()))?;
    let log_tail = Arc::new(TailSink::default());
    let runtime = Runtime::new(RuntimeConfig {
        compilers: config.compilers,
        cache_dir: Some(config.cache_dir()),
        kv: Arc::new(kv),
        logs: log_tail.clone(),
    })?
    .with_clock(config.clock.clone());
    // Admins' overrides (disabled, settings) apply at every load, the first included.
    let registry = Registry::new(runtime).with_overrides(Arc::new(DbOverrides::new(db.clone())));
    let plugins = &plugins_folder(config);
    std::fs::create_dir_all(plugins)
        .with_context(|| format!("creating the plugins folder {}", plugins.display()))?;
    let loaded = registry
        .load_dir(plugins)
        .with_context(|| format!("reading the plugins folder {}", plugins.display()))?;
    tracing::info!(folder = %plugins.display(), "plugins loaded: {}", loaded.join(", "));
    Ok((db, Arc::new(registry), log_tail))
}

/// The chat database the configuration names: PostgreSQL (connected and migrated, the pool sized by
/// `db_pool`), another SQLite file, or `<data dir>/chat.db`. An unreachable PostgreSQL is an error naming
/// the setting without its password.
fn open_database(config: &Config) -> anyhow::Result<Db> {
    let setting = match &config.database {
        Some(setting) => setting.clone(),
        None => config.chat_db_path().display().to_string(),
    };
    let db = Db::connect(&setting, config.durability, config.db_pool).with_context(|| {
        format!(
            "opening the database {}",
            crate::store::postgres::setting::redact(&setting)
        )
    })?;
    // A node of a cluster shares the database with the other nodes; a server on its own takes it.
    match (&config.cluster, db.as_postgres()) {
        (Some(cluster), Some(pg)) => pg.join_cluster(&cluster.name, &cluster.node_id)?,
        (Some(_), None) => {
            anyhow::bail!("a cluster node's database must be PostgreSQL (--database)")
        }
        (None, _) => db.claim()?,
    }
    Ok(db)
}

/// The whole HTTP API over `state`, and the web pages.
pub fn router(state: AppState) -> Router {
    let web = crate::web::router(state.web.clone());
    crate::api::router(state).merge(web)
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

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM: the `shutdown` future of the `serve`
/// subcommand.
///
/// The handlers are installed when this is called, not when the future is first polled: the caller
/// calls it before announcing that it listens, so a supervisor (or a test) that sends SIGTERM right after
/// the announcement gets a graceful shutdown rather than the signal's default action, which kills the
/// process. Must be called within a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let (mut interrupt, mut terminate) = match (interrupt, terminate) {
                (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
                (Err(err), _) | (_, Err(err)) => {
                    tracing::error!("cannot listen for SIGINT or SIGTERM: {err}");
                    return std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    }
}
