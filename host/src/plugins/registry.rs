//! The set of plugins the server runs: loaded by name from the plugins folder, with their manifest
//! settings, call counters, and the order before-hooks run in.
//!
//! ## Overview
//! [`Registry::load_dir`] loads every `*.wasm` of a folder with the [`Runtime`]. A plugin that fails to load
//! is logged and listed with state `load-error` and its reason, so an admin sees it. Reloading a name that
//! is already loaded swaps the entry atomically: calls already running finish on the old [`Plugin`], and a
//! reload that fails keeps the old version running and records why.
//!
//! ## Manifests
//! `<name>.toml` beside `<name>.wasm` is optional:
//! ```toml
//! priority = 10          # before-hooks run by priority, lowest first (default 0), then by name
//! fail = "closed"        # a before-hook that traps or times out rejects the message (default "open")
//! [limits]
//! memory_mb = 64
//! before_hook_ms = 50
//! after_hook_ms = 1000
//! ```
//!
//! ## Counters
//! Every call through [`LoadedPlugin::call`] counts: `calls`, `failures` (a trap, timeout, memory cap, or
//! an after-hook returning `err`), `timeouts` (the subset that ran out of time) and the last error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::CallError;
use super::hooks::{Hook, HookCall, HookOutput};
use super::limits::PluginLimits;
use super::plugin::Plugin;
use super::runtime::{Runtime, plugin_name};

/// What a before-hook that fails (traps, times out) means for the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Skip the plugin and let the message through: a broken filter must not stop the chat.
    #[default]
    Open,
    /// Reject the message: for plugins whose check must never be bypassed (compliance, say).
    Closed,
}

/// A plugin's settings from its manifest (all optional).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginSettings {
    /// Before-hook order: lowest first, then by name.
    pub priority: i32,
    /// What a failing before-hook does.
    pub fail: FailMode,
    /// Memory and time limits.
    pub limits: PluginLimits,
}

/// The manifest file as written (see the module docs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    fail: FailMode,
    #[serde(default)]
    limits: ManifestLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLimits {
    memory_mb: Option<usize>,
    before_hook_ms: Option<u64>,
    after_hook_ms: Option<u64>,
}

impl PluginSettings {
    /// Reads `<name>.toml` beside `wasm`; defaults when there is none.
    pub fn for_wasm(wasm: &Path) -> Result<Self, String> {
        let path = wasm.with_extension("toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read manifest {}: {e}", path.display())),
        };
        let m: Manifest = toml::from_str(&text)
            .map_err(|e| format!("invalid manifest {}: {e}", path.display()))?;
        let defaults = PluginLimits::default();
        Ok(Self {
            priority: m.priority,
            fail: m.fail,
            limits: PluginLimits {
                memory_bytes: m
                    .limits
                    .memory_mb
                    .map_or(defaults.memory_bytes, |mb| mb.saturating_mul(1 << 20)),
                before_hook_budget: m
                    .limits
                    .before_hook_ms
                    .map_or(defaults.before_hook_budget, Duration::from_millis),
                after_hook_budget: m
                    .limits
                    .after_hook_ms
                    .map_or(defaults.after_hook_budget, Duration::from_millis),
            },
        })
    }
}

/// Whether a registry entry is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginState {
    /// Loaded: its hooks are called.
    Loaded,
    /// Its file failed to load and no earlier version is running; `load_error` says why.
    LoadError,
}

/// One plugin as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PluginStatus {
    /// The plugin's name (file name without `.wasm`).
    pub name: String,
    /// SHA-256 of the running version's bytes, if one is running.
    pub hash: Option<String>,
    /// The hooks it exports, by WIT name.
    pub hooks: Vec<String>,
    /// Loaded or load-error.
    pub state: PluginState,
    /// Before-hook order.
    pub priority: i32,
    /// Hook calls made.
    pub calls: u64,
    /// Calls that failed (trap, timeout, memory cap, after-hook `err`).
    pub failures: u64,
    /// Calls that ran out of time.
    pub timeouts: u64,
    /// The last call failure.
    pub last_error: Option<String>,
    /// Why the file (or its newest version) failed to load, if it did.
    pub load_error: Option<String>,
}

/// Per-plugin call statistics, shared by every version of the plugin.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn failed(&self, error: String, timeout: bool) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if timeout {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// A running plugin with its settings: what callers get from the registry. Cheap to clone; it keeps its
/// version alive while a call runs even if the registry swaps it meanwhile.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// The loaded version.
    pub plugin: Plugin,
    /// Its manifest settings.
    pub settings: PluginSettings,
    counters: Arc<Counters>,
}

impl LoadedPlugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// Calls a hook (blocking: use a blocking thread) and counts the outcome.
    pub fn call(&self, call: &HookCall) -> Result<HookOutput, CallError> {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let result = self.plugin.call(call);
        match &result {
            Err(e) => self
                .counters
                .failed(e.to_string(), matches!(e, CallError::Timeout { .. })),
            Ok(HookOutput::Done(Err(reason))) => self.counters.failed(reason.clone(), false),
            Ok(_) => {}
        }
        result
    }

    /// Counts a failure found after the call returned (a before-hook's unusable modification, say).
    pub fn record_failure(&self, error: String) {
        self.counters.failed(error, false);
    }
}

