//! Installing a plugin from bytes (an admin's upload): checked exactly as a file of the plugins folder is
//! loaded, and only then written into the folder and swapped in.
//!
//! [`Registry::install`] runs the load path every file takes (`Registry::prepare_parts`, then the same
//! swap and reporting) on the uploaded bytes and manifest, under the registry's reload lock, *before*
//! anything is written: a bad upload (not a component, a manifest mistake, a required setting without a
//! value) is refused with the loader's reason, and the files and the running version stay as they were.
//! A good one is written into the plugins folder atomically (each file through a hidden temporary file
//! renamed into place, the manifest first), so a restart, a rescan and the watcher all find what runs;
//! the watcher then sees files equal to the running version and does nothing.
//!
//! [`Registry::check_upload`] is the same check without the swap, for a cluster node that puts the
//! upload into the cluster's catalog instead (every node then loads it from there).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::cache::content_hash;
use super::manifest::PluginSettings;
use super::overrides::Overrides;
use super::registry::Registry;
use super::reload::{Prepared, ReloadReport};

/// Why an upload was not installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The upload would not load: the loader's reason (nothing was written; the running version, if
    /// any, keeps serving).
    #[error("{reason}")]
    Refused {
        /// What the loader said.
        reason: String,
    },
    /// The upload's setting values could not be stored (nothing was written).
    #[error("cannot store the upload's settings: {reason}")]
    Keep {
        /// Why.
        reason: String,
    },
    /// The registry has no plugins folder to write into.
    #[error("the server has no plugins folder to install into")]
    NoFolder,
    /// A file could not be written.
    #[error("cannot write {}: {source}; check the plugins folder's permissions and free space", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// A plugin to install or check: its name, component, manifest text and setting values that come with
/// it (over the admin's stored ones; already checked against the manifest's types).
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The plugin's name.
    pub name: &'a str,
    /// The component.
    pub wasm: &'a [u8],
    /// The manifest's text, if any.
    pub manifest: Option<&'a str>,
    /// Setting values sent with the upload (a required secret, say), over the stored ones.
    pub settings: &'a Map<String, Value>,
}

impl Registry {
    /// Checks `upload` the way a load would, with the admin's overrides of its name and the setting values
    /// it brings, and if it would load, calls `keep` (which stores those values, so every later load has
    /// them), writes the files into the plugins folder and swaps it in (or, when an admin has disabled
    /// the plugin, leaves it off). All under the reload lock, so the watcher loads nothing in between.
    /// Blocking (compiles).
    pub fn install(
        &self,
        upload: Upload<'_>,
        keep: impl FnOnce() -> Result<(), String>,
    ) -> Result<ReloadReport, InstallError> {
        let Upload {
            name,
            wasm,
            manifest,
            ..
        } = upload;
        let folder = self.folder().ok_or(InstallError::NoFolder)?;
        let _lock = self.lock_reloads();
        let (settings, overrides) = self.upload_parts(&upload)?;
        let hash = content_hash(wasm);
        let wasm_path = folder.join(format!("{name}.wasm"));
        let toml_path = folder.join(format!("{name}.toml"));
        let prepared = self
            .prepare_parts(name, settings, wasm.to_vec(), &overrides)
            .map_err(|reason| InstallError::Refused { reason })?;
        keep().map_err(|reason| InstallError::Keep { reason })?;
        match manifest {
            Some(text) => write_atomically(&toml_path, text.as_bytes()),
            None => remove_if_present(&toml_path),
        }
        .map_err(|source| InstallError::Write {
            path: toml_path,
            source,
        })?;
        write_atomically(&wasm_path, wasm).map_err(|source| InstallError::Write {
            path: wasm_path.clone(),
            source,
        })?;
        let prepared = if overrides.disabled {
            Prepared::Disabled
        } else {
            prepared
        };
        tracing::info!(plugin = %name, %hash, "plugin uploaded through the admin API");
        let report = self.apply(name, &wasm_path, Ok(prepared));
        self.prune_cache();
        Ok(report)
    }

    /// What [`Registry::install`] checks, without writing or swapping anything: whether `wasm` with
    /// `manifest` would load as `name` with the admin's overrides. Returns the component's SHA-256.
    /// Blocking (compiles; the compile cache keeps the result for the load that follows).
    pub fn check_upload(&self, upload: Upload<'_>) -> Result<String, InstallError> {
        let (settings, overrides) = self.upload_parts(&upload)?;
        let Upload { name, wasm, .. } = upload;
        let settings =
            settings
                .resolved(name, &overrides.settings)
                .map_err(|e| InstallError::Refused {
                    reason: e.to_string(),
                })?;
        self.runtime
            .load_with(name, wasm, settings.limits, settings.powers)
            .map_err(|e| InstallError::Refused {
                reason: e.to_string(),
            })?;
        Ok(content_hash(wasm))
    }

