//! Tiered compilation on real compiled plugins: a new version starts on Winch, the promotion swaps in
//! Cranelift's code for the same version (and caches it, so a restart starts there), a version replaced
//! meanwhile is not swapped back, and the sandbox holds on Winch code as on Cranelift's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use super::engine::Compiler;
use super::registry::Registry;
use super::tiers::{Compilers, Promoted};
use super::{CallError, CaptureSink, HookCall, HookOutput, Runtime, RuntimeConfig};
use crate::chat::testkit::fixture;
use crate::store::kv::KvStore;

fn registry(dir: &Path, compilers: Compilers) -> Registry {
    let runtime = Runtime::new(RuntimeConfig {
        compilers,
        cache_dir: Some(dir.join("cache")),
        kv: Arc::new(KvStore::open_in_memory().unwrap()),
        logs: Arc::new(CaptureSink::default()),
    })
    .unwrap();
    Registry::new(runtime)
}

fn call(hook: &str, body: &str, event_id: u64) -> HookCall {
    let input = serde_json::json!({
        "message": { "id": "m1", "body": body, "conversation_id": "c1" },
        "draft": { "body": body },
        "conversation": { "id": "c1" },
    });
    let context = crate::cases::convert::context(None, "context", event_id).unwrap();
    crate::cases::convert::hook_call(hook, &input, context).unwrap()
}

/// Copies fixture `name` to `<dir>/plugins/x.wasm`; its path and bytes.
fn install(dir: &Path, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let path = plugins.join("x.wasm");
    std::fs::copy(fixture(name).wasm, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn a_new_version_starts_on_winch_moves_to_cranelift_and_a_restart_starts_there() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = install(dir.path(), "recorder");
    let tiered = registry(dir.path(), Compilers::Tiered);
    tiered.load_file(&path);
    let first = tiered.get("x").unwrap();
    assert_eq!(first.plugin.compiler(), Compiler::Winch);
    assert!(matches!(
        first.call(&call("after-message-sent", "hi", 1)),
        Ok(HookOutput::Done(Ok(())))
    ));

    assert_eq!(tiered.promote("x", &bytes), Promoted::Swapped);
    let now = tiered.get("x").unwrap();
    assert_eq!(now.plugin.compiler(), Compiler::Cranelift);
    assert_eq!(now.plugin.hash(), first.plugin.hash(), "the same version");
    assert_eq!(
        now.shared.stats.totals().calls,
        1,
        "statistics carried over"
    );
    // The same rate limiters: a swap neither refills a burst nor loses a refusal's count.
    assert!(Arc::ptr_eq(
        &first.plugin.limiters().power,
        &now.plugin.limiters().power
    ));
    assert!(matches!(
        now.call(&call("after-message-sent", "hi", 2)),
        Ok(HookOutput::Done(Ok(())))
    ));
    // The Winch version still runs a call that holds it.
    assert!(matches!(
        first.call(&call("after-message-sent", "hi", 3)),
        Ok(HookOutput::Done(Ok(())))
    ));
    assert_eq!(tiered.promote("x", &bytes), Promoted::Superseded);

    // A restart finds Cranelift's code in the cache: no Winch step. The first server is gone by then, and
    // a server that stops finishes writing its cache entries (they are written on threads of their own).
    drop((first, now, tiered));
    let restarted = registry(dir.path(), Compilers::Tiered);
    restarted.load_file(&path);
    assert_eq!(
        restarted.get("x").unwrap().plugin.compiler(),
        Compiler::Cranelift
    );
}

#[test]
fn a_version_replaced_before_its_promotion_is_not_swapped_back() {
    let dir = tempfile::tempdir().unwrap();
    let (path, old_bytes) = install(dir.path(), "recorder");
    let tiered = registry(dir.path(), Compilers::Tiered);
    tiered.load_file(&path);
    install(dir.path(), "only_sent");
    tiered.load_file(&path);
    let newer = tiered.get("x").unwrap().plugin.hash().to_owned();
    assert_eq!(tiered.promote("x", &old_bytes), Promoted::Superseded);
    let running = tiered.get("x").unwrap();
    assert_eq!(running.plugin.hash(), newer);
    assert_eq!(running.plugin.compiler(), Compiler::Winch);
}

#[test]
fn cranelift_only_never_uses_winch() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = install(dir.path(), "recorder");
    let cranelift = registry(dir.path(), Compilers::Cranelift);
    cranelift.load_file(&path);
    assert_eq!(
        cranelift.get("x").unwrap().plugin.compiler(),
        Compiler::Cranelift
    );
    assert!(!cranelift.runtime().is_tiered());
}

#[test]
fn a_loop_on_winch_code_runs_out_of_time_and_the_plugin_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = install(dir.path(), "hostile");
    let winch = registry(dir.path(), Compilers::Winch);
    winch.load_file(&path);
    let hostile = winch.get("x").unwrap();
    assert_eq!(hostile.plugin.compiler(), Compiler::Winch);
    let looped = hostile.plugin.call(&call("before-message-sent", "loop", 1));
    assert!(
        matches!(looped, Err(CallError::Timeout { .. })),
        "{looped:?}"
    );
    assert!(matches!(
        hostile.plugin.call(&call("before-message-sent", "fine", 2)),
        Ok(HookOutput::Decision(_))
    ));
}

#[test]
fn the_background_compiler_fills_the_cache_the_optimized_tier_reads() {
    let dir = tempfile::tempdir().unwrap();
    let tiered = registry(dir.path(), Compilers::Tiered);
    let (engine, cache) = tiered.runtime().background_compiler().unwrap().unwrap();
    let (path, bytes) = install(dir.path(), "recorder");
    let hash = super::cache::content_hash(&bytes);
    cache.precompile(&engine, &hash, &bytes).unwrap();
    // The entry is where the optimized tier looks: a load starts on Cranelift's code at once.
    tiered.load_file(&path);
    assert_eq!(
        tiered.get("x").unwrap().plugin.compiler(),
        Compiler::Cranelift
    );
}
