//! One plugin instance: its store (WASI context, host contexts, memory limiter) and its bound hooks.

use super::error::CallError;
use super::hooks::{HookCall, HookExports, HookIndices, HookOutput, TimerGuest, TimerIndices};
use super::host::PowerCtxs;
use super::host::kv::KvCtx;
use super::host::log::{LogCtx, LogLimiter};
use super::host::stdio::{LogStream, StderrTail};
use super::limits::{PluginLimits, TABLE_ELEMENTS_LIMIT};
use super::logs::LogSink;
use super::powers::{PluginPowers, PowerLimiter, ServicesSlot, call_depth};
use crate::store::kv::{KvQuota, KvStore};
use std::sync::Arc;
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Time a fresh instance may spend in its start-up code before it counts as hung.
const INSTANTIATE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// The error a store's limiter raises when a plugin grows memory past its cap; found again by downcasting
/// so the call error can say "memory cap" rather than "trap".
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap} bytes exceeded (wanted {wanted} bytes)")]
struct MemoryCapExceeded {
    cap: usize,
    wanted: usize,
}

/// Enforces a plugin's memory cap on every `memory.grow`.
pub(crate) struct MemoryLimiter {
    cap: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            return Err(MemoryCapExceeded {
                cap: self.cap,
                wanted: desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_LIMIT)
    }
}

/// Everything one instance's store holds. Each host interface sees only its own field.
pub(crate) struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(crate) log: LogCtx,
    pub(crate) kv: KvCtx,
    /// `config`, `chat`, `events`, `http`, `push` and `scheduler`.
    pub(crate) powers: PowerCtxs,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What every instance of one plugin shares: its identity, limits and where its logs and KV go.
pub(crate) struct InstanceRecipe {
    pub(crate) name: Arc<str>,
    pub(crate) limits: PluginLimits,
    pub(crate) pre: InstancePre<PluginState>,
    pub(crate) indices: HookIndices,
    pub(crate) kv: Arc<KvStore>,
    /// Where log lines go: the plugin's rate limiter in front of the runtime's sink.
    pub(crate) sink: Arc<dyn LogSink>,
    /// The same limiter, for its "lines dropped" note after each call and its count.
    pub(crate) log_limiter: Arc<LogLimiter>,
    /// Config values and grants from the manifest.
    pub(crate) powers: Arc<PluginPowers>,
    /// Who carries out the powers (the server's chat, or a recording).
    pub(crate) services: ServicesSlot,
    /// The powers' rate limits, shared by every instance of this version.
    pub(crate) power_limiter: Arc<PowerLimiter>,
    /// Where `on-timer` lives, if the plugin exports it.
    pub(crate) on_timer: Option<TimerIndices>,
}

/// A live instance with its hooks bound, ready to be called (and reused).
pub(crate) struct WarmInstance {
    store: Store<PluginState>,
    exports: HookExports,
    stderr: StderrTail,
    /// The bound `on-timer` export, if any.
    on_timer: Option<TimerGuest>,
    /// Calls served so far; the pool retires the instance after a set number.
    pub(crate) calls: u32,
}

impl InstanceRecipe {
    /// A copy of this recipe with other powers (config values and grants).
    pub(crate) fn with_powers(&self, powers: Arc<PluginPowers>) -> InstanceRecipe {
        InstanceRecipe {
            name: self.name.clone(),
            limits: self.limits.clone(),
            pre: self.pre.clone(),
            indices: self.indices.clone(),
            kv: self.kv.clone(),
            sink: self.sink.clone(),
            log_limiter: self.log_limiter.clone(),
            powers,
            services: self.services.clone(),
            power_limiter: self.power_limiter.clone(),
            on_timer: self.on_timer.clone(),
        }
    }

    /// Create a fresh instance: a new store with no files, no environment, no network, stdio into the log.
    pub(crate) fn instantiate(&self, engine: &Engine) -> wasmtime::Result<WarmInstance> {
        let stderr = StderrTail::default();
        let wasi = WasiCtx::builder()
            .stdout(LogStream::stdout(self.name.clone(), self.sink.clone()))
            .stderr(LogStream::stderr(
                self.name.clone(),
                self.sink.clone(),
                stderr.clone(),
            ))
            .build();
        let state = PluginState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                cap: self.limits.memory_bytes,
            },
            log: LogCtx::new(self.name.clone(), self.sink.clone()),
            kv: KvCtx::new(
                self.name.clone(),
                self.kv.clone(),
                KvQuota {
                    max_keys: self.limits.kv_max_keys,
                    max_bytes: self.limits.kv_max_bytes,
                },
            ),
            powers: PowerCtxs::new(
                &self.name,
                &self.powers,
                &self.services,
                &self.power_limiter,
                self.on_timer.is_some(),
            ),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        // Past the deadline: extend it by the time the call spent blocked in host calls (an HTTP answer,
        // a bot post), if any, else stop the call (see `HostWait`).
        store.epoch_deadline_callback(|ctx| {
            let waited = ctx.data().powers.wait.take();
            if waited.is_zero() {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(PluginLimits::ticks(waited)))
        });
        store.set_epoch_deadline(PluginLimits::ticks(INSTANTIATE_BUDGET));
        let instance = self.pre.instantiate(&mut store)?;
        let exports = self.indices.load(&mut store, &instance)?;
        let on_timer = self
            .on_timer
            .as_ref()
            .map(|i| i.load(&mut store, &instance))
            .transpose()?;
        Ok(WarmInstance {
            store,
            exports,
            stderr,
            on_timer,
            calls: 0,
        })
    }
}

