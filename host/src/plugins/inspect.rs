//! Checking that a file is a component built against our WIT, before and after compiling it, so a bad
//! plugin is refused with a message that says what is wrong instead of a wasmtime internals error.

use super::bindings::{SUPPORTED_WIT_VERSIONS, WIT_PACKAGE, WitVersion};
use super::error::LoadError;
use super::hooks::{Hook, HookSet};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The WebAssembly magic number every module and component starts with.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// What the bytes after the magic number are for a core module (version 1).
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// The host interfaces a plugin may import from our package.
const HOST_INTERFACES: &[&str] = &[
    "log",
    "kv",
    "types",
    "config",
    "chat",
    "events",
    "http",
    "push",
    "scheduler",
];

/// The export that is not a chat hook: the scheduler calls it when one of the plugin's timers is due.
pub(crate) const TIMER_EXPORT: &str = "on-timer";

/// Exports that guest toolchains leave in every component they build, for their own build-time
/// pre-initialization; the host never calls them, so they are ignored rather than refused:
/// componentize-py (Python) keeps an `exports` instance with its `init`, componentize-qjs (JavaScript on
/// QuickJS, `jco componentize --backend qjs`) an `init` function.
const TOOLCHAIN_EXPORTS: &[&str] = &["exports", "init"];

/// Refuse files that are not components before spending time compiling them.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(LoadError::NotWasm);
    }
    if bytes[4..8] == CORE_MODULE_VERSION {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

/// An interface name split into package, interface and version, e.g. `chathooks:plugin/kv@0.2.0`.
struct InterfaceName<'a> {
    package: &'a str,
    interface: &'a str,
    version: Option<&'a str>,
}

fn parse_name(name: &str) -> Option<InterfaceName<'_>> {
    let (package, rest) = name.split_once('/')?;
    let (interface, version) = match rest.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (rest, None),
    };
    Some(InterfaceName {
        package,
        interface,
        version,
    })
}

/// The version of `item`, one of ours, if the server implements it.
fn check_version(item: &str, parsed: &InterfaceName<'_>) -> Result<WitVersion, LoadError> {
    parsed
        .version
        .and_then(WitVersion::parse)
        .ok_or_else(|| LoadError::WrongVersion {
            item: item.to_string(),
            found: parsed.version.unwrap_or("(no version)").to_string(),
            supported: SUPPORTED_WIT_VERSIONS,
        })
}

/// What a component exports that the server calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exports {
    /// The version of the package its exports are from (imports may be of any version the server
    /// implements: the linker has them all).
    pub(crate) version: WitVersion,
    /// The chat hooks.
    pub(crate) hooks: HookSet,
    /// Whether it exports `on-timer`.
    pub(crate) timer: bool,
}

/// Read a compiled component's imports and exports: refuse what we cannot serve, return the hooks it
/// exports (and whether it exports `on-timer`).
pub(crate) fn check_component(
    engine: &Engine,
    component: &Component,
) -> Result<Exports, LoadError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let Some(parsed) = parse_name(name) else {
            return Err(LoadError::UnsupportedImport(name.to_string()));
        };
        if parsed.package == WIT_PACKAGE {
            check_version(name, &parsed)?;
            if !HOST_INTERFACES.contains(&parsed.interface) {
                return Err(LoadError::UnsupportedImport(name.to_string()));
            }
        } else if !parsed.package.starts_with("wasi:")
            || !parsed.version.is_some_and(|v| v.starts_with("0.2."))
        {
            return Err(LoadError::UnsupportedImport(name.to_string()));
        }
    }

    let mut hooks = HookSet::default();
    let mut timer = false;
    let mut version: Option<(WitVersion, String)> = None;
    for (name, _) in ty.exports(engine) {
        if TOOLCHAIN_EXPORTS.contains(&name) {
            continue;
        }
        let parsed = parse_name(name).filter(|p| p.package == WIT_PACKAGE);
        let Some(parsed) = parsed else {
            return Err(LoadError::UnknownExport(name.to_string()));
        };
        let this = check_version(name, &parsed)?;
        match &version {
            Some((first, first_name)) if *first != this => {
                return Err(LoadError::MixedVersions {
                    first: first_name.clone(),
                    second: name.to_string(),
                });
            }
            Some(_) => {}
            None => version = Some((this, name.to_string())),
        }
        if parsed.interface == TIMER_EXPORT {
            timer = true;
            continue;
        }
        match Hook::from_name(parsed.interface) {
            Some(hook) if super::hooks::exists_in(hook, this) => hooks.insert(hook),
            _ => return Err(LoadError::UnknownExport(name.to_string())),
        }
    }
    match version {
        Some((version, _)) if !hooks.is_empty() || timer => Ok(Exports {
            version,
            hooks,
            timer,
        }),
        _ => Err(LoadError::NoHooks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_wasm() {
        assert!(matches!(
            check_header(b"hello world, not wasm"),
            Err(LoadError::NotWasm)
        ));
        assert!(matches!(check_header(b""), Err(LoadError::NotWasm)));
    }

    #[test]
    fn core_module_is_named() {
        let module = b"\0asm\x01\x00\x00\x00";
        assert!(matches!(check_header(module), Err(LoadError::CoreModule)));
    }

    #[test]
    fn component_header_passes() {
        let component = b"\0asm\x0d\x00\x01\x00";
        assert!(check_header(component).is_ok());
    }
}
