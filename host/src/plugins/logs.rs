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
