//! A plugin's manifest: `<name>.toml` beside `<name>.wasm`, optional. Every key is optional; an unknown key
//! is an error, so a typo is reported (as the plugin's load error) instead of silently ignored.
//!
//! ```toml
//! version = "1.2.0"          # manifest v2: the plugin's own version (a manifest without it is v1)
//! description = "What the plugin does, for admins"
//! priority = 10              # before-hooks run by priority, lowest first (default 0), then by name
//! fail = "closed"            # a failing or disabled before-hook rejects the message (default "open")
//!
//! [limits]                   # each defaults to the constant named in `limits.rs`
//! memory_mb = 64             # linear memory cap per instance
//! before_hook_ms = 50        # CPU time budget of one before-hook call (wall-clock cap: 10x, at least 200 ms)
//! after_hook_ms = 1000       # CPU time budget of one after-hook call
//! max_output_bytes = 65536   # largest decision / reason / error text one call may return
//! log_lines_per_second = 100 # average log rate; lines beyond it and the burst are dropped and counted
//! log_burst = 1000           # lines that may be written at once above the rate
//! log_bytes_per_second = 16384  # average log bytes; lines beyond it and the byte burst are dropped and counted
//! log_burst_bytes = 163840   # bytes that may be written at once above the byte rate (at least 4096)
//! kv_max_keys = 10000        # KV quota: keys
//! kv_max_bytes = 16777216    # KV quota: bytes of keys + values
//! breaker_failures = 5       # consecutive failures that disable the plugin (0: never)
//! breaker_cooldown_ms = 30000  # how long it stays disabled before a trial call
//! posts_per_second = 10      # rate limits of the powers: calls per second on average, and at once;
//! posts_burst = 50           #   past them a call returns `rate-limited` (posts: bot posts and joins)
//! events_per_second = 20     # custom live events
//! events_burst = 64
//! http_requests_per_second = 20  # outbound HTTP requests
//! http_requests_burst = 100
//! pushes_per_second = 10     # push notifications
//! pushes_burst = 50
//! timers_per_second = 10     # timers set or cancelled
//! timers_burst = 50
//!
//! [config]                   # any values; the plugin reads them through the `config` interface as JSON
//! greeting = "Welcome, {name}!"
//!
//! [settings.greeting]        # typed values an admin may override: see `settings.rs`
//! type = "string"
//! default = "Welcome!"
//!
//! [grants]                   # powers beyond log, kv and config; each defaults to not granted
//! chat_post = true           # post messages as the plugin's bot user
//! chat_join = true           # add the bot to conversations
//! chat_read = true           # read conversations and their recent messages
//! events = true              # send custom live events (kind `plugin.<name>.<type>`)
//! http_hosts = ["127.0.0.1:9000", "hooks.example.com"]  # outbound HTTP to these hosts only
//! push = true                # queue push notifications
//! scheduler = true           # set timers that call `on-timer`
//! ```
//!
//! A mistake is reported with the key and its line, e.g. `line 3: grants.http_hosts: ...`.
//!
//! Every v1 manifest (no `version`) means what it always did; `version`, `description` and `[settings]`
//! are optional additions that change nothing about the other keys.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::limits::{MAX_LOG_LINE_BYTES, MAX_MEMORY_BYTES, PluginLimits};
use super::powers::{ManifestGrants, PluginPowers, Power, PowerRates, Rate};
use super::settings::{
    MAX_DESCRIPTION_LEN, MAX_VERSION_LEN, SettingError, SettingSpec, SettingsTable,
};

/// What a before-hook that fails (traps, times out) or is disabled by the circuit breaker means for the
/// message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Memory, time, output, log, KV and circuit-breaker limits.
    pub limits: PluginLimits,
    /// Config values and grants. `config` holds `[config]` and every setting's effective value: its
    /// default as read from the manifest, the admin's override once [`PluginSettings::resolved`].
    pub powers: PluginPowers,
    /// `version` (manifest v2): the plugin's own version; `None` in a v1 manifest.
    pub version: Option<String>,
    /// `description` (manifest v2): what the plugin does.
    pub description: Option<String>,
    /// `[settings]` (manifest v2): the typed settings an admin may override, by name.
    pub settings: Vec<SettingSpec>,
}

