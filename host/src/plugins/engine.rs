//! The wasmtime [`Engine`]s of a runtime (one per compiler it uses) and the ticker thread that drives
//! their epochs.

use super::limits::{EPOCH_TICK, MAX_MEMORY_BYTES};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, PoisonError};
use wasmtime::{
    Config, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

/// Which of wasmtime's compilers turns a plugin into machine code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compiler {
    /// Cranelift, the optimizing compiler: the fastest code, compiled in tens of milliseconds for a Rust
    /// plugin and seconds for an interpreter (Python, JavaScript).
    Cranelift,
    /// Winch, the baseline compiler: one pass over the code, several times faster to compile, slower to
    /// run (BENCHMARKS.md, sections 1d and 4).
    Winch,
}

impl Compiler {
    /// The name used in settings, logs and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            Compiler::Cranelift => "cranelift",
            Compiler::Winch => "winch",
        }
    }
}

/// Concurrent component instances across all plugins. Each plugin keeps a few warm instances; 1,000 covers
/// hundreds of plugins under load while reserving only address space.
const TOTAL_COMPONENT_INSTANCES: u32 = 1000;

/// Core instances across all plugins. A component holds several (the program, WASI adapters, shims), and
/// interpreters such as componentize-py hold more.
const TOTAL_CORE_INSTANCES: u32 = 8000;

/// Linear memories and tables across all plugins; a component has about one of each per core module.
const TOTAL_MEMORIES_AND_TABLES: u32 = 4000;

/// Table elements per table: interpreters compiled to wasm (Python, JavaScript) have tens of thousands of
/// functions in their indirect-call table.
const TABLE_ELEMENTS: usize = super::limits::TABLE_ELEMENTS_LIMIT;

/// Instance metadata size per core instance; interpreters have large numbers of globals and functions.
const MAX_CORE_INSTANCE_SIZE: usize = 8 << 20;

/// Where an engine's instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instances {
    /// From the pooling allocator, sized by the totals above: the fastest instantiation, for the engine
    /// plugins run on for good. The pool reserves address space for every slot up front (some 17 TB of
    /// the 128 TB a process has), so a process holds few such engines at once.
    Pooled,
    /// From fresh mappings per instance: slower to instantiate, nothing reserved. For the baseline engine
    /// of tiered compilation, which serves a version for seconds. The plugin's memory cap holds either
    /// way (it is the store's limiter, [`super::instance`]).
    OnDemand,
}

/// Build the engine of `compiler` every plugin of a runtime compiled by it shares, and have the epoch
/// ticker advance it. The two compilers' engines are configured alike otherwise; code compiled by one only runs on
/// its own engine.
/// `parallel` compiles each function on rayon's threads (every core) rather than the caller's alone.
pub(crate) fn new_engine(
    compiler: Compiler,
    instances: Instances,
    parallel: bool,
) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(TOTAL_COMPONENT_INSTANCES)
        .total_core_instances(TOTAL_CORE_INSTANCES)
        .total_memories(TOTAL_MEMORIES_AND_TABLES)
        .total_tables(TOTAL_MEMORIES_AND_TABLES)
        .table_elements(TABLE_ELEMENTS)
        .max_core_instance_size(MAX_CORE_INSTANCE_SIZE)
        .max_component_instance_size(MAX_CORE_INSTANCE_SIZE)
        .max_memories_per_component(64)
        .max_tables_per_component(64)
        .max_memory_size(MAX_MEMORY_BYTES)
        // Execution stacks are for calls on fibers (wasmtime's async support), which plugins never make:
        // a pool of them costs an `mprotect` per guard page at every start (BENCHMARKS.md, problem 27).
        .total_stacks(0);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(parallel)
        .strategy(match compiler {
            Compiler::Cranelift => Strategy::Cranelift,
            Compiler::Winch => Strategy::Winch,
        })
        .allocation_strategy(match instances {
            Instances::Pooled => InstanceAllocationStrategy::Pooling(pool),
            Instances::OnDemand => InstanceAllocationStrategy::OnDemand,
        });
    if compiler == Compiler::Winch {
        // Winch compiles the plugin's functions; Cranelift only the trampolines around them (thousands
        // in CPython), which run for seconds until the optimized code takes over.
        config.cranelift_opt_level(wasmtime::OptLevel::None);
    }
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("creating the wasmtime engine ({})", compiler.name()))?;
    start_ticker(&engine)?;
    Ok(engine)
}

/// The engines whose epochs the ticker thread advances, and whether that thread is running.
struct Ticked {
    engines: Vec<EngineWeak>,
    running: bool,
}

static TICKED: Mutex<Ticked> = Mutex::new(Ticked {
    engines: Vec::new(),
    running: false,
});

/// One thread advances the epoch of every live engine every [`EPOCH_TICK`] (one thread for all, not one
/// each: each wakes a thousand times a second). It holds only weak references, and ends soon after the last
/// engine is dropped; the next engine starts it again.
fn start_ticker(engine: &Engine) -> anyhow::Result<()> {
    let mut ticked = TICKED.lock().unwrap_or_else(PoisonError::into_inner);
    ticked.engines.push(engine.weak());
    if ticked.running {
        return Ok(());
    }
    let spawned = std::thread::Builder::new()
        .name("chathooks-epoch".into())
        .spawn(tick_while_engines_live);
    if let Err(e) = spawned {
        ticked.engines.pop();
        return Err(e).context("starting the epoch ticker thread");
    }
    ticked.running = true;
    Ok(())
}

/// The ticker thread's loop.
fn tick_while_engines_live() {
    loop {
        {
            let mut ticked = TICKED.lock().unwrap_or_else(PoisonError::into_inner);
            ticked.engines.retain(|weak| match weak.upgrade() {
                Some(engine) => {
                    engine.increment_epoch();
                    true
                }
                None => false,
            });
            if ticked.engines.is_empty() {
                ticked.running = false;
                return;
            }
        }
        std::thread::sleep(EPOCH_TICK);
    }
}
