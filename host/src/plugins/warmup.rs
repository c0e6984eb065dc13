//! Warming a plugin's first instances before they serve, so the first message after a load or reload does
//! not pay for a cold interpreter.
//!
//! ## What makes a first call slow
//! Measured on this project's machine with the Python and JavaScript profanity filters (a debug host, the
//! guests compiled by Cranelift as always): the first call into a fresh instance took 1.0-1.9 ms (Python)
//! and 0.3-0.6 ms (JavaScript), the next ones 0.1-0.2 ms and 0.06-0.1 ms. The extra is per instance, not
//! per process: a second fresh instance's first call is as slow, whatever ran before. It is the guest's own
//! lazy start-up (componentize-py resolving the exported class and converting its first arguments, a
//! JavaScript regular expression compiled on first use) and the ~190 (Python) and ~40 (JavaScript) pages of
//! its linear memory it touches for the first time, each a copy-on-write fault of the memory image. Only
//! running the guest's own code warms that; nothing the host can do from outside (wasmtime gives no access
//! to a component's memories) does.
//!
//! On the AMD EPYC VM (a debug host, the guests on Winch's code, as a new version first runs): the Python
//! filter's first call into an instance took 2.0-3.7 ms, the first real message after the warm-up 0.6-1.0
//! ms, and the calls after it settled at 0.2-0.3 ms within five messages. More warm-up rounds did not
//! bring that first real message down (measured with four): what is left is the path of a message that
//! has a word to mask, which the synthetic draft does not take.
//!
//! ## How it is warmed, without effects
//! At load (in [`super::runtime::Runtime::load_with`], off the request path and before the registry swaps
//! the new version in), an instance of a plugin that exports a before-hook is created with an inert host
//! (`HostSide::Inert`): the plugin's own `[config]` and settings (read-only; a plugin that builds a word
//! list from them on its first call and keeps it must build it from what later calls see), a throwaway
//! in-memory KV store (opened on its first KV call, empty), no grants and no services (every power
//! answers `denied`), its log muted. Each of its before-hooks is called once with a
//! synthetic draft, and the answer is dropped. Then the instance gets the plugin's own host
//! (`WarmInstance::arm`) and joins the pool.
//! Nothing the warm-up call did can be seen outside the instance: no KV write, no post, no event, no HTTP
//! request, no log line, no statistics. What remains is whatever the guest keeps in its own memory (a
//! plugin counting its calls in a global would count one more), as after any call: an instance's memory
//! is never a contract, since instances are pooled, replaced after a failure and recycled.
//!
//! A warm-up that fails (a trap, a timeout) is not an error: the plugin loads with a cold instance, as
//! before. Instances created later (a burst beyond the pool, a replacement after a failure) start cold;
//! their first call costs the milliseconds above in CPU time, well inside a before-hook's budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::Engine;

use super::hooks::{HookCall, HookKind, HookSet};
use super::instance::{HostSide, InstanceRecipe, WarmInstance};
use super::logs::{LogLevel, LogSink};
use crate::store::kv::Commit;

/// Warmed instances a plugin with a before-hook starts with: one per core of this project's machines, so
/// two messages sent at once right after a load both find a warm instance. Each costs an instantiation
/// and a call at load (about 3 ms for Python), and the pool keeps up to `MAX_IDLE_INSTANCES` anyway.
pub const WARM_INSTANCES_AT_LOAD: usize = 2;

/// CPU time a warm-up call may use, whatever the plugin's before-hook budget: it is off the request path,
/// and a cold first call is what it is there to absorb (a tight budget would time the warm-up out).
const WARM_UP_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// A log sink in front of an instance's real one that drops every line while muted.
pub(crate) struct Quiet {
    inner: Arc<dyn LogSink>,
    muted: AtomicBool,
}

impl Quiet {
    /// A sink writing to `inner`, muted or not.
    pub(crate) fn new(inner: Arc<dyn LogSink>, muted: bool) -> Self {
        Quiet {
            inner,
            muted: AtomicBool::new(muted),
        }
    }

    /// Let lines through from now on.
    pub(crate) fn unmute(&self) {
        self.muted.store(false, Ordering::Relaxed);
    }
}

