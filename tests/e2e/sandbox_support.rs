//! Helpers for the sandbox and reload tests: plugin files in a running server's plugins folder, its admin
//! plugin list, polling with generous deadlines, what the recorder fixture recorded, and CPU work
//! calibrated to this machine.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chathooks::clock::ManualClock;
use chathooks::plugins::budget::thread_cpu_time;
use chathooks::plugins::{CaptureSink, HookCall, PluginLimits, Runtime, RuntimeConfig};
use chathooks::store::kv::KvStore;
use reqwest::Method;
use serde_json::Value;

use crate::server_support::{ADMIN_KEY, TestServer, must};

/// How long a test waits for something that should happen soon but involves reloads, retries or a
/// circuit breaker's cool-down. Generous: only a hang should ever reach it.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some`, panicking with `what` after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a wait on a server running on `clock`: each look that finds nothing moves the clock
/// on by `step`, so the wait costs a few polls of real time, not `step`. The server's sleeper (a retry's
/// backoff, a timer) may not have started waiting when the test first moves the clock; the next step
/// then wakes it.
pub async fn eventually_advancing<T, F, Fut>(
    clock: &ManualClock,
    step: Duration,
    what: &str,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually(what, || {
        let look = check();
        async move {
            let found = look.await;
            if found.is_none() {
                clock.advance(step);
            }
            found
        }
    })
    .await
}

/// Waits until the server has nothing left to do for its plugins: every event fanned out and every
/// after-hook delivery done, seen in one snapshot of the store. An after-hook's own posts are committed
/// before its delivery is done, so once this returns, nothing the events so far set off is still to come.
/// A delivery waiting for its retry is not done; timers are not looked at.
pub async fn settled(server: &TestServer) {
    eventually("every event delivered", || async {
        let db = server.running.state.db();
        let (pending, outbox) = must(
            db.read(|c| Ok((c.backlog()?, c.outbox_depth()?))),
            "read the backlog and the outbox",
        );
        (pending.is_empty() && outbox == 0).then_some(())
    })
    .await;
}

/// The server's plugins folder.
pub fn plugins_dir(server: &TestServer) -> PathBuf {
    match server.running.state.chat.registry().folder() {
        Some(dir) => dir,
        None => panic!("the server has no plugins folder"),
    }
}

/// Writes `bytes` to `<plugins>/<file>` through a hidden temporary file and a rename, as a deploy does.
pub fn install(server: &TestServer, file: &str, bytes: &[u8]) {
    let dir = plugins_dir(server);
    let staged = dir.join(format!(".{file}.part"));
    must(std::fs::write(&staged, bytes), "write staged plugin");
    must(std::fs::rename(&staged, dir.join(file)), "rename plugin");
}

/// The bytes of a built fixture (`recorder`, `hostile`, ...).
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    must(
        std::fs::read(chathooks_tests::fixture(name)),
        "read fixture",
    )
}

