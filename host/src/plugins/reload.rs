//! Loading, replacing and unloading the registry's plugins: from one file, a whole folder (start-up and
//! `POST /v1/admin/plugins/reload`), or a removal. The watcher ([`super::watcher`]) calls these too.
//!
//! Every change holds the registry's reload lock, so two loads of one name never race (an older file's
//! slow compile cannot overtake a newer one). A file whose bytes and manifest equal the running version's
//! is left alone ([`Change::Unchanged`]). A file that fails to load leaves the running version serving and
//! records why (shown in the admin API until a later load of that name succeeds or the file is removed).
//! After each change, compile-cache entries no running plugin uses are pruned ([`CompileCache::retain`]).
//!
//! [`CompileCache::retain`]: super::cache::CompileCache::retain

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard, OnceLock, PoisonError};

use serde::Serialize;

use super::cache::content_hash;
use super::engine::Compiler;
use super::hooks::Hook;
use super::manifest::PluginSettings;
use super::plugin::Plugin;
use super::registry::{Entry, Registry};
use super::runtime::plugin_name;

/// Plugin files a folder's load reads and compiles at once, at most (fewer on a machine with fewer
/// cores): each compile already uses every core for part of its time, and each holds its component's
/// compiler state in memory.
pub const MAX_CONCURRENT_PREPARES: usize = 4;

/// Why a plugin file was not loaded when preparing it panicked (the panic's message is in the log).
const PREPARE_PANICKED: &str = "loading it panicked, a bug in chathooks or wasmtime; the panic's message is in the server's log";

/// What a reload did to one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// A plugin that was not running now is.
    Loaded,
    /// A new version replaced the running one (new bytes or a new manifest).
    Replaced,
    /// The bytes and manifest are those of the running version: nothing was done.
    Unchanged,
    /// Its file is gone: unloaded.
    Unloaded,
    /// An admin disabled it: not running, though its file is there (and stays).
    Disabled,
    /// The file failed to load; the running version, if any, keeps serving.
    Failed,
}

/// One plugin's outcome of a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// The plugin's name.
    pub name: String,
    /// What happened.
    pub change: Change,
    /// The version running afterwards, if any.
    pub hash: Option<String>,
    /// Why loading failed, for `failed`.
    pub error: Option<String>,
}

/// What [`Registry::try_load_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The files changed while loading: nothing was done.
    Changed,
    /// Loaded, replaced, or unchanged.
    Done(ReloadReport),
    /// The file failed to load (not recorded yet).
    Failed(String),
}

/// A file read and checked, ready to swap in.
pub(super) enum Prepared {
    /// Same bytes and manifest as the running version.
    Same,
    /// An admin disabled it: not to be loaded.
    Disabled,
    /// A new version (its settings boxed: they are most of the enum's size), with its bytes (for the
    /// optimizing compiler, when it starts on the baseline one).
    New(Plugin, Box<PluginSettings>, Arc<[u8]>),
}

impl Registry {
    /// The plugins folder remembered by [`Registry::load_dir`].
    pub fn folder(&self) -> Option<PathBuf> {
        self.folder
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads every `*.wasm` in `dir` (sorted by name), each with its manifest, and remembers `dir` as the
    /// folder [`Registry::rescan`] reads. Failures are logged and listed; returns the names running
    /// afterwards. A missing folder is an error. Blocking.
    pub fn load_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        *self.folder.write().unwrap_or_else(PoisonError::into_inner) = Some(dir.to_path_buf());
        self.rescan_dir(dir)?;
        Ok(self.loaded_names())
    }

