//! The compile cache: compiled components on disk, so a restart loads plugins instead of compiling them.
//!
//! An entry is keyed by the SHA-256 of the `.wasm` bytes and by the engine's compatibility hash (wasmtime
//! version, target and the settings that change generated code), so a new server build never loads code
//! compiled for another. Loading an entry takes well under a millisecond; compiling takes 35 ms for a Rust
//! plugin and seconds for Python or JavaScript.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A folder of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// A cache in `dir` for components compiled by `engine`. The folder is created on first write.
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// The compiled form of `bytes` (whose hash is `content_hash`), from the cache or compiled now and
    /// stored. A damaged entry is removed and recompiled; a cache that cannot be written is only a warning.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        content_hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.entry_path(content_hash);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "discarding a damaged compile-cache entry: {err:#}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(err) = self.store(&path, &compiled) {
            tracing::warn!(path = %path.display(), "cannot write the compile cache: {err:#}");
        }
        // Deserializing what we just compiled gives the same component as `Component::new` without
        // compiling twice.
        deserialize_bytes(engine, &compiled)
    }

    /// Where the entry for `content_hash` lives.
    pub fn entry_path(&self, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{}.cwasm", self.engine_key))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        // Write then rename, so a crash never leaves a half-written entry under the real name.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, compiled)?;
        std::fs::rename(&tmp, path)
    }
}

/// SHA-256 of a plugin's bytes as lowercase hex: its version identity and cache key.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Read an entry into memory and load it. Not `deserialize_file`: that maps the file, and anything that
/// rewrites the file in place later (an operator, a disk tool) would crash the server with SIGBUS.
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    deserialize_bytes(engine, &bytes)
}

#[allow(unsafe_code)]
fn deserialize_bytes(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` is the output of `Engine::precompile_component`, either produced a moment ago on
    // this engine or read from an entry this cache wrote (write-then-rename) in the server's own data
    // folder under a name that includes the engine's compatibility hash. wasmtime additionally checks the
    // header and the engine settings before using it.
    unsafe { Component::deserialize(engine, compiled) }
}
