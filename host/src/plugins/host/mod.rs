//! The host interfaces plugins import, one file per WIT interface, each implemented on a narrow context
//! that holds only what that interface needs. Components built against the frozen 0.2.0 and 0.1.0 versions
//! of the package get the same contexts through [`v0_2`] and [`v0_1`], which translate their types.

pub mod chat;
pub mod config;
pub mod events;
pub mod http;
pub mod kv;
pub mod log;
pub mod push;
pub mod scheduler;
pub mod stdio;
pub mod v0_1;
pub mod v0_2;
pub(crate) mod wasi;

use super::instance::PluginState;
use wasmtime::component::{HasData, Linker};

/// Selects the `log` context out of a plugin's store.
struct LogData;
impl HasData for LogData {
    type Data<'a> = &'a mut log::LogCtx;
}

/// Selects the `kv` context out of a plugin's store.
struct KvData;
impl HasData for KvData {
    type Data<'a> = &'a mut kv::KvCtx;
}

/// Declares a `HasData` selector for one host context type.
macro_rules! selector {
    ($(#[$doc:meta])* $name:ident => $ctx:ty) => {
        $(#[$doc])*
        struct $name;
        impl HasData for $name {
            type Data<'a> = &'a mut $ctx;
        }
    };
}

selector!(/// Selects the `config` context.
    ConfigData => config::ConfigCtx);
selector!(/// Selects the `chat` context.
    ChatData => chat::ChatCtx);
selector!(/// Selects the `events` context.
    EventsData => events::EventsCtx);
selector!(/// Selects the `http` context.
    HttpData => http::HttpCtx);
selector!(/// Selects the `push` context.
    PushData => push::PushCtx);
selector!(/// Selects the `scheduler` context.
    SchedulerData => scheduler::SchedulerCtx);

/// Adds the imports of one version of the package (`$version`, a module of generated bindings) to
/// `$linker`, each on its context: the same contexts serve every version.
macro_rules! add_imports {
    ($linker:expr, $version:path) => {{
        use $version as version;
        version::log::add_to_linker::<PluginState, LogData>($linker, |s| &mut s.log)?;
        version::kv::add_to_linker::<PluginState, KvData>($linker, |s| &mut s.kv)?;
        version::config::add_to_linker::<PluginState, ConfigData>($linker, |s| {
            &mut s.powers.config
        })?;
        version::chat::add_to_linker::<PluginState, ChatData>($linker, |s| &mut s.powers.chat)?;
        version::events::add_to_linker::<PluginState, EventsData>($linker, |s| {
            &mut s.powers.events
        })?;
        version::http::add_to_linker::<PluginState, HttpData>($linker, |s| &mut s.powers.http)?;
        version::push::add_to_linker::<PluginState, PushData>($linker, |s| &mut s.powers.push)?;
        version::scheduler::add_to_linker::<PluginState, SchedulerData>($linker, |s| {
            &mut s.powers.scheduler
        })?;
    }};
}

/// Add every host interface (ours, in every version the server implements: 0.3.0 directly, 0.2.0 and
/// 0.1.0 through [`v0_2`] and [`v0_1`]; and WASI's) to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    wasi::add_to_linker(linker)?;
    add_imports!(linker, super::bindings::v0_3::chathooks::plugin);
    add_imports!(linker, super::bindings::v0_2::chathooks::plugin);
    add_imports!(linker, super::bindings::v0_1::chathooks::plugin);
    Ok(())
}

/// Time a plugin call spent in host calls that wait on something else (an HTTP answer, a bot post's chat
/// operation with its own hook calls): their wall-clock time and the CPU time they used on the calling
/// thread. A call's budget counts the thread's CPU time under a wall-clock cap (see `budget.rs`); without
/// this credit a bot post's nested hooks would be charged to the poster, and a plugin waiting 2 s for a
/// webhook would hit the cap of its 1 s budget's wall clock. Only after-hooks and timers get the credit:
/// a before-hook holds up a user's request, so its budget stays strict.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostWait {
    /// Nanoseconds of wall-clock time waited this call.
    wall: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Nanoseconds of the thread's CPU time used while waiting this call.
    cpu: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Whether the current call earns credit.
    credited: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// When a wait began, on both clocks ([`HostWait::start`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitStart {
    wall: std::time::Instant,
    cpu: Option<std::time::Duration>,
}

