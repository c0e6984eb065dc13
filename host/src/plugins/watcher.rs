//! Hot reload: watch the plugins folder and bring the registry in line with it.
//!
//! ## What it does
//! - `x.wasm` appears → load `x`; it changes → load the new version and swap it in; it disappears →
//!   unload `x`. `x.toml` appears, changes or disappears → load `x.wasm` again with the new manifest.
//! - Only `*.wasm` and `*.toml` files directly in the folder count; hidden files (`.x.wasm.part`, the
//!   temporary files of copy tools) and reads are ignored.
//!
//! ## Never half a file, and quickly
//! Events are collected per plugin, and nothing is loaded until the plugin's files have stopped changing:
//! - A file renamed into place (`mv .x.part x.wasm`, the clean way to deploy) or closed by its writer
//!   (the end of a `cp`) is complete: after [`SETTLE_FAST`] without further events it is loaded at once,
//!   and it must still have the same size, modification time and inode when the load is done. A replaced
//!   Rust plugin serves as soon as it is compiled. (A writer that closes the file between pieces and
//!   reopens it should write to a hidden name and rename: a piece that happens to be a valid component
//!   on its own could be loaded before the next piece arrives; truncated components are refused.)
//! - Any other change (data written by a writer that still has the file open, a removal) waits for
//!   [`WatchConfig::debounce`] of quiet, then for the files to stay the same over another such window.
//!   A removal followed by a new copy (`rm x.wasm; cp new.wasm x.wasm`) is therefore one replacement, not
//!   an unload and a load.
//!
//! Loading runs on a blocking thread (compiling can take seconds). If the files changed while loading,
//! the result is thrown away, loaded or not, and the next quiet window brings another attempt: a file
//! still being written is never swapped in. A file that fails to load is recorded as the plugin's load
//! error (the running version keeps serving) only once it has stayed unchanged for [`FAILURE_SETTLE`]:
//! a half-copied file that is written on after a pause is retried, not reported. A truncated component
//! fails validation in any case.
//!
//! ## What it brings in line
//! Usually the registry (hot reload). A publisher node of a cluster watches its folder with the same
//! rules but pushes settled files to the cluster's catalog instead ([`WatchTarget`]).
//!
//! ## Events lost by the OS
//! When the watcher reports an error or an overflow (the kernel's event queue was full), the whole folder
//! is rescanned after a quiet window.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::registry::Registry;
use super::reload::{Attempt, is_plugin_file};
use crate::stoppable::Stoppable;

/// Quiet time before a file that is still open for writing (or was removed) is looked at, and again
/// before it is loaded. Copy tools write chunks microseconds to milliseconds apart; a quarter of a second
/// of silence, twice, is far beyond that, and gives `rm x.wasm; cp new x.wasm` time to land as one
/// replacement.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Quiet time after a file was renamed into place or closed by its writer, before it is loaded. Such a
/// file is complete; the window only gathers a manifest renamed in beside it, microseconds apart when
/// a deploy renames both. Short, because every reload waits for it: a version seen before serves in
/// 4-6 ms with 1 ms here against 9-10 ms with 5 ms (BENCHMARKS.md, problem 14). A manifest that lands
/// later still makes the load start over, or reloads the plugin once it has.
pub const SETTLE_FAST: Duration = Duration::from_millis(1);

/// How long a file that failed to load must stay unchanged before the failure is recorded as the
/// plugin's load error: longer than a slow copy's pause between pieces.
pub const FAILURE_SETTLE: Duration = Duration::from_secs(1);

/// How the watcher behaves.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The quiet window (see the module docs).
    pub debounce: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig { debounce: DEBOUNCE }
    }
}

/// A running watcher. Stop it with [`Watcher::stop`]; dropping it stops it too, less politely.
#[derive(Debug)]
pub struct Watcher(Stoppable);