    /// Brings the registry in line with the remembered folder: loads new and changed files, unloads
    /// plugins whose file is gone. Blocking.
    pub fn rescan(&self) -> std::io::Result<Vec<ReloadReport>> {
        let dir = self.folder().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no plugins folder has been loaded",
            )
        })?;
        self.rescan_dir(&dir)
    }

    /// [`Registry::rescan`] of `dir`. Returns one report per plugin that is or was there.
    ///
    /// The files are read and compiled several at a time (`Registry::prepare_all`), then swapped in
    /// one by one in name order.
    pub fn rescan_dir(&self, dir: &Path) -> std::io::Result<Vec<ReloadReport>> {
        let files = wasm_files(dir)?;
        let _lock = self.lock_reloads();
        let prepared = self.prepare_all(&files);
        let mut reports: Vec<ReloadReport> = files
            .iter()
            .zip(prepared)
            .map(|(path, prepared)| self.apply(&plugin_name(path), path, prepared))
            .collect();
        let present: HashSet<String> = files.iter().map(|p| plugin_name(p)).collect();
        let gone: Vec<String> = self
            .read()
            .keys()
            .filter(|name| !present.contains(*name))
            .cloned()
            .collect();
        reports.extend(gone.iter().filter_map(|name| self.unload_locked(name)));
        self.prune_cache();
        Ok(reports)
    }

    /// Loads (or reloads) the plugin at `path` with its manifest. Blocking (compiling can take seconds).
    pub fn load_file(&self, path: &Path) -> ReloadReport {
        let _lock = self.lock_reloads();
        let report = self.load_locked(&plugin_name(path), path);
        self.prune_cache();
        report
    }

    /// Like [`Registry::load_file`] for the watcher: when `still_same` (asked after reading and compiling)
    /// says the files changed meanwhile, nothing is swapped in ([`Attempt::Changed`]); and a failure is
    /// returned without being recorded ([`Attempt::Failed`]), because the file may still be being
    /// written: the watcher records it with [`Registry::record_load_error`] once the file has settled.
    pub fn try_load_file(&self, path: &Path, still_same: impl FnOnce() -> bool) -> Attempt {
        let _lock = self.lock_reloads();
        let name = plugin_name(path);
        let prepared = self.prepare(&name, path);
        if !still_same() {
            tracing::debug!(plugin = %name, "plugin file changed while loading; waiting for it to settle");
            return Attempt::Changed;
        }
        match prepared {
            Err(error) => {
                tracing::debug!(plugin = %name, "plugin file failed to load, waiting for it to settle: {error}");
                Attempt::Failed(error)
            }
            Ok(prepared) => {
                let report = self.apply(&name, path, Ok(prepared));
                self.prune_cache();
                Attempt::Done(report)
            }
        }
    }

    /// Records that the plugin at `path` failed to load with `error` (the running version, if any, keeps
    /// serving), as [`Registry::load_file`] does for a failure.
    pub fn record_load_error(&self, path: &Path, error: String) -> ReloadReport {
        let _lock = self.lock_reloads();
        self.apply(&plugin_name(path), path, Err(error))
    }

    /// Unloads `name` (its file was removed); `None` if it was not there. Calls in progress finish on
    /// the version they started with; its after-hook deliveries stay in the outbox until a plugin of that
    /// name is loaded again, or become dead letters after the dispatcher's grace period.
    pub fn unload(&self, name: &str) -> Option<ReloadReport> {
        let _lock = self.lock_reloads();
        let report = self.unload_locked(name);
        self.prune_cache();
        report
    }

    pub(crate) fn lock_reloads(&self) -> MutexGuard<'_, ()> {
        self.reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Registry::prepare`] of each of `files`, in their order, on up to [`MAX_CONCURRENT_PREPARES`]
    /// threads (and no more than the machine's cores) taking the next file as they finish one.
    ///
    /// Compiling one component keeps the cores busy only part of the time: wasmtime compiles its
    /// functions in parallel, but parsing it, linking the code and the first instance run on one thread.
    /// Preparing two at once fills those gaps: 20 new Rust plugins start in about 0.8x the time on two
    /// cores (BENCHMARKS.md, problem 40).
    fn prepare_all(&self, files: &[PathBuf]) -> Vec<Result<Prepared, String>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, MAX_CONCURRENT_PREPARES)
            .min(files.len());
        if threads <= 1 {
            return files.iter().map(|path| self.prepare_caught(path)).collect();
        }
        let next = AtomicUsize::new(0);
        let slots: Vec<OnceLock<Result<Prepared, String>>> =
            files.iter().map(|_| OnceLock::new()).collect();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let (Some(path), Some(slot)) = (files.get(i), slots.get(i)) else {
                            break;
                        };
                        // Each index is taken once, so the slot is empty.
                        let _ = slot.set(self.prepare_caught(path));
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(|| Err(PREPARE_PANICKED.to_owned()))
            })
            .collect()
    }

    /// [`Registry::prepare`] of the file at `path`; a panic while preparing it (a bug) fails this file
    /// alone instead of the whole folder's load.
    fn prepare_caught(&self, path: &Path) -> Result<Prepared, String> {
        std::panic::catch_unwind(AssertUnwindSafe(|| self.prepare(&plugin_name(path), path)))
            .unwrap_or_else(|_| Err(PREPARE_PANICKED.to_owned()))
    }

    fn load_locked(&self, name: &str, path: &Path) -> ReloadReport {
        let prepared = self.prepare(name, path);
        self.apply(name, path, prepared)
    }

    /// Reads the admin's overrides, the manifest and the file, then [`Registry::prepare_parts`].
    fn prepare(&self, name: &str, path: &Path) -> Result<Prepared, String> {
        let overrides = self.overrides_of(name)?;
        if overrides.disabled {
            return Ok(Prepared::Disabled);
        }
        let settings = PluginSettings::for_wasm(path)?;
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read plugin file {}: {e}", path.display()))?;
        self.prepare_parts(name, settings, bytes, &overrides)
    }

    /// Applies the admin's setting `overrides` to the manifest's `settings`, then compiles and
    /// instantiates `bytes` unless they and the settings are the running version's. A required setting
    /// without a value, or an override the manifest's type refuses, fails like a bad file. What every
    /// load goes through: a file in the folder ([`Registry::prepare`]) and an upload
    /// ([`Registry::install`]).
    pub(super) fn prepare_parts(
        &self,
        name: &str,
        settings: PluginSettings,
        bytes: Vec<u8>,
        overrides: &super::overrides::Overrides,
    ) -> Result<Prepared, String> {
        let settings = settings
            .resolved(name, &overrides.settings)
            .map_err(|e| e.to_string())?;
        let hash = content_hash(&bytes);
        if let Some(running) = self.get(name)
            && running.plugin.hash() == hash
            && running.settings == settings
        {
            return Ok(Prepared::Same);
        }
        let plugin = self
            .runtime
            .load_hashed(
                name,
                &bytes,
                &hash,
                settings.limits.clone(),
                settings.powers.clone(),
            )
            .map_err(|e| e.to_string())?;
        Ok(Prepared::New(plugin, Box::new(settings), bytes.into()))
    }

    pub(super) fn apply(
        &self,
        name: &str,
        path: &Path,
        prepared: Result<Prepared, String>,
    ) -> ReloadReport {
        let report = |change, hash: Option<&str>, error: Option<String>| ReloadReport {
            name: name.to_owned(),
            change,
            hash: hash.map(str::to_owned),
            error,
        };
        match prepared {
            Ok(Prepared::Same) => {
                let mut entries = self.write();
                let entry = entries.get_mut(name);
                let hash = entry.and_then(|e| {
                    e.load_error = None;
                    e.running.as_ref().map(|p| p.plugin.hash().to_owned())
                });
                report(Change::Unchanged, hash.as_deref(), None)
            }
            Ok(Prepared::Disabled) => {
                let was = self.read().get(name).map(|e| e.disabled);
                match self.disable(name) {
                    Some(old) => {
                        tracing::info!(plugin = %name, hash = %old.plugin.hash(), "plugin disabled by an admin: unloaded, its file stays");
                    }
                    None if was != Some(true) => {
                        tracing::info!(plugin = %name, "plugin disabled by an admin: not loaded");
                    }
                    None => return report(Change::Unchanged, None, None),
                }
                report(Change::Disabled, None, None)
            }
            Ok(Prepared::New(plugin, settings, bytes)) => {
                let settings = *settings;
                let hash = plugin.hash().to_owned();
                let hooks: Vec<&str> = plugin.hooks().iter().map(Hook::name).collect();
                let compiler = plugin.compiler();
                if self.runtime.is_tiered() && compiler != Compiler::Cranelift {
                    self.promotions.queue(name, bytes);
                }
                let compiler = compiler.name();
                match self.insert(plugin, settings) {
                    None => {
                        tracing::info!(plugin = %name, %hash, ?hooks, compiler, "plugin loaded");
                        report(Change::Loaded, Some(&hash), None)
                    }
                    Some(old) => {
                        tracing::info!(plugin = %name, %hash, old_hash = %old.plugin.hash(), ?hooks, compiler, "plugin replaced");
                        report(Change::Replaced, Some(&hash), None)
                    }
                }
            }
            Err(reason) => {
                let mut entries = self.write();
                let entry = entries.entry(name.to_owned()).or_insert_with(Entry::empty);
                entry.load_error = Some(reason.clone());
                entry.disabled = false;
                let serving = entry.running.as_ref().map(|p| p.plugin.hash().to_owned());
                match &serving {
                    Some(hash) => {
                        tracing::error!(plugin = %name, path = %path.display(), serving = %hash,
                        "plugin failed to load, the running version keeps serving: {reason}")
                    }
                    None => tracing::error!(plugin = %name, path = %path.display(),
                        "plugin failed to load: {reason}"),
                }
                report(Change::Failed, serving.as_deref(), Some(reason))
            }
        }
    }

    fn unload_locked(&self, name: &str) -> Option<ReloadReport> {
        let removed = self.write().remove(name)?;
        let hash = removed.running.map(|p| p.plugin.hash().to_owned());
        tracing::info!(plugin = %name, hash = ?hash, "plugin unloaded: its file is gone");
        Some(ReloadReport {
            name: name.to_owned(),
            change: Change::Unloaded,
            hash,
            error: None,
        })
    }

    /// Removes compile-cache entries no running plugin uses (beyond a few recent ones).
    pub(super) fn prune_cache(&self) {
        let live: HashSet<String> = self
            .read()
            .values()
            .filter_map(|e| e.running.as_ref().map(|p| p.plugin.hash().to_owned()))
            .collect();
        for cache in self.runtime.caches() {
            match cache.retain(&live) {
                Ok(0) => {}
                Ok(n) => tracing::debug!("removed {n} stale compile-cache entries"),
                Err(e) => tracing::warn!("cannot prune the compile cache: {e}"),
            }
        }
    }
}

/// The `*.wasm` files directly in `dir`, sorted.
pub(crate) fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_plugin_file(p, "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Whether `path` names a plugin file with extension `ext` (`wasm` or `toml`): not hidden (editors and
/// copy tools write hidden temporary files), with a non-empty name.
pub(crate) fn is_plugin_file(path: &Path, ext: &str) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && path.extension().is_some_and(|x| x == ext)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::chat::testkit::fixture;
    use crate::plugins::registry::PluginState;
    use crate::plugins::{CaptureSink, HookCall, HookOutput, Runtime, RuntimeConfig};
    use crate::store::kv::KvStore;
    use std::sync::Arc;

    fn registry(dir: &Path) -> Registry {
        let runtime = Runtime::new(RuntimeConfig {
            compilers: crate::plugins::Compilers::Cranelift,
            cache_dir: Some(dir.join("cache")),
            kv: Arc::new(KvStore::open_in_memory().unwrap()),
            logs: Arc::new(CaptureSink::default()),
        })
        .unwrap();
        Registry::new(runtime)
    }

    fn after_sent(event_id: u64) -> HookCall {
        let input = serde_json::json!({
            "message": { "id": "m1", "body": "hi", "conversation_id": "c1" },
            "conversation": { "id": "c1" },
        });
        let context = crate::cases::convert::context(None, "context", event_id).unwrap();
        crate::cases::convert::hook_call("after-message-sent", &input, context).unwrap()
    }

    fn setup() -> (tempfile::TempDir, PathBuf, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(fixture("only_sent").wasm, plugins.join("x.wasm")).unwrap();
        let registry = registry(dir.path());
        assert_eq!(registry.load_dir(&plugins).unwrap(), vec!["x".to_owned()]);
        (dir, plugins, registry)
    }

    #[test]
    fn a_call_holding_the_old_version_finishes_there_and_later_lookups_get_the_new_one() {
        let (_dir, plugins, registry) = setup();
        let old = registry.get("x").unwrap();
        std::fs::copy(fixture("recorder").wasm, plugins.join("x.wasm")).unwrap();
        let report = registry.load_file(&plugins.join("x.wasm"));
        assert_eq!(report.change, Change::Replaced, "{report:?}");
        let new = registry.get("x").unwrap();
        assert_ne!(old.plugin.hash(), new.plugin.hash());

        // The old version still runs (it counts); the new one records.
        assert!(matches!(
            old.call(&after_sent(1)),
            Ok(HookOutput::Done(Ok(())))
        ));
        assert!(matches!(
            new.call(&after_sent(2)),
            Ok(HookOutput::Done(Ok(())))
        ));
        let kv = registry.runtime().kv();
        assert_eq!(kv.get("x", "sent").unwrap().as_deref(), Some(&b"1"[..]));
        assert!(kv.get("x", "after-message-sent:2").unwrap().is_some());
        assert!(kv.get("x", "after-message-sent:1").unwrap().is_none());

        // The same file again changes nothing; statistics belong to the name.
        assert_eq!(
            registry.load_file(&plugins.join("x.wasm")).change,
            Change::Unchanged
        );
        assert_eq!(registry.plugins_status()[0].calls, 2);
    }

    #[test]
    fn a_folder_compiled_several_at_a_time_loads_each_file_under_its_own_name_in_order() {
        let (_dir, plugins, registry) = setup();
        let fixtures = ["recorder", "only_sent", "recorder", "only_sent", "recorder"];
        for (i, name) in fixtures.iter().enumerate() {
            let mut bytes = std::fs::read(fixture(name).wasm).unwrap();
            bytes.extend_from_slice(&[0, 2, 1, b'a' + i as u8]); // a custom section: a distinct version
            std::fs::write(plugins.join(format!("p{i}.wasm")), bytes).unwrap();
        }
        std::fs::write(plugins.join("p2.wasm"), b"garbage").unwrap();
        let reports = registry.rescan().unwrap();
        let changes: Vec<(&str, Change)> = reports.iter().map(|r| (&*r.name, r.change)).collect();
        assert_eq!(
            changes,
            [
                ("p0", Change::Loaded),
                ("p1", Change::Loaded),
                ("p2", Change::Failed),
                ("p3", Change::Loaded),
                ("p4", Change::Loaded),
                ("x", Change::Unchanged),
            ]
        );
        for name in ["p0", "p1", "p3", "p4", "x"] {
            let bytes = std::fs::read(plugins.join(format!("{name}.wasm"))).unwrap();
            assert_eq!(
                registry.get(name).unwrap().plugin.hash(),
                content_hash(&bytes),
                "{name} runs its own file"
            );
        }
    }

    #[test]
    fn a_failed_load_keeps_the_running_version_until_a_good_file_or_a_removal() {
        let (_dir, plugins, registry) = setup();
        let good = std::fs::read(plugins.join("x.wasm")).unwrap();
        let hash = registry.get("x").unwrap().plugin.hash().to_owned();
        std::fs::write(plugins.join("x.wasm"), b"garbage").unwrap();
        let report = registry.load_file(&plugins.join("x.wasm"));
        assert_eq!(
            (report.change, report.hash.as_deref()),
            (Change::Failed, Some(hash.as_str()))
        );
        let status = &registry.plugins_status()[0];
        assert_eq!(
            (status.state, status.serving),
            (PluginState::LoadError, true)
        );
        assert!(
            status
                .load_error
                .as_deref()
                .is_some_and(|e| e.contains("not a WebAssembly"))
        );

        std::fs::write(plugins.join("x.wasm"), &good).unwrap();
        assert_eq!(registry.rescan().unwrap()[0].change, Change::Unchanged);
        let status = &registry.plugins_status()[0];
        assert_eq!(
            (status.state, status.load_error.clone()),
            (PluginState::Active, None)
        );

        std::fs::remove_file(plugins.join("x.wasm")).unwrap();
        let reports = registry.rescan().unwrap();
        assert_eq!((reports.len(), reports[0].change), (1, Change::Unloaded));
        assert!(registry.get("x").is_none() && registry.plugins_status().is_empty());
    }

    #[test]
    fn a_failure_seen_by_the_watcher_is_not_recorded_until_it_says_so() {
        let (_dir, plugins, registry) = setup();
        std::fs::write(plugins.join("x.wasm"), b"\0asm half").unwrap();
        let path = plugins.join("x.wasm");
        assert_eq!(registry.try_load_file(&path, || false), Attempt::Changed);
        let Attempt::Failed(error) = registry.try_load_file(&path, || true) else {
            panic!("garbage loaded");
        };
        assert_eq!(registry.plugins_status()[0].state, PluginState::Active);
        registry.record_load_error(&path, error);
        assert_eq!(registry.plugins_status()[0].state, PluginState::LoadError);
    }
}