impl WarmInstance {
    /// Run one hook call within the plugin's time budget. On `Err` the instance must be discarded: its
    /// memory may be half-updated.
    pub(crate) fn call(
        &mut self,
        recipe: &InstanceRecipe,
        call: &HookCall,
    ) -> Result<HookOutput, CallError> {
        let hook = call.hook();
        let budget = match hook.kind() {
            super::hooks::HookKind::Before => recipe.limits.before_hook_budget,
            super::hooks::HookKind::After => recipe.limits.after_hook_budget,
        };
        self.begin_call(
            budget,
            call_depth(call),
            hook.kind() == super::hooks::HookKind::After,
        );
        let plugin = || recipe.name.to_string();
        let result = self.exports.call(&mut self.store, call);
        recipe.log_limiter.flush();
        match result {
            Ok(Some(output)) => {
                let bytes = output_bytes(&output);
                if bytes > recipe.limits.max_output_bytes {
                    return Err(CallError::OutputTooLarge {
                        plugin: plugin(),
                        hook: hook.name(),
                        bytes,
                        limit: recipe.limits.max_output_bytes,
                    });
                }
                Ok(output)
            }
            Ok(None) => Err(CallError::NotExported {
                plugin: plugin(),
                hook: hook.name(),
            }),
            Err(err) => Err(self.call_error(&err, &recipe.name, hook.name(), budget)),
        }
    }

    /// Readies the instance for one call: its time budget, the call count, a fresh stderr tail, the
    /// depth bot posts carry, and whether host waits are credited back to the budget (after-hooks and
    /// timers only).
    fn begin_call(&mut self, budget: std::time::Duration, depth: u32, credit_waits: bool) {
        self.store.set_epoch_deadline(PluginLimits::ticks(budget));
        self.calls += 1;
        self.stderr.take();
        let powers = &mut self.store.data_mut().powers;
        powers.chat.set_depth(depth);
        powers.wait.begin_call(credit_waits);
    }

    /// What a call that failed inside wasmtime means for the caller: the memory cap, the time budget, or
    /// a trap whose message ends with what the plugin printed last (a panic message).
    fn call_error(
        &mut self,
        err: &wasmtime::Error,
        plugin: &str,
        hook: &'static str,
        budget: std::time::Duration,
    ) -> CallError {
        let plugin = plugin.to_string();
        if let Some(cap) = err.downcast_ref::<MemoryCapExceeded>() {
            return CallError::MemoryCap {
                plugin,
                hook,
                cap_bytes: cap.cap,
            };
        }
        if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
            return CallError::Timeout {
                plugin,
                hook,
                budget,
            };
        }
        let mut message = format!("{err:#}");
        let printed = self.stderr.take();
        if !printed.is_empty() {
            message.push_str("; the plugin printed: ");
            message.push_str(printed.trim_end());
        }
        CallError::Trap {
            plugin,
            hook,
            message,
        }
    }
}

impl WarmInstance {
    /// Run `on-timer(name, payload)` within the after-hook budget. `Ok(Err(reason))` is the plugin's own
    /// failure; `Err` means the instance must be discarded, as for [`WarmInstance::call`].
    pub(crate) fn call_timer(
        &mut self,
        recipe: &InstanceRecipe,
        name: &str,
        payload: &str,
    ) -> Result<Result<(), String>, CallError> {
        const HOOK: &str = "on-timer";
        let plugin = || recipe.name.to_string();
        let Some(guest) = &self.on_timer else {
            return Err(CallError::NotExported {
                plugin: plugin(),
                hook: HOOK,
            });
        };
        let guest = guest.clone();
        let budget = recipe.limits.after_hook_budget;
        self.begin_call(budget, 0, true);
        let result = guest.call_on_timer(&mut self.store, name, payload);
        recipe.log_limiter.flush();
        result.map_err(|err| self.call_error(&err, &recipe.name, HOOK, budget))
    }
}

/// The bytes of what a call returned that the server would keep or pass on.
fn output_bytes(output: &HookOutput) -> usize {
    use super::bindings::types::Decision;
    match output {
        HookOutput::Decision(Decision::Allow) | HookOutput::Done(Ok(())) => 0,
        HookOutput::Decision(Decision::Reject(reason)) | HookOutput::Done(Err(reason)) => {
            reason.len()
        }
        HookOutput::Decision(Decision::Modify(m)) => {
            m.body.as_ref().map_or(0, String::len) + m.metadata.as_ref().map_or(0, String::len)
        }
    }
}