/// One name in the registry.
#[derive(Debug)]
struct Entry {
    running: Option<LoadedPlugin>,
    load_error: Option<String>,
    counters: Arc<Counters>,
}

/// The plugins by name. Share it as `Arc<Registry>`.
#[derive(Debug)]
pub struct Registry {
    runtime: Runtime,
    entries: RwLock<BTreeMap<String, Entry>>,
}

impl Registry {
    /// An empty registry that loads with `runtime`.
    pub fn new(runtime: Runtime) -> Self {
        Registry {
            runtime,
            entries: RwLock::new(BTreeMap::new()),
        }
    }

    /// The runtime plugins are loaded with (its KV store is where plugins keep state).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Loads every `*.wasm` in `dir` (sorted by name), each with its manifest. Failures are logged and
    /// listed; returns the names loaded. A missing folder is an error.
    pub fn load_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect();
        files.sort();
        Ok(files
            .iter()
            .filter_map(|path| self.load_file(path).ok())
            .collect())
    }

    /// Loads (or reloads) the plugin at `path` with the settings of its manifest. Blocking (compiling can
    /// take seconds). On failure the reason is logged and recorded, and an earlier version keeps running.
    pub fn load_file(&self, path: &Path) -> Result<String, String> {
        let name = plugin_name(path);
        let loaded = PluginSettings::for_wasm(path).and_then(|settings| {
            self.runtime
                .load_file(path, settings.limits.clone())
                .map(|plugin| (plugin, settings))
                .map_err(|e| e.to_string())
        });
        match loaded {
            Ok((plugin, settings)) => {
                tracing::info!(plugin = %name, hash = %plugin.hash(), hooks = ?plugin.hooks().iter().map(Hook::name).collect::<Vec<_>>(), "plugin loaded");
                self.insert(plugin, settings);
                Ok(name)
            }
            Err(reason) => {
                tracing::error!(plugin = %name, path = %path.display(), "plugin failed to load: {reason}");
                let mut entries = self.write();
                let entry = entries.entry(name).or_insert_with(|| Entry {
                    running: None,
                    load_error: None,
                    counters: Arc::default(),
                });
                entry.load_error = Some(reason.clone());
                Err(reason)
            }
        }
    }

    /// Adds or replaces a loaded plugin under its name (counters carry over to the new version).
    pub fn insert(&self, plugin: Plugin, settings: PluginSettings) {
        let mut entries = self.write();
        let entry = entries
            .entry(plugin.name().to_owned())
            .or_insert_with(|| Entry {
                running: None,
                load_error: None,
                counters: Arc::default(),
            });
        entry.load_error = None;
        entry.running = Some(LoadedPlugin {
            plugin,
            settings,
            counters: entry.counters.clone(),
        });
    }

    /// Unloads `name` (its file was removed); true if it was there. Calls in progress finish.
    pub fn remove(&self, name: &str) -> bool {
        self.write().remove(name).is_some()
    }

    /// The running version of `name`.
    pub fn get(&self, name: &str) -> Option<LoadedPlugin> {
        self.read().get(name).and_then(|e| e.running.clone())
    }

    /// Names of every running plugin, sorted.
    pub fn loaded_names(&self) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, e)| e.running.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Whether any running plugin exports `hook`.
    pub fn any_implements(&self, hook: Hook) -> bool {
        self.read().values().any(|e| {
            e.running
                .as_ref()
                .is_some_and(|p| p.plugin.implements(hook))
        })
    }

    /// Names of the running plugins that export `hook`, sorted: who an after-hook event fans out to.
    pub fn subscribers(&self, hook: Hook) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, e)| {
                e.running
                    .as_ref()
                    .is_some_and(|p| p.plugin.implements(hook))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The running plugins that export `hook`, in before-hook order: priority (lowest first), then name.
    pub fn ordered(&self, hook: Hook) -> Vec<LoadedPlugin> {
        let mut plugins: Vec<LoadedPlugin> = self
            .read()
            .values()
            .filter_map(|e| e.running.clone())
            .filter(|p| p.plugin.implements(hook))
            .collect();
        plugins
            .sort_by(|a, b| (a.settings.priority, a.name()).cmp(&(b.settings.priority, b.name())));
        plugins
    }

    /// Every plugin with its state and counters, by name.
    pub fn plugins_status(&self) -> Vec<PluginStatus> {
        self.read()
            .iter()
            .map(|(name, e)| {
                let c = &e.counters;
                let running = e.running.as_ref();
                PluginStatus {
                    name: name.clone(),
                    hash: running.map(|p| p.plugin.hash().to_owned()),
                    hooks: running
                        .map(|p| {
                            p.plugin
                                .hooks()
                                .iter()
                                .map(|h| h.name().to_owned())
                                .collect()
                        })
                        .unwrap_or_default(),
                    state: if running.is_some() {
                        PluginState::Loaded
                    } else {
                        PluginState::LoadError
                    },
                    priority: running.map_or(0, |p| p.settings.priority),
                    calls: c.calls.load(Ordering::Relaxed),
                    failures: c.failures.load(Ordering::Relaxed),
                    timeouts: c.timeouts.load(Ordering::Relaxed),
                    last_error: c
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone(),
                    load_error: e.load_error.clone(),
                }
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}
