//! `chathooks:plugin/log`: plugin log lines, tagged with the plugin's name, cut to a sane length and
//! rate-limited per plugin.
//!
//! ## Rate limit
//! Every line a plugin writes (through `log`, stdout or stderr) passes its [`LogLimiter`], two token
//! buckets shared by all instances of one plugin version: one counts lines (`log_lines_per_second` on
//! average, `log_burst` at once), the other bytes (`log_bytes_per_second`, `log_burst_bytes`), so long
//! lines cannot fill the server's log within the line rate. A line goes through only if both buckets hold
//! enough; otherwise it is dropped and counted (lines and bytes). At most once a second a `warn` note says
//! how many were dropped, so a flood costs the server one counter increment per line and the log one line
//! per second.

use crate::plugins::bindings::log::{Host, Level};
use crate::plugins::limits::{MAX_LOG_LINE_BYTES, PluginLimits};
use crate::plugins::logs::{LogLevel, LogSink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shortest time between two "lines dropped" notes of one plugin.
const NOTE_INTERVAL: Duration = Duration::from_secs(1);

/// A plugin's log rate limit in front of the real sink (see the module docs).
pub struct LogLimiter {
    plugin: Arc<str>,
    inner: Arc<dyn LogSink>,
    /// Line tokens added per second.
    rate: f64,
    /// Most line tokens the bucket holds.
    burst: f64,
    /// Byte tokens added per second.
    byte_rate: f64,
    /// Most byte tokens the bucket holds.
    byte_burst: f64,
    bucket: Mutex<Bucket>,
    /// Lines dropped over this limiter's life (for the admin API and metrics).
    dropped_total: AtomicU64,
    /// Bytes of the lines dropped over this limiter's life.
    dropped_bytes_total: AtomicU64,
}

struct Bucket {
    /// Line tokens.
    tokens: f64,
    /// Byte tokens.
    bytes: f64,
    refilled: Instant,
    /// Lines dropped since the last note.
    unreported: u64,
    /// Their bytes.
    unreported_bytes: u64,
    last_note: Option<Instant>,
}

/// The counts a "dropped" note reports.
struct Note {
    lines: u64,
    bytes: u64,
}

impl LogLimiter {
    /// A limiter for `plugin` with the rate and burst of `limits`, writing to `inner`.
    pub(crate) fn new(plugin: Arc<str>, inner: Arc<dyn LogSink>, limits: &PluginLimits) -> Self {
        let burst = f64::from(limits.log_burst.max(1));
        let byte_burst = f64::from(limits.log_burst_bytes.max(1));
        LogLimiter {
            plugin,
            inner,
            rate: f64::from(limits.log_lines_per_second),
            burst,
            byte_rate: f64::from(limits.log_bytes_per_second),
            byte_burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                bytes: byte_burst,
                refilled: Instant::now(),
                unreported: 0,
                unreported_bytes: 0,
                last_note: None,
            }),
            dropped_total: AtomicU64::new(0),
            dropped_bytes_total: AtomicU64::new(0),
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Bytes of the lines dropped so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes_total.load(Ordering::Relaxed)
    }

    /// Writes the "N lines dropped" note if lines were dropped and no note was written in the last
    /// second (called after every hook call, so a plugin that goes quiet still gets its note).
    pub(crate) fn flush(&self) {
        let note = self.lock().take_note(Instant::now());
        if let Some(note) = note {
            self.write_note(note);
        }
    }

    fn write_note(&self, note: Note) {
        self.inner.log(
            &self.plugin,
            LogLevel::Warn,
            &format!(
                "{} log lines ({} bytes) dropped: over the limit of {} lines per second (burst {}) \
                 or {} bytes per second (burst {})",
                note.lines, note.bytes, self.rate, self.burst, self.byte_rate, self.byte_burst
            ),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Bucket {
    /// The counts to report, if there are some and a note is due.
    fn take_note(&mut self, now: Instant) -> Option<Note> {
        let due = self
            .last_note
            .is_none_or(|at| now.duration_since(at) >= NOTE_INTERVAL);
        if self.unreported == 0 || !due {
            return None;
        }
        self.last_note = Some(now);
        Some(Note {
            lines: std::mem::take(&mut self.unreported),
            bytes: std::mem::take(&mut self.unreported_bytes),
        })
    }
}

impl LogSink for LogLimiter {
    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        let now = Instant::now();
        let len = u64::try_from(message.len()).unwrap_or(u64::MAX);
        // A line longer than the byte burst could never pass: it costs the whole burst.
        #[allow(clippy::cast_precision_loss)]
        let cost = (len as f64).min(self.byte_burst);
        let (allowed, note) = {
            let mut b = self.lock();
            let elapsed = now.duration_since(b.refilled).as_secs_f64();
            b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
            b.bytes = (b.bytes + elapsed * self.byte_rate).min(self.byte_burst);
            b.refilled = now;
            let allowed = b.tokens >= 1.0 && b.bytes >= cost;
            if allowed {
                b.tokens -= 1.0;
                b.bytes -= cost;
            } else {
                b.unreported += 1;
                b.unreported_bytes = b.unreported_bytes.saturating_add(len);
            }
            let note = if allowed { b.take_note(now) } else { None };
            (allowed, note)
        };
        if !allowed {
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            self.dropped_bytes_total.fetch_add(len, Ordering::Relaxed);
        }
        if let Some(note) = note {
            self.write_note(note);
        }
        if allowed {
            self.inner.log(plugin, level, message);
        }
    }
}

/// What `log` needs: who is logging and where lines go.
pub struct LogCtx {
    plugin: Arc<str>,
    sink: Arc<dyn LogSink>,
}

impl LogCtx {
    /// A context for `plugin` writing to `sink`.
    pub(crate) fn new(plugin: Arc<str>, sink: Arc<dyn LogSink>) -> Self {
        LogCtx { plugin, sink }
    }

    /// Write a line on the plugin's behalf (also used for its stdout/stderr).
    pub(crate) fn write(&self, level: LogLevel, message: &str) {
        self.sink.log(&self.plugin, level, &truncate(message));
    }
}

/// Cut `message` to [`MAX_LOG_LINE_BYTES`] on a character boundary, saying how much was cut.
pub(crate) fn truncate(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LOG_LINE_BYTES {
        return message.into();
    }
    let mut end = MAX_LOG_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &message[..end], message.len() - end).into()
}

impl Host for LogCtx {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.write(level, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::logs::CaptureSink;

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let line = "é".repeat(5000);
        let cut = truncate(&line);
        assert!(cut.len() < line.len());
        assert!(cut.ends_with("bytes cut]"));
    }

    #[test]
    fn a_flood_is_cut_to_the_burst_with_one_note() {
        let capture = Arc::new(CaptureSink::default());
        let limits = PluginLimits {
            log_lines_per_second: 0,
            log_burst: 10,
            ..PluginLimits::default()
        };
        let limiter = LogLimiter::new(Arc::from("p"), capture.clone(), &limits);
        for i in 0..1000 {
            limiter.log("p", LogLevel::Info, &format!("line {i}"));
        }
        limiter.flush();
        let lines = capture.take();
        let notes: Vec<_> = lines.iter().filter(|l| l.level == LogLevel::Warn).collect();
        assert_eq!(lines.len() - notes.len(), 10, "{lines:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0]
                .message
                .starts_with("990 log lines (7830 bytes) dropped"),
            "{notes:?}"
        );
        assert_eq!(limiter.dropped(), 990);
        // A second flush within the note interval stays quiet.
        limiter.log("p", LogLevel::Info, "more");
        limiter.flush();
        assert!(capture.take().is_empty());
    }

    #[test]
    fn long_lines_are_cut_to_the_byte_burst_within_the_line_rate() {
        let capture = Arc::new(CaptureSink::default());
        let limits = PluginLimits {
            log_lines_per_second: 0,
            log_burst: 1000,
            log_bytes_per_second: 0,
            log_burst_bytes: 10_000,
            ..PluginLimits::default()
        };
        let limiter = LogLimiter::new(Arc::from("p"), capture.clone(), &limits);
        let line = "x".repeat(MAX_LOG_LINE_BYTES);
        for _ in 0..100 {
            limiter.log("p", LogLevel::Info, &line);
        }
        limiter.flush();
        let lines = capture.take();
        let kept = lines.iter().filter(|l| l.level == LogLevel::Info).count();
        assert_eq!(kept, 2, "two 4 KiB lines fit a 10,000-byte burst");
        assert_eq!(limiter.dropped(), 98);
        assert_eq!(limiter.dropped_bytes(), 98 * 4096);
        let note = lines.iter().find(|l| l.level == LogLevel::Warn);
        assert!(
            note.is_some_and(|n| n.message.starts_with("98 log lines (401408 bytes) dropped")),
            "{lines:?}"
        );
        // A line longer than the whole burst still passes once the bucket is full again.
        let limiter = LogLimiter::new(Arc::from("p"), capture.clone(), &limits);
        limiter.log("p", LogLevel::Info, &"y".repeat(20_000));
        assert_eq!(limiter.dropped(), 0);
    }
}