impl LogSink for Quiet {
    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        if !self.muted.load(Ordering::Relaxed) {
            self.inner.log(plugin, level, message);
        }
    }
}

/// One synthetic call of each before-hook in `hooks`.
fn warm_up_calls(hooks: HookSet) -> Vec<HookCall> {
    let input = serde_json::json!({
        "draft": { "body": "warm-up", "sender": { "id": "chathooks.warm-up" } },
        "current": { "id": "warm-up", "body": "warm-up", "conversation_id": "warm-up" },
        "conversation": { "id": "warm-up" },
    });
    hooks
        .iter()
        .filter(|hook| hook.kind() == HookKind::Before)
        .filter_map(|hook| {
            let context = crate::cases::convert::context(None, "context", 0).ok()?;
            crate::cases::convert::hook_call(hook.name(), &input, context).ok()
        })
        .collect()
}

impl InstanceRecipe {
    /// The instances a plugin exporting `hooks` starts with: [`WARM_INSTANCES_AT_LOAD`] warmed ones if
    /// it has a before-hook (see the module docs), else one plain instance. An error is the plain
    /// instantiation's (the component cannot start); a failed warm-up only leaves an instance cold.
    pub(crate) fn first_instances(
        &self,
        engine: &Engine,
        hooks: HookSet,
    ) -> wasmtime::Result<Vec<WarmInstance>> {
        let calls = warm_up_calls(hooks);
        if calls.is_empty() {
            return Ok(vec![self.instantiate(engine)?]);
        }
        let mut instances = Vec::with_capacity(WARM_INSTANCES_AT_LOAD);
        for _ in 0..WARM_INSTANCES_AT_LOAD {
            let instance = match self.warmed(engine, &calls) {
                Some(instance) => instance,
                None => self.instantiate(engine)?,
            };
            instances.push(instance);
        }
        Ok(instances)
    }

    /// An instance on the inert host, called once per warm-up call, then armed; `None` if any of that
    /// failed.
    fn warmed(&self, engine: &Engine, calls: &[HookCall]) -> Option<WarmInstance> {
        let mut instance = self.instantiate_as(engine, HostSide::Inert).ok()?;
        for call in calls {
            if let Err(e) = instance.call_within(self, call, WARM_UP_BUDGET, Commit::Now) {
                tracing::debug!(plugin = %self.name, "warm-up call failed, the instance starts cold: {e}");
                return None;
            }
        }
        instance.arm(self);
        Some(instance)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::chat::testkit::fixture;
    use crate::plugins::{CaptureSink, HookOutput, PluginLimits, Runtime, RuntimeConfig};
    use crate::store::kv::KvStore;

    #[test]
    fn the_warm_up_leaves_no_kv_write_and_no_log_line_and_the_instances_serve() {
        let logs = Arc::new(CaptureSink::default());
        let runtime = Runtime::new(RuntimeConfig {
            compilers: crate::plugins::Compilers::Cranelift,
            cache_dir: None,
            kv: Arc::new(KvStore::open_in_memory().unwrap()),
            logs: logs.clone(),
        })
        .unwrap();
        // The recorder's before-hooks write `<hook>:<body>` to KV and log a line on every call.
        let bytes = std::fs::read(fixture("recorder").wasm).unwrap();
        let plugin = runtime
            .load("recorder", &bytes, PluginLimits::default())
            .unwrap();
        assert_eq!(plugin.idle_instances(), WARM_INSTANCES_AT_LOAD);
        assert!(runtime.kv().dump("recorder").unwrap().is_empty());
        assert!(logs.take().is_empty());

        // The warmed instances have the plugin's own KV and log.
        let input = serde_json::json!({
            "draft": { "body": "hello", "sender": { "id": "alice" } },
            "conversation": { "id": "c1" },
        });
        let context = crate::cases::convert::context(None, "context", 1).unwrap();
        let call =
            crate::cases::convert::hook_call("before-message-sent", &input, context).unwrap();
        assert!(matches!(plugin.call(&call), Ok(HookOutput::Decision(_))));
        let keys: Vec<String> = runtime
            .kv()
            .dump("recorder")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["before-message-sent:hello"]);
        assert_eq!(logs.take().len(), 1);
    }
}