/// What a watcher brings in line with its folder, once a plugin's files have settled: the registry (it
/// loads them), or a cluster's catalog (a publisher node pushes them). Methods are called on a blocking
/// thread, one at a time.
pub trait WatchTarget: Send + Sync + 'static {
    /// Takes the plugin at `wasm` (with its manifest beside it). `still_same`, asked after reading and
    /// checking, says whether its files are still those that settled: if not, nothing must be done
    /// ([`Attempt::Changed`]). A failure is returned, not recorded ([`Attempt::Failed`]).
    fn try_take(&self, wasm: &Path, still_same: &dyn Fn() -> bool) -> Attempt;
    /// Records that the plugin at `wasm` failed with `error` and its files stayed unchanged since.
    fn record_failure(&self, wasm: &Path, error: String);
    /// The plugin's `.wasm` is gone from the folder.
    fn removed(&self, name: &str);
    /// Takes the whole folder again (after events the OS lost).
    fn rescan(&self) -> std::io::Result<()>;
}

impl WatchTarget for Registry {
    fn try_take(&self, wasm: &Path, still_same: &dyn Fn() -> bool) -> Attempt {
        self.try_load_file(wasm, still_same)
    }

    fn record_failure(&self, wasm: &Path, error: String) {
        self.record_load_error(wasm, error);
    }

    fn removed(&self, name: &str) {
        self.unload(name);
    }

    fn rescan(&self) -> std::io::Result<()> {
        Registry::rescan(self).map(drop)
    }
}

/// Called after every change the watcher made to the registry (the server wakes the dispatcher, so
/// deliveries waiting for a plugin that came back start at once).
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

impl Watcher {
    /// Starts watching `dir` for `registry`. Must run inside a tokio runtime.
    pub fn spawn(
        registry: Arc<Registry>,
        dir: PathBuf,
        config: WatchConfig,
        on_change: OnChange,
    ) -> anyhow::Result<Watcher> {
        Watcher::spawn_for(registry, dir, config, on_change)
    }

    /// Starts watching `dir` for `target` (see [`WatchTarget`]). Must run inside a tokio runtime.
    pub fn spawn_for(
        target: Arc<dyn WatchTarget>,
        dir: PathBuf,
        config: WatchConfig,
        on_change: OnChange,
    ) -> anyhow::Result<Watcher> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .context("starting the plugins folder watcher")?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching the plugins folder {}", dir.display()))?;
        let task = Task {
            target,
            dir,
            config,
            on_change,
            pending: BTreeMap::new(),
            rescan_at: None,
        };
        Ok(Watcher(Stoppable::spawn(move |stopped| async move {
            // The OS watcher lives as long as the task.
            let _watcher = watcher;
            task.run(events, stopped).await;
        })))
    }

    /// Stops watching; waits for a load in progress to finish.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

/// Size, modification time and inode of a file: if all three are unchanged across a quiet window, no
/// one wrote to it or replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

/// Stamps of a plugin's `.wasm` and `.toml` (`None`: absent).
type Stamps = (Option<FileStamp>, Option<FileStamp>);

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

fn stamps(dir: &Path, name: &str) -> Stamps {
    (
        stamp(&dir.join(format!("{name}.wasm"))),
        stamp(&dir.join(format!("{name}.toml"))),
    )
}

/// A plugin with changes not yet acted on.
#[derive(Debug)]
struct Pending {
    /// When to look at it next.
    due: Instant,
    /// The stamps seen at the last look (`None` since the last event).
    seen: Option<Stamps>,
    /// The window to wait: [`SETTLE_FAST`] after a rename or a writer's close, else the debounce.
    window: Duration,
    /// A failed load of the files with stamps `seen`, to record if they stay so.
    failure: Option<String>,
}

impl Pending {
    fn after(window: Duration) -> Self {
        Pending {
            due: Instant::now() + window,
            seen: None,
            window,
            failure: None,
        }
    }
}

/// Whether `kind` says a file is complete: renamed into place, or closed by a writer.
fn is_complete(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
    )
}

struct Task {
    target: Arc<dyn WatchTarget>,
    dir: PathBuf,
    config: WatchConfig,
    on_change: OnChange,
    pending: BTreeMap<String, Pending>,
    rescan_at: Option<Instant>,
}