    /// The upload's manifest, parsed, and the admin's overrides of its name with the upload's setting
    /// values over them.
    fn upload_parts(
        &self,
        upload: &Upload<'_>,
    ) -> Result<(PluginSettings, Overrides), InstallError> {
        let settings = match upload.manifest {
            Some(text) => PluginSettings::parse(text).map_err(|e| InstallError::Refused {
                reason: format!("invalid manifest: {e}"),
            })?,
            None => PluginSettings::default(),
        };
        let mut overrides = self
            .overrides_of(upload.name)
            .map_err(|reason| InstallError::Refused { reason })?;
        for (key, value) in upload.settings {
            overrides.settings.insert(key.clone(), value.clone());
        }
        Ok((settings, overrides))
    }
}

/// Writes `bytes` to `path` through a hidden temporary file beside it (`.<name>.part`, which the watcher
/// ignores) renamed into place, so no reader ever sees a partial file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.part"));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path)
}

/// Removes `path`; a file that is not there is fine.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::chat::testkit::fixture;
    use crate::plugins::overrides::OverrideSource;
    use crate::plugins::registry::PluginState;
    use crate::plugins::reload::Change;
    use crate::plugins::{CaptureSink, Runtime, RuntimeConfig};
    use crate::store::kv::KvStore;

    /// Overrides a test sets by hand.
    #[derive(Debug, Default)]
    struct Manual(Mutex<Overrides>);

    impl OverrideSource for Manual {
        fn overrides(&self, _: &str) -> Result<Overrides, String> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    fn registry(dir: &Path, source: Arc<Manual>) -> Registry {
        let runtime = Runtime::new(RuntimeConfig {
            compilers: crate::plugins::Compilers::Cranelift,
            cache_dir: Some(dir.join("cache")),
            kv: Arc::new(KvStore::open_in_memory().unwrap()),
            logs: Arc::new(CaptureSink::default()),
        })
        .unwrap();
        Registry::new(runtime).with_overrides(source)
    }

    const NEEDS_TOKEN: &str =
        "version = \"1\"\n[settings.token]\ntype = \"secret\"\nrequired = true\n";

    #[test]
    fn an_upload_is_checked_before_anything_is_written_and_overrides_apply_at_each_load() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let source = Arc::new(Manual::default());
        let registry = registry(dir.path(), source.clone());
        registry.load_dir(&plugins).unwrap();
        let wasm = std::fs::read(fixture("only_sent").wasm).unwrap();
        let none = Map::new();
        let upload = |manifest, settings| Upload {
            name: "x",
            wasm: &wasm,
            manifest,
            settings,
        };

        // A required setting without a value: refused, nothing kept or written.
        let refused = registry.install(upload(Some(NEEDS_TOKEN), &none), || panic!("kept"));
        assert!(
            matches!(&refused, Err(InstallError::Refused { reason }) if reason.contains("`token`")),
            "{refused:?}"
        );
        assert!(std::fs::read_dir(&plugins).unwrap().next().is_none());

        // With the value: kept, written, loaded with it.
        let token = serde_json::json!({"token": "t0ken"});
        let token = token.as_object().unwrap();
        let mut kept = false;
        let report = registry
            .install(upload(Some(NEEDS_TOKEN), token), || {
                kept = true;
                Ok(())
            })
            .unwrap();
        assert_eq!((report.change, kept), (Change::Loaded, true));
        assert_eq!(std::fs::read(plugins.join("x.wasm")).unwrap(), wasm);
        let running = registry.get("x").unwrap();
        assert_eq!(running.settings.powers.config["token"], "t0ken");

        // Overrides are read at each load: once stored, a rescan keeps the value; disabled, it is off.
        source.0.lock().unwrap().settings = token.clone();
        assert_eq!(registry.rescan().unwrap()[0].change, Change::Unchanged);
        source.0.lock().unwrap().disabled = true;
        assert_eq!(registry.rescan().unwrap()[0].change, Change::Disabled);
        assert!(registry.get("x").is_none());
        assert_eq!(registry.plugins_status()[0].state, PluginState::Off);
        assert_eq!(registry.rescan().unwrap()[0].change, Change::Unchanged);
        source.0.lock().unwrap().disabled = false;
        assert_eq!(registry.rescan().unwrap()[0].change, Change::Loaded);
        // A stored value the manifest's type refuses fails the load like a bad file.
        source.0.lock().unwrap().settings = serde_json::json!({"token": 5})
            .as_object()
            .cloned()
            .unwrap();
        let failed = registry.load_file(&plugins.join("x.wasm"));
        assert_eq!(failed.change, Change::Failed);
        assert!(
            registry.get("x").is_some(),
            "the running version keeps serving"
        );
    }
}
