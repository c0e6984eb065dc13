//! `chathooks check <plugin.wasm>`: can this server load the plugin, and which hooks does it implement?

use crate::plugins::bindings::{WIT_PACKAGE, WIT_VERSION};
use crate::plugins::{PluginLimits, runtime::plugin_name};
use std::io::Write;
use std::path::Path;

/// Print what the plugin is, or why it cannot be loaded. Returns whether it can.
pub fn check(path: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    let (runtime, _) = super::tool_runtime()?;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            writeln!(out, "error: cannot read {}: {err}", path.display())?;
            return Ok(false);
        }
    };
    let info = match runtime.inspect(&bytes) {
        Ok(info) => info,
        Err(err) => {
            writeln!(out, "error: {} cannot be loaded: {err}", path.display())?;
            return Ok(false);
        }
    };
    // Loading also instantiates once, which type-checks every hook and runs the plugin's start code.
    if let Err(err) = runtime.load(&plugin_name(path), &bytes, PluginLimits::default()) {
        writeln!(out, "error: {} cannot be loaded: {err}", path.display())?;
        return Ok(false);
    }
    writeln!(out, "plugin:  {}", plugin_name(path))?;
    writeln!(out, "wit:     {WIT_PACKAGE}@{WIT_VERSION}")?;
    writeln!(out, "sha256:  {}", info.hash)?;
    writeln!(out, "size:    {} bytes", bytes.len())?;
    writeln!(out, "hooks:")?;
    for hook in info.hooks.iter() {
        writeln!(out, "  {} ({:?})", hook.name(), hook.kind())?;
    }
    writeln!(out, "imports:")?;
    for import in &info.imports {
        writeln!(out, "  {import}")?;
    }
    Ok(true)
}
