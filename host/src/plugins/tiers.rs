//! Tiered compilation: a new plugin version serves within milliseconds on code from wasmtime's baseline
//! compiler (Winch), while the optimizing compiler (Cranelift) compiles it in the background; the
//! optimized version then replaces it the way a reload does, so no call fails and no event is lost.
//!
//! ## Shape
//! - A `Tier` is one compiler's engine, with its linker and its compile cache (Winch's entries in a
//!   folder of their own inside the cache folder, so neither cache's pruning takes the other's files).
//! - [`Runtime::load_with`](super::runtime::Runtime::load_with) compiles a version with Winch only when
//!   Cranelift's code for it is not in the cache: a restart, or a version seen before, loads the optimized
//!   code directly.
//! - Each load that ends on Winch queues the plugin for the [`Promoter`]: one thread, at a low priority and
//!   compiling on that thread alone (its engine, `Runtime::background_compiler`, has parallel
//!   compilation off), so the cores keep serving requests. It compiles the version with Cranelift (storing it in the cache), then swaps it
//!   in if the same version is still running ([`Registry::promote`]), under the reload lock.
//! - Calls running on the Winch version finish there; later calls and deliveries take the Cranelift one.
//!   The swap keeps the plugin's statistics and circuit breaker: it is the same version, faster.
//!
//! The costs (BENCHMARKS.md, sections 1d, 4 and 5): a Winch call runs slower than a Cranelift one, for the
//! seconds until the swap; each plugin's code is compiled twice the first time it is seen.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::cache::{CompileCache, content_hash};
use super::engine::{Compiler, Instances, new_engine};
use super::error::LoadError;
use super::instance::PluginState;
use super::registry::Registry;

/// Which compilers compile plugins (`--compiler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compilers {
    /// Winch first, Cranelift in the background (the default).
    #[default]
    Tiered,
    /// Cranelift only: every new version waits for its optimized code before it serves.
    Cranelift,
    /// Winch only: the fastest to load, the slowest to run.
    Winch,
}

impl Compilers {
    /// The setting as written (`tiered`, `cranelift` or `winch`).
    pub fn parse(text: &str) -> Option<Compilers> {
        match text {
            "tiered" => Some(Compilers::Tiered),
            "cranelift" => Some(Compilers::Cranelift),
            "winch" => Some(Compilers::Winch),
            _ => None,
        }
    }
}

/// One compiler's engine, the linker of the host interfaces on it, and its compile cache.
#[derive(Clone)]
pub(crate) struct Tier {
    /// Which compiler.
    pub compiler: Compiler,
    /// Its engine: code it compiled runs only here.
    pub engine: Engine,
    /// The host interfaces, linked on this engine.
    pub linker: Arc<Linker<PluginState>>,
    /// Its compiled components on disk, if the runtime has a cache folder.
    pub cache: Option<CompileCache>,
}

impl Tier {
    /// The optimized tier, and the baseline tier when `compilers` is tiered, with their caches in
    /// `cache_dir` (Winch's in its `winch` subfolder when tiered).
    pub fn for_compilers(
        compilers: Compilers,
        cache_dir: Option<PathBuf>,
    ) -> anyhow::Result<(Tier, Option<Tier>)> {
        Ok(match compilers {
            Compilers::Cranelift => (
                Tier::new(Compiler::Cranelift, Instances::Pooled, true, cache_dir)?,
                None,
            ),
            Compilers::Winch => (
                Tier::new(Compiler::Winch, Instances::Pooled, true, cache_dir)?,
                None,
            ),
            Compilers::Tiered => {
                let winch_dir = cache_dir.as_ref().map(|dir| dir.join("winch"));
                (
                    // Parallel: what compiles here in the foreground (a component Winch cannot
                    // compile) is waited for. The background thread compiles on an engine of its own,
                    // on one thread (`Runtime::background_compiler`).
                    Tier::new(Compiler::Cranelift, Instances::Pooled, true, cache_dir)?,
                    Some(Tier::new(
                        Compiler::Winch,
                        Instances::OnDemand,
                        true,
                        winch_dir,
                    )?),
                )
            }
        })
    }

    fn new(
        compiler: Compiler,
        instances: Instances,
        parallel: bool,
        cache_dir: Option<PathBuf>,
    ) -> anyhow::Result<Tier> {
        let engine = new_engine(compiler, instances, parallel)?;
        let mut linker = Linker::new(&engine);
        super::host::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("adding host interfaces to the linker")?;
        let cache = cache_dir.map(|dir| CompileCache::new(dir, &engine));
        Ok(Tier {
            compiler,
            engine,
            linker: Arc::new(linker),
            cache,
        })
    }