/// The manifest file as written (see the module docs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    settings: SettingsTable,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    fail: FailMode,
    #[serde(default)]
    limits: ManifestLimits,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    grants: ManifestGrants,
}

/// `[limits]`: each key overrides one field of [`PluginLimits`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLimits {
    memory_mb: Option<u64>,
    before_hook_ms: Option<u64>,
    after_hook_ms: Option<u64>,
    max_output_bytes: Option<u64>,
    log_lines_per_second: Option<u32>,
    log_burst: Option<u32>,
    log_bytes_per_second: Option<u32>,
    log_burst_bytes: Option<u32>,
    kv_max_keys: Option<u64>,
    kv_max_bytes: Option<u64>,
    breaker_failures: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    posts_per_second: Option<u32>,
    posts_burst: Option<u32>,
    events_per_second: Option<u32>,
    events_burst: Option<u32>,
    http_requests_per_second: Option<u32>,
    http_requests_burst: Option<u32>,
    pushes_per_second: Option<u32>,
    pushes_burst: Option<u32>,
    timers_per_second: Option<u32>,
    timers_burst: Option<u32>,
}

impl ManifestLimits {
    /// The defaults with this section's overrides applied; a value that cannot work is an error.
    fn apply(&self, defaults: PluginLimits) -> Result<PluginLimits, String> {
        let positive = |key: &str, value: Option<u64>| match value {
            Some(0) => Err(format!("limits.{key} must be at least 1")),
            other => Ok(other),
        };
        let memory_bytes = match positive("memory_mb", self.memory_mb)? {
            None => defaults.memory_bytes,
            Some(mb) => {
                let bytes = usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
                if bytes > MAX_MEMORY_BYTES {
                    return Err(format!(
                        "limits.memory_mb is at most {} on this server",
                        MAX_MEMORY_BYTES >> 20
                    ));
                }
                bytes
            }
        };
        let ms =
            |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_millis);
        let log_burst_bytes = match self.log_burst_bytes {
            Some(n) if usize::try_from(n).unwrap_or(usize::MAX) < MAX_LOG_LINE_BYTES => {
                return Err(format!(
                    "limits.log_burst_bytes must be at least {MAX_LOG_LINE_BYTES} (the longest log \
                     line), or no long line could ever be written"
                ));
            }
            other => other.unwrap_or(defaults.log_burst_bytes),
        };
        Ok(PluginLimits {
            memory_bytes,
            before_hook_budget: ms(
                positive("before_hook_ms", self.before_hook_ms)?,
                defaults.before_hook_budget,
            ),
            after_hook_budget: ms(
                positive("after_hook_ms", self.after_hook_ms)?,
                defaults.after_hook_budget,
            ),
            max_output_bytes: positive("max_output_bytes", self.max_output_bytes)?
                .map_or(defaults.max_output_bytes, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            log_lines_per_second: self
                .log_lines_per_second
                .unwrap_or(defaults.log_lines_per_second),
            log_burst: self.log_burst.unwrap_or(defaults.log_burst),
            log_bytes_per_second: self
                .log_bytes_per_second
                .unwrap_or(defaults.log_bytes_per_second),
            log_burst_bytes,
            kv_max_keys: self.kv_max_keys.unwrap_or(defaults.kv_max_keys),
            kv_max_bytes: self.kv_max_bytes.unwrap_or(defaults.kv_max_bytes),
            breaker_failures: self.breaker_failures.unwrap_or(defaults.breaker_failures),
            breaker_cooldown: ms(self.breaker_cooldown_ms, defaults.breaker_cooldown),
            power_rates: self.power_rates(defaults.power_rates)?,
        })
    }

