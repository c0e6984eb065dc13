//! The plugin runtime: wasmtime engine, loading and checking components, the compile cache, warm instance
//! pools, per-call limits, and the host interfaces plugins import.
//!
//! ## Layout
//! - [`runtime`]: [`Runtime`], the entry point: one engine, one linker, the cache and the KV store.
//! - [`plugin`]: [`Plugin`], one loaded version with its pool of warm instances; `call` runs a hook.
//! - [`registry`]: the loaded plugins by name, their manifest settings, statistics and before-hook order.
//! - [`reload`]: loading, replacing and unloading plugins (a file, a folder rescan, a removal);
//!   [`install`]: an uploaded plugin, checked as a load would, then written into the folder.
//! - [`watcher`]: hot reload: watches the plugins folder, debounces, loads settled files.
//! - [`manifest`]: `<name>.toml`: priority, fail mode, limits, config values and grants; [`settings`]: its
//!   typed settings (manifest v2), checked, and their effective values.
//! - [`overrides`]: what an admin set over a plugin's files (disabled, setting values), read at each load.
//! - [`powers`]: grants, and the [`powers::HostServices`] that carry out the power interfaces.
//! - [`breaker`]: the circuit breaker that disables a plugin after repeated failures.
//! - [`failure_log`]: warnings about a plugin's failures, rate-limited per plugin.
//! - [`stats`]: call counts and latency histograms per plugin and hook; [`summary`]: their periodic log line.
//! - [`hooks`]: the table of hooks, [`HookCall`] (a call with its WIT arguments) and [`HookOutput`].
//! - `instance`: one store + instance, memory limiter, trap classification.
//! - [`warmup`]: warming a plugin's first instances at load, with no effect outside them.
//! - [`budget`]: a call's time budget in the thread's CPU time, under a wall-clock cap.
//! - `inspect`: refusing files that are not components of our WIT, with clear messages.
//! - [`cache`]: compiled components on disk.
//! - [`limits`]: every limit, with why it has its value.
//! - [`host`]: one file per imported WIT interface.
//! - [`bindings`]: the generated WIT bindings, generated once.

#[allow(unsafe_code, missing_docs)]
pub mod bindings;
pub mod breaker;
pub mod budget;
pub mod cache;
pub(crate) mod downgrade;
pub mod engine;
pub mod error;
pub mod failure_log;
pub mod hooks;
pub mod host;
mod inspect;
pub mod install;
mod instance;
pub mod limits;
pub mod logs;
pub mod manifest;
pub mod overrides;
pub mod plugin;
pub mod powers;
pub mod registry;
pub mod reload;
pub mod runtime;
pub mod settings;
pub mod stats;
pub mod status;
pub mod summary;
pub mod tiers;
pub mod warmup;
pub mod watcher;

pub use engine::Compiler;
pub use error::{CallError, LoadError};
pub use hooks::{Hook, HookCall, HookKind, HookOutput, HookSet};
pub use limits::PluginLimits;
pub use logs::{CaptureSink, LogLevel, LogLine, LogSink, TailSink, TailedLine, TracingSink};
pub use plugin::Plugin;
pub use runtime::{PluginInfo, Runtime, RuntimeConfig};
pub use tiers::{Compilers, Promoter};

#[cfg(test)]
mod tiers_tests;
