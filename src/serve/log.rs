//! The server's log on its stderr: one line per request that failed
//! ([`Asked::log`]), and the guests' stdout and stderr, line by line, each
//! prefixed with the request's id ([`LogStream`]). Every byte of the
//! client's or the guest's is escaped ([`crate::say::escaped`]).

use std::sync::Arc;

/// A request as the log names it: its id, method and path.
pub(super) struct Asked {
    pub(super) id: u64,
    pub(super) method: hyper::Method,
    pub(super) uri: hyper::Uri,
}

/// The most of a request's path that a line of the log shows.
const PATH_IN_LOG: usize = 256;

impl Asked {
    /// One line of the log about this request: `what` happened and `why`,
    /// every byte of the client's or the guest's escaped.
    pub(super) fn log(&self, what: std::fmt::Arguments, why: &str) {
        use crate::say::escaped;
        crate::say!(
            "wsandbox: [req {}] {} {}: {what}: {}",
            self.id,
            escaped(self.method.as_str()),
            escaped(self.uri.path()).at_most(PATH_IN_LOG),
            escaped(why)
        );
    }
}

/// A guest's stdout or stderr: whole lines on the server's stderr, each
/// prefixed with the request's id and the stream's name, escaped
/// ([`crate::say::escaped`]), at most [`LogStream::LINE`] bytes a line.
#[derive(Clone)]
pub(super) struct LogStream {
    prefix: Arc<str>,
}

impl LogStream {
    /// The longest line: past it, the bytes so far are a line.
    const LINE: usize = 4096;

    /// Request `id`'s `stream` (`stdout` or `stderr`).
    pub(super) fn new(id: u64, stream: &str) -> LogStream {
        LogStream {
            prefix: format!("[req {id} {stream}] ").into(),
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
            prefix: self.prefix.clone(),
            line: Vec::new(),
        })
    }
}

/// Collects bytes into lines, and writes each whole line with its prefix.
struct LineWriter {
    prefix: Arc<str>,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let mut text = String::with_capacity(self.prefix.len() + self.line.len() + 1);
        text.push_str(&self.prefix);
        let _ = writeln!(
            text,
            "{}",
            crate::say::escaped(&String::from_utf8_lossy(&self.line))
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
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
