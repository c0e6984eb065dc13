//! Server configuration for `chathooks serve`.
//!
//! ## Precedence
//! Each setting comes from the first of: a command-line flag, an environment variable `CHATHOOKS_*`
//! (both parsed by clap, see [`ServeArgs`]), the optional TOML file named by `--config` /
//! `CHATHOOKS_CONFIG` (see [`FileConfig`]), and the defaults below, which work out of the box.
//!
//! ## The admin key
//! Admin routes take a bearer admin key. When none is configured, the first start generates one, stores
//! it in `<data dir>/admin.key` (mode 0600, readable by the server's user only) and prints it once;
//! later starts read it from there. See [`AdminKey::load_or_create`].

use crate::plugins::Compilers;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::Durability;
use crate::store::postgres::{DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT, PoolOptions};

mod admin_key;
pub mod cluster;

pub use admin_key::{ADMIN_KEY_PREFIX, AdminKey};
pub use cluster::{ClusterArgs, ClusterFile, ClusterSettings};

/// Where the server listens by default: loopback only, so a first start never exposes it to a network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

/// Default data folder (SQLite files, compile cache, admin key), relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Default plugins folder: every `<name>.wasm` in it is loaded at start.
pub const DEFAULT_PLUGINS_DIR: &str = "./plugins";

/// Largest request body accepted, in bytes, by default. Chat requests are small JSON documents (a
/// message body is text typed by a person plus a little metadata); 64 KiB leaves ample room for that while
/// keeping a misbehaving client from making the server buffer megabytes per request.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The admin key's file name inside the data folder.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// Shortest admin key accepted from configuration: a key is a password for every admin route, so a short
/// one would be guessable.
pub const MIN_ADMIN_KEY_LEN: usize = 16;

/// The SQLite file of the chat database, inside the data folder.
pub const CHAT_DB_FILE: &str = "chat.db";

/// The SQLite file of the plugins' key-value store, inside the data folder.
pub const KV_DB_FILE: &str = "kv.db";

