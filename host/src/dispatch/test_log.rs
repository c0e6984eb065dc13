//! Test support: what the code under test logged at warning level and above, through a real `tracing`
//! subscriber installed for the current thread only (so parallel tests do not see each other's lines).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A shared buffer the subscriber writes into.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` on this thread and returns the lines it logged at `WARN` or above (`RUST_LOG=warn`), as the
/// server's log formats them (without timestamps).
pub(crate) fn capture_warnings<T>(f: impl FnOnce() -> T) -> Vec<String> {
    capture_warnings_with(f).1
}

/// Like [`capture_warnings`], also returning what `f` returned.
pub(crate) fn capture_warnings_with<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let bytes = buffer
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let lines = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect();
    (value, lines)
}
