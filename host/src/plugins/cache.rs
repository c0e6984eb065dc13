//! The compile cache: compiled components on disk, so a restart loads plugins instead of compiling them.
//!
//! An entry is keyed by the SHA-256 of the `.wasm` bytes and by the engine's compatibility hash (wasmtime
//! version, target and the settings that change generated code), so a new server build never loads code
//! compiled for another. Loading an entry takes well under a millisecond; compiling takes 35 ms for a Rust
//! plugin and seconds for Python or JavaScript.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled versions kept beyond those running: the most recently used ones, so reverting a plugin to a
/// recent version (or a reload that briefly swaps back) loads instead of compiling, while a folder that
/// sees hundreds of versions over time does not grow without end. At ~0.5 MB per Rust plugin and ~50 MB
/// per Python one, sixteen is affordable.
pub const MAX_RETIRED_ENTRIES: usize = 16;

/// Age after which a leftover temporary file (a write cut short by a crash) is removed.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// A folder of compiled components. Clones share their writes in progress.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    writes: Arc<Writes>,
}

impl CompileCache {
    /// A cache in `dir` for components compiled by `engine`. The folder is created on first write.
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            writes: Arc::default(),
        }
    }

    /// The compiled form of `bytes` (whose hash is `content_hash`), from the cache or compiled now and
    /// stored. A damaged entry is removed and recompiled; a cache that cannot be written is only a warning.
    ///
    /// A compile returns without waiting for its entry to be written: serializing the code and writing
    /// it go on on a thread of its own (for Python's 50 MB of code, 0.1-0.15 s that a new version would
    /// otherwise wait for before it serves). Whatever looks the entry up next through this cache or a
    /// clone waits for that write instead of compiling again, and dropping the last clone waits for
    /// every write.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        content_hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.entry_path(content_hash);
        self.writes.wait_for(&path);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => {
                    // Mark it used, so pruning keeps recently used versions first.
                    let _ = std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(SystemTime::now()));
                    return Ok(component);
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), "discarding a damaged compile-cache entry: {err:#}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        // Compiled straight into executable memory; the entry is serialized from it on the writer's
        // thread.
        let component = Component::from_binary(engine, bytes)?;
        self.writes.start(&self.dir, path, component.clone());
        Ok(component)
    }

    /// Whether the cache holds the entry for `content_hash`, once a write of it in progress is done.
    pub fn contains(&self, content_hash: &str) -> bool {
        let path = self.entry_path(content_hash);
        self.writes.wait_for(&path);
        path.exists()
    }

    /// Compiles `bytes` (whose hash is `content_hash`) with `engine` into the cache, unless it holds the
    /// entry already. `engine` must compile as the cache's engine does (the same compatibility hash): the
    /// tiered compilation thread compiles on an engine of its own that reserves no instance pool.
    pub(crate) fn precompile(
        &self,
        engine: &Engine,
        content_hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<()> {
        if self.contains(content_hash) {
            return Ok(());
        }
        let compiled = engine.precompile_component(bytes)?;
        store(&self.dir, &self.entry_path(content_hash), &compiled)?;
        Ok(())
    }

    /// Whether `engine` compiles code this cache's entries can hold.
    pub(crate) fn compiles_for(&self, engine: &Engine) -> bool {
        CompileCache::new(self.dir.clone(), engine).engine_key == self.engine_key
    }

    /// Where the entry for `content_hash` lives.
    pub fn entry_path(&self, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{}.cwasm", self.engine_key))
    }

    /// Removes stale entries: those compiled by another engine (an older server build), those of
    /// versions not in `live` beyond the [`MAX_RETIRED_ENTRIES`] most recently used, and temporary files
    /// left by a crash. Returns how many files were removed.
    pub fn retain(&self, live: &HashSet<String>) -> std::io::Result<usize> {
        let listing = match std::fs::read_dir(&self.dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let suffix = format!("-{}.cwasm", self.engine_key);
        let mut stale = Vec::new();
        let mut retired = Vec::new();
        for entry in listing.filter_map(Result::ok) {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if let Some(hash) = name.strip_suffix(&suffix) {
                if !live.contains(hash) {
                    retired.push((modified, path));
                }
            } else if name.ends_with(".cwasm")
                || (name.contains(".tmp")
                    && modified.elapsed().unwrap_or_default() > STALE_TEMP_AGE)
            {
                stale.push(path);
            }
        }
        retired.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        stale.extend(
            retired
                .into_iter()
                .skip(MAX_RETIRED_ENTRIES)
                .map(|(_, p)| p),
        );
        let mut removed = 0;
        for path in stale {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// Writes `compiled` as the entry at `path` in the cache folder `dir`.
fn store(dir: &Path, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // Write then rename, so a crash never leaves a half-written entry under the real name.
    // Unique per writer, so two compiles of one version at once (two threads, two tools) never share
    // a temporary file.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let tmp = path.with_extension(format!(
        "tmp{}-{:?}-{nanos}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, compiled)?;
    std::fs::rename(&tmp, path)
}

/// A cache's entries being written on threads of their own, by path.
#[derive(Debug, Default)]
struct Writes {
    running: Mutex<HashMap<PathBuf, JoinHandle<()>>>,
}

impl Writes {
    /// Serializes `component` and writes it as the entry at `path` (in the cache folder `dir`) on a
    /// thread of its own. A failed write, or no thread to write on, is only a warning: the next load
    /// compiles again.
    fn start(&self, dir: &Path, path: PathBuf, component: Component) {
        let warn = |path: &Path, err: &dyn std::fmt::Display| {
            tracing::warn!(path = %path.display(), "cannot write the compile cache: {err:#}");
        };
        let dir = dir.to_path_buf();
        let key = path.clone();
        let spawned = std::thread::Builder::new()
            .name("chathooks-cache-write".into())
            .spawn(move || {
                let written = component
                    .serialize()
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))
                    .and_then(|compiled| store(&dir, &path, &compiled));
                if let Err(err) = written {
                    warn(&path, &err);
                }
            });
        match spawned {
            Ok(handle) => {
                let mut running = self.lock();
                running.retain(|_, h| !h.is_finished());
                running.insert(key, handle);
            }
            Err(err) => warn(&key, &err),
        }
    }

    /// Waits until the write of the entry at `path`, if one is running, is done.
    fn wait_for(&self, path: &Path) {
        let handle = self.lock().remove(path);
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, JoinHandle<()>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Writes {
    /// A server or a tool that stops right after a compile still leaves its entry.
    fn drop(&mut self) {
        let running: Vec<JoinHandle<()>> = self.lock().drain().map(|(_, h)| h).collect();
        for handle in running {
            let _ = handle.join();
        }
    }
}

/// SHA-256 of a plugin's bytes as lowercase hex: its version identity and cache key.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Read an entry into memory and load it. Not `deserialize_file`: that maps the file, and anything that
/// rewrites the file in place later (an operator, a disk tool) would crash the server with SIGBUS.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let compiled = std::fs::read(path)?;
    // SAFETY: `compiled` is an entry this cache wrote (write-then-rename, the output of
    // `Component::serialize` or `Engine::precompile_component`) in the server's own data folder under a
    // name that includes the engine's compatibility hash. wasmtime additionally checks the header and the
    // engine settings before using it.
    unsafe { Component::deserialize(engine, &compiled) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::Duration;

    fn touch(path: &Path, age: Duration) {
        std::fs::write(path, b"x").unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    /// A real plugin's bytes and their hash.
    fn plugin() -> (Vec<u8>, String) {
        let bytes = std::fs::read(crate::chat::testkit::fixture("recorder").wasm).unwrap();
        let hash = content_hash(&bytes);
        (bytes, hash)
    }

    #[test]
    fn a_compiled_version_is_in_the_cache_for_the_next_lookup_of_any_clone() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let (bytes, hash) = plugin();
        let cache = CompileCache::new(dir.path().to_path_buf(), &engine);
        assert!(!cache.contains(&hash));
        cache.load_or_compile(&engine, &hash, &bytes).unwrap();
        // The background compiler holds a clone: it waits for the write instead of compiling again.
        let clone = cache.clone();
        assert!(clone.contains(&hash));
        assert!(cache.entry_path(&hash).exists());
        clone.load_or_compile(&engine, &hash, &bytes).unwrap();
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 1, "one entry, no temporary file: {left:?}");
    }

    #[test]
    fn a_cache_dropped_right_after_a_compile_leaves_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let (bytes, hash) = plugin();
        let cache = CompileCache::new(dir.path().to_path_buf(), &engine);
        let path = cache.entry_path(&hash);
        cache.load_or_compile(&engine, &hash, &bytes).unwrap();
        drop(cache);
        assert!(
            path.exists(),
            "a tool that exits after a compile keeps its entry"
        );
        // A new server loads it.
        let restarted = CompileCache::new(dir.path().to_path_buf(), &engine);
        assert!(restarted.contains(&hash));
        restarted.load_or_compile(&engine, &hash, &bytes).unwrap();
    }

    #[test]
    fn retain_keeps_running_and_recent_versions_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::new(dir.path().to_path_buf(), &engine);
        let live: HashSet<String> = ["live".to_owned()].into();
        touch(&cache.entry_path("live"), Duration::from_secs(10_000));
        // Twenty retired versions, r0 the most recently used.
        for n in 0..20u64 {
            touch(
                &cache.entry_path(&format!("r{n}")),
                Duration::from_secs(60 * (n + 1)),
            );
        }
        touch(
            &dir.path().join("old-0123456789abcdef.cwasm"),
            Duration::ZERO,
        );
        touch(&dir.path().join("x-y.tmp42"), Duration::from_secs(7200));
        touch(&dir.path().join("x-y.tmp43"), Duration::ZERO);

        assert_eq!(cache.retain(&live).unwrap(), 20 - MAX_RETIRED_ENTRIES + 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert!(
            left.contains(&"x-y.tmp43".to_owned()),
            "a write in progress stays"
        );
        assert!(cache.entry_path("live").exists());
        for n in 0..20u64 {
            let kept = cache.entry_path(&format!("r{n}")).exists();
            assert_eq!(kept, n < MAX_RETIRED_ENTRIES as u64, "r{n}: {left:?}");
        }
        assert_eq!(left.len(), 1 + MAX_RETIRED_ENTRIES + 1, "{left:?}");
        // A missing folder is nothing to prune.
        let none = CompileCache::new(dir.path().join("absent"), &engine);
        assert_eq!(none.retain(&live).unwrap(), 0);
    }
}
