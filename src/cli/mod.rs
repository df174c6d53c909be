//! The command line: one file per subcommand, one options group shared by
//! every command that runs a guest, turned into one [`wsandbox::Policy`].

mod call;
mod check;
mod compile;
mod docs;
mod options;
mod policy;
mod run;
mod serve;
mod wasmtime;
mod worker;

use clap::{Parser, Subcommand};
use wsandbox::policy::{Access, Setting};

/// Run untrusted WebAssembly behind two walls: Linux namespaces outside,
/// WASI capabilities inside.
#[derive(Debug, Parser)]
#[command(
    name = "wsandbox",
    version = VERSION,
    propagate_version = true,
    after_help = "Examples:\n  \
        wsandbox run --ro-dir ./data::/data app.wasm /data/input.csv\n  \
        wsandbox call plugin.wasm 'greet(\"world\")'\n  \
        wsandbox serve --addr 127.0.0.1:8080 --timeout 2s api.wasm\n  \
        wsandbox check\n\n\
        Logs: -v shows each step of the outer wall with its timing and what the engine did; \
        -vv more; WSANDBOX_LOG takes a filter (WSANDBOX_LOG=wsandbox=debug)."
)]
pub struct Cli {
    /// Log what wsandbox does on stderr: -v each setup step with its
    /// timing, -vv more (WSANDBOX_LOG=FILTER for a finer choice)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// How lines on stderr are written: text, or json (one object per
    /// line: time, level, message, and a request's id, route, method,
    /// path, status and duration in milliseconds)
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// The formats of `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// An event's message, then its other fields as ` name=value`.
fn message_of(event: &tracing::Event<'_>) -> String {
    struct Message(String);
    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            use std::fmt::Write as _;
            match field.name() {
                "message" if self.0.is_empty() => {
                    let _ = write!(self.0, "{value:?}");
                }
                name => {
                    let _ = write!(self.0, " {name}={value:?}");
                }
            }
        }
    }
    let mut message = Message(String::new());
    event.record(&mut message);
    message.0
}

/// `tracing`'s events as wsandbox's lines, in `--log-format`'s format. In
/// text, a debugging line comes after its level (`DEBUG engine: ...`); a
/// line of `info` and above — a warning, a plugin's log — reads as
/// wsandbox writes it when nothing is set up.
struct Lines(LogFormat);

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Lines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        let message = message_of(event);
        match self.0 {
            LogFormat::Json => {
                let name = level.as_str().to_ascii_lowercase();
                writer.write_str(&wsandbox::say::Record::new(&name, &message).to_json_line())
            }
            LogFormat::Text if level > tracing::Level::INFO => {
                writeln!(writer, "{:>5} {message}", level.as_str())
            }
            LogFormat::Text => writeln!(writer, "{message}"),
        }
    }
}

/// `wsandbox --version`: wsandbox's, wasmtime's, and what is built in.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (wasmtime ",
    env!("WSANDBOX_WASMTIME_VERSION"),
    "; wasmtime features: ",
    env!("WSANDBOX_WASMTIME_FEATURES"),
    "; WASI: 0.1 (preview 1), 0.2 (preview 2, with http), 0.3 (preview 3: run, call, serve))"
);

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunCommand),
    Call(call::CallCommand),
    Serve(serve::ServeCommand),
    Compile(compile::CompileCommand),
    Check(check::CheckCommand),
    Policy(policy::PolicyCommand),
    Completions(docs::CompletionsCommand),
    Man(docs::ManCommand),
    #[command(hide = true)]
    Worker(worker::WorkerCommand),
}

/// The command line as `wsandbox` reads it: the derived definitions,
/// with each command's own wording of the options it shares.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command().mut_subcommand("serve", |serve| {
        serve
            .mut_arg("timeout", |arg| {
                arg.help(
                    "Stop each request's instance after this much wall-clock time \
                     (500ms, 2s, 1m; a bare number is seconds): its client gets 504",
                )
            })
            .mut_arg("keep_terminal", |arg| arg.hide(true))
            .mut_arg("fuel", |arg| {
                arg.help("Stop each request's instance after about N wasm instructions: its client gets 500")
            })
    })
}

/// `args` with `run` put before the first that is neither a global option
/// nor a subcommand, when it is an option or a module (a file, or a word
/// with a `.` or `/`): `wsandbox app.wasm` is `wsandbox run app.wasm`, as
/// `wasmtime app.wasm` is `wasmtime run app.wasm` (and `wsandbox -W
/// timeout=5 app.wasm` too).
pub fn implicit_run(command: &clap::Command, mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut at = 1;
    while let Some(arg) = args.get(at).and_then(|a| a.to_str()) {
        match arg {
            "--log-format" => at += 2,
            _ if arg.starts_with("--log-format=") || arg == "--verbose" => at += 1,
            _ if arg.starts_with('-') && arg.len() > 1 && arg[1..].chars().all(|c| c == 'v') => at += 1,
            _ => break,
        }
    }
    // A word that names no file and looks like no path is a mistyped
    // command (`wsandbox serv`): clap says so, with the commands it knows.
    let module_like = |arg: &std::ffi::OsStr| {
        let text = arg.to_string_lossy();
        text.starts_with('-') || text.contains(['.', '/']) || std::path::Path::new(arg).exists()
    };
    // What clap answers by itself is no module either.
    let answered = ["help", "-h", "--help", "-V", "--version"];
    let named = |arg: &std::ffi::OsStr| {
        answered.iter().any(|a| arg == *a) || command.get_subcommands().any(|c| arg == c.get_name())
    };
    match args.get(at) {
        Some(arg) if !named(arg) && module_like(arg) => args.insert(at, "run".into()),
        _ => {}
    }
    args
}

