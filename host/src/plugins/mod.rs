//! The plugin runtime: wasmtime engine, loading and checking components, the compile cache, warm instance
//! pools, per-call limits, and the host interfaces plugins import.
//!
//! ## Layout
//! - [`runtime`]: [`Runtime`], the entry point: one engine, one linker, the cache and the KV store.
//! - [`plugin`]: [`Plugin`], one loaded version with its pool of warm instances; `call` runs a hook.
//! - [`registry`]: the loaded plugins by name, their manifest settings, counters and before-hook order.
//! - [`hooks`]: the table of hooks, [`HookCall`] (a call with its WIT arguments) and [`HookOutput`].
//! - `instance`: one store + instance, memory limiter, time budget, trap classification.
//! - `inspect`: refusing files that are not components of our WIT, with clear messages.
//! - [`cache`]: compiled components on disk.
//! - [`limits`]: every limit, with why it has its value.
//! - [`host`]: one file per imported WIT interface.
//! - [`bindings`]: the generated WIT bindings, generated once.

#[allow(unsafe_code, missing_docs)]
pub mod bindings;
pub mod cache;
mod engine;
pub mod error;
pub mod hooks;
pub mod host;
mod inspect;
mod instance;
pub mod limits;
pub mod logs;
pub mod plugin;
pub mod registry;
pub mod runtime;

pub use error::{CallError, LoadError};
pub use hooks::{Hook, HookCall, HookKind, HookOutput, HookSet};
pub use limits::PluginLimits;
pub use logs::{CaptureSink, LogLevel, LogLine, LogSink, TracingSink};
pub use plugin::Plugin;
pub use runtime::{PluginInfo, Runtime, RuntimeConfig};
