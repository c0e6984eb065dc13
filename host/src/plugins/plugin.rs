//! A loaded plugin version: its compiled component, the hooks it exports, and a pool of warm instances.

use super::engine::Compiler;
use super::error::CallError;
use super::hooks::{Hook, HookCall, HookOutput, HookSet};
use super::instance::{InstanceRecipe, WarmInstance};
use super::limits::{MAX_CALLS_PER_INSTANCE, MAX_IDLE_INSTANCES, PluginLimits};
use super::powers::PluginPowers;
use crate::store::kv::Commit;
use std::sync::{Arc, Mutex};
use wasmtime::Engine;

/// A plugin version's rate limiters, shared by its compilations ([`Plugin::limiters`]).
#[derive(Clone)]
pub(crate) struct Limiters {
    /// Its powers' rate limits.
    pub power: Arc<super::powers::PowerLimiter>,
    /// Its log lines' rate limit (also the sink its log lines go through).
    pub log: Arc<super::host::log::LogLimiter>,
}

/// A loaded plugin. Cheap to clone; clones share the instance pool. A new version of the same plugin is a
/// new `Plugin`, so calls already running on the old one finish there.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    engine: Engine,
    /// Which compiler made the code `engine` runs.
    compiler: Compiler,
    recipe: InstanceRecipe,
    hash: String,
    hooks: HookSet,
    /// Idle warm instances. A call takes one out (so the lock is never held during a call), or makes a
    /// fresh one if none is idle; concurrent calls therefore never wait on each other.
    idle: Mutex<Vec<WarmInstance>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name())
            .field("hash", &self.inner.hash)
            .finish()
    }
}

impl Plugin {
    pub(crate) fn new(
        engine: Engine,
        compiler: Compiler,
        recipe: InstanceRecipe,
        hash: String,
        hooks: HookSet,
        first: Vec<WarmInstance>,
    ) -> Self {
        Plugin {
            inner: Arc::new(PluginInner {
                engine,
                compiler,
                recipe,
                hash,
                hooks,
                idle: Mutex::new(first),
            }),
        }
    }

    /// The plugin's name: its file name without `.wasm`.
    pub fn name(&self) -> &str {
        &self.inner.recipe.name
    }

    /// Which compiler made the code this version runs (with tiered compilation, Winch until Cranelift's
    /// code is ready).
    pub fn compiler(&self) -> Compiler {
        self.inner.compiler
    }

    /// SHA-256 of the `.wasm` bytes (hex): identifies this version.
    pub fn hash(&self) -> &str {
        &self.inner.hash
    }

    /// The hooks the component exports; only these are ever called.
    pub fn hooks(&self) -> HookSet {
        self.inner.hooks
    }

    /// Whether the plugin exports `hook`.
    pub fn implements(&self, hook: Hook) -> bool {
        self.inner.hooks.contains(hook)
    }

