//! Test support for the chat and dispatch tests: a chat service over real SQLite files in a temp dir,
//! with real compiled plugins (the `recorder` and `hostile` fixtures, the example plugins) loaded from a
//! plugins folder, and helpers to read what the recorder wrote to its KV store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::chat::{Chat, NewUser};
use crate::dispatch::{self, DeliveryOutcome, DispatchConfig, DispatchHandle};
use crate::live::Hub;
use crate::model::User;
use crate::plugins::registry::Registry;
use crate::plugins::{LogLevel, LogSink, Runtime, RuntimeConfig};
use crate::store::Db;
use crate::store::kv::KvStore;

/// A test plugin: its `.wasm` and an optional manifest.
pub struct PluginFile {
    pub wasm: PathBuf,
    pub manifest: Option<String>,
}

/// A fixture plugin from `tests/fixtures` (built on first use).
pub fn fixture(name: &str) -> PluginFile {
    PluginFile {
        wasm: chathooks_tests::fixture(name),
        manifest: None,
    }
}

/// An example plugin from `plugins-examples` (built on first use).
pub fn example(name: &str) -> PluginFile {
    PluginFile {
        wasm: chathooks_tests::example(name),
        manifest: None,
    }
}

impl PluginFile {
    /// With `<name>.toml` beside it.
    pub fn with_manifest(mut self, toml: &str) -> Self {
        self.manifest = Some(toml.to_owned());
        self
    }
}

/// A dispatch config for tests: no backoff (retries are due at once), three attempts.
pub fn fast_config() -> DispatchConfig {
    DispatchConfig {
        max_attempts: 3,
        first_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        max_in_flight_per_plugin: 4,
        poll_interval: Duration::from_millis(50),
        ..DispatchConfig::default()
    }
}

/// Keeps every line plugins log, in order, as `<plugin>: <message>`.
#[derive(Debug, Default)]
pub struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn log(&self, plugin: &str, _level: LogLevel, message: &str) {
        self.0.lock().unwrap().push(format!("{plugin}: {message}"));
    }
}

impl Lines {
    /// The lines so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Everything a chat test needs; dropping it deletes the files.
pub struct Kit {
    pub chat: Chat,
    pub logs: Arc<Lines>,
    pub db: Arc<Db>,
    pub registry: Arc<Registry>,
    pub kv: Arc<KvStore>,
    pub dir: TempDir,
}

impl Kit {
    /// A fresh data dir with `plugins` copied into its plugins folder and loaded.
    pub fn new(plugins: &[PluginFile]) -> Kit {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("plugins");
        std::fs::create_dir_all(&folder).unwrap();
        for p in plugins {
            let name = p.wasm.file_name().unwrap();
            std::fs::copy(&p.wasm, folder.join(name)).unwrap();
            if let Some(manifest) = &p.manifest {
                std::fs::write(folder.join(name).with_extension("toml"), manifest).unwrap();
            }
        }
        Self::open(dir, DispatchHandle::detached())
    }

    /// Opens (or reopens) the data dir `dir`, as a starting server does.
    pub fn open(dir: TempDir, dispatch: DispatchHandle) -> Kit {
        let db = Arc::new(Db::open(dir.path().join("chat.db")).unwrap());
        let kv = Arc::new(KvStore::open(&dir.path().join("kv.db")).unwrap());
        let logs = Arc::new(Lines::default());
        let runtime = Runtime::new(RuntimeConfig {
            compilers: crate::plugins::Compilers::Cranelift,
            cache_dir: Some(dir.path().join("cache")),
            kv: kv.clone(),
            logs: logs.clone(),
        })
        .unwrap();
        let registry = Arc::new(Registry::new(runtime));
        registry.load_dir(&dir.path().join("plugins")).unwrap();
        let chat = Chat::new(db.clone(), registry.clone(), Hub::new(), dispatch);
        Kit {
            chat,
            logs,
            db,
            registry,
            kv,
            dir,
        }
    }

    /// Drops every handle and opens the same files again (a restart), with `dispatch` as the new
    /// dispatcher handle.
    pub fn reopen(self, dispatch: DispatchHandle) -> Kit {
        let Kit { dir, .. } = self;
        Self::open(dir, dispatch)
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Creates users with these ids (names upper-cased).
    pub async fn users(&self, ids: &[&str]) -> Vec<User> {
        let mut out = Vec::new();
        for id in ids {
            let created = self
                .chat
                .create_user(NewUser {
                    id: (*id).to_owned(),
                    name: id.to_uppercase(),
                    metadata: Value::Null,
                })
                .await
                .unwrap();
            out.push(created.user);
        }
        out
    }

    /// Delivers everything due, in this thread, with [`fast_config`].
    pub fn drain(&self) -> Vec<DeliveryOutcome> {
        dispatch::drain(&self.db, &self.registry, &fast_config()).unwrap()
    }

    /// The recorder's record under `key` (`<hook>:<event id>`).
    pub fn record(&self, key: &str) -> Option<Value> {
        let bytes = self.kv.get("recorder", key).unwrap()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// The recorder's keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.kv.list_keys("recorder", prefix).unwrap()
    }

    /// Recorder keys of after-hooks (before-hook keys end in a message body, not an event id).
    pub fn after_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .keys("")
            .into_iter()
            .filter(|k| !k.starts_with("before-"))
            .collect();
        keys.sort_by_key(|k| event_id_of(k));
        keys
    }
}

/// The event id at the end of a recorder key.
pub fn event_id_of(key: &str) -> i64 {
    key.rsplit(':')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or(0)
}

/// Waits (polling, generous deadline) until `check` holds; panics with `what` if it never does.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Path helper for tests that write into the plugins folder.
pub fn copy_plugin(file: &PluginFile, folder: &Path) {
    let name = file.wasm.file_name().unwrap();
    std::fs::copy(&file.wasm, folder.join(name)).unwrap();
}
