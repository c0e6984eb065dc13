//! One plugin instance: its store (WASI context, host contexts, memory limiter) and its bound hooks.

use super::budget::{BudgetExhausted, CallBudget, Verdict};
use super::error::CallError;
use super::hooks::{HookCall, HookExports, HookIndices, HookOutput, TimerGuest, TimerIndices};
use super::host::PowerCtxs;
use super::host::kv::KvCtx;
use super::host::log::{LogCtx, LogLimiter};
use super::host::stdio::{LogStream, StderrTail};
use super::limits::{PluginLimits, TABLE_ELEMENTS_LIMIT};
use super::logs::LogSink;
use super::powers::{Grants, PluginPowers, PowerLimiter, ServicesSlot, call_depth};
use super::warmup::Quiet;
use crate::store::kv::{Commit, KvQuota, KvStore};
use std::sync::Arc;
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// CPU time a fresh instance may spend in its start-up code before it counts as hung.
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
    /// The time budget of the call under way (read by the epoch-deadline callback).
    budget: CallBudget,
    pub(crate) log: LogCtx,
    pub(crate) kv: KvCtx,
    /// `config`, `chat`, `events`, `http`, `push` and `scheduler`.
    pub(crate) powers: PowerCtxs,
}

impl PluginState {
    /// The participants of `conversation_id` for a hook call to a component built against 0.2.0 or older
    /// (see `hooks::frozen`): read through the plugin's services, empty when there are none to read.
    pub(crate) fn old_hook_participants(
        &mut self,
        conversation_id: &str,
    ) -> Vec<super::bindings::types::Participant> {
        self.powers.chat.participants_now(conversation_id)
    }
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
    /// Whether its calls may run on an async worker in place: it imports no WASI interface that blocks on
    /// a runtime unwrapped ([`super::host::wasi::calls_in_place`]).
    pub(crate) in_place: bool,
}

/// The host an instance is created with: the plugin's own (KV, grants, log), or an inert one for a
/// warm-up call whose effects must not leave the instance (see `warmup.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostSide {
    /// The plugin's KV namespace, its grants and services, its log.
    Real,
    /// The plugin's config, a throwaway in-memory KV store, no grants and no services, the log muted.
    Inert,
}

/// A live instance with its hooks bound, ready to be called (and reused).
pub(crate) struct WarmInstance {
    store: Store<PluginState>,
    exports: HookExports,
    stderr: StderrTail,
    /// Mutes the instance's log lines (stdout, stderr, `log`) while it is inert.
    quiet: Arc<Quiet>,
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
            in_place: self.in_place,
        }
    }

    /// Create a fresh instance: a new store with no files, no environment, no network, stdio into the log.
    pub(crate) fn instantiate(&self, engine: &Engine) -> wasmtime::Result<WarmInstance> {
        self.instantiate_as(engine, HostSide::Real)
    }

    /// The KV and power contexts of an instance on `side`.
    fn host_contexts(&self, side: HostSide) -> (KvCtx, PowerCtxs) {
        let quota = KvQuota {
            max_keys: self.limits.kv_max_keys,
            max_bytes: self.limits.kv_max_bytes,
        };
        let (kv, powers, services) = match side {
            HostSide::Real => (
                KvCtx::new(self.name.clone(), self.kv.clone(), quota),
                self.powers.clone(),
                self.services.clone(),
            ),
            // The plugin's own `[config]` and settings (read-only, so reading them has no effect): a
            // plugin that builds state from them on its first call and keeps it must build it from
            // what its later calls see.
            HostSide::Inert => (
                KvCtx::throwaway(self.name.clone(), quota),
                Arc::new(PluginPowers {
                    config: self.powers.config.clone(),
                    grants: Grants::default(),
                }),
                ServicesSlot::default(),
            ),
        };
        (
            kv,
            PowerCtxs::new(
                &self.name,
                &powers,
                &services,
                &self.power_limiter,
                self.on_timer.is_some(),
            ),
        )
    }

    /// [`InstanceRecipe::instantiate`] with the host of `side`.
    pub(crate) fn instantiate_as(
        &self,
        engine: &Engine,
        side: HostSide,
    ) -> wasmtime::Result<WarmInstance> {
        let stderr = StderrTail::default();
        let quiet = Arc::new(Quiet::new(self.sink.clone(), side == HostSide::Inert));
        let sink: Arc<dyn LogSink> = quiet.clone();
        // No preopened directory and no network: the `http` power is a plugin's way out
        // (`plugins/host/wasi/` wraps the file and socket functions that remain, which only fail).
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stdout(LogStream::stdout(self.name.clone(), sink.clone()))
            .stderr(LogStream::stderr(
                self.name.clone(),
                sink.clone(),
                stderr.clone(),
            ))
            .build();
        let (kv, powers) = self.host_contexts(side);
        let state = PluginState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                cap: self.limits.memory_bytes,
            },
            budget: CallBudget::start(INSTANTIATE_BUDGET),
            log: LogCtx::new(self.name.clone(), sink),
            kv,
            powers,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        // Past the deadline: let the call run on while it has CPU time left, else stop it (see `budget.rs`).
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            match state.budget.check(state.powers.wait.credit()) {
                Verdict::Extend(ticks) => Ok(UpdateDeadline::Continue(ticks)),
                Verdict::Exhausted(limit) => Err(BudgetExhausted { limit }.into()),
            }
        });
        let first = store.data().budget.first_deadline();
        store.set_epoch_deadline(first);
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
            quiet,
            on_timer,
            calls: 0,
        })
    }
}

