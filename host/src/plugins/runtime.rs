//! The runtime: the engines (one per compiler, see [`super::tiers`]), their linkers and compile caches,
//! and the KV store, shared by every plugin.

use super::cache::{CompileCache, content_hash};
use super::error::LoadError;
use super::hooks::{HookIndices, HookSet, HookTypeMismatch, TimerIndices};
use super::host::log::LogLimiter;
use super::inspect::{Exports, check_component, check_header};
use super::instance::InstanceRecipe;
use super::limits::{MAX_MEMORY_BYTES, PluginLimits};
use super::logs::LogSink;
use super::plugin::{Limiters, Plugin};
use super::powers::{PluginPowers, PowerLimiter, ServicesSlot};
use super::tiers::{Compilers, Tier};
use crate::clock::{Clock, SystemClock};
use crate::store::kv::KvStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;

/// How to build a [`Runtime`].
pub struct RuntimeConfig {
    /// Folder for compiled components; `None` compiles every time (the harness uses this for one-shot runs).
    pub cache_dir: Option<PathBuf>,
    /// Where plugins keep their KV state.
    pub kv: Arc<KvStore>,
    /// Where plugin log lines go.
    pub logs: Arc<dyn LogSink>,
    /// Which compilers compile plugins.
    pub compilers: Compilers,
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
    /// The compiler plugins run on for good (Cranelift, unless only Winch is configured).
    optimized: Tier,
    /// With tiered compilation, Winch: what a new plugin version runs on until its optimized code is
    /// ready ([`super::tiers`]).
    baseline: Option<Tier>,
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
            .field("cache", &self.optimized.cache)
            .field("tiered", &self.baseline.is_some())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Build the engines (pooling allocator, epoch interruption and its ticker) and their linkers.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let (optimized, baseline) = Tier::for_compilers(config.compilers, config.cache_dir)?;
        Ok(Runtime {
            optimized,
            baseline,
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

    /// The compile cache of the compiler plugins run on for good, if this runtime has one.
    pub fn cache(&self) -> Option<&CompileCache> {
        self.optimized.cache.as_ref()
    }

    /// The compile caches of every compiler this runtime uses.
    pub(crate) fn caches(&self) -> impl Iterator<Item = &CompileCache> {
        std::iter::once(&self.optimized)
            .chain(self.baseline.as_ref())
            .filter_map(|tier| tier.cache.as_ref())
    }

    /// With tiered compilation and a compile cache: an engine that compiles as the optimized tier does but
    /// reserves no instance pool, and the cache to compile into, for the background thread (which then
    /// holds no engine a server is done with while it compiles).
    pub(crate) fn background_compiler(&self) -> anyhow::Result<Option<(Engine, CompileCache)>> {
        let (Some(_), Some(cache)) = (&self.baseline, &self.optimized.cache) else {
            return Ok(None);
        };
        let engine = super::engine::new_engine(
            self.optimized.compiler,
            super::engine::Instances::OnDemand,
            false,
        )?;
        if !cache.compiles_for(&engine) {
            tracing::warn!(
                "the background compiler's code would not match the cache; compiling in place"
            );
            return Ok(None);
        }
        Ok(Some((engine, cache.clone())))
    }

    /// Whether new plugin versions start on the baseline compiler and move to the optimizing one
    /// (`Runtime::load_optimized`) once compiled in the background.
    pub fn is_tiered(&self) -> bool {
        self.baseline.is_some()
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

    /// [`Runtime::load`] with the config values and grants of the plugin's manifest. With tiered
    /// compilation, a version whose optimized code is not in the compile cache is compiled by the
    /// baseline compiler (milliseconds), falling back to the optimizing one if the baseline compiler
    /// cannot compile it; see [`Plugin::compiler`].
    pub fn load_with(
        &self,
        name: &str,
        bytes: &[u8],
        limits: PluginLimits,
        powers: PluginPowers,
    ) -> Result<Plugin, LoadError> {
        self.load_hashed(name, bytes, &content_hash(bytes), limits, powers)
    }

    /// [`Runtime::load_with`] of `bytes` whose [`content_hash`] the caller has computed already as
    /// `hash` (a reload compares it with the running version's first; hashing Python's 18 MB takes 17 ms).
    pub(crate) fn load_hashed(
        &self,
        name: &str,
        bytes: &[u8],
        hash: &str,
        limits: PluginLimits,
        powers: PluginPowers,
    ) -> Result<Plugin, LoadError> {
        check_header(bytes)?;
        let tier = match &self.baseline {
            Some(baseline) if !self.optimized.has_compiled(hash) => {
                match self.build(baseline, name, bytes, hash, &limits, &powers, None) {
                    Ok(plugin) => return Ok(plugin),
                    Err(LoadError::Invalid(err)) => {
                        tracing::warn!(
                            plugin = name,
                            "the baseline compiler cannot compile this plugin, \
                            compiling it with the optimizing one now: {err:#}"
                        );
                        &self.optimized
                    }
                    Err(other) => return Err(other),
                }
            }
            _ => &self.optimized,
        };
        self.build(tier, name, bytes, hash, &limits, &powers, None)
    }

    /// `running` (a version on the baseline compiler, of `bytes`) compiled by the optimizing compiler
    /// (from the cache if there): the same version, with the same rate limiters, so its budgets and
    /// counts go on across the swap. Blocking: compiling can take seconds.
    pub(crate) fn load_optimized(
        &self,
        running: &Plugin,
        bytes: &[u8],
        powers: &PluginPowers,
    ) -> Result<Plugin, LoadError> {
        check_header(bytes)?;
        let limits = running.limits().clone();
        let limiters = running.limiters();
        // `bytes` are `running`'s (the promotion checked their hash against it): not hashed again.
        self.build(
            &self.optimized,
            running.name(),
            bytes,
            running.hash(),
            &limits,
            powers,
            Some(limiters),
        )
    }

    /// Compiles (or loads from `tier`'s cache) and instantiates a plugin on `tier`: a new version, or with
    /// `limiters` the same version compiled anew, keeping the rate limiters of its earlier compilation.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        tier: &Tier,
        name: &str,
        bytes: &[u8],
        hash: &str,
        limits: &PluginLimits,
        powers: &PluginPowers,
        limiters: Option<Limiters>,
    ) -> Result<Plugin, LoadError> {
        let limits = PluginLimits {
            memory_bytes: limits.memory_bytes.min(MAX_MEMORY_BYTES),
            ..limits.clone()
        };
        let component = tier.compile(hash, bytes)?;
        let exports = check_component(&tier.engine, &component)?;
        let Exports {
            version,
            hooks,
            timer,
        } = exports;
        let pre = tier
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
        let in_place = super::host::wasi::calls_in_place(
            component
                .component_type()
                .imports(&tier.engine)
                .map(|(name, _)| name),
        );
        let name: Arc<str> = Arc::from(name);
        let (power_limiter, log_limiter) = match limiters {
            Some(Limiters { power, log }) => (power, log),
            None => (
                Arc::new(PowerLimiter::new(limits.power_rates, self.clock.clone())),
                Arc::new(LogLimiter::new(name.clone(), self.logs.clone(), &limits)),
            ),
        };
        let recipe = InstanceRecipe {
            name,
            limits,
            pre,
            indices,
            kv: self.kv.clone(),
            sink: log_limiter.clone(),
            log_limiter,
            powers: Arc::new(powers.clone()),
            services: self.services.clone(),
            power_limiter,
            on_timer,
            in_place,
        };
        // Warmed before the registry swaps it in (see `warmup.rs`).
        let first = recipe.first_instances(&tier.engine, hooks).map_err(|err| {
            match err.downcast_ref::<HookTypeMismatch>() {
                Some(m) => LoadError::HookMismatch {
                    hook: m.hook,
                    message: m.message.clone(),
                },
                None => LoadError::Instantiate(err.into()),
            }
        })?;
        Ok(Plugin::new(
            tier.engine.clone(),
            tier.compiler,
            recipe,
            hash.to_owned(),
            hooks,
            first,
        ))
    }

    /// Check a component without starting it: what `chathooks check` prints.
    pub fn inspect(&self, bytes: &[u8]) -> Result<PluginInfo, LoadError> {
        check_header(bytes)?;
        let hash = content_hash(bytes);
        let component = self.optimized.compile(&hash, bytes)?;
        let exports = check_component(&self.optimized.engine, &component)?;
        let Exports {
            version,
            hooks,
            timer,
        } = exports;
        let imports = component
            .component_type()
            .imports(&self.optimized.engine)
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
}

/// A plugin's name: its file name without the extension (`logger.wasm` → `logger`).
pub fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_string())
}
