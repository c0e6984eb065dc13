//! Blocking work (store calls, plugin calls) run from async code without stalling the runtime's other
//! tasks.
//!
//! ## In place, and who runs the worker's other tasks meanwhile
//! On the multi-threaded runtime the server runs, blocking work runs on the async worker whose task asked
//! for it, which saves the trip to a blocking-pool thread and back (BENCHMARKS.md, problem 17). The
//! worker's other tasks go on in one of two ways:
//! - **When the work is alone** (no other blocking work of this process is running, and the runtime has
//!   another worker), they stay where they are: the other worker, idle or not, steals them as it steals
//!   any task. This is the common case under light load, one request at a time.
//! - **Otherwise** they are handed to another thread first (`block_in_place`): with several requests
//!   blocking at once (waiting for the store's writer, say), both workers could otherwise sit in
//!   blocking work while requests wait to be read.
//!
//! The hand-over wakes a thread to take the worker's tasks, which finds them taken back when the work
//! was short: thread switches on every request that cost one client a sixth of its send rate
//! (BENCHMARKS.md, problem 29). Work that started alone checks again before a part that may be long
//! (a send's before-hook chain: an interpreted plugin's call takes a few hundred microseconds), and
//! hands over for that part if other work started meanwhile ([`off_worker_unless_alone`]): the
//! worker's tasks would otherwise wait behind it (problem 30).
//!
//! ## What blocking work in place must not do
//! A worker running blocking work in place is still inside the runtime. Two things break there:
//! starting a runtime (`Handle::block_on`, which panics; WASI's streams and polls do it for every
//! plugin that writes to stderr or waits on a pollable) and waiting for a task of the runtime (tokio
//! keeps a task woken or spawned from a worker in a slot of that worker that no other worker takes).
//! Work that may do either runs through [`off_worker`], which hands the worker's tasks over first, as
//! for work that is not alone: WASI's functions that start a runtime (`plugins/host/wasi/`), the
//! `http` power's wait, and the calls of a plugin importing interfaces not wrapped that way (the
//! before-hook chain once for all its calls; [`crate::plugins::Plugin::calls_in_place`]).

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Blocking work of this process running now ([`run`]), in place or handed over.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread is a worker running blocking work in place, its tasks not handed over.
    static IN_PLACE: Cell<bool> = const { Cell::new(false) };
}

/// Why blocking work returned no value.
#[derive(Debug, thiserror::Error)]
pub enum NotFinished {
    /// It panicked, with this message.
    #[error("it panicked: {message}")]
    Panicked { message: String },
    /// The runtime shut down before it ran.
    #[error("the runtime shut down before it ran")]
    Cancelled,
}

impl NotFinished {
    /// The error for a panic whose payload (what `catch_unwind` returns) is `payload`.
    fn panicked(payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Self::Panicked { message }
    }
}

/// Runs `f`, which blocks, from async code, and returns what it returned or why it did not.
///
/// On the multi-threaded runtime the server runs, `f` runs in place, its worker's other tasks left to
/// the other worker when `f` is alone and handed to another thread otherwise (see the module's docs).
/// Other futures of the calling task (a `join!`) wait meanwhile. Elsewhere (a single-threaded runtime,
/// as in tests) `f` runs on the blocking pool.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NotFinished> {
    let handle = Handle::current();
    if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
        let running = Running::enter(handle.metrics().num_workers());
        let ran = if running.alone {
            IN_PLACE.set(true);
            let ran = panic::catch_unwind(AssertUnwindSafe(f));
            IN_PLACE.set(false);
            ran
        } else {
            tokio::task::block_in_place(|| panic::catch_unwind(AssertUnwindSafe(f)))
        };
        drop(running);
        return ran.map_err(|payload| NotFinished::panicked(&*payload));
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_panic() {
            NotFinished::panicked(&*e.into_panic())
        } else {
            NotFinished::Cancelled
        }
    })
}

/// Runs `f`, blocking work that may block on the runtime (start one with `Handle::block_on`, or wait for
/// one of its tasks), from other blocking work. On a worker running blocking work in place ([`run`]) the
/// worker's tasks are handed to another thread first (`block_in_place`), once for all of `f`; anywhere
/// else (work already handed over, a blocking-pool thread, a thread of its own) `f` just runs.
pub fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    if !IN_PLACE.get() {
        return f();
    }
    /// Marks the thread in place again once `f` is done, even if it panicked.
    struct BackInPlace;
    impl Drop for BackInPlace {
        fn drop(&mut self) {
            IN_PLACE.set(true);
        }
    }
    IN_PLACE.set(false);
    let _back = BackInPlace;
    tokio::task::block_in_place(f)
}

/// Runs `f`, a part of blocking work that may be long (a before-hook chain), in place only while that
/// work is still alone: once other blocking work is running too, `f` hands the worker's tasks over
/// first ([`off_worker`]), so that they do not wait behind it. Anywhere but in place, `f` just runs.
pub fn off_worker_unless_alone<T>(f: impl FnOnce() -> T) -> T {
    if RUNNING.load(Ordering::Acquire) <= 1 {
        return f();
    }
    off_worker(f)
}

/// One piece of blocking work counted in [`RUNNING`] while it runs.
struct Running {
    /// Nothing else was running and the runtime has another worker: the worker keeps its tasks.
    alone: bool,
}