    /// The limits the plugin runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.inner.recipe.limits
    }

    /// Call a hook. Blocking (it runs WebAssembly): call it from a blocking thread, not an async task.
    ///
    /// A failed call (trap, timeout, memory cap) discards the instance it ran on, so the next call starts
    /// from a fresh one; the error says what happened.
    pub fn call(&self, call: &HookCall) -> Result<HookOutput, CallError> {
        self.call_with(call, Commit::Now)
    }

    /// [`Plugin::call`] whose KV writes are committed as `kv_commit` says: [`Commit::Later`] for the
    /// dispatcher's deliveries, which commit them before recording the outcome.
    pub fn call_with(&self, call: &HookCall, kv_commit: Commit) -> Result<HookOutput, CallError> {
        let hook = call.hook();
        if !self.implements(hook) {
            return Err(CallError::NotExported {
                plugin: self.name().to_string(),
                hook: hook.name(),
            });
        }
        self.with_instance(|instance, recipe| instance.call(recipe, call, kv_commit))
    }

    /// Runs `f` on a warm instance (an idle one, or a new one), then keeps the instance for the next call
    /// unless the call failed (its memory may be half-updated), it has served its share of calls, or
    /// enough instances are idle already. The pool's lock is never held during a call. Off the async
    /// worker ([`crate::blocking::off_worker`]) unless the plugin [`Plugin::calls_in_place`].
    fn with_instance<T>(
        &self,
        f: impl FnOnce(&mut WarmInstance, &InstanceRecipe) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        if self.calls_in_place() {
            return self.with_instance_here(f);
        }
        crate::blocking::off_worker(|| self.with_instance_here(f))
    }

    /// Whether its calls may run on an async worker running blocking work in place: it imports no
    /// interface whose functions block on a runtime unwrapped (see `plugins/host/wasi/mod.rs`). Every
    /// component the linker can instantiate today is such a plugin, Python and JavaScript ones included.
    pub fn calls_in_place(&self) -> bool {
        self.inner.recipe.in_place
    }

    /// [`Plugin::with_instance`] on this thread.
    fn with_instance_here<T>(
        &self,
        f: impl FnOnce(&mut WarmInstance, &InstanceRecipe) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let inner = &self.inner;
        let mut instance =
            match self.take_idle() {
                Some(instance) => instance,
                None => inner.recipe.instantiate(&inner.engine).map_err(|err| {
                    CallError::Instantiate {
                        plugin: self.name().to_string(),
                        message: format!("{err:#}"),
                    }
                })?,
            };
        let result = f(&mut instance, &inner.recipe);
        if result.is_ok() && instance.calls < MAX_CALLS_PER_INSTANCE {
            let mut idle = inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_INSTANCES {
                idle.push(instance);
            }
        }
        result
    }

    /// Whether the plugin exports `on-timer`.
    pub fn has_timer(&self) -> bool {
        self.inner.recipe.on_timer.is_some()
    }

    /// The config values and grants this version runs with.
    pub fn powers(&self) -> &PluginPowers {
        &self.inner.recipe.powers
    }

    /// Call `on-timer(name, payload)`. Blocking, like [`Plugin::call`]. `Ok(Err(reason))` is the
    /// plugin's own failure (retry later); `Err` a trap, timeout or missing export.
    pub fn call_timer(&self, name: &str, payload: &str) -> Result<Result<(), String>, CallError> {
        self.with_instance(|instance, recipe| instance.call_timer(recipe, name, payload))
    }

    /// The same compiled plugin with other config values and grants: a new version (no warm instances
    /// shared). The case runner uses it for cases that set `config` or `grants`.
    pub fn reconfigured(&self, powers: PluginPowers) -> Result<Plugin, CallError> {
        let inner = &self.inner;
        let recipe = inner.recipe.with_powers(Arc::new(powers));
        let first = recipe
            .instantiate(&inner.engine)
            .map_err(|err| CallError::Instantiate {
                plugin: self.name().to_string(),
                message: format!("{err:#}"),
            })?;
        Ok(Plugin::new(
            inner.engine.clone(),
            inner.compiler,
            recipe,
            inner.hash.clone(),
            inner.hooks,
            vec![first],
        ))
    }

    fn take_idle(&self) -> Option<WarmInstance> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
    }

    /// Drop every idle instance, so the next call starts from a fresh one (the harness does this between
    /// cases so no guest state leaks from one case into the next).
    pub fn discard_idle_instances(&self) {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Power calls refused by this version's rate limits so far, per power.
    pub fn rate_limited(&self) -> super::powers::RateLimitedCounts {
        self.inner.recipe.power_limiter.refused()
    }

    /// This version's rate limiters (powers and log lines): what the same version compiled anew keeps
    /// using, so a tier swap neither refills a burst nor loses a count.
    pub(crate) fn limiters(&self) -> Limiters {
        Limiters {
            power: self.inner.recipe.power_limiter.clone(),
            log: self.inner.recipe.log_limiter.clone(),
        }
    }

    /// Log lines dropped by this version's rate limit so far.
    pub fn log_lines_dropped(&self) -> u64 {
        self.inner.recipe.log_limiter.dropped()
    }

    /// Bytes of the log lines dropped by this version's rate limits so far.
    pub fn log_bytes_dropped(&self) -> u64 {
        self.inner.recipe.log_limiter.dropped_bytes()
    }

    /// Number of idle warm instances (for tests and the admin API).
    pub fn idle_instances(&self) -> usize {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
