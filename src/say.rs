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
//!
//! Text that comes from outside — a client's request, a guest's output,
//! a module's names — goes into a line through [`escaped`], so that it
//! cannot end the line, forge another or drive the terminal.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// How long one line may wait for a full, non-blocking pipe or terminal.
pub const PATIENCE: Duration = Duration::from_secs(2);

/// Writes `args` and a newline on stderr, as one write where it fits;
/// never panics (see the module's documentation). With the JSON format
/// ([`LogFormat`]) the line is the message of a [`Record`] (level `warn`
/// when it starts with `wsandbox: warning`, else `info`).
pub fn line(args: fmt::Arguments) {
    match log_format() {
        LogFormat::Text => {
            let mut text = args.to_string();
            text.push('\n');
            let _ = write_all(io::stderr().as_fd(), text.as_bytes());
        }
        LogFormat::Json => {
            let message = args.to_string();
            let level = match message.starts_with("wsandbox: warning") {
                true => "warn",
                false => "info",
            };
            record(&Record::new(level, &message), args);
        }
    }
}

/// [`line`], for the error that ends a command: level `error` in JSON.
pub fn failure(args: fmt::Arguments) {
    match log_format() {
        LogFormat::Text => line(args),
        LogFormat::Json => record(&Record::new("error", &args.to_string()), args),
    }
}

/// How wsandbox writes its lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Lines for people (the default).
    #[default]
    Text,
    /// One JSON object per line, a [`Record`], for machines.
    Json,
}

static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Writes every line of this process (and of the sandbox, its copy) in
/// `format` from now on; the first call wins.
pub fn set_log_format(format: LogFormat) {
    let _ = LOG_FORMAT.set(format);
}

/// The format lines are written in.
pub fn log_format() -> LogFormat {
    LOG_FORMAT.get().copied().unwrap_or_default()
}

/// One line of the log as a machine reads it (`--log-format json`): its
/// time (UTC, RFC 3339, milliseconds), level and message, and for a line
/// about a request what it was. Text from a client or a guest in it is
/// escaped as in a text line ([`escaped`]), then as JSON.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Record<'a> {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'a str,
    /// The request's id (`[req 7]` in text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<u64>,
    /// The route it took (its prefix; `none` for no route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    /// Its method, escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    /// Its path, escaped and cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    /// The status its client got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How long it took, from its head to the end of its answer (or to
    /// this line), in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// For a line a guest wrote: `stdout` or `stderr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<&'a str>,
    /// What happened, as the text line says it (without a request's
    /// prefix).
    pub message: &'a str,
}

impl<'a> Record<'a> {
    /// A record of `level` saying `message`, about nothing else.
    pub fn new(level: &'a str, message: &'a str) -> Record<'a> {
        Record {
            level,
            message,
            ..Record::default()
        }
    }

    /// The record as one line of JSON (with the time, now, first), its
    /// newline included.
    pub fn to_json_line(&self) -> String {
        #[derive(serde::Serialize)]
        struct Timed<'r, 'a> {
            time: String,
            #[serde(flatten)]
            record: &'r Record<'a>,
        }
        let timed = Timed {
            time: utc_now(),
            record: self,
        };
        let mut line = serde_json::to_string(&timed).unwrap_or_else(|_| {
            format!(
                r#"{{"time":"{}","level":"error","message":"a line that is not JSON"}}"#,
                timed.time
            )
        });
        line.push('\n');
        line
    }
}

/// Writes `record` on stderr in the log's format: as JSON, or as `text`.
pub fn record(record: &Record, text: fmt::Arguments) {
    let line = match log_format() {
        LogFormat::Json => record.to_json_line(),
        LogFormat::Text => format!("{text}\n"),
    };
    let _ = write_all(io::stderr().as_fd(), line.as_bytes());
}

/// Now, in UTC, as RFC 3339 with milliseconds: `2026-12-04T18:30:00.123Z`.
pub fn utc_now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Writes `text` on stdout (after what `print!` buffered): an error when
/// it cannot, never a panic.
pub fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.flush()?;
    write_all(stdout.as_fd(), text.as_bytes())
}

