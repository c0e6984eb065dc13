//! The one wasmtime [`Engine`] of a runtime and the ticker thread that drives its epoch.

use super::limits::{EPOCH_TICK, MAX_MEMORY_BYTES};
use anyhow::Context;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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

/// Build the engine every plugin of a runtime shares, and start its epoch ticker.
pub(crate) fn new_engine() -> anyhow::Result<Engine> {
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
        .max_memory_size(MAX_MEMORY_BYTES);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")?;
    start_ticker(&engine)?;
    Ok(engine)
}

/// One thread per engine advances the epoch every [`EPOCH_TICK`]; it holds only a weak reference, so it
/// ends soon after the last user of the engine drops it.
fn start_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("chathooks-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok(())
}
