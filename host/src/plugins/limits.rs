//! Per-plugin limits and the engine-wide ceilings they live under. Every number says why it is that number.

use std::time::Duration;

/// How often the ticker thread advances the engine's epoch. Time budgets are counted in ticks, so this is
/// the resolution of every plugin deadline; 1 ms keeps a 50 ms budget accurate to 2% at negligible cost
/// (one atomic increment per millisecond).
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Default memory cap per plugin instance. 64 MiB holds a Rust or C plugin many times over and a Python or
/// JavaScript interpreter with its heap; a plugin that needs more says so in its manifest.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

/// The most memory any one plugin instance can be granted, manifest or not. Also the pooling allocator's
/// slot size, so it bounds reserved address space (not resident memory): 1,000 slots of 1 GiB.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Default CPU time a before-hook may use (see `budget.rs`: budgets count the calling thread's CPU time,
/// not the machine's load). It runs inside a user's request, once per plugin, so it must stay well under
/// what a person notices; 50 ms is generous for any filter and still bounds a loop.
pub const DEFAULT_BEFORE_HOOK_BUDGET: Duration = Duration::from_millis(50);

/// Default CPU time an after-hook may use. It is off the request path, so it can be slower, but a stuck
/// call still holds an instance and delays the events behind it in its conversation.
pub const DEFAULT_AFTER_HOOK_BUDGET: Duration = Duration::from_secs(1);

/// How many times its CPU budget a call may take in wall-clock time before it is stopped anyway. On this
/// project's two-core machines, ten is twenty busy threads competing with the call (four clients' requests,
/// the dispatcher, SQLite, other plugins) with room to spare, so load alone never reaches it; a call that
/// does is stuck (descheduled for long, or waiting in a host call), and a person would have given up on
/// the request: 500 ms for a default before-hook, 10 s for an after-hook.
pub const WALL_CLOCK_CAP_FACTOR: u32 = 10;

/// The least wall-clock cap of any call, whatever its budget. A loaded scheduler keeps a runnable thread
/// waiting for a core for tens of milliseconds (a few time slices of 3-4 ms per competing thread), so a
/// small budget's cap of ten times would stop a 1 ms filter that merely waited; 200 ms is still well
/// under what a person takes for a hang.
pub const MIN_WALL_CLOCK_CAP: Duration = Duration::from_millis(200);

/// The wall-clock cap of a call with `budget` of CPU time: [`WALL_CLOCK_CAP_FACTOR`] times it, at least
/// [`MIN_WALL_CLOCK_CAP`].
pub fn wall_clock_cap(budget: Duration) -> Duration {
    budget
        .saturating_mul(WALL_CLOCK_CAP_FACTOR)
        .max(MIN_WALL_CLOCK_CAP)
}

/// Calls served by one warm instance before it is replaced by a fresh one. Reuse is what makes a hook cost
/// microseconds; recycling bounds how long a plugin's leaked memory or corrupted globals can live.
pub const MAX_CALLS_PER_INSTANCE: u32 = 10_000;

/// Idle warm instances kept per plugin. Two cores serve at most a few concurrent calls per plugin; a
/// burst beyond this instantiates extra instances (microseconds) and drops them afterwards.
pub const MAX_IDLE_INSTANCES: usize = 4;

/// Longest log line kept from a plugin; longer lines are cut and marked, so one call cannot fill the log.
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// Longest KV key, in bytes. Keys are indexed; long keys are almost always a bug (a body used as a key).
pub const MAX_KV_KEY_BYTES: usize = 512;

/// Largest single KV value. KV is for counters and small state, not blobs; 1 MiB fits any sane record.
pub const MAX_KV_VALUE_BYTES: usize = 1 << 20;

