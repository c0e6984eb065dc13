//! A plugin as the admin API shows it: its state, counters and limits ([`PluginStatus`], built by
//! [`super::registry::Registry::plugins_status`]), with its limits in the units of its manifest.

use std::time::Duration;

use serde::Serialize;

use super::manifest::{FailMode, PluginSettings};
use super::powers::{Power, RateLimitedCounts};
use crate::store::kv::KvUsage;

/// A plugin's state as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginState {
    /// Running; its last call succeeded.
    Active,
    /// Running; its last call (or more, in a row) failed, not yet enough to disable it.
    Failing,
    /// Disabled by its circuit breaker until a trial call succeeds; `disabled_for_ms` says when.
    Disabled,
    /// Its newest file failed to load; `load_error` says why. `serving` says whether an earlier version
    /// still runs.
    LoadError,
    /// An admin disabled it (`enabled: false`): not loaded, its hooks not called and no events owed to it,
    /// until an admin enables it again. Survives restarts.
    Off,
}

/// A plugin's limits, in the units of its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LimitsView {
    /// Memory cap per instance, bytes.
    pub memory_bytes: u64,
    /// Before-hook time budget, ms.
    pub before_hook_ms: u64,
    /// After-hook time budget, ms.
    pub after_hook_ms: u64,
    /// Largest answer per call, bytes.
    pub max_output_bytes: u64,
    /// Log lines per second.
    pub log_lines_per_second: u32,
    /// Log burst, lines.
    pub log_burst: u32,
    /// Log bytes per second.
    pub log_bytes_per_second: u32,
    /// Log burst, bytes.
    pub log_burst_bytes: u32,
    /// KV quota: keys.
    pub kv_max_keys: u64,
    /// KV quota: bytes.
    pub kv_max_bytes: u64,
    /// Consecutive failures that disable the plugin (0: never).
    pub breaker_failures: u32,
    /// Cool-down of a disabled plugin, ms.
    pub breaker_cooldown_ms: u64,
    /// Bot posts and joins per second (average).
    pub posts_per_second: u32,
    /// Bot posts and joins at once.
    pub posts_burst: u32,
    /// Custom events per second.
    pub events_per_second: u32,
    /// Custom events at once.
    pub events_burst: u32,
    /// HTTP requests per second.
    pub http_requests_per_second: u32,
    /// HTTP requests at once.
    pub http_requests_burst: u32,
    /// Push notifications per second.
    pub pushes_per_second: u32,
    /// Push notifications at once.
    pub pushes_burst: u32,
    /// Timer changes per second.
    pub timers_per_second: u32,
    /// Timer changes at once.
    pub timers_burst: u32,
}

/// One plugin as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PluginStatus {
    /// The plugin's name (file name without `.wasm`).
    pub name: String,
    /// See [`PluginState`].
    pub state: PluginState,
    /// `false` once an admin has disabled the plugin (`state` `off`).
    pub enabled: bool,
    /// The running version's manifest `version` (manifest v2), if it has one.
    pub version: Option<String>,
    /// The running version's manifest `description`, if it has one.
    pub description: Option<String>,
    /// Whether a version is running (true also in `load-error` when an earlier version keeps serving).
    pub serving: bool,
    /// SHA-256 of the running version's bytes, if one is running.
    pub hash: Option<String>,
    /// Which compiler made the running version's code: `winch` for the moments after a new version
    /// lands (with tiered compilation), `cranelift` once its optimized code serves.
    pub compiler: Option<crate::plugins::Compiler>,
    /// With tiered compilation: milliseconds from the running version starting to serve on Winch's code
    /// to Cranelift's code taking over; `null` while on Winch's code or when it started on Cranelift's.
    pub optimized_after_ms: Option<u64>,
    /// The hooks the running version exports, by WIT name.
    pub hooks: Vec<String>,
    /// Before-hook order.
    pub priority: i32,
    /// What a failing or disabled before-hook does to the message.
    pub fail: FailMode,
    /// What the running version's manifest grants beyond log, kv and config (e.g. `chat_post`,
    /// `http_hosts: 127.0.0.1:9000`).
    pub grants: Vec<String>,
    /// Hook calls made (all versions; calls refused while disabled are not counted).
    pub calls: u64,
    /// Calls that failed (trap, timeout, memory cap, oversized answer, after-hook `err`).
    pub failures: u64,
    /// Calls that ran out of time.
    pub timeouts: u64,
    /// Before-hook calls that ran out of time: each let a message through unfiltered (fail open) or
    /// rejected it (fail closed).
    pub before_hook_timeouts: u64,
    /// Failed calls in a row.
    pub consecutive_failures: u32,
    /// Times the circuit breaker has disabled the plugin.
    pub breaker_trips: u64,
    /// While disabled: milliseconds until a trial call (0 when it is due or running).
    pub disabled_for_ms: Option<u64>,
    /// Median call latency, ms (from the latency histogram's buckets).
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile call latency, ms.
    pub latency_p99_ms: Option<f64>,
    /// The last call failure.
    pub last_error: Option<String>,
    /// Why the newest file failed to load, if it did.
    pub load_error: Option<String>,
    /// Log lines dropped by the rate limit.
    pub log_lines_dropped: u64,
    /// Bytes of those lines.
    pub log_bytes_dropped: u64,
    /// Power calls refused by the plugin's rate limits (answered `rate-limited`), per power, over every
    /// version.
    pub rate_limited: RateLimitedCounts,
    /// What it keeps in KV.
    pub kv: KvUsage,
    /// After-hook deliveries waiting for it (filled in by the admin API from the outbox).
    pub pending_deliveries: u64,
    /// The running version's limits.
    pub limits: Option<LimitsView>,
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn limits_view(settings: &PluginSettings) -> LimitsView {
    let l = &settings.limits;
    LimitsView {
        memory_bytes: u64::try_from(l.memory_bytes).unwrap_or(u64::MAX),
        before_hook_ms: duration_ms(l.before_hook_budget),
        after_hook_ms: duration_ms(l.after_hook_budget),
        max_output_bytes: u64::try_from(l.max_output_bytes).unwrap_or(u64::MAX),
        log_lines_per_second: l.log_lines_per_second,
        log_burst: l.log_burst,
        log_bytes_per_second: l.log_bytes_per_second,
        log_burst_bytes: l.log_burst_bytes,
        kv_max_keys: l.kv_max_keys,
        kv_max_bytes: l.kv_max_bytes,
        breaker_failures: l.breaker_failures,
        breaker_cooldown_ms: duration_ms(l.breaker_cooldown),
        posts_per_second: l.power_rates.get(Power::Posts).per_second,
        posts_burst: l.power_rates.get(Power::Posts).burst,
        events_per_second: l.power_rates.get(Power::Events).per_second,
        events_burst: l.power_rates.get(Power::Events).burst,
        http_requests_per_second: l.power_rates.get(Power::HttpRequests).per_second,
        http_requests_burst: l.power_rates.get(Power::HttpRequests).burst,
        pushes_per_second: l.power_rates.get(Power::Pushes).per_second,
        pushes_burst: l.power_rates.get(Power::Pushes).burst,
        timers_per_second: l.power_rates.get(Power::Timers).per_second,
        timers_burst: l.power_rates.get(Power::Timers).burst,
    }
}
