//! The `chathooks` command line: `new`, `check` and `test` for plugin authors (and `serve` and `migrate`
//! for operators; `plugins` for a cluster's plugin catalog).

mod check;
mod migrate;
mod new;
mod plugins;
mod serve;
mod test;

pub use check::check;
pub use migrate::{MigrateArgs, migrate};
pub use new::{Lang, NewPlugin, new};
pub use plugins::{CatalogArgs, PluginsCommand, plugins};
pub use serve::serve;
pub use test::test;

use crate::plugins::powers::RecordingServices;
use crate::plugins::{CaptureSink, Plugin, Runtime, RuntimeConfig};
use crate::store::kv::KvStore;
use anyhow::Context;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

/// A runtime for one-shot author tools: in-memory KV, logs captured, plugin powers recorded instead of
/// carried out, and compiled plugins kept in [`tool_cache_dir`], so checking or testing a plugin again
/// loads its code instead of compiling it (seconds for Python or JavaScript).
pub(crate) fn tool_runtime() -> anyhow::Result<(Runtime, Arc<CaptureSink>, Arc<RecordingServices>)>
{
    let logs = Arc::new(CaptureSink::default());
    let kv = Arc::new(KvStore::open_in_memory().context("opening an in-memory KV store")?);
    let runtime = Runtime::new(RuntimeConfig {
        compilers: crate::plugins::Compilers::Cranelift,
        cache_dir: tool_cache_dir(),
        kv,
        logs: logs.clone(),
    })?;
    let services = Arc::new(RecordingServices::default());
    runtime.services().install(services.clone());
    Ok((runtime, logs, services))
}

/// Where the author tools keep compiled plugins: `$CHATHOOKS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/chathooks/compiled`, else `~/.cache/chathooks/compiled`; none (nothing kept) without
/// a home folder. The folder keeps the plugins last checked or tested, at most
/// [`crate::plugins::cache::MAX_RETIRED_ENTRIES`] besides the current one ([`prune_tool_cache`]).
pub(crate) fn tool_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("CHATHOOKS_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("chathooks").join("compiled")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("chathooks").join("compiled")))
}

/// Drops compiled plugins of [`tool_cache_dir`] beyond the most recent few, keeping `plugin`'s; a failure
/// is only a warning (the cache is a convenience).
pub(crate) fn prune_tool_cache(runtime: &Runtime, plugin: &Plugin) {
    if let Some(cache) = runtime.cache() {
        let live = HashSet::from([plugin.hash().to_owned()]);
        if let Err(err) = cache.retain(&live) {
            tracing::warn!("cannot prune the compile cache: {err}");
        }
    }
}