/// Text from a client or a guest as it may appear in a line of the log:
/// displayed with every character that could end the line, forge another
/// or drive the terminal written as a Rust escape (`\n`, `\u{1b}`,
/// `\u{2028}`): control characters (C0 but the tab, DEL, C1), the Unicode
/// line and paragraph separators, and the bidirectional controls that
/// reorder what a terminal shows. See [`escaped`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a> {
    text: &'a str,
    max: usize,
}

/// `text`, escaped for a line of the log (see [`Escaped`]), whole.
pub fn escaped(text: &str) -> Escaped<'_> {
    Escaped {
        text,
        max: usize::MAX,
    }
}

impl Escaped<'_> {
    /// At most `max` bytes of the text (whole characters), then ` [...]`.
    pub fn at_most(self, max: usize) -> Self {
        Escaped { max, ..self }
    }

    /// Whether `c` is written as an escape.
    fn needs_escape(c: char) -> bool {
        (c.is_control() && c != '\t')
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        // Runs of plain text are written whole.
        let mut plain = 0;
        for (at, c) in self.text.char_indices() {
            if at + c.len_utf8() > self.max {
                out.write_str(&self.text[plain..at])?;
                return out.write_str(" [...]");
            }
            if Escaped::needs_escape(c) {
                out.write_str(&self.text[plain..at])?;
                for e in c.escape_default() {
                    out.write_char(e)?;
                }
                plain = at + c.len_utf8();
            }
        }
        out.write_str(&self.text[plain..])
    }
}

/// The filter of `WSANDBOX_LOG`'s `text`: `TARGET=LEVEL` directives, or a
/// bare level. wsandbox's own lines are at `info` unless it names them,
/// so that `WSANDBOX_LOG=wasmtime=debug` keeps its warnings.
pub fn log_filter(text: &str) -> Result<tracing_subscriber::filter::Targets, String> {
    let filter: tracing_subscriber::filter::Targets = text.parse().map_err(|err| format!("{err}"))?;
    let names_ours = filter.iter().any(|(target, _)| target.starts_with("wsandbox"));
    Ok(match names_ours || filter.default_level().is_some() {
        true => filter,
        false => filter.with_target("wsandbox", tracing::Level::INFO),
    })
}

/// `WSANDBOX_LOG`'s filter for [`log`], read once: by [`read_env_filter`]
/// before the walls, where the sandbox's environment is still there.
fn env_filter() -> &'static Option<tracing_subscriber::filter::Targets> {
    static FILTER: std::sync::OnceLock<Option<tracing_subscriber::filter::Targets>> =
        std::sync::OnceLock::new();
    FILTER.get_or_init(|| {
        let text = std::env::var("WSANDBOX_LOG")
            .ok()
            .filter(|text| !text.is_empty())?;
        log_filter(&text).ok()
    })
}

/// Reads `WSANDBOX_LOG` for [`log`] now: a launch does before the walls,
/// since the sandbox, a copy of this process, has its environment wiped.
pub fn read_env_filter() {
    env_filter();
}

/// A log line of wsandbox's own at `level`, from the module `target`,
/// when no `tracing` subscriber is set (see [`say_log!`](crate::say_log)):
/// written as [`line`] writes if `WSANDBOX_LOG` enables it (a plugin's
/// worker in a host program reads it so), else if it is `info` or above.
pub fn log(target: &str, level: tracing::Level, args: fmt::Arguments) {
    let enabled = match env_filter() {
        Some(filter) => filter.would_enable(target, &level),
        None => level <= tracing::Level::INFO,
    };
    if !enabled {
        return;
    }
    match log_format() {
        LogFormat::Text => line(args),
        LogFormat::Json => {
            let level = level.as_str().to_ascii_lowercase();
            record(&Record::new(&level, &args.to_string()), args);
        }
    }
}

/// A log line of wsandbox's own — a warning, a plugin's log, a server's
/// notice — at `tracing::Level::$level` (`say_log!(WARN, "...")`): an
/// event of the caller's module when the front end set `tracing` up
/// (`-v`, `WSANDBOX_LOG`), so that its filter and `--log-format` apply;
/// else [`log`]. Either way it never panics.
#[macro_export]
macro_rules! say_log {
    ($level:ident, $($arg:tt)*) => {
        if ::tracing::dispatcher::has_been_set() {
            ::tracing::event!(::tracing::Level::$level, $($arg)*)
        } else {
            $crate::say::log(module_path!(), ::tracing::Level::$level, format_args!($($arg)*))
        }
    };
}