/// The compiled-component cache folder, inside the data folder.
pub const CACHE_DIR: &str = "cache";

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file named by `--config`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key or a wrong type.
    #[error("config file {path}: {source}")]
    ParseFile {
        /// The file named by `--config`.
        path: PathBuf,
        /// What is wrong, with the line.
        source: Box<toml::de::Error>,
    },
    /// A setting has an unusable value.
    #[error("{setting}: {message}")]
    Invalid {
        /// The setting, as named in the TOML file.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The admin key file could not be read or written.
    #[error("admin key file {path}: {source}")]
    AdminKeyFile {
        /// `<data dir>/admin.key`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The `serve` subcommand's flags; each also reads its `CHATHOOKS_*` environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML config file with any of the settings below (flags and environment variables win over it).
    #[arg(long, env = "CHATHOOKS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8787].
    #[arg(long, env = "CHATHOOKS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder for the database, compile cache and admin key [default: ./data].
    #[arg(long, env = "CHATHOOKS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The chat database: a PostgreSQL URL (`postgres://user:password@host:5432/db`) or key-value
    /// string (`host=/run/postgresql dbname=chathooks`), or a SQLite file [default: <data-dir>/chat.db].
    // `--help` text, which clap prints as written: backticks around `<data-dir>` would show there.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, env = "CHATHOOKS_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// Most PostgreSQL connections this server opens [default: 16].
    #[arg(long, env = "CHATHOOKS_DB_POOL_SIZE")]
    pub db_pool_size: Option<usize>,
    /// Longest wait for a free PostgreSQL connection, in milliseconds, before a request gets 503
    /// [default: 5000].
    #[arg(long, env = "CHATHOOKS_DB_POOL_WAIT_MS")]
    pub db_pool_wait_ms: Option<u64>,
    /// Folder of plugins (`<name>.wasm`, optional `<name>.toml`) [default: ./plugins].
    #[arg(long, env = "CHATHOOKS_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Largest request body in bytes; larger ones get 413 [default: 65536].
    #[arg(long, env = "CHATHOOKS_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Serve the web pages (`/`, `/console`, `/chat`, `/ui/...`) from this folder, read on every request,
    /// instead of the copy built into the binary: for working on the pages (`--web-dir host/web`).
    #[arg(long, env = "CHATHOOKS_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// The admin bearer key; when unset, one is generated on first start and kept in the data folder.
    #[arg(long, env = "CHATHOOKS_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// `process` (survive a killed server) or `power` (also survive power loss; fsync per write)
    /// [default: process].
    #[arg(long, env = "CHATHOOKS_DURABILITY")]
    pub durability: Option<String>,
    /// How plugins are compiled: `tiered` (Winch's quick code serves at once, Cranelift's optimized
    /// code replaces it when ready), `cranelift` (wait for optimized code) or `winch` [default: tiered].
    #[arg(long, env = "CHATHOOKS_COMPILER")]
    pub compiler: Option<String>,
    /// Do not watch the plugins folder: plugins load at start and on `POST /v1/admin/plugins/reload`
    /// only.
    #[arg(long, env = "CHATHOOKS_NO_WATCH")]
    pub no_watch: bool,
    /// URL the push power posts notifications to (with device tokens, signed); unset: live only.
    #[arg(long, env = "CHATHOOKS_PUSH_GATEWAY_URL")]
    pub push_gateway_url: Option<String>,
    /// Key of the push gateway requests' HMAC-SHA256 signature header.
    #[arg(long, env = "CHATHOOKS_PUSH_GATEWAY_SECRET", hide_env_values = true)]
    pub push_gateway_secret: Option<String>,
    /// A PEM file of extra certificate authorities that outbound HTTPS (the `http` power, the push
    /// gateway) trusts besides the built-in Mozilla roots; for a private CA.
    #[arg(long, env = "CHATHOOKS_HTTP_CA")]
    pub http_ca: Option<PathBuf>,
    /// After-hook deliveries one plugin may have waiting; further events become dead letters for it
    /// [default: 100000].
    #[arg(long, env = "CHATHOOKS_MAX_PLUGIN_BACKLOG")]
    pub max_plugin_backlog: Option<usize>,
    /// Milliseconds a user stays online after their last WebSocket closed, so a reload or a network
    /// hiccup does not show them leaving [default: 5000].
    #[arg(long, env = "CHATHOOKS_PRESENCE_GRACE_MS")]
    pub presence_grace_ms: Option<u64>,
    /// Cluster mode: `--nats`, `--node-id`, `--cluster-name`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The optional TOML config file. Every key is optional; unknown keys are an error, so a typo is reported
/// instead of silently ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`ServeArgs::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`ServeArgs::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`ServeArgs::database`].
    pub database: Option<String>,
    /// See [`ServeArgs::db_pool_size`].
    pub db_pool_size: Option<usize>,
    /// See [`ServeArgs::db_pool_wait_ms`].
    pub db_pool_wait_ms: Option<u64>,
    /// See [`ServeArgs::plugins_dir`].
    pub plugins_dir: Option<PathBuf>,
    /// See [`ServeArgs::body_limit`].
    pub body_limit: Option<usize>,
    /// See [`ServeArgs::web_dir`].
    pub web_dir: Option<PathBuf>,
    /// See [`ServeArgs::admin_key`].
    pub admin_key: Option<String>,
    /// See [`ServeArgs::durability`].
    pub durability: Option<String>,
    /// See [`ServeArgs::compiler`].
    pub compiler: Option<String>,
    /// Watch the plugins folder and reload changed plugins (default true; see [`ServeArgs::no_watch`]).
    pub watch: Option<bool>,
    /// See [`ServeArgs::push_gateway_url`].
    pub push_gateway_url: Option<String>,
    /// See [`ServeArgs::push_gateway_secret`].
    pub push_gateway_secret: Option<String>,
    /// See [`ServeArgs::http_ca`].
    pub http_ca: Option<PathBuf>,
    /// See [`ServeArgs::max_plugin_backlog`].
    pub max_plugin_backlog: Option<usize>,
    /// See [`ServeArgs::presence_grace_ms`].
    pub presence_grace_ms: Option<u64>,
    /// See [`ClusterArgs::nats`].
    pub nats: Option<Vec<String>>,
    /// See [`ClusterArgs::node_id`].
    pub node_id: Option<String>,
    /// See [`ClusterArgs::cluster_name`].
    pub cluster_name: Option<String>,
}

/// The resolved configuration of a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Database, compile cache and admin key live here.
    pub data_dir: PathBuf,
    /// The chat database's setting when it is not the SQLite file `<data dir>/chat.db`: a PostgreSQL
    /// URL or key-value string, or another SQLite file.
    pub database: Option<String>,
    /// How many PostgreSQL connections, and how long a request waits for one.
    pub db_pool: PoolOptions,
    /// Plugins are loaded from here.
    pub plugins_dir: PathBuf,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// The folder the web pages are served from; `None`: the copy built into the binary.
    pub web_dir: Option<PathBuf>,
    /// The configured admin key, if any; `None` means "use or create `<data dir>/admin.key`".
    pub admin_key: Option<String>,
    /// What a committed write survives.
    pub durability: Durability,
    /// Which compilers compile plugins.
    pub compilers: Compilers,
    /// Watch the plugins folder and hot-reload plugins whose files change.
    pub watch: bool,
    /// Where push notifications are posted besides live connections (`http://...` or `https://...`), if
    /// anywhere.
    pub push_gateway_url: Option<String>,
    /// The HMAC key of the push gateway's signature header.
    pub push_gateway_secret: Option<String>,
    /// A PEM file of certificate authorities outbound HTTPS trusts besides the built-in roots; read at
    /// start, where a missing or unusable file stops the server with its name.
    pub http_ca: Option<PathBuf>,
    /// Where everything time-dependent reads the time and waits (the powers' rate limits, circuit
    /// breakers, the dispatcher's retries, plugin timers, push retries): the system clock; tests put a
    /// [`ManualClock`](crate::clock::ManualClock) here to run them on fake time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// After-hook deliveries one plugin may have before further ones become dead letters.
    pub max_plugin_backlog: usize,
    /// How long a user stays online after their last connection closed.
    pub presence_grace: std::time::Duration,
    /// This node's cluster settings; `None` for a server on its own.
    pub cluster: Option<ClusterSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database: None,
            db_pool: PoolOptions::default(),
            plugins_dir: PathBuf::from(DEFAULT_PLUGINS_DIR),
            body_limit: DEFAULT_BODY_LIMIT,
            web_dir: None,
            admin_key: None,
            durability: Durability::Process,
            compilers: Compilers::default(),
            watch: true,
            push_gateway_url: None,
            push_gateway_secret: None,
            http_ca: None,
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            max_plugin_backlog: crate::dispatch::MAX_BACKLOG_PER_PLUGIN,
            presence_grace: crate::presence::GRACE,
            cluster: None,
        }
    }
}

