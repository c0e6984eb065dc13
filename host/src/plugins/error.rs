//! Errors of loading a plugin and of calling a hook. Callers match on these, so they are enums.

use std::path::PathBuf;
use std::time::Duration;

/// Why a plugin could not be loaded. Each message names what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The plugin file could not be read.
    #[error("cannot read plugin file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error(
        "not a WebAssembly file (it does not start with the `\\0asm` magic bytes); build the plugin for \
             `wasm32-wasip2` or turn it into a component with `wasm-tools component new`"
    )]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build for `wasm32-wasip2` (Rust) or wrap the \
             module with `wasm-tools component new` so it exports the chathooks:plugin hook interfaces"
    )]
    CoreModule,
    /// The file is a component but wasmtime refused it (truncated, corrupt, or an unsupported feature).
    #[error(
        "invalid component: {0:#}; the file may be truncated or built for another component-model version"
    )]
    Invalid(anyhow::Error),
    /// The component targets a version of the WIT package this server does not implement.
    #[error(
        "`{item}` is from chathooks:plugin@{found}, but this server implements {}; rebuild the plugin \
             against the WIT of one of those (the newest is in the server's `wit/` folder)",
        versions_list(supported)
    )]
    WrongVersion {
        /// The import or export that gave the version away.
        item: String,
        /// The version the component uses.
        found: String,
        /// The versions this server implements, newest first.
        supported: &'static [&'static str],
    },
    /// The component exports hooks of two versions of the WIT package; one component is built against
    /// one version.
    #[error(
        "`{first}` and `{second}` are from different versions of chathooks:plugin; build every hook of a \
             plugin against the same version"
    )]
    MixedVersions {
        /// One export.
        first: String,
        /// An export of another version.
        second: String,
    },
    /// The component exports something that is not a chathooks hook.
    #[error(
        "unknown export `{0}`: a plugin may export only chathooks:plugin hook interfaces such as \
             `chathooks:plugin/after-message-sent@0.2.0`"
    )]
    UnknownExport(String),
    /// The component imports something the server does not provide.
    #[error(
        "unsupported import `{0}`: plugins may import chathooks:plugin/log and /kv and WASI 0.2 interfaces; \
             the capability may need a grant in a later server version"
    )]
    UnsupportedImport(String),
    /// The component exports no hook at all.
    #[error(
        "the component exports no chathooks hook; export at least one interface such as \
             `chathooks:plugin/after-message-sent@0.2.0`"
    )]
    NoHooks,
    /// An exported hook interface does not have the function and signature of the WIT.
    #[error(
        "hook `{hook}` does not match the WIT: {message}; rebuild the plugin against this server's WIT"
    )]
    HookMismatch {
        /// The hook's WIT name.
        hook: &'static str,
        /// What wasmtime found wrong.
        message: String,
    },
    /// The component failed while being instantiated (its start code trapped, say).
    #[error("the plugin failed while starting: {0:#}")]
    Instantiate(anyhow::Error),
}

/// `chathooks:plugin@0.2.0 and chathooks:plugin@0.1.0`.
fn versions_list(versions: &[&str]) -> String {
    let named: Vec<String> = versions
        .iter()
        .map(|v| format!("chathooks:plugin@{v}"))
        .collect();
    named.join(" and ")
}

/// Why a hook call failed. Only that call fails: the instance is discarded and the next call gets a new one.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin does not export the hook.
    #[error("plugin `{plugin}` does not implement `{hook}`")]
    NotExported {
        /// The plugin.
        plugin: String,
        /// The hook's WIT name.
        hook: &'static str,
    },
    /// The call ran out of its time budget (CPU time, or the wall-clock cap above it).
    #[error("plugin `{plugin}` timed out in `{hook}` after its budget of {budget:?} {limit}")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The hook's WIT name.
        hook: &'static str,
        /// The budget of CPU time it had.
        budget: Duration,
        /// Which limit was reached.
        limit: super::budget::Limit,
    },
    /// The call tried to grow memory past the plugin's cap.
    #[error("plugin `{plugin}` exceeded its memory cap of {cap_bytes} bytes in `{hook}`")]
    MemoryCap {
        /// The plugin.
        plugin: String,
        /// The hook's WIT name.
        hook: &'static str,
        /// The cap.
        cap_bytes: usize,
    },
    /// The plugin trapped: a panic, an `unreachable`, a stack overflow, a bad memory access.
    #[error("plugin `{plugin}` trapped in `{hook}`: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The hook's WIT name.
        hook: &'static str,
        /// The trap and whatever the plugin wrote to stderr just before (a panic message, say).
        message: String,
    },
    /// The call returned more than the plugin's `max_output_bytes` (a decision's body and metadata, a
    /// rejection's reason, an after-hook's error text). The answer is discarded.
    #[error(
        "plugin `{plugin}` returned {bytes} bytes from `{hook}`, more than its limit of {limit} bytes"
    )]
    OutputTooLarge {
        /// The plugin.
        plugin: String,
        /// The hook's WIT name.
        hook: &'static str,
        /// What it returned.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The circuit breaker has disabled the plugin after repeated failures; it was not called.
    #[error(
        "plugin `{plugin}` is disabled for {retry_in:?} after {failures} consecutive failures (circuit breaker)"
    )]
    Disabled {
        /// The plugin.
        plugin: String,
        /// The consecutive failures that disabled it.
        failures: u32,
        /// Time left until a trial call is let through.
        retry_in: Duration,
    },
    /// A fresh instance could not be created.
    #[error("plugin `{plugin}` could not be instantiated: {message}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// What failed.
        message: String,
    },
}
