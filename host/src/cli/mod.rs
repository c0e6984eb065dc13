//! The `chathooks` command line: `new`, `check`, `test`, `call` and `dev` for plugin authors (and `serve`
//! and `migrate` for operators; `plugins` for a cluster's plugin catalog).

mod call;
mod check;
mod dev;
mod migrate;
mod new;
mod plugins;
mod serve;
mod test;

pub use call::{CallArgs, call};
pub use check::check;
pub use dev::{DevArgs, dev};
pub use migrate::{MigrateArgs, migrate};
pub use new::{Lang, NewPlugin, new};
pub use plugins::{CatalogArgs, PluginsCommand, plugins};
pub use serve::serve;
pub use test::test;

use crate::plugins::manifest::PluginSettings;
use crate::plugins::powers::RecordingServices;
use crate::plugins::{CaptureSink, Compilers, LoadError, Plugin, Runtime, RuntimeConfig};
use crate::store::kv::KvStore;
use anyhow::Context;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

/// What the author tools (`check`, `test`, `call`, `dev`) share: where compiled plugins are cached, and
/// which compiler compiles them.
#[derive(Debug, Clone, clap::Args)]
pub struct ToolArgs {
    /// Folder for compiled plugins, so a second run loads instead of compiling
    /// [default: $XDG_CACHE_HOME/chathooks/compiled, else ~/.cache/chathooks/compiled].
    #[arg(long, env = "CHATHOOKS_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every time and keep nothing on disk.
    #[arg(long)]
    pub no_cache: bool,
    /// `winch` compiles in a fraction of the time (a Python plugin in about a second instead of five) and
    /// runs slower; `cranelift` is what a server runs a plugin on in the end.
    #[arg(long, default_value = "winch", value_parser = parse_tool_compiler)]
    pub compiler: Compilers,
}

impl Default for ToolArgs {
    /// The default cache folder, Winch.
    fn default() -> Self {
        ToolArgs {
            cache_dir: None,
            no_cache: false,
            compiler: Compilers::Winch,
        }
    }
}

fn parse_tool_compiler(text: &str) -> Result<Compilers, String> {
    match Compilers::parse(text) {
        Some(c @ (Compilers::Winch | Compilers::Cranelift)) => Ok(c),
        _ => Err(format!("expected winch or cranelift, found {text:?}")),
    }
}

impl ToolArgs {
    /// The cache folder to use, if any: `--cache-dir`, else the user's cache folder.
    pub fn cache_folder(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        if let Some(dir) = &self.cache_dir {
            return Some(dir.clone());
        }
        let env_dir = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let base = env_dir("XDG_CACHE_HOME").or_else(|| env_dir("HOME").map(|h| h.join(".cache")));
        base.map(|b| b.join("chathooks").join("compiled"))
    }
}

/// A runtime for one-shot author tools: in-memory KV, logs captured, plugin powers recorded instead of
/// carried out, and the server's compile cache in the user's cache folder.
pub(crate) struct Tool {
    /// The runtime plugins load on.
    pub runtime: Runtime,
    /// Every line plugins log.
    pub logs: Arc<CaptureSink>,
    /// Every power call plugins make.
    pub services: Arc<RecordingServices>,
}

impl Tool {
    /// A runtime compiling with `compilers`, caching as `args` says.
    pub fn new(args: &ToolArgs, compilers: Compilers) -> anyhow::Result<Tool> {
        let logs = Arc::new(CaptureSink::default());
        let kv = Arc::new(KvStore::open_in_memory().context("opening an in-memory KV store")?);
        let runtime = Runtime::new(RuntimeConfig {
            compilers,
            cache_dir: args.cache_folder(),
            kv,
            logs: logs.clone(),
        })?;
        let services = Arc::new(RecordingServices::default());
        runtime.services().install(services.clone());
        Ok(Tool {
            runtime,
            logs,
            services,
        })
    }

    /// Loads `bytes` as plugin `name` with its manifest's settings, compiling once (or loading the
    /// compiled code from the cache). Winch falls back to Cranelift for a component it cannot compile.
    /// Old cache entries beyond the server's retention are pruned afterwards.
    pub fn load(
        args: &ToolArgs,
        name: &str,
        bytes: &[u8],
        settings: &PluginSettings,
    ) -> anyhow::Result<Result<(Tool, Plugin), LoadError>> {
        let load = |tool: Tool| {
            let plugin = tool.runtime.load_with(
                name,
                bytes,
                settings.limits.clone(),
                settings.powers.clone(),
            )?;
            Ok((tool, plugin))
        };
        let loaded = match load(Tool::new(args, args.compiler)?) {
            Err(LoadError::Invalid(err)) if args.compiler == Compilers::Winch => {
                tracing::debug!("winch cannot compile {name}, using cranelift: {err:#}");
                load(Tool::new(args, Compilers::Cranelift)?)
            }
            other => other,
        };
        if let Ok((tool, plugin)) = &loaded {
            let live: HashSet<String> = [plugin.hash().to_owned()].into();
            for cache in tool.runtime.caches() {
                if let Err(err) = cache.retain(&live) {
                    tracing::debug!("cannot prune the compile cache: {err}");
                }
            }
        }
        Ok(loaded)
    }
}

/// A runtime for `plugins push`'s checks: in-memory KV, logs captured, the user's compile cache, and
/// plugin powers recorded instead of carried out. Cranelift: what a server runs.
pub(crate) fn tool_runtime() -> anyhow::Result<(Runtime, Arc<CaptureSink>, Arc<RecordingServices>)>
{
    let tool = Tool::new(&ToolArgs::default(), Compilers::Cranelift)?;
    Ok((tool.runtime, tool.logs, tool.services))
}
