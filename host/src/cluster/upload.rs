//! Reading a plugin from disk and checking it before it goes into a cluster's catalog: what
//! `chathooks plugins push` and publisher nodes ([`super::publisher`]) share.
//!
//! A file goes into the catalog only if the loader would take it: the manifest parses, and the bytes are a
//! component of our WIT (the checks of `chathooks check`, compiling included). A bad file is refused
//! where it was pushed, with the loader's message, instead of reaching every node and failing there.

use std::path::{Path, PathBuf};

use crate::plugins::cache::content_hash;
use crate::plugins::manifest::PluginSettings;
use crate::plugins::runtime::{Runtime, plugin_name};

/// Longest plugin name the catalog takes.
pub const MAX_NAME_LEN: usize = 128;

/// Why a plugin file cannot go into the catalog.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The file (or its manifest) cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file's name cannot be a plugin's name.
    #[error(
        "{} cannot be pushed: a plugin's name (the file name without .wasm) must be 1-{MAX_NAME_LEN} \
         letters, digits, '-', '_' or '.', not starting with '.'; rename the file",
        path.display()
    )]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// The manifest beside the file is not valid.
    #[error("{message}; fix the manifest and push again")]
    BadManifest {
        /// The loader's message, naming the manifest.
        message: String,
    },
    /// The file is not a component this server can load.
    #[error("{} is not a plugin this server can load: {message}", path.display())]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
}

/// A plugin read from disk and checked: what goes into the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its name (the file name without `.wasm`).
    pub name: String,
    /// The component.
    pub wasm: Vec<u8>,
    /// The text of `<name>.toml` beside it, if there is one.
    pub manifest: Option<String>,
    /// The component's SHA-256.
    pub sha256: String,
}

/// Whether `name` can name a plugin in the catalog (and a file in a node's folder): see
/// [`UploadError::BadName`].
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads `wasm` and the manifest beside it, and checks both with `runtime` (compiling the component,
/// which its compile cache keeps). Blocking.
pub fn read_and_check(runtime: &Runtime, wasm: &Path) -> Result<Upload, UploadError> {
    let name = plugin_name(wasm);
    if !valid_name(&name) {
        return Err(UploadError::BadName {
            path: wasm.to_path_buf(),
        });
    }
    let bytes = std::fs::read(wasm).map_err(|source| UploadError::Read {
        path: wasm.to_path_buf(),
        source,
    })?;
    let manifest_path = wasm.with_extension("toml");
    let manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(UploadError::Read {
                path: manifest_path,
                source,
            });
        }
    };
    if let Some(text) = &manifest {
        PluginSettings::parse(text).map_err(|e| UploadError::BadManifest {
            message: format!("invalid manifest {}: {e}", manifest_path.display()),
        })?;
    }
    runtime
        .inspect(&bytes)
        .map_err(|e| UploadError::NotAPlugin {
            path: wasm.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(Upload {
        name,
        sha256: content_hash(&bytes),
        wasm: bytes,
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_stay_inside_the_folder() {
        for good in ["echo", "my-filter", "a_b.v2", "X9"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".hidden", "../x", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
