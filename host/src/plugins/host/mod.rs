//! The host interfaces plugins import, one file per WIT interface, each implemented on a narrow context
//! that holds only what that interface needs.

pub mod kv;
pub mod log;
pub mod stdio;

use super::instance::PluginState;
use wasmtime::component::{HasData, Linker};

/// Selects the `log` context out of a plugin's store.
struct LogData;
impl HasData for LogData {
    type Data<'a> = &'a mut log::LogCtx;
}

/// Selects the `kv` context out of a plugin's store.
struct KvData;
impl HasData for KvData {
    type Data<'a> = &'a mut kv::KvCtx;
}

/// Add every host interface (ours and WASI's) to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    super::bindings::log::add_to_linker::<PluginState, LogData>(linker, |s| &mut s.log)?;
    super::bindings::kv::add_to_linker::<PluginState, KvData>(linker, |s| &mut s.kv)?;
    Ok(())
}