/// `line(format_args!(...))`: a line on stderr that never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
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
        crate::sys::exit_now(crate::error::EXIT_SANDBOX_FAILED as i32)
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

/// `err` with its causes (`{:#}`) on one line: wasmtime's messages may span
/// several (a value printed with `{:#?}`), and every failure of wsandbox's
/// is one line.
pub fn error_line(err: &dyn std::fmt::Display) -> String {
    let text = format!("{err:#}");
    if text.contains('\n') {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_filter_keeps_wsandboxs_lines_unless_it_names_them() {
        use tracing::Level;
        let ours = |filter: &str, level: Level| {
            super::log_filter(filter)
                .unwrap()
                .would_enable("wsandbox::engine::plugin_host", &level)
        };
        assert!(ours("wasmtime=debug", Level::INFO) && !ours("wasmtime=debug", Level::DEBUG));
        assert!(ours("wsandbox=warn", Level::WARN) && !ours("wsandbox=warn", Level::INFO));
        assert!(!ours("wsandbox::engine=off", Level::ERROR));
        assert!(ours("debug", Level::DEBUG), "a bare level is everyone's");
        assert!(super::log_filter("wsandbox=loud").is_err());
    }

    use super::*;

    #[test]
    fn a_record_is_one_line_of_json_with_its_time() {
        let record = Record {
            request: Some(7),
            route: Some("/api"),
            status: Some(200),
            ..Record::new("info", "a \"line\"\nwith\u{1b} more")
        };
        let line = record.to_json_line();
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "info");
        assert_eq!(value["request"], 7);
        assert_eq!(value["route"], "/api");
        assert_eq!(value["message"], "a \"line\"\nwith\u{1b} more");
        assert!(value.get("method").is_none(), "{line}");
        let time = value["time"].as_str().unwrap();
        assert_eq!(time.len(), "2026-12-04T18:30:00.123Z".len(), "{time}");
        assert!(time.starts_with("20") && time.ends_with('Z'), "{time}");
    }

    #[test]
    fn the_time_is_the_calendars() {
        // 2000-02-29 was a Thursday in a leap year; the formula is checked
        // against the clock's own seconds for one known day.
        let days_to = |y: i64, m: i64, d: i64| {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        };
        assert_eq!(days_to(1970, 1, 1), 0);
        assert_eq!(days_to(2000, 3, 1) - days_to(2000, 2, 28), 2);
        let now = utc_now();
        let (y, m, d): (i64, i64, i64) = (
            now[0..4].parse().unwrap(),
            now[5..7].parse().unwrap(),
            now[8..10].parse().unwrap(),
        );
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        // Within a day of the clock (the test may cross midnight).
        assert!((days_to(y, m, d) - secs / 86_400).abs() <= 1, "{now}");
    }

    #[test]
    fn outside_text_cannot_end_a_line_or_drive_the_terminal() {
        let shown = |text: &str| escaped(text).to_string();
        assert_eq!(shown("GET /a b\tc ü"), "GET /a b\tc ü");
        assert_eq!(shown("a\nb\r\x1b[2J\x7f"), "a\\nb\\r\\u{1b}[2J\\u{7f}");
        // C1 controls (NEL, CSI), the separators, the bidirectional controls.
        assert_eq!(
            shown("\u{85}\u{9b}31m\u{2028}\u{2029}\u{202e}\u{2066}\u{200f}"),
            "\\u{85}\\u{9b}31m\\u{2028}\\u{2029}\\u{202e}\\u{2066}\\u{200f}"
        );
        assert_eq!(escaped("abcdef").at_most(3).to_string(), "abc [...]");
        // Whole characters only, and an escape is never cut.
        assert_eq!(escaped("aéb").at_most(2).to_string(), "a [...]");
        assert_eq!(escaped("a\nb").at_most(2).to_string(), "a\\n [...]");
        assert_eq!(escaped("abc").at_most(3).to_string(), "abc");
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
