//! The set of plugins the server runs: loaded by name from the plugins folder, with their manifest
//! settings, call statistics, circuit breakers, and the order before-hooks run in.
//!
//! ## Overview
//! Each name has an entry: the running version (a [`LoadedPlugin`]), if any, and why its newest file
//! failed to load, if it did. Loading, replacing and unloading are in [`super::reload`]; the watcher that
//! drives them is [`super::watcher`]. Swapping a version is one write-locked map update: callers that
//! already hold a [`LoadedPlugin`] (a before-hook chain under way, a delivery in flight) finish on it,
//! and every lookup after the swap gets the new one.
//!
//! ## Statistics and the circuit breaker
//! Every call through [`LoadedPlugin::call`] is counted per hook ([`PluginStats`]: calls, failures,
//! timeouts, latency histogram) and reported to the plugin's [`Breaker`]. Statistics belong to the name
//! and carry over to new versions; a new version starts with a closed breaker. A plugin the breaker has
//! disabled is refused without running ([`CallError::Disabled`]); the dispatcher starts no deliveries
//! for it ([`LoadedPlugin::dispatch_capacity`]), so they wait in the outbox. The breaker's cool-down runs
//! on the runtime's [`Clock`] (a manual one in tests); call latencies are measured in real time.
//!
//! ## Manifests
//! See [`super::manifest`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use super::breaker::{Admission, Breaker, Transition};
use super::error::CallError;
use super::failure_log::{FailureLog, Warn};
use super::hooks::{Hook, HookCall, HookKind, HookOutput};
use super::overrides::{OverrideSource, Overrides};
use super::plugin::Plugin;
use super::powers::RateLimitedCounts;
use super::runtime::Runtime;
use super::stats::PluginStats;
use super::tiers::Promotions;
use crate::clock::Clock;
use crate::store::kv::Commit;

pub use super::manifest::{FailMode, PluginSettings};
pub use super::status::{LimitsView, PluginState, PluginStatus};
use super::status::{duration_ms, limits_view};

/// What every version of one plugin name shares.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stats: Arc<PluginStats>,
    pub(crate) breaker: Breaker,
    /// Log lines dropped by versions no longer running.
    pub(crate) retired_log_drops: AtomicU64,
    /// Bytes of those lines.
    pub(crate) retired_log_byte_drops: AtomicU64,
    /// Rate limit of the warnings about this plugin's before-hook failures.
    pub(crate) failure_log: FailureLog,
    /// Power calls refused by the rate limits of versions no longer running (each version has its own
    /// buckets: a reload starts them full).
    pub(crate) retired_rate_limited: Mutex<RateLimitedCounts>,
}

impl Shared {
    /// Adds what a version no longer running dropped and refused to the name's totals.
    fn retire(&self, old: &LoadedPlugin) {
        self.retired_log_drops
            .fetch_add(old.plugin.log_lines_dropped(), Ordering::Relaxed);
        self.retired_log_byte_drops
            .fetch_add(old.plugin.log_bytes_dropped(), Ordering::Relaxed);
        let mut retired = self
            .retired_rate_limited
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *retired = retired.plus(&old.plugin.rate_limited());
    }

    /// Power calls refused by every version, `running` included.
    fn rate_limited(&self, running: Option<&LoadedPlugin>) -> RateLimitedCounts {
        let retired = *self
            .retired_rate_limited
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running.map_or(retired, |p| retired.plus(&p.plugin.rate_limited()))
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
    pub(crate) shared: Arc<Shared>,
    /// What the circuit breaker's cool-down reads the time from (the runtime's clock).
    clock: Arc<dyn Clock>,
    /// When this version started serving (the first of its compilers, with tiered compilation).
    serving_since: Instant,
    /// With tiered compilation: how long after it started serving the version's optimized code took
    /// over (`None` while on the baseline code, or when it started on optimized code).
    pub optimized_after: Option<std::time::Duration>,
}

impl LoadedPlugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// Calls a hook (blocking: use a blocking thread), unless the circuit breaker has disabled the plugin
    /// ([`CallError::Disabled`]); counts the outcome and its latency.
    pub fn call(&self, call: &HookCall) -> Result<HookOutput, CallError> {
        self.call_with(call, Commit::Now)
    }