    /// The powers' rate limits: `<power>_per_second` and `<power>_burst` over `defaults`. Zero is refused:
    /// a power that should never be used is one the manifest does not grant.
    fn power_rates(&self, defaults: PowerRates) -> Result<PowerRates, String> {
        let keys = [
            (Power::Posts, self.posts_per_second, self.posts_burst),
            (Power::Events, self.events_per_second, self.events_burst),
            (
                Power::HttpRequests,
                self.http_requests_per_second,
                self.http_requests_burst,
            ),
            (Power::Pushes, self.pushes_per_second, self.pushes_burst),
            (Power::Timers, self.timers_per_second, self.timers_burst),
        ];
        let mut rates = defaults;
        for (power, per_second, burst) in keys {
            let at_least_one = |suffix: &str, value: Option<u32>| match value {
                Some(0) => Err(format!(
                    "limits.{}_{suffix} must be at least 1 (to forbid the power, leave out its grant)",
                    power.name()
                )),
                other => Ok(other),
            };
            let default = defaults.get(power);
            rates.set(
                power,
                Rate {
                    per_second: at_least_one("per_second", per_second)?
                        .unwrap_or(default.per_second),
                    burst: at_least_one("burst", burst)?.unwrap_or(default.burst),
                },
            );
        }
        Ok(rates)
    }
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
        Self::parse(&text).map_err(|e| format!("invalid manifest {}: {e}", path.display()))
    }

    /// Parses a manifest's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        let version = m
            .version
            .map(|v| check_version(&v).map(|()| v))
            .transpose()
            .map_err(|e| super::powers::with_line(text, &e))?;
        if let Some(description) = &m.description
            && description.chars().count() > MAX_DESCRIPTION_LEN
        {
            let e = format!("description is longer than {MAX_DESCRIPTION_LEN} characters");
            return Err(super::powers::with_line(text, &e));
        }
        let settings = super::settings::parse(text, m.settings)?;
        if let Some(clash) = settings.iter().find(|s| m.config.contains_key(&s.name)) {
            let e = format!(
                "settings.{name}: `{name}` is also in [config]; a value is either fixed ([config]) or a \
                 setting an admin may change, not both",
                name = clash.name
            );
            return Err(super::powers::with_line(text, &e));
        }
        let mut config = super::powers::config_json(m.config);
        for setting in &settings {
            if let Some(default) = &setting.default {
                config.insert(setting.name.clone(), default.clone());
            }
        }
        Ok(Self {
            priority: m.priority,
            fail: m.fail,
            limits: m
                .limits
                .apply(PluginLimits::default())
                .map_err(|e| super::powers::with_line(text, &e))?,
            powers: PluginPowers {
                config,
                grants: m.grants.into_grants(),
            },
            version,
            description: m.description,
            settings,
        })
    }

    /// What manifest v2 adds, as `chathooks check` prints it: `version:`, `description:` and one line per
    /// setting (name, type, default or requirement, description). Nothing for a v1 manifest.
    pub fn describe_v2(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(version) = &self.version {
            lines.push(format!("version:  {version}"));
        }
        if let Some(description) = &self.description {
            lines.push(format!("description: {description}"));
        }
        if !self.settings.is_empty() {
            lines.push(
                "settings: (an admin may override each; the plugin reads them through config)"
                    .to_owned(),
            );
            lines.extend(self.settings.iter().map(|s| format!("  {}", s.summary())));
        }
        lines
    }

    /// These settings with the admin's `overrides` of the declared settings applied to the config the
    /// plugin reads (see [`super::settings::effective`]); refuses a required setting with no value and
    /// an override of the wrong type. `plugin` names the plugin in the error.
    pub fn resolved(
        &self,
        plugin: &str,
        overrides: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, SettingError> {
        let config =
            super::settings::effective(plugin, &self.settings, &self.powers.config, overrides)?;
        let mut resolved = self.clone();
        resolved.powers.config = config;
        Ok(resolved)
    }
}

