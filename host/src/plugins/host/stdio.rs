//! A plugin's stdout and stderr: each line becomes a plugin log line (info for stdout, warn for stderr),
//! cut to the line limit like `log`'s and counted by the same rate limits (lines and bytes), and the last few lines of stderr are kept so a trap's error can say what the plugin printed before it
//! died (a Rust panic message, a Python traceback).

use crate::plugins::limits::MAX_LOG_LINE_BYTES;
use crate::plugins::logs::{LogLevel, LogSink};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of stderr's end is kept for trap messages: enough for a panic message and a short traceback.
const STDERR_TAIL_BYTES: usize = 2048;

/// The end of what a plugin instance wrote to stderr.
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrTail(Arc<Mutex<String>>);

impl StderrTail {
    /// Take the text kept so far, leaving it empty.
    pub(crate) fn take(&self) -> String {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn push_line(&self, line: &str) {
        let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !tail.is_empty() {
            tail.push('\n');
        }
        tail.push_str(line);
        if tail.len() > STDERR_TAIL_BYTES {
            let mut cut = tail.len() - STDERR_TAIL_BYTES;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }
}

/// A stdout or stderr that turns lines into plugin log lines.
#[derive(Clone)]
pub(crate) struct LogStream {
    plugin: Arc<str>,
    sink: Arc<dyn LogSink>,
    level: LogLevel,
    tail: Option<StderrTail>,
}

impl LogStream {
    /// The plugin's stdout: lines are logged at info.
    pub(crate) fn stdout(plugin: Arc<str>, sink: Arc<dyn LogSink>) -> Self {
        LogStream {
            plugin,
            sink,
            level: LogLevel::Info,
            tail: None,
        }
    }

    /// The plugin's stderr: lines are logged at warn and remembered in `tail`.
    pub(crate) fn stderr(plugin: Arc<str>, sink: Arc<dyn LogSink>, tail: StderrTail) -> Self {
        LogStream {
            plugin,
            sink,
            level: LogLevel::Warn,
            tail: Some(tail),
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            stream: self.clone(),
            pending: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.2 plugins are supported; 0.3 streams would need an async writer here.
        Box::new(tokio::io::sink())
    }
}

/// The per-stream writer: buffers a partial line until its newline arrives.
struct LineWriter {
    stream: LogStream,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let s = &self.stream;
        s.sink.log(&s.plugin, s.level, &super::log::truncate(text));
        if let Some(tail) = &s.tail {
            tail.push_line(text);
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.pending.extend_from_slice(&bytes);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_LOG_LINE_BYTES {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}