/// Default cap on what one hook call may return, in bytes: a decision's new body and metadata, a
/// rejection's reason, an after-hook's error text. A message is at most 32 KiB of body and 16 KiB of
/// metadata, so 64 KiB fits any acceptable decision; a bigger answer is a bug or an attack, and is refused
/// before the server keeps it anywhere. It is refused after wasmtime has lifted it out of the plugin's
/// memory (wasmtime 48 runs the guest's post-return, which frees the answer, before a lazily lifted string
/// can be read), so that one transient copy is bounded by the plugin's memory cap, not by this limit.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 << 10;

/// Default log lines per second a plugin may write (through `log`, stdout or stderr) on average. A
/// plugin that logs more than a few lines per event at a busy server's event rate is flooding; the rest
/// are dropped and counted, and a note says how many.
pub const DEFAULT_LOG_LINES_PER_SECOND: u32 = 100;

/// Default burst of log lines a plugin may write at once above its rate: room for a plugin's start-up
/// chatter or a debugging session's detail without losing lines.
pub const DEFAULT_LOG_BURST: u32 = 1000;

/// Default log bytes per second a plugin may write on average (lines are counted after cutting to
/// [`MAX_LOG_LINE_BYTES`]). The line rate alone let one plugin write 6.1 MB in 18 s with lines of 4 KiB;
/// 16 KiB/s is a hundred lines of a typical 160 bytes, the line rate's worth, and keeps a flooding plugin
/// to about 1.4 GB a day of server log instead of 35 GB.
pub const DEFAULT_LOG_BYTES_PER_SECOND: u32 = 16 << 10;

/// Default burst of log bytes a plugin may write at once above its byte rate: the line burst's thousand
/// lines at a typical 160 bytes, or about forty maximal lines.
pub const DEFAULT_LOG_BURST_BYTES: u32 = 160 << 10;

/// Default number of KV keys a plugin may hold. KV is for counters, dedup markers and small state; ten
/// thousand covers a marker per recent event with room to spare, and bounds a runaway loop's damage.
pub const DEFAULT_KV_MAX_KEYS: u64 = 10_000;

/// Default KV bytes (keys plus values) a plugin may hold: 16 MiB is a lot of small state, and keeps one
/// plugin from filling the disk that the chat database shares.
pub const DEFAULT_KV_MAX_BYTES: u64 = 16 << 20;

/// Consecutive failed calls after which the circuit breaker disables a plugin. Five in a row is past
/// bad luck (one malformed event, one timeout under load) and well before a broken plugin has cost much.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;

/// How long a plugin disabled by the circuit breaker stays off before one trial call is let through.
/// Thirty seconds spares the server a broken plugin's timeouts while letting a plugin that failed for a
/// passing reason (a remote service restarting) come back quickly.
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

/// Default bot posts (`chat.post-message` and `chat.join-conversation`) a plugin may make per second on
/// average. A bot answers people, and people in a busy deployment write a few messages a second in total:
/// ten a second is a bot answering every one of them, while each post is a stored message, a fan-out to
/// every participant and every other plugin's hooks. A runaway loop (20,000 posts in 6 s were measured
/// without a limit) is cut to this.
pub const DEFAULT_POSTS_PER_SECOND: u32 = 10;

/// Default burst of bot posts above the average rate: a batch a real bot makes at once (welcoming a group
/// of users added together, a digest posted to a few dozen conversations) passes untouched.
pub const DEFAULT_POSTS_BURST: u32 = 50;

/// Default custom live events a plugin may send per second. Events are not stored, but each is fanned out
/// to every connection of a conversation; twenty a second covers a poll's tally updated on every vote or a
/// "bot is typing" signal per message on a busy server.
pub const DEFAULT_EVENTS_PER_SECOND: u32 = 20;

/// Default burst of custom events: half of a connection's live channel
/// ([`crate::live::USER_CHANNEL_CAPACITY`], 128), so one plugin's burst never by itself pushes a client
/// past its channel (a lagging client misses live-only events: they are not stored to catch up from).
pub const DEFAULT_EVENTS_BURST: u32 = 64;

