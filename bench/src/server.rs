//! The chat server under test, in a child process: this binary's `serve` subcommand, which runs
//! `chathooks::cli::serve` exactly as `chathooks serve` does. Plus a small client of its admin and user API.

use crate::proc;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The admin key of every benchmark server.
pub const ADMIN_KEY: &str = "bench-admin-key-0123456789";

/// `--durability` of every benchmark server: `process`, the server's default, named so that both
/// backends of section 2 surely run with the same. SQLite: WAL without an fsync per commit; PostgreSQL:
/// `synchronous_commit = off`. Both survive a killed server, not a power cut.
pub const DURABILITY: &str = "process";

/// A running `chathooks serve` with its folders.
pub struct Server {
    /// The process.
    pub child: proc::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

/// The folders of a benchmark server.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// `--data-dir`: databases and compile cache.
    pub data: PathBuf,
    /// `--plugins-dir`.
    pub plugins: PathBuf,
    /// Where the server's log (stderr) goes.
    pub log: PathBuf,
}

impl Dirs {
    /// `data/`, `plugins/` and `server.log` under `root`, the plugins folder created.
    pub fn under(root: &Path) -> anyhow::Result<Self> {
        let dirs = Dirs {
            data: root.join("data"),
            plugins: root.join("plugins"),
            log: root.join("server.log"),
        };
        std::fs::create_dir_all(&dirs.plugins)?;
        Ok(dirs)
    }
}

impl Server {
    /// Starts a server on `127.0.0.1:0` over `dirs`, its chat database in the data folder (SQLite), and
    /// waits until it listens.
    pub fn start(dirs: &Dirs) -> anyhow::Result<Self> {
        Self::start_on(dirs, None)
    }

    /// [`Server::start`] with the chat database (and the plugins' KV store) at `database` when given: a
    /// `postgres://` URL.
    pub fn start_on(dirs: &Dirs, database: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(dirs, database, &[])
    }

    /// [`Server::start_on`] with more `serve` flags (a cluster node's `--nats`, `--node-id`, ...).
    pub fn start_with(dirs: &Dirs, database: Option<&str>, extra: &[&str]) -> anyhow::Result<Self> {
        let data = dirs.data.display().to_string();
        let plugins = dirs.plugins.display().to_string();
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--plugins-dir",
            &plugins,
            "--durability",
            DURABILITY,
        ];
        if let Some(database) = database {
            args.extend(["--database", database]);
        }
        args.extend_from_slice(extra);
        let mut child = proc::Child::spawn_self_logged(
            &args,
            &[("CHATHOOKS_ADMIN_KEY", ADMIN_KEY), ("RUST_BACKTRACE", "0")],
            Some(&dirs.log),
        )?;
        let base = child
            .wait_for_line("chathooks listening on ", Duration::from_secs(300))
            .with_context(|| format!("the server did not start; see {}", dirs.log.display()))?;
        Ok(Server { child, base })
    }

    /// CPU time (user + system) the server process has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        proc::cpu_time(self.child.pid())
    }
}

/// A client of a server's API.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client for `base`.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Api {
            base: base.to_owned(),
            http: reqwest::Client::builder().tcp_nodelay(true).build()?,
        })
    }

    /// `POST path` with `token`, expecting a 2xx; the JSON answer.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Polls `GET /v1/admin/plugins` until at least `plugins` plugins run, every one on Cranelift's code
    /// (a fresh data folder compiles them at start: Winch's code serves first, Cranelift's is swapped in
    /// from a background compile); `false` if that takes longer than `patience`.
    pub async fn all_optimized(&self, plugins: usize, patience: Duration) -> anyhow::Result<bool> {
        let start = std::time::Instant::now();
        loop {
            let compilers = self.compilers().await?;
            if compilers.len() >= plugins && compilers.iter().all(|(_, c)| c == "cranelift") {
                return Ok(true);
            }
            if start.elapsed() > patience {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The compiler each plugin runs on (`GET /v1/admin/plugins`), by name.
    pub async fn compilers(&self) -> anyhow::Result<Vec<(String, String)>> {
        let plugins = self.get("/v1/admin/plugins", ADMIN_KEY).await?;
        Ok(plugins
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| {
                        let text = |key: &str| p[key].as_str().unwrap_or_default().to_owned();
                        (text("name"), text("compiler"))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The server's `GET /metrics` document.
    pub async fn metrics(&self) -> anyhow::Result<Metrics> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .context("GET /metrics")?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("GET /metrics: {status} {text}");
        }
        Ok(Metrics::read(&text))
    }

    /// `GET path` with `token`, expecting 200; the JSON answer.
    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Creates user `id`; their token.
    pub async fn user(&self, id: &str) -> anyhow::Result<String> {
        let answer = self
            .post("/v1/admin/users", ADMIN_KEY, &json!({"id": id, "name": id}))
            .await?;
        answer["token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no token in {answer}"))
    }

    /// Creates a conversation of the caller and `others`; its id.
    pub async fn conversation(&self, token: &str, others: &[String]) -> anyhow::Result<String> {
        let answer = self
            .post(
                "/v1/conversations",
                token,
                &json!({"participant_ids": others}),
            )
            .await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no id in {answer}"))
    }

    /// Calls so far of every plugin, summed.
    pub async fn plugin_calls(&self) -> anyhow::Result<u64> {
        let plugins = self.get("/v1/admin/plugins", ADMIN_KEY).await?;
        Ok(plugins
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["calls"].as_u64()).sum())
            .unwrap_or(0))
    }
}

/// Creates `n` users named `<prefix><i>` with up to 16 requests in flight; their tokens, in order.
pub async fn users(api: &Api, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
    use futures_util::StreamExt;
    let results: Vec<anyhow::Result<String>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let id = format!("{prefix}{i}");
            async move { api.user(&id).await }
        })
        .buffered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

/// What the benchmark reads of the server's `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metrics {
    /// Time spent in the message hooks' calls, all plugins together.
    pub hooks: MessageHookSeconds,
    /// `chathooks_store_writer_busy_seconds_total`: how long SQLite's one writer has been held (none on
    /// PostgreSQL).
    pub writer_busy: Option<f64>,
}

impl Metrics {
    /// Reads them from a Prometheus text.
    pub fn read(text: &str) -> Self {
        let writer_busy = text.lines().find_map(|line| {
            line.strip_prefix("chathooks_store_writer_busy_seconds_total ")?
                .trim()
                .parse()
                .ok()
        });
        Self {
            hooks: MessageHookSeconds::from_metrics(text),
            writer_busy,
        }
    }
}

/// Time spent in the message hooks' calls, all plugins together, as the server timed them
/// (`chathooks_hook_duration_seconds_sum`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MessageHookSeconds {
    /// In `before-message-sent` calls.
    pub before: f64,
    /// In `after-message-sent` calls.
    pub after: f64,
}

impl MessageHookSeconds {
    /// Sums the `chathooks_hook_duration_seconds_sum` samples of the two hooks in a Prometheus text.
    pub fn from_metrics(text: &str) -> Self {
        let mut seconds = Self::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("chathooks_hook_duration_seconds_sum{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            if labels.contains("hook=\"before-message-sent\"") {
                seconds.before += value;
            } else if labels.contains("hook=\"after-message-sent\"") {
                seconds.after += value;
            }
        }
        seconds
    }

    /// What was spent since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            before: self.before - earlier.before,
            after: self.after - earlier.after,
        }
    }
}
