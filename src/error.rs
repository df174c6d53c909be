//! The top-level error and the one place that maps failures to exit codes.

use crate::engine::ModuleError;
use crate::policy::PolicyError;

/// Exit code when wsandbox itself failed: bad policy, setup error.
pub const EXIT_SANDBOX_FAILED: u8 = 125;
/// Exit code when the module cannot run: invalid wasm, unsatisfied imports,
/// no entry point, unreadable file.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// Exit code when the module file does not exist.
pub const EXIT_NOT_FOUND: u8 = 127;
/// Exit code when the guest trapped.
pub const EXIT_TRAPPED: u8 = 134;
/// Exit code of a command-line usage error (as clap uses).
pub const EXIT_USAGE: u8 = 2;
/// The guest ran past its time limit.
pub const EXIT_TIMEOUT: u8 = 124;

/// Everything that can stop wsandbox from running a guest to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy is invalid or names something the host cannot grant.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The module is missing, unreadable, invalid or cannot be run.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The outer wall could not be built.
    #[error(transparent)]
    Wall(#[from] crate::wall::WallError),
    /// The engine could not be set up.
    #[error("cannot set up the engine: {0}")]
    Engine(String),
    /// The report file cannot be written.
    #[error("{0}")]
    Report(String),
    /// A call (`wsandbox call`) that does not fit the module: not a call,
    /// an unknown export, arguments of the wrong number or type.
    #[error("{0}")]
    Call(String),
    /// A command line wsandbox does not take: an option of wasmtime's
    /// with no safe meaning here (with what to use instead), or options
    /// that contradict each other.
    #[error("{0}")]
    Usage(String),
    /// An output file (`compile -o`) cannot be written.
    #[error("{0}")]
    Output(String),
    /// `serve` cannot listen on its address.
    #[error("{0}")]
    Listen(String),
    /// One function of a server of several failed to load or be granted
    /// what it names: the error, with its exit code, and which route.
    #[error("route {route}: {error}")]
    Route {
        /// The route's prefix.
        route: String,
        /// What failed.
        error: Box<Error>,
    },
}

impl From<crate::engine::Error> for Error {
    fn from(err: crate::engine::Error) -> Error {
        use crate::engine::Error as Engine;
        match err {
            Engine::Module(err) => Error::Module(err),
            Engine::Policy(err) => Error::Policy(err),
            Engine::Engine(why) => Error::Engine(why),
            Engine::Call(why) => Error::Call(why),
        }
    }
}

impl Error {
    /// The exit code DESIGN.md assigns to this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Policy(_)
            | Error::Wall(_)
            | Error::Engine(_)
            | Error::Report(_)
            | Error::Output(_)
            | Error::Listen(_) => EXIT_SANDBOX_FAILED,
            Error::Call(_) | Error::Usage(_) => EXIT_USAGE,
            Error::Module(ModuleError::NotFound { .. }) => EXIT_NOT_FOUND,
            Error::Module(_) => EXIT_CANNOT_RUN,
            Error::Route { error, .. } => error.exit_code(),
        }
    }
}
