//! `chathooks:plugin/log`: plugin log lines, tagged with the plugin's name and cut to a sane length.

use crate::plugins::bindings::log::{Host, Level};
use crate::plugins::limits::MAX_LOG_LINE_BYTES;
use crate::plugins::logs::{LogLevel, LogSink};
use std::sync::Arc;

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
fn truncate(message: &str) -> std::borrow::Cow<'_, str> {
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
    use super::truncate;

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let line = "é".repeat(5000);
        let cut = truncate(&line);
        assert!(cut.len() < line.len());
        assert!(cut.ends_with("bytes cut]"));
    }
}