/// `component` with a custom section appended: the same plugin, but another file with another hash (a
/// new version that behaves like the old one).
pub fn variant(component: &[u8], n: u32) -> Vec<u8> {
    let name = b"chathooks-test-variant";
    let payload = n.to_le_bytes();
    let mut body = leb128(name.len());
    body.extend_from_slice(name);
    body.extend_from_slice(&payload);
    let mut out = component.to_vec();
    out.push(0); // custom section
    out.extend(leb128(body.len()));
    out.extend(body);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap_or(0);
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `GET /v1/admin/plugins`.
pub async fn plugins(server: &TestServer) -> Vec<Value> {
    let (status, body) = server
        .call(Method::GET, "/v1/admin/plugins", Some(ADMIN_KEY), None)
        .await;
    assert!(status.is_success(), "{status} {body}");
    body.as_array().cloned().unwrap_or_default()
}

/// The admin API's entry for `name`, if listed.
pub async fn plugin(server: &TestServer, name: &str) -> Option<Value> {
    plugins(server)
        .await
        .into_iter()
        .find(|p| p["name"] == name)
}

/// Waits until `name`'s admin entry satisfies `check`; returns it.
pub async fn plugin_until(
    server: &TestServer,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(&format!("{name}: {what}"), || async {
        plugin(server, name).await.filter(|p| check(p))
    })
    .await
}

/// Waits until `name` runs the version with `hash`.
pub async fn serving(server: &TestServer, name: &str, hash: &str) -> Value {
    plugin_until(server, name, &format!("serving {hash}"), |p| {
        p["hash"] == hash
    })
    .await
}

/// SHA-256 of `bytes` as the admin API shows it.
pub fn hash_of(bytes: &[u8]) -> String {
    chathooks::plugins::cache::content_hash(bytes)
}

/// The message ids `plugin` (a recorder) recorded in `after-message-sent` calls.
pub fn recorded_messages(server: &TestServer, plugin: &str) -> BTreeSet<String> {
    let kv = server.running.state.chat.registry().runtime().kv();
    must(kv.dump(plugin), "kv dump")
        .into_iter()
        .filter(|(key, _)| key.starts_with("after-message-sent:"))
        .filter_map(|(_, value)| {
            let record: Value = serde_json::from_slice(&value).ok()?;
            record["message"]["id"].as_str().map(str::to_owned)
        })
        .collect()
}

/// Waits until the recorder `plugin` has recorded every message of `ids`.
pub async fn recorded_all(server: &TestServer, plugin: &str, ids: &BTreeSet<String>) {
    eventually(
        &format!("{plugin} records all {} messages", ids.len()),
        || async {
            recorded_messages(server, plugin)
                .is_superset(ids)
                .then_some(())
        },
    )
    .await;
}

/// After-hook deliveries not yet done, per plugin, and events not yet fanned out.
pub fn backlog(server: &TestServer) -> (Vec<(String, u64)>, u64) {
    let db = server.running.state.db();
    let pending = must(db.read(|c| c.backlog()), "read the backlog");
    let outbox = must(db.read(|c| c.outbox_depth()), "read the outbox");
    (pending, outbox)
}

/// `GET /v1/admin/dead-letters`.
pub async fn dead_letters(server: &TestServer) -> Vec<Value> {
    let body = server.get_ok("/v1/admin/dead-letters", ADMIN_KEY).await;
    body.as_array().cloned().unwrap_or_default()
}

/// Writes a manifest `<name>.toml` into a plugins folder (before the server starts).
pub fn write_manifest(dir: &Path, name: &str, text: &str) {
    must(
        std::fs::write(dir.join(format!("{name}.toml")), text),
        "write manifest",
    );
}

/// Whether the server answers its health check.
pub async fn healthy(server: &TestServer) -> bool {
    let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
    status.is_success()
}

/// The server's `GET /metrics` document.
pub async fn metrics_text(server: &TestServer) -> String {
    let response = must(
        server
            .http
            .request(Method::GET, format!("{}/metrics", server.base))
            .send()
            .await,
        "GET /metrics",
    );
    must(response.text().await, "read /metrics")
}

/// The value of the sample whose name and labels are exactly `line_start`, if present.
pub fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Threads that keep every core busy until dropped, so a test can check what a loaded machine does to
/// plugin calls. They stop (and are joined) when this is dropped, also when the test fails.
pub struct BusyCores {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyCores {
    /// `per_core` spinning threads per available core.
    pub fn start(per_core: usize) -> BusyCores {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..cores * per_core)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut n: u64 = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                })
            })
            .collect();
        BusyCores { stop, threads }
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A `before-message-sent` call with `body`, as the runtime takes it.
fn before_sent(body: &str) -> HookCall {
    let input = serde_json::json!({ "draft": { "body": body, "sender": { "id": "alice" } }, "conversation": { "id": "c1" } });
    let context = must(
        chathooks::cases::convert::context(None, "context", 1),
        "context",
    );
    must(
        chathooks::cases::convert::hook_call("before-message-sent", &input, context),
        "hook call",
    )
}

/// Rounds of the arithmetic loop of the hostile fixture's `work:<n>` (and the slow-start fixture's
/// `start_rounds`) that cost about `work` of CPU time on this machine, on Cranelift's code, measured with
/// the thread's CPU clock on the real runtime (the least of a few tries); `None` where there is no thread
/// CPU clock.
pub async fn rounds_for_work(work: Duration) -> Option<u64> {
    tokio::task::spawn_blocking(move || measured_rounds(work))
        .await
        .ok()
        .flatten()
}

/// [`rounds_for_work`], on the calling thread.
fn measured_rounds(work: Duration) -> Option<u64> {
    let runtime = must(
        Runtime::new(RuntimeConfig {
            compilers: chathooks::plugins::Compilers::Cranelift,
            cache_dir: None,
            kv: std::sync::Arc::new(must(KvStore::open_in_memory(), "kv")),
            logs: std::sync::Arc::new(CaptureSink::default()),
        }),
        "runtime",
    );
    let bytes = must(
        std::fs::read(chathooks_tests::fixture("hostile")),
        "read hostile",
    );
    let limits = PluginLimits {
        before_hook_budget: Duration::from_secs(10),
        ..PluginLimits::default()
    };
    let plugin = must(runtime.load("hostile", &bytes, limits), "load hostile");
    const PROBE: u64 = 2_000_000;
    let call = before_sent(&format!("work:{PROBE}"));
    let mut least = Duration::MAX;
    for _ in 0..5 {
        let start = thread_cpu_time()?;
        must(plugin.call(&call), "probe call");
        least = least.min(thread_cpu_time()? - start);
    }
    let per_round = least.as_secs_f64() / f64::from(u32::try_from(PROBE).ok()?);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((work.as_secs_f64() / per_round) as u64)
}
