//! The server's log on its stderr: one line per request that failed
//! ([`Asked::log`]), one per request at `-v` ([`Asked::access`]), and the
//! guests' stdout and stderr, line by line, each prefixed with the
//! request's id ([`LogStream`]). Every byte of the client's or the guest's
//! is escaped ([`crate::say::escaped`]). With `--log-format json` each
//! line is a [`Record`] with the request's id, route, method, path,
//! status and duration as fields of their own.

use crate::say::{Record, escaped};
use std::sync::Arc;
use std::time::Instant;

/// A request as the log names it: its id, route, method and path, and
/// when its head came.
pub(super) struct Asked {
    pub(super) id: u64,
    /// Its route's prefix (`none` for no route).
    pub(super) route: &'static str,
    pub(super) method: hyper::Method,
    pub(super) uri: hyper::Uri,
    pub(super) started: Instant,
}

/// The most of a request's path that a line of the log shows.
const PATH_IN_LOG: usize = 256;

impl Asked {
    /// One line of the log about this request: `what` happened (the
    /// status it got, if that is what) and `why`, every byte of the
    /// client's or the guest's escaped; level `error` unless the client
    /// got a 4xx (`warn`).
    pub(super) fn log(&self, status: Option<u16>, what: std::fmt::Arguments, why: &str) {
        let level = match status {
            Some(400..=499) => "warn",
            _ => "error",
        };
        let message = format!("{what}: {}", escaped(why));
        self.line(level, status, &message);
    }

    /// The access log's line for this request, which ended with `status`
    /// (at `-v`).
    pub(super) fn access(&self, status: u16) {
        let message = format!(
            "{status} in {:.3} ms (route {})",
            self.started.elapsed().as_secs_f64() * 1e3,
            self.route
        );
        self.line("info", Some(status), &message);
    }

    /// `[req ID] METHOD PATH: MESSAGE`, or its record.
    fn line(&self, level: &str, status: Option<u16>, message: &str) {
        let method = escaped(self.method.as_str()).to_string();
        let path = escaped(self.uri.path()).at_most(PATH_IN_LOG).to_string();
        let record = Record {
            request: Some(self.id),
            route: Some(self.route),
            method: Some(&method),
            path: Some(&path),
            status,
            duration_ms: Some(self.started.elapsed().as_secs_f64() * 1e3),
            ..Record::new(level, message)
        };
        crate::say::record(
            &record,
            format_args!("wsandbox: [req {}] {method} {path}: {message}", self.id),
        );
    }
}

/// A guest's stdout or stderr: whole lines on the server's stderr, each
/// prefixed with the request's id and the stream's name, escaped
/// ([`crate::say::escaped`]), at most [`LogStream::LINE`] bytes a line.
#[derive(Clone)]
pub(super) struct LogStream {
    prefix: Arc<str>,
    id: u64,
    route: &'static str,
    stream: &'static str,
}

impl LogStream {
    /// The longest line: past it, the bytes so far are a line.
    const LINE: usize = 4096;

    /// Request `id`'s `stream` (`stdout` or `stderr`), on `route`.
    pub(super) fn new(id: u64, route: &'static str, stream: &'static str) -> LogStream {
        LogStream {
            prefix: format!("[req {id} {stream}] ").into(),
            id,
            route,
            stream,
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            stream: self.clone(),
            line: Vec::new(),
        })
    }
}

/// Collects bytes into lines, and writes each whole line with its prefix.
struct LineWriter {
    stream: LogStream,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        let text = escaped(&String::from_utf8_lossy(&self.line)).to_string();
        let record = Record {
            request: Some(self.stream.id),
            route: Some(self.stream.route),
            stream: Some(self.stream.stream),
            ..Record::new("info", &text)
        };
        crate::say::record(&record, format_args!("{}{text}", self.stream.prefix));
        self.line.clear();
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                self.emit();
            } else {
                self.line.push(byte);
                if self.line.len() >= LogStream::LINE {
                    self.emit();
                }
            }
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}
