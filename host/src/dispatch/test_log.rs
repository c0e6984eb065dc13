//! Test support: what the code under test logged at warning level and above, through a real `tracing`
//! subscriber, kept per thread (so parallel tests do not see each other's lines).
//!
//! The subscriber is the test binary's global one, installed once, writing each line into the buffer of
//! the thread that logged it (if that thread is capturing). A subscriber scoped to one thread
//! (`with_default`) loses events now and then while other tests run in parallel with none: tracing's
//! global max level and callsite interest are shared, and another thread can leave them at "off".

use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;

thread_local! {
    /// The lines this thread logged while capturing; `None` when it is not capturing.
    static CAPTURED: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Writes into the calling thread's capture buffer, or nowhere.
struct ThreadBuffer;

impl Write for ThreadBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|c| {
            if let Some(buffer) = c.borrow_mut().as_mut() {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn install_once() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .without_time()
            .with_writer(|| ThreadBuffer)
            .finish();
        // Only this module installs a global subscriber in the library's tests.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Runs `f` on this thread and returns the lines it logged at `WARN` or above (`RUST_LOG=warn`), as the
/// server's log formats them (without timestamps).
pub(crate) fn capture_warnings<T>(f: impl FnOnce() -> T) -> Vec<String> {
    capture_warnings_with(f).1
}

/// Like [`capture_warnings`], also returning what `f` returned.
pub(crate) fn capture_warnings_with<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    install_once();
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let value = f();
    let bytes = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    let lines = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect();
    (value, lines)
}
