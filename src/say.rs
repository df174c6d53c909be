//! What wsandbox writes on its own behalf — its lines on stderr, a
//! command's result on stdout — without ever panicking.
//!
//! The supervisor shares its stdio with the sandbox (the same open file
//! descriptions), so the sandbox can make them non-blocking, fill the
//! pipe behind them, or close its reader: `eprintln!` would then panic
//! and lose the run's report. Here a write that would block waits for the
//! descriptor to take more, up to [`PATIENCE`] per line, and a line that
//! cannot be written is dropped. And a panic in a process of wsandbox's
//! that was forked ([`end_on_panic`]) ends that process on the spot
//! instead of unwinding into its caller's stack.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// How long one line may wait for a full, non-blocking pipe or terminal.
pub const PATIENCE: Duration = Duration::from_secs(2);

/// Writes `args` and a newline on stderr, as one write where it fits;
/// never panics (see the module's documentation).
pub fn line(args: fmt::Arguments) {
    let mut text = args.to_string();
    text.push('\n');
    let _ = write_all(io::stderr().as_fd(), text.as_bytes());
}

/// Writes `text` on stdout (after what `print!` buffered): an error when
/// it cannot, never a panic.
pub fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.flush()?;
    write_all(stdout.as_fd(), text.as_bytes())
}

/// `line(format_args!(...))`: a line on stderr that never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
}

/// `text` made safe to put in a log line: at most `max` bytes of it (then
/// ` [...]`), every character that could end the line, drive a terminal
/// or reorder what is shown escaped (`\n`, `\u{1b}`): C0 and C1 controls,
/// the line and paragraph separators (U+2028, U+2029), and the
/// bidirectional marks, embeddings, overrides and isolates. For every
/// byte of a line that came from a guest, a plugin or a client.
pub fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max) + 8);
    for c in text.chars() {
        if line.len() >= max {
            line.push_str(" [...]");
            break;
        }
        let hostile = c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c);
        if hostile {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

/// stderr as an [`io::Write`] (for `tracing`'s output) with the same
/// behaviour as [`line`]: a write that cannot be done is an error, never
/// a panic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_all(io::stderr().as_fd(), buf).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Makes a panic in this process print one line and end the process with
/// exit code 125 at once: for processes that were forked (the
/// supervisor, the sandbox, helpers), whose stack below belongs to a
/// caller whose destructors (a temporary directory's, say) must run only
/// in the original process.
pub fn end_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        line(format_args!(
            "wsandbox: internal error{}: {what}",
            place.unwrap_or_default()
        ));
        crate::shell::sys::exit_now(crate::error::EXIT_SANDBOX_FAILED as i32)
    }));
}

/// Writes all of `bytes` to `fd`, waiting at most [`PATIENCE`] in all
/// while the descriptor is non-blocking and full.
fn write_all(fd: BorrowedFd, mut bytes: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                let _ = poll(&mut [PollFd::new(fd, PollFlags::POLLOUT)], wait);
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_text_is_one_bounded_line() {
        assert_eq!(one_line("plain text, é 日本", 100), "plain text, é 日本");
        assert_eq!(one_line("a\nb\r\x1b[2J\x07", 100), "a\\nb\\r\\u{1b}[2J\\u{7}");
        // C1 controls, the separators a log viewer breaks lines at, and
        // the bidi controls that reorder what a reader sees.
        for c in [
            '\u{85}', '\u{9b}', '\u{2028}', '\u{2029}', '\u{202e}', '\u{2066}', '\u{200f}',
        ] {
            let line = one_line(&format!("x{c}y"), 100);
            assert!(!line.contains(c), "{c:?} left in {line:?}");
            assert!(line.starts_with("x\\u{") && line.ends_with('y'), "{line:?}");
        }
        let long = one_line(&"x".repeat(10_000), 4096);
        assert_eq!(long.len(), 4096 + " [...]".len());
        assert!(long.ends_with(" [...]"));
    }

    #[test]
    fn a_full_non_blocking_pipe_fails_in_time_without_a_panic() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let flags = nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        // Fill it.
        while nix::unistd::write(&write, &[0u8; 4096]).is_ok() {}
        let started = Instant::now();
        let err = write_all(write.as_fd(), b"one more line\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let took = started.elapsed();
        assert!(took >= PATIENCE && took < PATIENCE * 2, "{took:?}");
        drop(read);
    }

    #[test]
    fn a_pipe_that_drains_takes_the_whole_line() {
        let (read, write) = nix::unistd::pipe().unwrap();
        nix::fcntl::fcntl(
            &write,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        while nix::unistd::write(&write, &[b'x'; 4096]).is_ok() {}
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut all = Vec::new();
            io::Read::read_to_end(&mut std::fs::File::from(read), &mut all).unwrap();
            all
        });
        let line = vec![b'y'; 100_000];
        write_all(write.as_fd(), &line).unwrap();
        drop(write);
        let all = reader.join().unwrap();
        assert!(all.ends_with(&line), "the line was cut");
    }

    #[test]
    fn a_closed_reader_is_an_error_not_a_panic() {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        // Rust's runtime ignores SIGPIPE, so this is EPIPE.
        let err = write_all(write.as_fd(), b"nobody reads this\n").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }
}
