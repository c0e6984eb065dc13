//! The plugin runtime against real components: what loads, what is refused, and what a misbehaving plugin
//! can and cannot do.

use chathooks::plugins::{
    CallError, CaptureSink, Hook, HookCall, HookOutput, LoadError, Plugin, PluginLimits, Runtime,
    RuntimeConfig,
};
use chathooks::store::kv::KvStore;
use chathooks_tests::{fixture, temp_dir};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    runtime: Runtime,
    logs: Arc<CaptureSink>,
    _dir: tempfile::TempDir,
}

/// A runtime with a KV database file in a fresh folder and a compile cache beside it.
fn setup() -> Setup {
    let dir = temp_dir();
    let kv = Arc::new(KvStore::open(&dir.path().join("chathooks.sqlite3")).expect("open kv"));
    let logs = Arc::new(CaptureSink::default());
    let runtime = Runtime::new(RuntimeConfig {
        compilers: chathooks::plugins::Compilers::Cranelift,
        cache_dir: Some(dir.path().join("cache")),
        kv,
        logs: logs.clone(),
    })
    .expect("runtime");
    Setup {
        runtime,
        logs,
        _dir: dir,
    }
}

/// Default limits with time budgets a busy CI machine cannot run out of, for tests about something other
/// than time: budgets are wall-clock, and at a load average of 10 a trivial call can wait 50 ms for a core.
fn roomy() -> PluginLimits {
    PluginLimits {
        before_hook_budget: Duration::from_secs(10),
        after_hook_budget: Duration::from_secs(10),
        ..PluginLimits::default()
    }
}

fn load(setup: &Setup, name: &str, wasm: &str, limits: PluginLimits) -> Plugin {
    let bytes = std::fs::read(fixture(wasm)).expect("read fixture");
    setup
        .runtime
        .load(name, &bytes, limits)
        .expect("load fixture")
}

fn before_sent(body: &str) -> HookCall {
    let input = json!({ "draft": { "body": body, "sender": { "id": "alice" } }, "conversation": { "id": "c1" } });
    chathooks::cases::convert::hook_call("before-message-sent", &input, context(1))
        .expect("valid input")
}

fn after_sent(event_id: u64, body: &str) -> HookCall {
    let input = json!({ "message": { "id": "m1", "body": body, "conversation_id": "c1" }, "conversation": { "id": "c1" } });
    chathooks::cases::convert::hook_call("after-message-sent", &input, context(event_id))
        .expect("valid input")
}

fn context(id: u64) -> chathooks::plugins::bindings::types::EventContext {
    chathooks::cases::convert::context(None, "context", id).expect("context")
}

fn decided_body(output: HookOutput) -> Option<String> {
    match output {
        HookOutput::Decision(chathooks::plugins::bindings::types::Decision::Modify(m)) => m.body,
        _ => None,
    }
}

#[test]
fn a_plugin_exporting_one_hook_is_called_for_that_hook_only() {
    let s = setup();
    let plugin = load(&s, "only_sent", "only_sent", roomy());
    assert_eq!(
        plugin.hooks().iter().collect::<Vec<_>>(),
        vec![Hook::AfterMessageSent]
    );

    let err = plugin
        .call(&before_sent("hello"))
        .expect_err("not exported");
    assert!(
        matches!(
            err,
            CallError::NotExported {
                hook: "before-message-sent",
                ..
            }
        ),
        "{err}"
    );

    plugin
        .call(&after_sent(1, "hello"))
        .expect("after-message-sent runs");
    plugin
        .call(&after_sent(2, "again"))
        .expect("after-message-sent runs");
    assert_eq!(
        s.runtime
            .kv()
            .get("only_sent", "sent")
            .expect("kv")
            .as_deref(),
        Some(&b"2"[..])
    );
}

/// After any failure, the very next call on the same plugin works and sees a fresh instance.
fn assert_recovers(plugin: &Plugin) {
    let output = plugin
        .call(&before_sent("fine"))
        .expect("the next call works");
    assert_eq!(decided_body(output).as_deref(), Some("ok:fine"));
}

#[test]
fn a_panic_fails_only_that_call_and_says_why() {
    let s = setup();
    let plugin = load(&s, "hostile", "hostile", roomy());
    let err = plugin.call(&before_sent("trap")).expect_err("trap");
    match &err {
        CallError::Trap { message, .. } => {
            assert!(message.contains("hostile: trap requested"), "{message}")
        }
        other => panic!("expected a trap, got {other}"),
    }
    assert!(
        s.logs
            .take()
            .iter()
            .any(|l| l.message.contains("hostile: trap requested")),
        "panic text is logged"
    );
    assert_recovers(&plugin);
}

