//! Where plugin log lines go: the server's tracing log, or a buffer a test or `chathooks test` reads.

use serde::Serialize;
use std::sync::Mutex;

/// Severity of a plugin log line (the WIT `log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Development detail.
    Debug,
    /// Normal operation.
    Info,
    /// Handled surprises.
    Warn,
    /// Failures.
    Error,
}

impl LogLevel {
    /// Lower-case name, as in case files.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// The plugin that wrote it.
    pub plugin: String,
    /// Its level.
    pub level: LogLevel,
    /// The text (already truncated to the line limit).
    pub message: String,
}

/// Receives every line plugins log (through `log`, or written to stdout/stderr).
pub trait LogSink: Send + Sync {
    /// Record one line.
    fn log(&self, plugin: &str, level: LogLevel, message: &str);
}

/// The server's sink: plugin lines become tracing events with the plugin's name as a field.
#[derive(Debug, Default)]
pub struct TracingSink;

impl LogSink for TracingSink {
    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }
}

/// Plugin log lines a live tail may buffer before it is told it fell behind: a few seconds of a busy
/// server's lines, while a tail's reader (a browser on a slow link) catches up.
pub const TAIL_CAPACITY: usize = 1024;

/// A plugin log line with when it was written, for live tails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TailedLine {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// The line.
    #[serde(flatten)]
    pub line: LogLine,
}

/// The server's sink: every line goes to the tracing log ([`TracingSink`]) and, while someone tails the
/// logs (`GET /v1/admin/tail`), to them too.
#[derive(Debug)]
pub struct TailSink {
    lines: tokio::sync::broadcast::Sender<std::sync::Arc<TailedLine>>,
}

impl Default for TailSink {
    fn default() -> Self {
        TailSink {
            lines: tokio::sync::broadcast::channel(TAIL_CAPACITY).0,
        }
    }
}

impl TailSink {
    /// The lines logged from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<TailedLine>> {
        self.lines.subscribe()
    }
}

impl LogSink for TailSink {
    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        TracingSink.log(plugin, level, message);
        if self.lines.receiver_count() == 0 {
            return;
        }
        let line = TailedLine {
            at: crate::store::ids::now_ms(),
            line: LogLine {
                plugin: plugin.to_owned(),
                level,
                message: message.to_owned(),
            },
        };
        // An error only means the last tail went away meanwhile.
        let _ = self.lines.send(std::sync::Arc::new(line));
    }
}

/// A sink that keeps lines in memory, for the harness and `chathooks test`.
#[derive(Debug, Default)]
pub struct CaptureSink {
    lines: Mutex<Vec<LogLine>>,
}

impl CaptureSink {
    /// Take every line captured so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl LogSink for CaptureSink {
    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        let line = LogLine {
            plugin: plugin.to_string(),
            level,
            message: message.to_string(),
        };
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_gets_each_line_with_its_time_as_the_tail_writes_it() {
        let sink = TailSink::default();
        // Nobody tails: the line only goes to tracing (and nothing is queued for later tails).
        sink.log("early", LogLevel::Info, "before anyone listened");
        let mut tail = sink.subscribe();
        sink.log("counter", LogLevel::Warn, "counted 3");
        let line = tail.try_recv().expect("the line logged while tailing");
        assert!(line.at > 0);
        let json = serde_json::to_value(&*line).expect("serializable");
        assert_eq!(json["plugin"], "counter");
        assert_eq!(json["level"], "warn");
        assert_eq!(json["message"], "counted 3");
        assert_eq!(json.as_object().map(|o| o.len()), Some(4), "{json}");
        assert!(tail.try_recv().is_err(), "the early line was not kept");
    }

    #[test]
    fn a_slow_tail_is_told_how_many_lines_it_missed() {
        let sink = TailSink::default();
        let mut tail = sink.subscribe();
        for n in 0..TAIL_CAPACITY + 5 {
            sink.log("chatty", LogLevel::Debug, &n.to_string());
        }
        assert_eq!(
            tail.try_recv().err(),
            Some(tokio::sync::broadcast::error::TryRecvError::Lagged(5))
        );
        let next = tail.try_recv().expect("the oldest line still buffered");
        assert_eq!(next.line.message, "5");
    }
}
