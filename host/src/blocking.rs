//! Blocking work (store calls, plugin calls) run from async code without stalling the runtime's other
//! tasks.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use tokio::runtime::{Handle, RuntimeFlavor};

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
/// On the multi-threaded runtime the server runs, `f` runs in place and the worker's other tasks move to
/// another thread (`block_in_place`): that saves the trip to a blocking-pool thread and back, a wake-up
/// each way, on every request (BENCHMARKS.md, problem 17). Other futures of the calling task (a `join!`)
/// wait meanwhile. Elsewhere (a single-threaded runtime, as in tests) `f` runs on the blocking pool.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NotFinished> {
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(|| panic::catch_unwind(AssertUnwindSafe(f)))
            .map_err(|payload| NotFinished::panicked(&*payload));
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_panic() {
            NotFinished::panicked(&*e.into_panic())
        } else {
            NotFinished::Cancelled
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
