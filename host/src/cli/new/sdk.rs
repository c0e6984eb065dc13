//! How a Rust starter finds the SDK: by version, as any crates.io dependency (`chathooks-sdk = "0.1"`), so
//! the starter names no path of the machine `chathooks` was built on. Until the SDK is published, or to
//! work on the SDK itself, `--sdk-path` (or `CHATHOOKS_SDK_PATH`) points that dependency at a local copy
//! with cargo's own mechanism: a `[patch.crates-io]` table in the starter's `.cargo/config.toml`. Deleting
//! that file switches the plugin to the crates.io release; nothing else changes.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The version of `chathooks-sdk` this `chathooks` was released with (`sdk/Cargo.toml`, checked by a
/// test): starters depend on its `major.minor`, so any compatible release satisfies them.
pub(super) const SDK_VERSION: &str = "0.1.0";

/// The requirement a starter's `Cargo.toml` writes: `0.1.0` → `0.1` (cargo reads it as `^0.1`).
pub(super) fn requirement() -> String {
    let mut parts = SDK_VERSION.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => SDK_VERSION.to_string(),
    }
}

/// The `chathooks-sdk` crate folder that `dir` names: the crate itself (`.../sdk/rust`), the SDK's
/// workspace (`.../sdk`) or a chathooks checkout; made absolute, because cargo reads the path from the
/// plugin's folder and the user gave it from wherever they stood.
pub(super) fn resolve(dir: &Path) -> anyhow::Result<PathBuf> {
    let candidates = [dir.to_path_buf(), dir.join("rust"), dir.join("sdk/rust")];
    for candidate in &candidates {
        let manifest = candidate.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let is_sdk = text
            .parse::<toml::Table>()
            .ok()
            .and_then(|table| {
                let package = table.get("package")?.as_table()?;
                Some(package.get("name")?.as_str()? == "chathooks-sdk")
            })
            .unwrap_or(false);
        if is_sdk {
            return std::fs::canonicalize(candidate)
                .with_context(|| format!("cannot resolve {}", candidate.display()));
        }
    }
    bail!(
        "--sdk-path {}: no chathooks-sdk crate there; give the SDK's folder (sdk/rust in a chathooks \
         checkout) or the checkout itself",
        dir.display()
    )
}

/// `.cargo/config.toml` for a starter built against the SDK in `sdk` (an absolute crate folder).
pub(super) fn cargo_config(sdk: &Path) -> String {
    format!(
        "# Until chathooks-sdk is published on crates.io: build this plugin against a local copy of the SDK\n\
         # (written by `chathooks new --sdk-path`). Delete this file to use the crates.io release instead.\n\
         [patch.crates-io]\n\
         chathooks-sdk = {{ path = {} }}\n",
        toml_string(&sdk.to_string_lossy())
    )
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version starters ask for is the SDK's own (`[workspace.package]` of `sdk/Cargo.toml`).
    #[test]
    fn the_version_is_the_sdks() {
        let manifest: toml::Table = include_str!("../../../../sdk/Cargo.toml")
            .parse()
            .unwrap_or_else(|e| panic!("sdk/Cargo.toml: {e}"));
        let version = manifest
            .get("workspace")
            .and_then(|w| w.get("package"))
            .and_then(|p| p.get("version"))
            .and_then(|v| v.as_str());
        assert_eq!(version, Some(SDK_VERSION));
        assert_eq!(requirement(), "0.1");
    }

    /// A checkout, the SDK's workspace and the crate all resolve to the crate; anything else is refused.
    #[test]
    fn the_sdk_path_is_found_from_a_checkout_or_the_crate() {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let expected = std::fs::canonicalize(checkout.join("sdk/rust")).ok();
        for dir in [
            checkout.clone(),
            checkout.join("sdk"),
            checkout.join("sdk/rust"),
        ] {
            assert_eq!(resolve(&dir).ok(), expected, "{}", dir.display());
        }
        let refused = resolve(&checkout.join("host")).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|e| e.contains("no chathooks-sdk crate")));
    }

    /// The config names the SDK as a TOML string that reads back as the same path.
    #[test]
    fn the_config_patches_crates_io() {
        let sdk = Path::new("/home/a \"b\"\\c/sdk/rust");
        let config: toml::Table = cargo_config(sdk).parse().unwrap_or_else(|e| panic!("{e}"));
        let path = config
            .get("patch")
            .and_then(|p| p.get("crates-io"))
            .and_then(|c| c.get("chathooks-sdk"))
            .and_then(|s| s.get("path"))
            .and_then(|p| p.as_str());
        assert_eq!(path, Some("/home/a \"b\"\\c/sdk/rust"));
    }
}
