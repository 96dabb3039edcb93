//! A plugin's stdout and stderr, turned into log lines tagged with the plugin's name.
use std::sync::Arc;

use bytes::Bytes;

use super::log_budget::LogBudget;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept; the rest of a longer line is cut.
const MAX_LINE: usize = 4096;

/// Which stream of the plugin.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A WASI output stream that logs each line the plugin writes.
#[derive(Clone)]
pub struct LogStream {
    plugin: Arc<str>,
    budget: Arc<LogBudget>,
    stream: Stream,
}

impl LogStream {
    /// A stream for `plugin`'s stdout or stderr, logged within its `budget`.
    pub fn new(plugin: Arc<str>, budget: Arc<LogBudget>, stream: Stream) -> Self {
        LogStream { plugin, budget, stream }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter { target: self.clone(), line: Vec::new() })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.2 (p2) plugins are supported; p3 streams are not linked.
        Box::new(tokio::io::sink())
    }
}

/// Buffers bytes until a newline, then logs the line.
struct LineWriter {
    target: LogStream,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\r', '\n']);
        let plugin = &*self.target.plugin;
        self.target.budget.log(plugin, || match self.target.stream {
            Stream::Stdout => tracing::info!(target: "biogate::plugin::stdout", plugin, "{text}"),
            Stream::Stderr => tracing::warn!(target: "biogate::plugin::stderr", plugin, "{text}"),
        });
        self.line.clear();
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let room = MAX_LINE.saturating_sub(self.line.len());
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.ends_with(b"\n") {
                self.emit();
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.emit();
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}
