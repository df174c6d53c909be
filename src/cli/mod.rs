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

/// `tracing`'s events as [`wsandbox::say::Record`]s: one JSON object per
/// line, its fields after the message.
struct JsonLines;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
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
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let record = wsandbox::say::Record::new(&level, &message.0);
        writer.write_str(&record.to_json_line())
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

impl Cli {
    /// Sets up logging as `-v`/`-vv` or `WSANDBOX_LOG` ask (nothing is
    /// logged otherwise, and nothing is set up), in the format
    /// `--log-format` asks.
    pub fn init_logging(&self) {
        if self.log_format == LogFormat::Json {
            wsandbox::say::set_log_format(wsandbox::say::LogFormat::Json);
        }
        let filter = match (std::env::var("WSANDBOX_LOG"), self.verbose) {
            (Ok(filter), _) if !filter.is_empty() => filter,
            (_, 0) => return,
            (_, 1) => "wsandbox=debug".into(),
            (_, _) => "wsandbox=trace,wasmtime=debug,cranelift=info".into(),
        };
        // `target=level` directives, without the regular expressions of
        // `EnvFilter` (whose tables cost every run's start-up).
        let filter: tracing_subscriber::filter::Targets = filter
            .parse()
            .unwrap_or_else(|_| "wsandbox=debug".parse().unwrap_or_default());
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(|| wsandbox::say::Stderr)
            .log_internal_errors(false)
            .with_target(false)
            .with_ansi(false)
            .without_time();
        match self.log_format {
            LogFormat::Text => tracing_subscriber::registry().with(fmt).with(filter).init(),
            LogFormat::Json => tracing_subscriber::registry()
                .with(fmt.event_format(JsonLines))
                .with(filter)
                .init(),
        }
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