/// Parses the process's command line (with [`implicit_run`]); exits with
/// clap's message and code 2 when it is not one — but for an unknown
/// option, one line instead of clap's tip to put it after `--` (which
/// would hand it to the guest).
pub fn parse() -> Cli {
    use clap::FromArgMatches as _;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let command = command();
    let args = implicit_run(&command, std::env::args_os().collect());
    let matches = command.try_get_matches_from(args).unwrap_or_else(|err| {
        if err.kind() == ErrorKind::UnknownArgument
            && let Some(ContextValue::String(option)) = err.get(ContextKind::InvalidArg)
        {
            wsandbox::say::failure(format_args!(
                "wsandbox: unknown option {option}: `wsandbox COMMAND --help` lists the options \
                 (the README's \"Coming from wasmtime\" says what becomes of wasmtime's)"
            ));
            std::process::exit(wsandbox::error::EXIT_USAGE.into());
        }
        err.exit()
    });
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

impl Cli {
    /// Sets up logging as `-v`/`-vv` or `WSANDBOX_LOG` ask (nothing is
    /// logged otherwise, and nothing is set up), in the format
    /// `--log-format` asks. A `WSANDBOX_LOG` that is not a filter is an
    /// error naming it.
    pub fn init_logging(&self) -> Result<(), wsandbox::Error> {
        if self.log_format == LogFormat::Json {
            wsandbox::say::set_log_format(wsandbox::say::LogFormat::Json);
        }
        let filter = match (std::env::var("WSANDBOX_LOG"), self.verbose) {
            (Ok(filter), _) if !filter.is_empty() => filter,
            (_, 0) => return Ok(()),
            (_, 1) => "wsandbox=debug".into(),
            (_, _) => "wsandbox=trace,wasmtime=debug,cranelift=info".into(),
        };
        // `target=level` directives, without the regular expressions of
        // `EnvFilter` (whose tables cost every run's start-up).
        let filter = wsandbox::say::log_filter(&filter).map_err(|err| {
            wsandbox::Error::Usage(format!(
                "WSANDBOX_LOG={}: not a filter ({err}): write TARGET=LEVEL,... such as wsandbox=debug",
                wsandbox::say::escaped(&filter)
            ))
        })?;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(|| wsandbox::say::Stderr)
            .log_internal_errors(false)
            .with_target(false)
            .with_ansi(false)
            .without_time();
        tracing_subscriber::registry()
            .with(fmt.event_format(Lines(self.log_format)))
            .with(filter)
            .init();
        Ok(())
    }

    /// Runs the chosen subcommand; `Ok` carries the process exit code.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        // A plugin's worker serves a host program that set no flags: its
        // messages name the policy's fields.
        if !matches!(self.command, Command::Worker(_)) {
            wsandbox::policy::name_settings(flag_of);
        }
        match self.command {
            Command::Run(cmd) => cmd.execute(),
            Command::Call(cmd) => cmd.execute(),
            Command::Serve(cmd) => cmd.execute(),
            Command::Compile(cmd) => cmd.execute(),
            Command::Check(cmd) => cmd.execute(),
            Command::Policy(cmd) => cmd.execute(),
            Command::Completions(cmd) => cmd.execute(),
            Command::Man(cmd) => cmd.execute(),
            Command::Worker(cmd) => cmd.execute(),
        }
    }
}

/// Writes `text` on stdout for the command `what`. A reader that leaves
/// before the end (`wsandbox man | head`) ends the command quietly and
/// well, as it would a Unix filter.
fn print(text: &[u8], what: &str) -> Result<u8, wsandbox::Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(wsandbox::Error::Output(format!("{what}: {e}"))),
    }
}

/// The flag that sets each setting the library's messages name.
fn flag_of(setting: Setting) -> &'static str {
    match setting {
        Setting::Dir(Access::ReadOnly) => "--ro-dir",
        Setting::Dir(Access::ReadWrite) => "--dir",
        Setting::Env => "--env",
        Setting::Timeout => "--timeout",
        Setting::Fuel => "--fuel",
        Setting::Memory => "--memory",
        Setting::AllowDegraded => "--allow-degraded",
        Setting::AllowPrecompiled => "--allow-precompiled",
        Setting::MaxBodySize => "--max-body-size",
        Setting::RequestTimeout => "--request-timeout",
        Setting::AllowHttp => "--allow-http",
        Setting::AllowTcp => "--allow-tcp",
        Setting::TlsCa => "--tls-ca",
        Setting::PolicyFile => "--config",
        Setting::Report => "--report",
        Setting::Output => "-o",
        // A setting added to the library but not yet to the command line.
        other => other.key(),
    }
}