#[test]
fn an_infinite_loop_times_out_in_before_and_after_hooks() {
    let s = setup();
    let limits = PluginLimits {
        // Long enough that the recovery call after each timeout cannot itself time out on a busy machine.
        before_hook_budget: Duration::from_millis(500),
        after_hook_budget: Duration::from_millis(500),
        ..PluginLimits::default()
    };
    let plugin = load(&s, "hostile", "hostile", limits);
    let err = plugin.call(&before_sent("loop")).expect_err("loop");
    assert!(
        matches!(
            err,
            CallError::Timeout {
                hook: "before-message-sent",
                ..
            }
        ),
        "{err}"
    );
    assert_recovers(&plugin);
    let err = plugin.call(&after_sent(1, "loop")).expect_err("loop");
    assert!(
        matches!(
            err,
            CallError::Timeout {
                hook: "after-message-sent",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_recovers(&plugin);
}

#[test]
fn allocating_past_the_memory_cap_fails_the_call() {
    let s = setup();
    let limits = PluginLimits {
        memory_bytes: 16 << 20,
        ..roomy()
    };
    let plugin = load(&s, "hostile", "hostile", limits);
    let err = plugin.call(&before_sent("alloc")).expect_err("alloc");
    assert!(
        matches!(err, CallError::MemoryCap { cap_bytes, .. } if cap_bytes == 16 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("memory cap"), "{err}");
    assert_recovers(&plugin);
}

#[test]
fn unbounded_recursion_traps_and_the_plugin_recovers() {
    let s = setup();
    let plugin = load(&s, "hostile", "hostile", roomy());
    let err = plugin.call(&before_sent("recurse")).expect_err("recurse");
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    assert_recovers(&plugin);
}

#[test]
fn an_after_hook_error_is_returned_as_a_value() {
    let s = setup();
    let plugin = load(&s, "hostile", "hostile", roomy());
    match plugin.call(&after_sent(1, "error")).expect("call succeeds") {
        HookOutput::Done(Err(reason)) => assert_eq!(reason, "hostile: error requested"),
        other => panic!("expected an error value, got {other:?}"),
    }
}

#[test]
fn a_slow_plugin_does_not_block_another() {
    let s = setup();
    let limits = PluginLimits {
        after_hook_budget: Duration::from_secs(5),
        ..PluginLimits::default()
    };
    let slow = load(&s, "hostile", "hostile", limits);
    let fast = load(&s, "only_sent", "only_sent", roomy());
    let looping = std::thread::spawn(move || slow.call(&after_sent(1, "loop")));
    std::thread::sleep(Duration::from_millis(100));
    for id in 0..20 {
        fast.call(&after_sent(id, "hi"))
            .expect("the other plugin answers");
    }
    assert!(
        !looping.is_finished(),
        "the slow call is still running while the other plugin served 20 calls"
    );
    let err = looping.join().expect("thread").expect_err("times out");
    assert!(matches!(err, CallError::Timeout { .. }), "{err}");
}

#[test]
fn plugins_cannot_read_each_others_keys() {
    let s = setup();
    let a = load(&s, "a", "kv_probe", roomy());
    let b = load(&s, "b", "kv_probe", roomy());
    a.call(&after_sent(1, "set secret 42")).expect("a sets");
    s.logs.take();
    b.call(&after_sent(2, "get secret")).expect("b gets");
    b.call(&after_sent(3, "list ")).expect("b lists");
    let b_lines: Vec<String> = s
        .logs
        .take()
        .into_iter()
        .filter(|l| l.plugin == "b")
        .map(|l| l.message)
        .collect();
    assert!(
        b_lines.iter().all(|l| !l.contains("42")),
        "b must not see a's value: {b_lines:?}"
    );
    assert_eq!(
        s.runtime.kv().get("a", "secret").expect("kv").as_deref(),
        Some(&b"42"[..])
    );
    assert_eq!(s.runtime.kv().get("b", "secret").expect("kv"), None);
    a.call(&after_sent(4, "get secret")).expect("a gets");
    assert!(
        s.logs
            .take()
            .iter()
            .any(|l| l.plugin == "a" && l.message.contains("42"))
    );
}

#[test]
fn garbage_and_core_modules_are_refused_with_a_clear_message() {
    let s = setup();
    let err = s
        .runtime
        .load("junk", b"this is not wasm at all", PluginLimits::default())
        .expect_err("garbage");
    assert!(matches!(err, LoadError::NotWasm), "{err}");
    assert!(err.to_string().contains("not a WebAssembly file"), "{err}");

    let core_module = b"\0asm\x01\x00\x00\x00";
    let err = s
        .runtime
        .load("core", core_module, PluginLimits::default())
        .expect_err("core module");
    assert!(matches!(err, LoadError::CoreModule), "{err}");
    assert!(err.to_string().contains("not a component"), "{err}");

    let bytes = std::fs::read(fixture("only_sent")).expect("read");
    let half = &bytes[..bytes.len() / 2];
    let err = s
        .runtime
        .load("half", half, PluginLimits::default())
        .expect_err("half-written");
    assert!(matches!(err, LoadError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn the_compile_cache_serves_a_second_runtime_and_survives_damage() {
    let s = setup();
    let bytes = std::fs::read(fixture("only_sent")).expect("read");
    let plugin = s
        .runtime
        .load("only_sent", &bytes, PluginLimits::default())
        .expect("first load compiles");
    let cache = s.runtime.cache().expect("cache");
    let entry = cache.entry_path(plugin.hash());
    // The entry is written behind the compile; `contains` waits for that write.
    assert!(
        cache.contains(plugin.hash()) && entry.exists(),
        "the compiled component is stored at {}",
        entry.display()
    );

    let again = s
        .runtime
        .load("only_sent", &bytes, PluginLimits::default())
        .expect("second load from cache");
    again.call(&after_sent(1, "x")).expect("cached plugin runs");

    std::fs::write(&entry, b"damaged").expect("damage the entry");
    let repaired = s
        .runtime
        .load("only_sent", &bytes, PluginLimits::default())
        .expect("recompiles");
    repaired
        .call(&after_sent(2, "x"))
        .expect("recompiled plugin runs");
    assert!(cache.contains(plugin.hash()), "the entry was written again");
    assert!(
        std::fs::metadata(&entry).expect("entry").len() > 1000,
        "the damaged entry was replaced"
    );
}

#[test]
fn warm_instances_are_reused_across_calls() {
    let s = setup();
    let plugin = load(&s, "only_sent", "only_sent", roomy());
    for id in 0..5 {
        plugin.call(&after_sent(id, "x")).expect("call");
    }
    assert_eq!(
        plugin.idle_instances(),
        1,
        "sequential calls share one warm instance"
    );
}