    /// [`LoadedPlugin::call`] whose KV writes are committed as `kv_commit` says ([`Plugin::call_with`]).
    pub fn call_with(&self, call: &HookCall, kv_commit: Commit) -> Result<HookOutput, CallError> {
        let hook = call.hook();
        let started = Instant::now();
        let admission = self.shared.breaker.admit(self.clock.now());
        if let Admission::Refused { failures, retry_in } = admission {
            return Err(CallError::Disabled {
                plugin: self.name().to_owned(),
                failures,
                retry_in,
            });
        }
        let result = self.plugin.call_with(call, kv_commit);
        let took = started.elapsed();
        let failure = match &result {
            // Not a call at all (a new version dropped the hook): nothing to count.
            Err(CallError::NotExported { .. }) => {
                self.shared.breaker.release(admission);
                return result;
            }
            Err(e) => Some((e.to_string(), matches!(e, CallError::Timeout { .. }))),
            Ok(HookOutput::Done(Err(reason))) => Some((reason.clone(), false)),
            Ok(_) => None,
        };
        let stats = &self.shared.stats;
        stats.record_call(hook, took);
        let ok = failure.is_none();
        if let Some((error, timeout)) = failure {
            stats.record_failure(hook, error, timeout);
        }
        let transition =
            self.shared
                .breaker
                .record(admission, ok, &self.settings.limits, self.clock.now());
        self.log_transition(transition);
        result
    }

    /// Calls `on-timer(name, payload)` (blocking) unless the circuit breaker has disabled the plugin
    /// ([`CallError::Disabled`]: the timer should wait). The outcome counts toward the breaker like a
    /// hook call's; it is not in the per-hook statistics (a timer is not a hook).
    pub fn call_timer(&self, name: &str, payload: &str) -> Result<Result<(), String>, CallError> {
        let admission = self.shared.breaker.admit(self.clock.now());
        if let Admission::Refused { failures, retry_in } = admission {
            return Err(CallError::Disabled {
                plugin: self.name().to_owned(),
                failures,
                retry_in,
            });
        }
        let result = self.plugin.call_timer(name, payload);
        if let Err(CallError::NotExported { .. }) = &result {
            self.shared.breaker.release(admission);
            return result;
        }
        let ok = matches!(result, Ok(Ok(())));
        let transition =
            self.shared
                .breaker
                .record(admission, ok, &self.settings.limits, self.clock.now());
        self.log_transition(transition);
        result
    }

    /// Counts a failure found after the call returned (a before-hook's unusable modification, say).
    pub fn record_failure(&self, hook: Hook, error: String) {
        self.shared.stats.record_failure(hook, error, false);
        let transition = self.shared.breaker.record(
            Admission::Call,
            false,
            &self.settings.limits,
            self.clock.now(),
        );
        self.log_transition(transition);
    }

    /// Logs a before-hook failure (the call failed, or its answer was unusable) as a warning naming the
    /// plugin, the hook and what happened to the message, at most once per
    /// [`FAILURE_WARN_INTERVAL`](super::failure_log::FAILURE_WARN_INTERVAL) per plugin; the failures in
    /// between are counted in the next warning (and every one in the statistics).
    pub fn warn_before_hook_failure(&self, hook: Hook, error: &str) {
        let Warn::Now { suppressed } = self.shared.failure_log.admit(Instant::now()) else {
            return;
        };
        let outcome = match self.settings.fail {
            FailMode::Open => "the message went through unfiltered (fail open)",
            FailMode::Closed => "the message was rejected (fail closed)",
        };
        let more = if suppressed == 0 {
            String::new()
        } else {
            format!(
                "; {suppressed} more before-hook failures of this plugin were not logged in the last {:?}",
                super::failure_log::FAILURE_WARN_INTERVAL
            )
        };
        tracing::warn!(
            plugin = self.name(),
            hook = hook.name(),
            "before-hook failed, {outcome}: {error}{more}"
        );
    }

    /// How many after-hook deliveries the dispatcher may start for this plugin now, out of `normal`:
    /// none while its circuit breaker has it disabled, one for the trial call.
    pub fn dispatch_capacity(&self, normal: usize) -> usize {
        self.shared
            .breaker
            .dispatch_capacity(normal, self.clock.now())
    }

    /// The plugin's call statistics (every version).
    pub fn stats(&self) -> &PluginStats {
        &self.shared.stats
    }

    fn log_transition(&self, transition: Transition) {
        let cooldown = self.settings.limits.breaker_cooldown;
        let summary = || {
            let t = self.shared.stats.totals();
            let ms = |q: f64| t.latency.quantile(q).map(|s| s * 1000.0);
            format!(
                "calls {}, failures {}, timeouts {}, p50 {:?} ms, p99 {:?} ms, last error: {}",
                t.calls,
                t.failures,
                t.timeouts,
                ms(0.5),
                ms(0.99),
                self.shared.stats.last_error().unwrap_or_default()
            )
        };
        match transition {
            Transition::None => {}
            Transition::Disabled { failures } => tracing::warn!(
                plugin = self.name(),
                ?cooldown,
                "plugin disabled by its circuit breaker after {failures} consecutive failures; {}",
                summary()
            ),
            Transition::StillFailing => tracing::warn!(
                plugin = self.name(),
                ?cooldown,
                "plugin's trial call failed; disabled again; {}",
                summary()
            ),
            Transition::Recovered => tracing::info!(
                plugin = self.name(),
                "plugin's trial call succeeded; enabled again; {}",
                summary()
            ),
        }
    }
}