impl Running {
    /// Counts one more piece of blocking work, on a runtime of `workers` workers.
    fn enter(workers: usize) -> Self {
        let alone = workers >= 2
            && RUNNING
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
        if !alone {
            RUNNING.fetch_add(1, Ordering::AcqRel);
        }
        Running { alone }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Longer than any of these tests takes when it passes; what a test that would hang waits instead.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Spawns, from the calling worker, a task that sends `value`, and returns where it arrives. A task
    /// spawned from a worker starts in the slot of that worker that no other worker takes.
    fn spawn_sender(value: u8) -> mpsc::Receiver<u8> {
        let (tx, rx) = mpsc::channel();
        tokio::spawn(async move {
            let _ = tx.send(value);
        });
        rx
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn with_one_worker_its_tasks_run_while_blocking_work_waits_for_them() {
        let got = tokio::spawn(async {
            let sent = spawn_sender(1);
            run(move || sent.recv_timeout(PATIENCE).ok()).await.ok()
        })
        .await
        .ok();
        assert_eq!(got, Some(Some(Some(1))), "the worker's task ran meanwhile");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_work_beside_other_blocking_work_hands_its_tasks_over() {
        let (started_tx, started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let first = tokio::spawn(run(move || {
            let _ = started_tx.send(());
            released.recv_timeout(PATIENCE).is_ok()
        }));
        let started = tokio::task::spawn_blocking(move || started.recv_timeout(PATIENCE).is_ok());
        assert_eq!(started.await.ok(), Some(true), "the first work started");
        // The first work holds one worker; this task runs on the other, which must hand its tasks over.
        let second = tokio::spawn(async {
            let sent = spawn_sender(2);
            run(move || sent.recv_timeout(PATIENCE).ok()).await.ok()
        })
        .await
        .ok();
        let _ = release.send(());
        assert_eq!(
            second,
            Some(Some(Some(2))),
            "the second work's task ran meanwhile"
        );
        assert_eq!(first.await.ok().and_then(Result::ok), Some(true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_work_alone_can_wait_for_a_task_it_spawned_off_the_worker() {
        let got = tokio::spawn(run(|| {
            let sent = spawn_sender(3);
            off_worker(|| sent.recv_timeout(PATIENCE).ok())
        }))
        .await
        .ok()
        .and_then(Result::ok);
        assert_eq!(got, Some(Some(3)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_work_alone_can_start_a_runtime_off_the_worker_as_wasi_does() {
        let got = tokio::spawn(run(|| {
            let inner = off_worker(|| Handle::current().block_on(async { 4 }));
            // Back in place afterwards: a second piece goes off the worker again.
            let again = off_worker(|| Handle::current().block_on(async { 5 }));
            (inner, again)
        }))
        .await
        .ok()
        .and_then(Result::ok);
        assert_eq!(got, Some((4, 5)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_long_part_of_work_no_longer_alone_runs_off_the_worker() {
        let (started_tx, started) = mpsc::channel();
        let (other_tx, other_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let first = tokio::spawn(run(move || {
            let _ = started_tx.send(());
            let other = other_started.recv_timeout(PATIENCE).is_ok();
            (other, off_worker_unless_alone(|| IN_PLACE.get()))
        }));
        let started = tokio::task::spawn_blocking(move || started.recv_timeout(PATIENCE).is_ok());
        assert_eq!(started.await.ok(), Some(true), "the first work started");
        let second = tokio::spawn(run(move || {
            let _ = other_tx.send(());
            released.recv_timeout(PATIENCE).is_ok()
        }));
        let first = first.await.ok().and_then(Result::ok);
        let _ = release.send(());
        // (In place itself unless another test's work ran at its start; its long part off the worker
        // either way.)
        assert_eq!(
            first,
            Some((true, false)),
            "its long part off the worker once other work started"
        );
        assert_eq!(second.await.ok().and_then(Result::ok), Some(true));
    }

    #[test]
    fn elsewhere_off_the_worker_just_runs() {
        assert_eq!(off_worker(|| 6), 6);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a runtime");
        let on_pool = runtime.block_on(
            runtime.spawn_blocking(|| off_worker(|| Handle::current().block_on(async { 7 }))),
        );
        assert_eq!(on_pool.ok(), Some(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_place_it_returns_the_value_and_a_panic_as_an_error() {
        assert_eq!(run(|| 7).await.ok(), Some(7));
        let thread = std::thread::current().id();
        assert_eq!(
            run(move || std::thread::current().id() == thread)
                .await
                .ok(),
            Some(true)
        );
        let panicked = run(|| -> u8 { panic!("boom") }).await;
        assert!(
            matches!(&panicked, Err(NotFinished::Panicked { message }) if message == "boom"),
            "{panicked:?}"
        );
    }

    #[tokio::test]
    async fn on_one_thread_it_runs_on_the_blocking_pool() {
        let thread = std::thread::current().id();
        assert_eq!(
            run(move || std::thread::current().id() == thread)
                .await
                .ok(),
            Some(false)
        );
        let panicked = run(|| -> u8 { panic!("{}", "formatted") }).await;
        assert!(
            matches!(&panicked, Err(NotFinished::Panicked { message }) if message == "formatted"),
            "{panicked:?}"
        );
    }
}
