//! `chathooks test <plugin.wasm> <cases.json>`: run a case file against a plugin and report per case.
//!
//! The plugin runs with its manifest (`<name>.toml` beside it, if any): its limits, config values and
//! grants; a case may set its own `config` and `grants`. Its powers act on nothing real: bot posts,
//! custom events, HTTP requests, push notifications and timers are recorded for the case to check.

use super::{Tool, ToolArgs};
use crate::cases::{self, CaseRunner};
use crate::plugins::manifest::PluginSettings;
use crate::plugins::runtime::plugin_name;
use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// Run every case; print `PASS`/`FAIL` per case and a summary line. Returns whether all passed. Compiles
/// once, with the compiler and compile cache of `tools`.
pub fn test(
    plugin_path: &Path,
    cases_path: &Path,
    tools: &ToolArgs,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(cases_path)
        .with_context(|| format!("cannot read case file {}", cases_path.display()))?;
    let file = cases::parse(&text)
        .with_context(|| format!("{} is not a valid case file", cases_path.display()))?;
    let settings = PluginSettings::for_wasm(plugin_path).map_err(anyhow::Error::msg)?;
    let bytes = std::fs::read(plugin_path)
        .with_context(|| format!("cannot read {}", plugin_path.display()))?;
    let (tool, plugin) = Tool::load(tools, &plugin_name(plugin_path), &bytes, &settings)?
        .with_context(|| format!("cannot load {}", plugin_path.display()))?;
    let Tool {
        runtime,
        logs,
        services,
    } = &tool;
    let take_logs = || logs.take();
    let runner = CaseRunner {
        plugin: &plugin,
        kv: runtime.kv(),
        take_logs: &take_logs,
        services: Some(services),
    };
    let results = runner.run(&file);
    let mut failed = 0;
    for result in &results {
        if result.passed() {
            writeln!(out, "PASS {}", result.name)?;
        } else {
            failed += 1;
            writeln!(out, "FAIL {}", result.name)?;
            for failure in &result.failures {
                writeln!(out, "     {failure}")?;
            }
        }
    }
    writeln!(
        out,
        "{} passed, {failed} failed ({} on {})",
        results.len() - failed,
        plugin_name(plugin_path),
        cases_path.display()
    )?;
    Ok(failed == 0)
}