/// A manifest `version`: 1-64 characters, none of them blank or a control character.
fn check_version(version: &str) -> Result<(), String> {
    let len = version.chars().count();
    let ok = (1..=MAX_VERSION_LEN).contains(&len)
        && !version.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "version must be 1-{MAX_VERSION_LEN} characters without spaces, such as \"1.2.0\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_can_be_overridden() {
        let settings = PluginSettings::parse(
            "priority = -1\nfail = \"closed\"\n[limits]\nmemory_mb = 8\nbefore_hook_ms = 5\n\
             after_hook_ms = 7\nmax_output_bytes = 100\nlog_lines_per_second = 3\nlog_burst = 4\n\
             log_bytes_per_second = 0\nlog_burst_bytes = 5000\n\
             kv_max_keys = 5\nkv_max_bytes = 600\nbreaker_failures = 0\nbreaker_cooldown_ms = 250\n\
             posts_per_second = 1\nposts_burst = 2\nevents_per_second = 3\nevents_burst = 4\n\
             http_requests_per_second = 5\nhttp_requests_burst = 6\npushes_per_second = 7\n\
             pushes_burst = 8\ntimers_per_second = 9\ntimers_burst = 10\n",
        );
        let mut rates = PowerRates::default();
        for (n, power) in (1..).step_by(2).zip(Power::ALL) {
            rates.set(
                power,
                Rate {
                    per_second: n,
                    burst: n + 1,
                },
            );
        }
        let expected = PluginSettings {
            priority: -1,
            fail: FailMode::Closed,
            limits: PluginLimits {
                memory_bytes: 8 << 20,
                before_hook_budget: Duration::from_millis(5),
                after_hook_budget: Duration::from_millis(7),
                max_output_bytes: 100,
                log_lines_per_second: 3,
                log_burst: 4,
                log_bytes_per_second: 0,
                log_burst_bytes: 5000,
                kv_max_keys: 5,
                kv_max_bytes: 600,
                breaker_failures: 0,
                breaker_cooldown: Duration::from_millis(250),
                power_rates: rates,
            },
            powers: PluginPowers::default(),
            version: None,
            description: None,
            settings: Vec::new(),
        };
        assert_eq!(settings, Ok(expected));
        assert_eq!(PluginSettings::parse(""), Ok(PluginSettings::default()));
    }

    #[test]
    fn unusable_values_and_typos_are_named() {
        let zero = PluginSettings::parse("[limits]\nafter_hook_ms = 0\n");
        assert!(zero.is_err_and(|e| e.contains("after_hook_ms")));
        let huge = PluginSettings::parse("[limits]\nmemory_mb = 999999\n");
        assert!(huge.is_err_and(|e| e.contains("memory_mb")));
        let tiny = PluginSettings::parse("[limits]\nlog_burst_bytes = 100\n");
        assert!(tiny.is_err_and(|e| e.contains("line 2") && e.contains("log_burst_bytes")));
        let typo = PluginSettings::parse("[limits]\nmemory_mbs = 1\n");
        assert!(typo.is_err_and(|e| e.contains("memory_mbs")));
    }

    #[test]
    fn bad_rate_limits_are_named_with_their_line() {
        let zero = PluginSettings::parse("priority = 1\n[limits]\n\nposts_burst = 0\n");
        let zero = zero.expect_err("a zero burst");
        assert!(
            zero.starts_with("line 4: limits.posts_burst must be at least 1"),
            "{zero}"
        );
        let zero = PluginSettings::parse("[limits]\nhttp_requests_per_second = 0\n");
        let zero = zero.expect_err("a zero rate");
        assert!(
            zero.starts_with("line 2: limits.http_requests_per_second must be at least 1"),
            "{zero}"
        );
        let negative = PluginSettings::parse("[limits]\ntimers_burst = -3\n");
        let negative = negative.expect_err("a negative burst");
        assert!(
            negative.contains("timers_burst") && negative.contains("line 2"),
            "{negative}"
        );
        let text = PluginSettings::parse("[limits]\nevents_per_second = \"lots\"\n");
        let text = text.expect_err("not a number");
        assert!(
            text.contains("events_per_second") && text.contains("line 2"),
            "{text}"
        );
        let typo = PluginSettings::parse("[limits]\nposts_per_minute = 3\n");
        let typo = typo.expect_err("an unknown key");
        assert!(
            typo.contains("posts_per_minute") && typo.contains("line 2"),
            "{typo}"
        );
    }
}