impl HostWait {
    /// Starts a call: forget earlier waits; `credited` says whether this call's waits extend its budget.
    pub(crate) fn begin_call(&self, credited: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.wall.store(0, Relaxed);
        self.cpu.store(0, Relaxed);
        self.credited.store(credited, Relaxed);
    }

    /// Marks the start of a wait (reading the thread's CPU clock only when the call earns credit).
    pub(crate) fn start(&self) -> WaitStart {
        let credited = self.credited.load(std::sync::atomic::Ordering::Relaxed);
        WaitStart {
            wall: std::time::Instant::now(),
            cpu: credited
                .then(crate::plugins::budget::thread_cpu_time)
                .flatten(),
        }
    }

    /// Records a wait that began at `start`.
    pub(crate) fn record(&self, start: WaitStart) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.credited.load(Relaxed) {
            return;
        }
        let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.wall.fetch_add(nanos(start.wall.elapsed()), Relaxed);
        let cpu = start
            .cpu
            .zip(crate::plugins::budget::thread_cpu_time())
            .map_or(std::time::Duration::ZERO, |(then, now)| {
                now.saturating_sub(then)
            });
        self.cpu.fetch_add(nanos(cpu), Relaxed);
    }

    /// The waits credited to the current call so far.
    pub(crate) fn credit(&self) -> crate::plugins::budget::Credit {
        use std::sync::atomic::Ordering::Relaxed;
        crate::plugins::budget::Credit {
            wall: std::time::Duration::from_nanos(self.wall.load(Relaxed)),
            cpu: std::time::Duration::from_nanos(self.cpu.load(Relaxed)),
        }
    }
}

/// The contexts of the power interfaces (`config`, `chat`, `events`, `http`, `push`, `scheduler`), one
/// per interface, as one field of a plugin's store.
pub(crate) struct PowerCtxs {
    /// Time blocked in host calls (see [`HostWait`]).
    pub(crate) wait: HostWait,
    pub(crate) config: config::ConfigCtx,
    pub(crate) chat: chat::ChatCtx,
    pub(crate) events: events::EventsCtx,
    pub(crate) http: http::HttpCtx,
    pub(crate) push: push::PushCtx,
    pub(crate) scheduler: scheduler::SchedulerCtx,
}

impl PowerCtxs {
    /// The contexts for one instance of plugin `name`, rate-limited by `limiter` (shared by every
    /// instance of the plugin version).
    pub(crate) fn new(
        name: &std::sync::Arc<str>,
        powers: &std::sync::Arc<super::powers::PluginPowers>,
        services: &super::powers::ServicesSlot,
        limiter: &std::sync::Arc<super::powers::PowerLimiter>,
        has_on_timer: bool,
    ) -> Self {
        let wait = HostWait::default();
        let (name, powers, services) = (name.clone(), powers.clone(), services.clone());
        PowerCtxs {
            wait: wait.clone(),
            config: config::ConfigCtx::new(powers.clone()),
            chat: chat::ChatCtx::new(
                name.clone(),
                powers.clone(),
                services.clone(),
                limiter.clone(),
                wait.clone(),
            ),
            events: events::EventsCtx::new(
                name.clone(),
                powers.clone(),
                services.clone(),
                limiter.clone(),
            ),
            http: http::HttpCtx::new(
                name.clone(),
                powers.clone(),
                services.clone(),
                limiter.clone(),
                wait,
            ),
            push: push::PushCtx::new(
                name.clone(),
                powers.clone(),
                services.clone(),
                limiter.clone(),
            ),
            scheduler: scheduler::SchedulerCtx::new(
                name,
                powers,
                services,
                limiter.clone(),
                has_on_timer,
            ),
        }
    }
}
