//! `chathooks check <plugin.wasm>`: can this server load the plugin, which hooks does it implement, which
//! host interfaces does it import, and what does its manifest (`<name>.toml` beside it) grant?

use super::{Tool, ToolArgs};
use crate::plugins::bindings::{WIT_PACKAGE, WIT_VERSION};
use crate::plugins::manifest::PluginSettings;
use crate::plugins::powers::Grants;
use crate::plugins::runtime::plugin_name;
use std::io::Write;
use std::path::Path;

/// Print what the plugin is, or why it cannot be loaded. Returns whether it can. Compiles once, with the
/// compiler and compile cache of `tools`.
pub fn check(path: &Path, tools: &ToolArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            writeln!(out, "error: cannot read {}: {err}", path.display())?;
            return Ok(false);
        }
    };
    let settings = match PluginSettings::for_wasm(path) {
        Ok(settings) => settings,
        Err(err) => {
            writeln!(out, "error: {err}")?;
            return Ok(false);
        }
    };
    // Loading instantiates once, which type-checks every hook and runs the plugin's start code; the
    // inspection after it finds the compiled code in the cache.
    let name = plugin_name(path);
    let (tool, _plugin) = match Tool::load(tools, &name, &bytes, &settings)? {
        Ok(loaded) => loaded,
        Err(err) => {
            writeln!(out, "error: {} cannot be loaded: {err}", path.display())?;
            return Ok(false);
        }
    };
    let info = match tool.runtime.inspect(&bytes) {
        Ok(info) => info,
        Err(err) => {
            writeln!(out, "error: {} cannot be loaded: {err}", path.display())?;
            return Ok(false);
        }
    };
    writeln!(out, "plugin:  {name}")?;
    let version = info.version.as_str();
    let older = if version == WIT_VERSION {
        String::new()
    } else {
        format!(" (an earlier version, still loaded; the newest is {WIT_VERSION})")
    };
    writeln!(out, "wit:     {WIT_PACKAGE}@{version}{older}")?;
    writeln!(out, "sha256:  {}", info.hash)?;
    writeln!(out, "size:    {} bytes", bytes.len())?;
    writeln!(out, "hooks:")?;
    for hook in info.hooks.iter() {
        writeln!(out, "  {} ({:?})", hook.name(), hook.kind())?;
    }
    if info.timer {
        writeln!(out, "  on-timer (timer)")?;
    }
    let grants = &settings.powers.grants;
    writeln!(out, "imports:")?;
    for import in &info.imports {
        match needs_grant(import, grants) {
            Some(note) => writeln!(out, "  {import}  ({note})")?,
            None => writeln!(out, "  {import}")?,
        }
    }
    let manifest = path.with_extension("toml");
    if manifest.exists() {
        writeln!(out, "manifest: {}", manifest.display())?;
        writeln!(out, "  priority: {}", settings.priority)?;
        writeln!(out, "  fail:     {:?}", settings.fail)?;
    } else {
        writeln!(out, "manifest: none ({} not found)", manifest.display())?;
    }
    writeln!(out, "grants:   log, kv, config (always)")?;
    for grant in grants.describe() {
        writeln!(out, "  {grant}")?;
    }
    let keys: Vec<&str> = settings.powers.config.keys().map(String::as_str).collect();
    if !keys.is_empty() {
        writeln!(out, "config:   {}", keys.join(", "))?;
    }
    // Manifest v2 (version, description, typed settings): see `PluginSettings::describe_v2`.
    for line in settings.describe_v2() {
        writeln!(out, "{line}")?;
    }
    Ok(true)
}

/// For an import of a power interface: whether the manifest grants it (`granted: ...` or
/// `not granted: calls will be denied`).
fn needs_grant(import: &str, grants: &Grants) -> Option<String> {
    let interface = import
        .strip_prefix(WIT_PACKAGE)?
        .strip_prefix('/')?
        .split('@')
        .next()?;
    let granted: Vec<&str> = match interface {
        "chat" => [
            ("chat_post", grants.chat_post),
            ("chat_join", grants.chat_join),
            ("chat_read", grants.chat_read),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect(),
        "events" if grants.events => vec!["events"],
        "http" if !grants.http_hosts.is_empty() => vec!["http_hosts"],
        "push" if grants.push => vec!["push"],
        "scheduler" if grants.scheduler => vec!["scheduler"],
        "events" | "http" | "push" | "scheduler" => Vec::new(),
        _ => return None,
    };
    Some(if granted.is_empty() {
        "not granted: its calls will be denied".to_owned()
    } else {
        format!("granted: {}", granted.join(", "))
    })
}