/// One name in the registry.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) running: Option<LoadedPlugin>,
    pub(crate) load_error: Option<String>,
    /// An admin disabled it: not running, though its file is there ([`super::overrides`]).
    pub(crate) disabled: bool,
    pub(crate) shared: Arc<Shared>,
}

impl Entry {
    pub(crate) fn empty() -> Self {
        Entry {
            running: None,
            load_error: None,
            disabled: false,
            shared: Arc::default(),
        }
    }
}

/// The plugins by name. Share it as `Arc<Registry>`.
#[derive(Debug)]
pub struct Registry {
    pub(crate) runtime: Runtime,
    pub(crate) entries: RwLock<BTreeMap<String, Entry>>,
    /// Serializes loads, unloads and rescans, so an older file's slow compile never overtakes a newer one.
    pub(crate) reloading: Mutex<()>,
    /// The plugins folder, once [`Registry::load_dir`] has read one: what rescans read.
    pub(crate) folder: RwLock<Option<PathBuf>>,
    /// Versions running on the baseline compiler, waiting for the [`super::tiers::Promoter`].
    pub(crate) promotions: Arc<Promotions>,
    /// Where admins' overrides (disabled, setting values) are read at each load; none: no overrides.
    pub(crate) overrides: Option<Arc<dyn OverrideSource>>,
}

impl Registry {
    /// An empty registry that loads with `runtime`.
    pub fn new(runtime: Runtime) -> Self {
        Registry {
            runtime,
            entries: RwLock::new(BTreeMap::new()),
            reloading: Mutex::new(()),
            folder: RwLock::new(None),
            promotions: Arc::default(),
            overrides: None,
        }
    }

    /// This registry reading admins' overrides from `source` at every load.
    pub fn with_overrides(mut self, source: Arc<dyn OverrideSource>) -> Self {
        self.overrides = Some(source);
        self
    }

    /// The overrides of `name` (none without a source).
    pub(crate) fn overrides_of(&self, name: &str) -> Result<Overrides, String> {
        match &self.overrides {
            Some(source) => source
                .overrides(name)
                .map_err(|e| format!("cannot read the admin's settings of plugin `{name}`: {e}")),
            None => Ok(Overrides::default()),
        }
    }

    /// The runtime plugins are loaded with (its KV store is where plugins keep state).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// What waits for the optimizing compiler (tiered compilation).
    pub(crate) fn promotions(&self) -> &Arc<Promotions> {
        &self.promotions
    }

    /// Adds or replaces a loaded plugin under its name (statistics carry over to the new version; the
    /// circuit breaker starts closed). Returns the version it replaced.
    pub fn insert(&self, plugin: Plugin, settings: PluginSettings) -> Option<LoadedPlugin> {
        self.replace(plugin, settings, true)
    }

    /// Replaces the running version with the same version compiled anew (tiered compilation): as
    /// [`Registry::insert`], but the circuit breaker keeps its state.
    pub(crate) fn swap_version(&self, plugin: Plugin, settings: PluginSettings) {
        self.replace(plugin, settings, false);
    }

    fn replace(
        &self,
        plugin: Plugin,
        settings: PluginSettings,
        new_version: bool,
    ) -> Option<LoadedPlugin> {
        let mut entries = self.write();
        let entry = entries
            .entry(plugin.name().to_owned())
            .or_insert_with(Entry::empty);
        entry.load_error = None;
        entry.disabled = false;
        if new_version {
            entry.shared.breaker.reset();
        }
        // The same version compiled anew keeps its start, so the swap's timing shows.
        let serving_since = entry
            .running
            .as_ref()
            .filter(|_| !new_version)
            .map_or_else(Instant::now, |old| old.serving_since);
        let next = LoadedPlugin {
            optimized_after: (!new_version).then(|| serving_since.elapsed()),
            plugin,
            settings,
            shared: entry.shared.clone(),
            clock: self.runtime.clock().clone(),
            serving_since,
        };
        let old = entry.running.replace(next);
        // The same version compiled anew shares its rate limiters: their counts go on, not retire.
        if let Some(old) = old.as_ref().filter(|_| new_version) {
            entry.shared.retire(old);
        }
        old
    }

