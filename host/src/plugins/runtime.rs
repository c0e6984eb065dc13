//! The runtime: one engine, one linker, the compile cache and the KV store, shared by every plugin.

use super::cache::{CompileCache, content_hash};
use super::engine::new_engine;
use super::error::LoadError;
use super::hooks::{HookIndices, HookSet, HookTypeMismatch, TimerIndices};
use super::host::log::LogLimiter;
use super::inspect::{Exports, check_component, check_header};
use super::instance::{InstanceRecipe, PluginState};
use super::limits::{MAX_MEMORY_BYTES, PluginLimits};
use super::logs::LogSink;
use super::plugin::Plugin;
use super::powers::{PluginPowers, PowerLimiter, ServicesSlot};
use crate::clock::{Clock, SystemClock};
use crate::store::kv::KvStore;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// How to build a [`Runtime`].
pub struct RuntimeConfig {
    /// Folder for compiled components; `None` compiles every time (the harness uses this for one-shot runs).
    pub cache_dir: Option<PathBuf>,
    /// Where plugins keep their KV state.
    pub kv: Arc<KvStore>,
    /// Where plugin log lines go.
    pub logs: Arc<dyn LogSink>,
}

/// What `chathooks check` reports about a component.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// SHA-256 of the bytes (hex).
    pub hash: String,
    /// The hooks it exports.
    pub hooks: HookSet,
    /// Every interface it imports, as the component names them.
    pub imports: Vec<String>,
    /// Whether it exports `on-timer` (the scheduler's callback).
    pub timer: bool,
    /// The version of the WIT package its exports are from.
    pub version: super::bindings::WitVersion,
}

/// Loads plugins and runs their hooks with one shared engine. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    cache: Option<CompileCache>,
    kv: Arc<KvStore>,
    logs: Arc<dyn LogSink>,
    /// Who carries out plugin powers (chat, events, HTTP, push, timers); none until installed.
    services: ServicesSlot,
    /// What the powers' rate limits and the circuit breakers read the time from.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Build the engine (pooling allocator, epoch interruption and its ticker) and the linker.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let engine = new_engine()?;
        let mut linker = Linker::new(&engine);
        super::host::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("adding host interfaces to the linker")?;
        let cache = config.cache_dir.map(|dir| CompileCache::new(dir, &engine));
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            cache,
            kv: config.kv,
            logs: config.logs,
            services: ServicesSlot::default(),
            clock: Arc::new(SystemClock),
        })
    }

    /// This runtime with the powers' rate limits of plugins it loads from now on, and the circuit
    /// breakers of a registry over it, reading `clock` (tests pass a [`crate::clock::ManualClock`]; the
    /// default is the system's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock of [`Runtime::with_clock`].
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The KV store plugins of this runtime use.
    pub fn kv(&self) -> &Arc<KvStore> {
        &self.kv
    }

    /// Where the services that carry out plugin powers are installed (see [`super::powers`]).
    pub fn services(&self) -> &ServicesSlot {
        &self.services
    }

    /// The compile cache, if this runtime has one.
    pub fn cache(&self) -> Option<&CompileCache> {
        self.cache.as_ref()
    }

    /// Load the plugin at `path`, named after its file stem. Blocking: compiling can take seconds.
    pub fn load_file(&self, path: &Path, limits: PluginLimits) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = plugin_name(path);
        self.load(&name, &bytes, limits)
    }

    /// Load a plugin from its bytes: check it, compile it (or load it from the cache), check its imports and
    /// exports against our WIT, and create its first instances (which type-checks every hook), warmed up
    /// if it has before-hooks (see [`super::warmup`]). It gets
    /// no config values and no grants; see [`Runtime::load_with`].
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        limits: PluginLimits,
    ) -> Result<Plugin, LoadError> {
        self.load_with(name, bytes, limits, PluginPowers::default())
    }

    /// [`Runtime::load`] with the config values and grants of the plugin's manifest.
    pub fn load_with(
        &self,
        name: &str,
        bytes: &[u8],
        limits: PluginLimits,
        powers: PluginPowers,
    ) -> Result<Plugin, LoadError> {
        let limits = PluginLimits {
            memory_bytes: limits.memory_bytes.min(MAX_MEMORY_BYTES),
            ..limits
        };
        let (component, hash, exports) = self.compile(bytes)?;
        let Exports {
            version,
            hooks,
            timer,
        } = exports;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Invalid(e.into()))?;
        let indices =
            HookIndices::new(&pre, version, hooks).map_err(|e| LoadError::Invalid(e.into()))?;
        let on_timer = if timer {
            Some(TimerIndices::new(&pre, version).map_err(|e| LoadError::Invalid(e.into()))?)
        } else {
            None
        };
        let name: Arc<str> = Arc::from(name);
        let power_limiter = Arc::new(PowerLimiter::new(limits.power_rates, self.clock.clone()));
        let log_limiter = Arc::new(LogLimiter::new(name.clone(), self.logs.clone(), &limits));
        let recipe = InstanceRecipe {
            name,
            limits,
            pre,
            indices,
            kv: self.kv.clone(),
            sink: log_limiter.clone(),
            log_limiter,
            powers: Arc::new(powers),
            services: self.services.clone(),
            power_limiter,
            on_timer,
        };
        // Warmed before the registry swaps it in (see `warmup.rs`).
        let first = recipe.first_instances(&self.engine, hooks).map_err(|err| {
            match err.downcast_ref::<HookTypeMismatch>() {
                Some(m) => LoadError::HookMismatch {
                    hook: m.hook,
                    message: m.message.clone(),
                },
                None => LoadError::Instantiate(err.into()),
            }
        })?;
        Ok(Plugin::new(self.engine.clone(), recipe, hash, hooks, first))
    }

    /// Check a component without starting it: what `chathooks check` prints.
    pub fn inspect(&self, bytes: &[u8]) -> Result<PluginInfo, LoadError> {
        let (component, hash, exports) = self.compile(bytes)?;
        let Exports {
            version,
            hooks,
            timer,
        } = exports;
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        Ok(PluginInfo {
            hash,
            hooks,
            imports,
            timer,
            version,
        })
    }

    fn compile(&self, bytes: &[u8]) -> Result<(Component, String, Exports), LoadError> {
        check_header(bytes)?;
        let hash = content_hash(bytes);
        let component = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, &hash, bytes),
            None => Component::new(&self.engine, bytes),
        }
        .map_err(|e| LoadError::Invalid(e.into()))?;
        let hooks = check_component(&self.engine, &component)?;
        Ok((component, hash, hooks))
    }
}

/// A plugin's name: its file name without the extension (`logger.wasm` → `logger`).
pub fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_string())
}
