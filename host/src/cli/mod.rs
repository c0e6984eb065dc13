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
use crate::plugins::{CaptureSink, Runtime, RuntimeConfig};
use crate::store::kv::KvStore;
use anyhow::Context;
use std::sync::Arc;

/// A runtime for one-shot author tools: in-memory KV, logs captured, no compile cache, and plugin powers
/// recorded instead of carried out.
pub(crate) fn tool_runtime() -> anyhow::Result<(Runtime, Arc<CaptureSink>, Arc<RecordingServices>)>
{
    let logs = Arc::new(CaptureSink::default());
    let kv = Arc::new(KvStore::open_in_memory().context("opening an in-memory KV store")?);
    let runtime = Runtime::new(RuntimeConfig {
        compilers: crate::plugins::Compilers::Cranelift,
        cache_dir: None,
        kv,
        logs: logs.clone(),
    })?;
    let services = Arc::new(RecordingServices::default());
    runtime.services().install(services.clone());
    Ok((runtime, logs, services))
}