impl Task {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<notify::Result<Event>>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        tracing::info!(folder = %self.dir.display(), "watching the plugins folder for changes");
        loop {
            let next = self
                .pending
                .values()
                .map(|p| p.due)
                .chain(self.rescan_at)
                .min();
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                _ = &mut stopped => break,
                event = events.recv() => match event {
                    None => break,
                    Some(Ok(event)) => self.note(&event),
                    Some(Err(err)) => {
                        tracing::warn!("the plugins folder watcher reported an error, rescanning: {err}");
                        self.rescan_at = Some(Instant::now() + self.config.debounce);
                    }
                },
                () = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => self.settle().await,
            }
        }
    }

    /// Notes which plugins an event touches; they are looked at after a quiet window.
    fn note(&mut self, event: &Event) {
        if event.need_rescan() {
            self.rescan_at = Some(Instant::now() + self.config.debounce);
            return;
        }
        let complete = is_complete(&event.kind);
        if matches!(event.kind, EventKind::Access(_) | EventKind::Other) && !complete {
            return;
        }
        let window = if complete {
            SETTLE_FAST
        } else {
            self.config.debounce
        };
        for path in &event.paths {
            if !(is_plugin_file(path, "wasm") || is_plugin_file(path, "toml")) {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            tracing::debug!(plugin = name, kind = ?event.kind, "plugin file event");
            self.pending.insert(name.to_owned(), Pending::after(window));
        }
    }

    /// Acts on what is due: a rescan, or plugins whose files have been quiet.
    async fn settle(&mut self) {
        let now = Instant::now();
        if self.rescan_at.is_some_and(|at| at <= now) {
            self.rescan_at = None;
            self.pending.clear();
            let target = self.target.clone();
            match tokio::task::spawn_blocking(move || target.rescan()).await {
                Ok(Ok(())) => (self.on_change)(),
                Ok(Err(e)) => tracing::error!("rescanning the plugins folder failed: {e}"),
                Err(e) => tracing::error!("rescanning the plugins folder panicked: {e}"),
            }
            return;
        }
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            let seen = stamps(&self.dir, &name);
            let Some(pending) = self.pending.get_mut(&name) else {
                continue;
            };
            let complete_file = pending.window == SETTLE_FAST && pending.seen.is_none();
            if pending.seen != Some(seen) && !complete_file {
                // First look at a file still being written, or it changed since: one more window.
                pending.seen = Some(seen);
                pending.failure = None;
                pending.due = Instant::now() + pending.window;
                continue;
            }
            let Some(pending) = self.pending.remove(&name) else {
                continue;
            };
            let (target, dir, task_name) = (self.target.clone(), self.dir.clone(), name.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                reload(target.as_ref(), &dir, &task_name, seen, pending.failure)
            })
            .await
            .unwrap_or_else(|e| {
                tracing::error!(plugin = %name, "reloading panicked: {e}");
                Outcome::Settled
            });
            match outcome {
                Outcome::Settled => (self.on_change)(),
                Outcome::Changed => {
                    self.pending
                        .insert(name, Pending::after(self.config.debounce));
                }
                Outcome::Failed(error) => {
                    self.pending.insert(
                        name,
                        Pending {
                            due: Instant::now() + FAILURE_SETTLE,
                            seen: Some(seen),
                            window: self.config.debounce,
                            failure: Some(error),
                        },
                    );
                }
            }
        }
    }
}

/// What became of a plugin whose files had settled.
enum Outcome {
    /// Loaded, replaced, unchanged, unloaded, or its failure recorded.
    Settled,
    /// The files changed while loading: try again after they settle.
    Changed,
    /// It failed to load; record that if the files stay the same.
    Failed(String),
}

/// Loads or unloads `name` whose files had `seen` stamps across a quiet window; records `failure` instead
/// when the same files already failed to load and have stayed unchanged since.
fn reload(
    target: &dyn WatchTarget,
    dir: &Path,
    name: &str,
    seen: Stamps,
    failure: Option<String>,
) -> Outcome {
    if seen.0.is_none() {
        target.removed(name);
        return Outcome::Settled;
    }
    let wasm = dir.join(format!("{name}.wasm"));
    if let Some(error) = failure {
        target.record_failure(&wasm, error);
        return Outcome::Settled;
    }
    match target.try_take(&wasm, &|| stamps(dir, name) == seen) {
        Attempt::Changed => Outcome::Changed,
        Attempt::Done(_) => Outcome::Settled,
        Attempt::Failed(error) => Outcome::Failed(error),
    }
}
