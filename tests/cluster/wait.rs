//! Waiting for something that happens asynchronously: poll with a deadline, never a fixed sleep.

use std::future::Future;
use std::time::Duration;

/// How long a case waits for something that should happen promptly (an event crossing nodes, a hook call,
/// a node starting). Generous: three nodes, PostgreSQL and NATS share two cores with the build.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(25);

/// Calls `check` until it answers `Some`, and returns that; panics naming `what` after `within`.
pub async fn eventually_within<T, F, Fut>(what: &str, within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_explained(what, within, String::new, check).await
}

/// [`eventually_within`], adding `explain()` (e.g. the nodes' last log lines) to the panic message.
pub async fn eventually_explained<T, F, Fut>(
    what: &str,
    within: Duration,
    explain: impl Fn() -> String,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {within:?} waiting until {what}\n{}",
                explain()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually_within`] [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, PATIENCE, check).await
}

/// Unwraps with a message naming what failed (tests only).
pub fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: {err:?}"),
    }
}