/// Default outbound HTTP requests a plugin may start per second. A webhook bridge sends one per event it
/// forwards; twenty a second is a busy server's message rate, and each request holds a blocking thread for
/// up to its time limit, so a flood of them would starve the server's other plugins.
pub const DEFAULT_HTTP_REQUESTS_PER_SECOND: u32 = 20;

/// Default burst of HTTP requests: a backlog of retried deliveries catching up after the consumer was down.
pub const DEFAULT_HTTP_REQUESTS_BURST: u32 = 100;

/// Default push notifications a plugin may queue per second. Each names up to 1,000 users and becomes a
/// gateway request and a notification on every phone named; push services throttle senders that go much
/// faster, and a person reads a few notifications a minute at most.
pub const DEFAULT_PUSHES_PER_SECOND: u32 = 10;

/// Default burst of push notifications: one per participant of a group conversation that just got busy.
pub const DEFAULT_PUSHES_BURST: u32 = 50;

/// Default timer changes (`scheduler.once`, `every`, `cancel`) a plugin may make per second. Each is a
/// database write; a reminder bot sets one per command, so ten a second is far above any real use.
pub const DEFAULT_TIMERS_PER_SECOND: u32 = 10;

/// Default burst of timer changes: a plugin (re)scheduling a few dozen timers when it starts up.
pub const DEFAULT_TIMERS_BURST: u32 = 50;

/// The limits one plugin runs under. Every field can be set in the plugin's manifest (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory an instance may grow to, in bytes (capped at [`MAX_MEMORY_BYTES`]).
    pub memory_bytes: usize,
    /// Time budget of one before-hook call.
    pub before_hook_budget: Duration,
    /// Time budget of one after-hook call.
    pub after_hook_budget: Duration,
    /// Largest answer one call may return (decision body + metadata, reject reason, error text).
    pub max_output_bytes: usize,
    /// Average log lines per second; lines beyond it (and the burst) are dropped and counted.
    pub log_lines_per_second: u32,
    /// Log lines that may be written at once above the average rate.
    pub log_burst: u32,
    /// Average log bytes per second; lines beyond it (and the byte burst) are dropped and counted.
    pub log_bytes_per_second: u32,
    /// Log bytes that may be written at once above the average byte rate.
    pub log_burst_bytes: u32,
    /// KV keys the plugin may hold.
    pub kv_max_keys: u64,
    /// KV bytes (keys + values) the plugin may hold.
    pub kv_max_bytes: u64,
    /// Consecutive failures that disable the plugin (the circuit breaker opens); 0 never disables it.
    pub breaker_failures: u32,
    /// How long a disabled plugin stays off before a trial call.
    pub breaker_cooldown: Duration,
    /// Rate limits of the powers (posts, events, HTTP requests, pushes, timers).
    pub power_rates: super::powers::PowerRates,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            before_hook_budget: DEFAULT_BEFORE_HOOK_BUDGET,
            after_hook_budget: DEFAULT_AFTER_HOOK_BUDGET,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            log_lines_per_second: DEFAULT_LOG_LINES_PER_SECOND,
            log_burst: DEFAULT_LOG_BURST,
            log_bytes_per_second: DEFAULT_LOG_BYTES_PER_SECOND,
            log_burst_bytes: DEFAULT_LOG_BURST_BYTES,
            kv_max_keys: DEFAULT_KV_MAX_KEYS,
            kv_max_bytes: DEFAULT_KV_MAX_BYTES,
            breaker_failures: DEFAULT_BREAKER_FAILURES,
            breaker_cooldown: DEFAULT_BREAKER_COOLDOWN,
            power_rates: super::powers::PowerRates::default(),
        }
    }
}

impl PluginLimits {
    /// The budget in epoch ticks (at least one).
    pub(crate) fn ticks(budget: Duration) -> u64 {
        let ticks = budget.as_nanos() / EPOCH_TICK.as_nanos().max(1);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// Most elements a plugin's table may grow to; matches the pooling allocator's slot size so growth fails
/// cleanly instead of at the allocator.
pub const TABLE_ELEMENTS_LIMIT: usize = 100_000;