impl Config {
    /// Resolves flags and environment (already in `args`), then the config file, then defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Config::merge(args, file)
    }

    /// Combines `args` (winning) with `file` and the defaults, and validates the result.
    pub fn merge(args: &ServeArgs, file: FileConfig) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let durability = match args.durability.clone().or(file.durability) {
            None => defaults.durability,
            Some(text) => parse_durability(&text)?,
        };
        let compilers = match args.compiler.clone().or(file.compiler) {
            None => defaults.compilers,
            Some(text) => Compilers::parse(&text).ok_or_else(|| ConfigError::Invalid {
                setting: "compiler",
                message: format!("{text:?} is not \"tiered\", \"cranelift\" or \"winch\""),
            })?,
        };
        let cluster_file = ClusterFile {
            nats: file.nats.clone(),
            node_id: file.node_id.clone(),
            cluster_name: file.cluster_name.clone(),
        };
        let config = Config {
            listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or(defaults.data_dir),
            database: args
                .database
                .clone()
                .or(file.database)
                .filter(|d| !d.trim().is_empty()),
            db_pool: PoolOptions {
                size: args
                    .db_pool_size
                    .or(file.db_pool_size)
                    .unwrap_or(DEFAULT_POOL_SIZE),
                wait: args
                    .db_pool_wait_ms
                    .or(file.db_pool_wait_ms)
                    .map_or(DEFAULT_POOL_WAIT, std::time::Duration::from_millis),
            },
            plugins_dir: args
                .plugins_dir
                .clone()
                .or(file.plugins_dir)
                .unwrap_or(defaults.plugins_dir),
            body_limit: args
                .body_limit
                .or(file.body_limit)
                .unwrap_or(defaults.body_limit),
            web_dir: args.web_dir.clone().or(file.web_dir),
            admin_key: args.admin_key.clone().or(file.admin_key),
            durability,
            compilers,
            watch: !args.no_watch && file.watch.unwrap_or(defaults.watch),
            push_gateway_url: args.push_gateway_url.clone().or(file.push_gateway_url),
            push_gateway_secret: args
                .push_gateway_secret
                .clone()
                .or(file.push_gateway_secret),
            http_ca: args.http_ca.clone().or(file.http_ca),
            clock: defaults.clock,
            max_plugin_backlog: args
                .max_plugin_backlog
                .or(file.max_plugin_backlog)
                .unwrap_or(defaults.max_plugin_backlog),
            presence_grace: args
                .presence_grace_ms
                .or(file.presence_grace_ms)
                .map_or(defaults.presence_grace, std::time::Duration::from_millis),
            cluster: None,
        };
        let on_postgres = config
            .database
            .as_deref()
            .is_some_and(crate::store::postgres::PgSetting::is_postgres);
        let config = Config {
            cluster: ClusterSettings::resolve(&args.cluster, cluster_file, on_postgres)?,
            ..config
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.body_limit == 0 {
            return Err(ConfigError::Invalid {
                setting: "body_limit",
                message: "must be at least 1 byte".into(),
            });
        }
        if let Some(key) = &self.admin_key {
            check_admin_key(key)?;
        }
        if self.cluster.is_some() && self.admin_key.is_none() {
            return Err(ConfigError::Invalid {
                setting: "admin_key",
                message:
                    "the nodes of a cluster share one admin key (a key generated per node would \
                          work on that node only): give every node the same --admin-key or \
                          CHATHOOKS_ADMIN_KEY"
                        .into(),
            });
        }
        if self.db_pool.size == 0 {
            return Err(ConfigError::Invalid {
                setting: "db_pool_size",
                message: "must be at least 1".into(),
            });
        }
        if self.max_plugin_backlog == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_plugin_backlog",
                message: "must be at least 1 delivery".into(),
            });
        }
        if let Some(url) = &self.push_gateway_url
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            return Err(ConfigError::Invalid {
                setting: "push_gateway_url",
                message: format!("{url:?} is not an http:// or https:// URL"),
            });
        }
        Ok(())
    }

    /// The chat database file.
    pub fn chat_db_path(&self) -> PathBuf {
        self.data_dir.join(CHAT_DB_FILE)
    }

    /// The plugins' key-value database file.
    pub fn kv_db_path(&self) -> PathBuf {
        self.data_dir.join(KV_DB_FILE)
    }

    /// The compiled-component cache folder.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join(CACHE_DIR)
    }
}

impl FileConfig {
    /// Reads and parses a TOML config file.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }
}

fn parse_durability(text: &str) -> Result<Durability, ConfigError> {
    match text {
        "process" => Ok(Durability::Process),
        "power" => Ok(Durability::Power),
        other => Err(ConfigError::Invalid {
            setting: "durability",
            message: format!("{other:?} is neither \"process\" nor \"power\""),
        }),
    }
}

pub(crate) fn check_admin_key(key: &str) -> Result<(), ConfigError> {
    if key.len() < MIN_ADMIN_KEY_LEN || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::Invalid {
            setting: "admin_key",
            message: format!(
                "must be at least {MIN_ADMIN_KEY_LEN} characters without spaces or control characters"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