impl WarmInstance {
    /// Gives an instance created [`HostSide::Inert`] the plugin's own host (KV, grants, log), as if it had
    /// been created with it, with no calls counted.
    pub(crate) fn arm(&mut self, recipe: &InstanceRecipe) {
        let (kv, powers) = recipe.host_contexts(HostSide::Real);
        let state = self.store.data_mut();
        state.kv = kv;
        state.powers = powers;
        self.quiet.unmute();
        self.stderr.take();
        self.calls = 0;
    }
}

impl WarmInstance {
    /// Run one hook call within the plugin's time budget. On `Err` the instance must be discarded: its
    /// memory may be half-updated.
    /// Its KV writes are committed as `kv_commit` says.
    pub(crate) fn call(
        &mut self,
        recipe: &InstanceRecipe,
        call: &HookCall,
        kv_commit: Commit,
    ) -> Result<HookOutput, CallError> {
        let budget = match call.hook().kind() {
            super::hooks::HookKind::Before => recipe.limits.before_hook_budget,
            super::hooks::HookKind::After => recipe.limits.after_hook_budget,
        };
        self.call_within(recipe, call, budget, kv_commit)
    }

    /// [`WarmInstance::call`] with a budget of `budget` CPU time.
    pub(crate) fn call_within(
        &mut self,
        recipe: &InstanceRecipe,
        call: &HookCall,
        budget: std::time::Duration,
        kv_commit: Commit,
    ) -> Result<HookOutput, CallError> {
        let hook = call.hook();
        self.begin_call(
            budget,
            call_depth(call),
            hook.kind() == super::hooks::HookKind::After,
            kv_commit,
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
    /// depth bot posts carry, whether host waits are credited back to the budget (after-hooks and
    /// timers only) and when its KV writes are committed.
    fn begin_call(
        &mut self,
        budget: std::time::Duration,
        depth: u32,
        credit_waits: bool,
        kv_commit: Commit,
    ) {
        self.calls += 1;
        self.stderr.take();
        let state = self.store.data_mut();
        state.kv.set_commit(kv_commit);
        state.powers.chat.set_depth(depth);
        state.powers.wait.begin_call(credit_waits);
        state.budget = CallBudget::start(budget);
        let first = state.budget.first_deadline();
        self.store.set_epoch_deadline(first);
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
        if let Some(exhausted) = err.downcast_ref::<BudgetExhausted>() {
            return CallError::Timeout {
                plugin,
                hook,
                budget,
                limit: exhausted.limit,
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
        self.begin_call(budget, 0, true, Commit::Now);
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
        HookOutput::Decision(Decision::Reject(reason) | Decision::Hold(reason))
        | HookOutput::Done(Err(reason)) => reason.len(),
        HookOutput::Decision(Decision::Modify(m)) => {
            m.body.as_ref().map_or(0, String::len) + m.metadata.as_ref().map_or(0, String::len)
        }
    }
}