    /// Stops running `name` because an admin disabled it, keeping its entry (statistics, and `off` in
    /// the admin list). Returns the version that was running.
    pub(crate) fn disable(&self, name: &str) -> Option<LoadedPlugin> {
        let mut entries = self.write();
        let entry = entries.entry(name.to_owned()).or_insert_with(Entry::empty);
        entry.disabled = true;
        entry.load_error = None;
        let old = entry.running.take();
        if let Some(old) = &old {
            entry.shared.retire(old);
        }
        old
    }

    /// Unloads `name` (its file was removed); true if it was there. Calls in progress finish.
    pub fn remove(&self, name: &str) -> bool {
        self.write().remove(name).is_some()
    }

    /// The running version of `name`.
    pub fn get(&self, name: &str) -> Option<LoadedPlugin> {
        self.read().get(name).and_then(|e| e.running.clone())
    }

    /// Every running plugin, by name.
    pub fn running(&self) -> Vec<LoadedPlugin> {
        self.read()
            .values()
            .filter_map(|e| e.running.clone())
            .collect()
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
    /// Plugins disabled by their circuit breaker are included: their deliveries wait for them.
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

    /// Every plugin's call counters and latency histogram since it was first loaded, by name (for the
    /// admin history's samples).
    pub fn call_totals(&self) -> Vec<(String, super::stats::StatsTotals)> {
        self.read()
            .iter()
            .map(|(name, e)| (name.clone(), e.shared.stats.totals()))
            .collect()
    }

    /// Every plugin with its state, statistics and limits, by name. `pending_deliveries` is left 0 (the
    /// registry does not read the outbox).
    pub fn plugins_status(&self) -> Vec<PluginStatus> {
        let now = self.runtime.clock().now();
        let kv = self.runtime.kv();
        self.read()
            .iter()
            .map(|(name, e)| {
                let running = e.running.as_ref();
                // The breaker before the counters: a call records its statistics before its breaker
                // transition, so a plugin shown disabled always shows the call that disabled it.
                let breaker = e.shared.breaker.view(now);
                let totals = e.shared.stats.totals();
                let ms = |q: f64| totals.latency.quantile(q).map(|s| s * 1000.0);
                let state = if e.disabled {
                    PluginState::Off
                } else if e.load_error.is_some() {
                    PluginState::LoadError
                } else if breaker.disabled_for.is_some() {
                    PluginState::Disabled
                } else if breaker.consecutive_failures > 0 {
                    PluginState::Failing
                } else {
                    PluginState::Active
                };
                PluginStatus {
                    name: name.clone(),
                    state,
                    enabled: !e.disabled,
                    version: running.and_then(|p| p.settings.version.clone()),
                    description: running.and_then(|p| p.settings.description.clone()),
                    serving: running.is_some(),
                    hash: running.map(|p| p.plugin.hash().to_owned()),
                    compiler: running.map(|p| p.plugin.compiler()),
                    optimized_after_ms: running.and_then(|p| p.optimized_after).map(duration_ms),
                    hooks: running
                        .map(|p| {
                            p.plugin
                                .hooks()
                                .iter()
                                .map(|h| h.name().to_owned())
                                .collect()
                        })
                        .unwrap_or_default(),
                    priority: running.map_or(0, |p| p.settings.priority),
                    fail: running.map_or(FailMode::Open, |p| p.settings.fail),
                    grants: running
                        .map(|p| p.settings.powers.grants.describe())
                        .unwrap_or_default(),
                    calls: totals.calls,
                    failures: totals.failures,
                    timeouts: totals.timeouts,
                    before_hook_timeouts: e.shared.stats.timeouts_of(HookKind::Before),
                    consecutive_failures: breaker.consecutive_failures,
                    breaker_trips: breaker.trips,
                    disabled_for_ms: breaker.disabled_for.map(duration_ms),
                    latency_p50_ms: ms(0.5),
                    latency_p99_ms: ms(0.99),
                    last_error: e.shared.stats.last_error(),
                    load_error: e.load_error.clone(),
                    log_lines_dropped: e.shared.retired_log_drops.load(Ordering::Relaxed)
                        + running.map_or(0, |p| p.plugin.log_lines_dropped()),
                    log_bytes_dropped: e.shared.retired_log_byte_drops.load(Ordering::Relaxed)
                        + running.map_or(0, |p| p.plugin.log_bytes_dropped()),
                    rate_limited: e.shared.rate_limited(running),
                    kv: kv.usage(name).unwrap_or_default(),
                    pending_deliveries: 0,
                    limits: running.map(|p| limits_view(&p.settings)),
                }
            })
            .collect()
    }

    /// Each plugin's statistics, by name (for metrics: per-hook counts and histograms).
    pub fn stats(&self) -> Vec<(String, Arc<PluginStats>)> {
        self.read()
            .iter()
            .map(|(name, e)| (name.clone(), e.shared.stats.clone()))
            .collect()
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}
