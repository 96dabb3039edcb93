//! A plugin's stdout and stderr, turned into log lines tagged with the plugin's name: one
//! log line per line of output, however the guest splits its writes (Python's `print`
//! writes each argument, the separator and the newline apart, and may ask for a stream
//! per write), and whatever it flushes.
use std::sync::{Arc, Mutex};

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

/// A WASI output stream that logs each line the plugin writes. Clones share the line
/// being written: every stream handle the guest opens adds to the same line.
#[derive(Clone)]
pub struct LogStream {
    plugin: Arc<str>,
    budget: Arc<LogBudget>,
    stream: Stream,
    /// The line being written (at most `MAX_LINE` bytes of it).
    line: Arc<Mutex<Vec<u8>>>,
}

impl LogStream {
    /// A stream for `plugin`'s stdout or stderr, logged within its `budget`.
    pub fn new(plugin: Arc<str>, budget: Arc<LogBudget>, stream: Stream) -> Self {
        LogStream { plugin, budget, stream, line: Arc::default() }
    }

    /// Adds the guest's bytes, logging every line they complete.
    fn write(&self, bytes: &[u8]) {
        let mut line = self.line.lock().unwrap_or_else(|p| p.into_inner());
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.ends_with(b"\n") {
                self.emit(&mut line);
            }
        }
    }

    /// Logs what is left of an unfinished line (the end of a call: the guest's output of
    /// one call never runs into the next call's).
    pub fn finish_line(&self) {
        let mut line = self.line.lock().unwrap_or_else(|p| p.into_inner());
        self.emit(&mut line);
    }

    fn emit(&self, line: &mut Vec<u8>) {
        if line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&line[..]);
        let text = text.trim_end_matches(['\r', '\n']);
        let plugin = &*self.plugin;
        self.budget.log(plugin, || match self.stream {
            Stream::Stdout => tracing::info!(target: "biogate::plugin::stdout", plugin, "{text}"),
            Stream::Stderr => tracing::warn!(target: "biogate::plugin::stderr", plugin, "{text}"),
        });
        line.clear();
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.2 (p2) plugins are supported; p3 streams are not linked.
        Box::new(tokio::io::sink())
    }
}

/// One stream handle of the guest: writes go to the shared line; a flush or the handle's
/// end leaves an unfinished line waiting for its newline (or for the end of the call).
struct LineWriter(LogStream);

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.0.write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of the plugin's output lines logged while `run` runs.
    fn lines_of(run: impl FnOnce()) -> Vec<String> {
        let log = biogate_e2e::logs::logged(run);
        log.lines()
            .filter_map(|line| line.split_once("::stdout: ").or_else(|| line.split_once("::stderr: ")))
            .map(|(_, message)| {
                // The message, then the plugin's name.
                assert!(message.ends_with(" plugin=\"py\""), "{message}");
                message.trim_end_matches(" plugin=\"py\"").trim().to_owned()
            })
            .collect()
    }

    fn stream() -> LogStream {
        LogStream::new("py".into(), Arc::default(), Stream::Stdout)
    }

    #[test]
    fn a_line_written_in_pieces_through_several_handles_is_one_log_line() {
        let lines = lines_of(|| {
            let stream = stream();
            // What CPython's print("saw", uid) does: a write per piece, a flush after each.
            for piece in ["saw", " ", "42", "\n"] {
                let mut handle = stream.p2_stream();
                handle.write(Bytes::from(piece)).unwrap();
                handle.flush().unwrap();
            }
        });
        assert_eq!(lines, ["saw 42"]);
    }

    #[test]
    fn a_traceback_keeps_one_log_line_per_line() {
        let lines = lines_of(|| {
            let stream = stream();
            let mut handle = stream.p2_stream();
            handle.write(Bytes::from("Traceback (most recent call last):\n  File \"app.py\", line 3\nValueE")).unwrap();
            handle.write(Bytes::from("rror: bad\n")).unwrap();
        });
        assert_eq!(lines, ["Traceback (most recent call last):", "File \"app.py\", line 3", "ValueError: bad"]);
    }

    #[test]
    fn an_unfinished_line_is_logged_at_the_end_of_the_call() {
        let lines = lines_of(|| {
            let stream = stream();
            stream.p2_stream().write(Bytes::from("no newline")).unwrap();
            stream.finish_line();
            stream.p2_stream().write(Bytes::from("next call\n")).unwrap();
        });
        assert_eq!(lines, ["no newline", "next call"]);
    }
}