    /// Whether this tier's cache holds compiled code for the version `hash`.
    pub fn has_compiled(&self, hash: &str) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|cache| cache.contains(hash))
    }

    /// The compiled form of `bytes` (version `hash`), from the cache or compiled now.
    pub fn compile(&self, hash: &str, bytes: &[u8]) -> Result<Component, LoadError> {
        match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, hash, bytes),
            None => Component::new(&self.engine, bytes),
        }
        .map_err(|e| LoadError::Invalid(e.into()))
    }
}

/// A plugin version running on the baseline compiler, waiting for its optimized code.
#[derive(Debug, Clone)]
struct Job {
    name: String,
    bytes: Arc<[u8]>,
}

/// Plugin versions waiting to be moved to the optimizing compiler, shared by the registry (which queues
/// them) and the [`Promoter`] (which works through them).
#[derive(Debug, Default)]
pub(crate) struct Promotions {
    state: Mutex<Queue>,
    ready: Condvar,
}

/// The queue, and whether its promoter was stopped (one lock, so a stop is never missed).
#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    stopped: bool,
}

impl Promotions {
    /// Queues `name`'s version of `bytes`; a version of the same name queued earlier is dropped.
    pub fn queue(&self, name: &str, bytes: Arc<[u8]>) {
        let mut state = self.lock();
        state.jobs.retain(|job| job.name != name);
        state.jobs.push_back(Job {
            name: name.to_owned(),
            bytes,
        });
        self.ready.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the next job; `None` once stopped.
    fn next(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return None;
            }
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.ready.notify_all();
    }
}

/// What a promotion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promoted {
    /// The optimized version now serves.
    Swapped,
    /// Another version (or none) runs under the name now: nothing was swapped (the optimized code is
    /// cached all the same).
    Superseded,
    /// The optimizing compiler failed: the baseline version keeps serving.
    Failed(String),
}

impl Registry {
    /// Compiles `name`'s version of `bytes` with the optimizing compiler and, if that version still runs
    /// on the baseline compiler, swaps the optimized one in (statistics and circuit breaker kept). Calls
    /// running on the baseline version finish there. Blocking: compiling takes up to seconds.
    pub fn promote(&self, name: &str, bytes: &[u8]) -> Promoted {
        let hash = content_hash(bytes);
        let current = |registry: &Registry| {
            registry.get(name).filter(|running| {
                running.plugin.hash() == hash && running.plugin.compiler() != Compiler::Cranelift
            })
        };
        let Some(running) = current(self) else {
            return Promoted::Superseded;
        };
        // Compiled outside the reload lock: a reload of a newer version is never held up by it.
        let settings = running.settings.clone();
        let optimized = self
            .runtime
            .load_optimized(&running.plugin, bytes, &settings.powers);
        let _lock = self.lock_reloads();
        match optimized {
            Err(error) => {
                let error = error.to_string();
                tracing::warn!(plugin = name, %hash, "the optimizing compiler failed; the baseline \
                    version keeps serving: {error}");
                Promoted::Failed(error)
            }
            Ok(plugin) => match current(self) {
                Some(still) if still.settings == settings => {
                    self.swap_version(plugin, settings);
                    tracing::info!(plugin = name, %hash, "now running on optimized code (cranelift)");
                    Promoted::Swapped
                }
                _ => Promoted::Superseded,
            },
        }
    }
}

/// The thread that moves plugins to the optimizing compiler. Stops when the registry is dropped (or
/// [`Promoter::stop`]).
#[derive(Debug)]
pub struct Promoter {
    promotions: Arc<Promotions>,
}

impl Promoter {
    /// Starts the thread working through `registry`'s queued promotions.
    pub fn start(registry: &Arc<Registry>) -> anyhow::Result<Promoter> {
        let promotions = registry.promotions().clone();
        let weak: Weak<Registry> = Arc::downgrade(registry);
        let queue = promotions.clone();
        // Compiles into the cache on an engine of its own, holding no reference to the registry (and its
        // engines) meanwhile: a server that stops during a compile is freed at once.
        let compiler = registry.runtime().background_compiler()?;
        std::thread::Builder::new()
            .name("chathooks-tier".into())
            .spawn(move || {
                // Background work: the kernel gives the cores to requests first. Best effort.
                let _ = rustix::process::nice(10);
                while let Some(job) = queue.next() {
                    if let Some((engine, cache)) = &compiler {
                        let hash = content_hash(&job.bytes);
                        if let Err(error) = cache.precompile(engine, &hash, &job.bytes) {
                            tracing::debug!(
                                plugin = job.name,
                                "background compile failed: {error:#}"
                            );
                        }
                    }
                    let Some(registry) = weak.upgrade() else {
                        return;
                    };
                    registry.promote(&job.name, &job.bytes);
                }
            })
            .context("starting the tiered compilation thread")?;
        Ok(Promoter { promotions })
    }

    /// Stops the thread after the promotion it is working on, if any.
    pub fn stop(&self) {
        self.promotions.stop();
    }
}

impl Drop for Promoter {
    fn drop(&mut self) {
        self.stop();
    }
}
