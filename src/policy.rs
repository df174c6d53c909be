//! The sandbox policy: plain data describing what a guest is granted.
//!
//! One [`Policy`] is built by the command line, from a policy file
//! (`--config FILE`, TOML, the same settings by the same names) with the
//! command line's values over it, or by library users; the engine and the
//! outer shell read nothing else. Nothing is granted by default: no
//! directories, no environment variables.
//!
//! A policy file:
//!
//! ```toml
//! hostname = "ci"
//! timeout = "10m"       # ms, s, m, h
//! memory = "512M"       # K, M, G (binary units), or a number of bytes
//!
//! [[dirs]]
//! host = "src"          # relative to the file's own directory
//! guest = "/src"
//! access = "read-only"  # or "read-write"
//!
//! [[env]]
//! name = "LANG"
//! value = "C"
//!
//! [[env]]
//! name = "TERM"         # no value: the host's, passed through
//!
//! allow_http = ["api.example.com", "127.0.0.1:8080"]  # see [`net`]
//! tls_ca = "test-ca.pem"  # relative to the file's own directory
//!
//! [serve]
//! addr = "127.0.0.1:8080"
//! admin_addr = "127.0.0.1:9090"
//! max_concurrent = 16
//! max_connections = 256
//! idle_timeout = "5s"
//! request_timeout = "30s"
//! max_body_size = "16M"
//!
//! [[serve.routes]]      # see [`Route`]
//! prefix = "/api"
//! component = "api.wasm"  # relative to the file's own directory
//! timeout = "2s"
//! env = [{ name = "MODE", value = "api" }]
//! ```

pub mod net;

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a guest may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The hostname inside the sandbox.
    pub hostname: String,
    /// The uid inside the sandbox (default: the caller's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The gid inside the sandbox (default: the caller's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Run with the isolation layers the kernel grants, listing the missing
    /// ones, instead of failing.
    pub allow_degraded: bool,
    /// Keep the caller's session and controlling terminal (no `setsid`),
    /// for interactive guests; pushing input into the terminal (`TIOCSTI`,
    /// `TIOCLINUX`) stays refused by the seccomp filter.
    pub keep_terminal: bool,
    /// Wall-clock limit of the run: past it, the sandbox is killed and the
    /// run ends with exit 124 (for `serve`, each request's limit).
    #[serde(with = "text::duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<std::time::Duration>,
    /// The most linear memory an instance may have, in bytes: a grow past
    /// it fails (and a guest that then traps gets exit 134 naming it).
    #[serde(with = "text::size", skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// A deterministic budget of fuel (about one unit per wasm
    /// instruction): when it runs out the guest stops, exit 124. `None`
    /// runs without metering, which costs nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Accept a precompiled artifact (from `wsandbox compile`) as the
    /// module. It is machine code that wasmtime runs as given, so it is
    /// trusted code: refused unless asked for.
    pub allow_precompiled: bool,
    /// Compile the module afresh: neither read nor write the compilation
    /// cache (whatever `cache_dir` says).
    pub no_cache: bool,
    /// Where the compilation cache is kept, if not in the user's default
    /// place (see [`crate::cache`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// Host directories preopened for the guest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirGrant>,
    /// Environment variables the guest sees, in order; a later entry with
    /// the same name wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Where the guest may send `wasi:http` requests, through the broker
    /// outside the walls ([`net`]): nowhere unless a rule names it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_http: Vec<net::Rule>,
    /// Where the guest may open TCP connections through `wasi:sockets`
    /// (`HOST:PORT` rules). Not enforceable yet: a policy with such a rule
    /// is refused at launch ([`PolicyError::TcpUnsupported`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_tcp: Vec<net::Rule>,
    /// PEM certificates the guest's HTTPS trusts besides the host's own
    /// bundle (read before the walls go up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// How `serve` serves (unused by the other commands).
    #[serde(skip_serializing_if = "ServeSettings::is_unset")]
    pub serve: ServeSettings,
}

/// `serve`'s own settings; unset ones take `serve`'s defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeSettings {
    /// Where to listen ([`parse_addr`]: a name is resolved when read).
    #[serde(with = "text::addr", skip_serializing_if = "Option::is_none")]
    pub addr: Option<std::net::SocketAddr>,
    /// Where the admin listener (`/healthz`, `/readyz`) listens, if
    /// anywhere; never on `addr`.
    #[serde(with = "text::addr", skip_serializing_if = "Option::is_none")]
    pub admin_addr: Option<std::net::SocketAddr>,
    /// Requests served at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Requests that may wait for an instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u32>,
    /// Connections open at once; past them, a new one waits in the
    /// kernel's backlog until another closes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// How long a connection with no request under way (just opened, or
    /// its last answer sent) may take to deliver the next request's head.
    #[serde(with = "text::duration", skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<std::time::Duration>,
    /// How long a client may take to send a request: its head, and its
    /// body once the request has an instance.
    #[serde(with = "text::duration", skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<std::time::Duration>,
    /// The largest request body, in bytes.
    #[serde(with = "text::size", skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<u64>,
    /// The functions of a server of several, each on its path prefix
    /// (`[[serve.routes]]`); none when `serve` is given one component.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

/// One function of a server of several (`[[serve.routes]]`): the
/// requests whose path is under `prefix` — the longest prefix wins — are
/// answered by `component`, with the policy's settings changed by its
/// own. Its `timeout`, `memory` and `fuel` replace the policy's; its
/// `dirs`, `env` and `allow_http` come on top of the policy's, for its
/// instances alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The path prefix: `/`, or `/` and segments (`/api`, `/api/v2`); a
    /// request's path is under it when it is the prefix or goes on with
    /// `/` after it (`/api` takes `/api` and `/api/users`, not `/apis`).
    pub prefix: RoutePrefix,
    /// The `wasi:http/proxy` component (relative to the policy file).
    pub component: PathBuf,
    /// Each request's wall-clock limit.
    #[serde(default, with = "text::duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<std::time::Duration>,
    /// Each instance's linear memory limit.
    #[serde(default, with = "text::size", skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Each request's fuel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// More directories, for this route's instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirGrant>,
    /// More environment variables, for this route's instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// More destinations of outgoing HTTP, for this route's instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_http: Vec<net::Rule>,
}

/// A route's path prefix: `/`, or segments each after a `/`, without a
/// trailing `/`, a query, a fragment, spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoutePrefix(String);

impl RoutePrefix {
    /// The prefix as written, normalized (`/api`, `/`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` (a request's, without its query) is under it.
    pub fn covers(&self, path: &str) -> bool {
        match path.strip_prefix(self.0.as_str()) {
            Some(rest) => self.0 == "/" || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl TryFrom<String> for RoutePrefix {
    type Error = String;

    fn try_from(text: String) -> Result<RoutePrefix, String> {
        let bad = |why: &str| format!("route prefix {text:?}: {why}");
        if !text.starts_with('/') {
            return Err(bad("it must start with '/'"));
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
        {
            return Err(bad("no spaces, control characters, '?' or '#'"));
        }
        if text.contains("//") {
            return Err(bad("an empty segment ('//')"));
        }
        let trimmed = match text.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        Ok(RoutePrefix(trimmed.to_owned()))
    }
}

impl From<RoutePrefix> for String {
    fn from(prefix: RoutePrefix) -> String {
        prefix.0
    }
}

impl std::fmt::Display for RoutePrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ServeSettings {
    fn is_unset(&self) -> bool {
        *self == ServeSettings::default()
    }
}

/// The hostname a sandbox gets unless the policy names one.
pub const DEFAULT_HOSTNAME: &str = "wsandbox";

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            dirs: Vec::new(),
            env: Vec::new(),
            allow_http: Vec::new(),
            allow_tcp: Vec::new(),
            tls_ca: None,
            hostname: DEFAULT_HOSTNAME.into(),
            uid: None,
            gid: None,
            allow_degraded: false,
            keep_terminal: false,
            timeout: None,
            memory: None,
            fuel: None,
            allow_precompiled: false,
            no_cache: false,
            cache_dir: None,
            serve: ServeSettings::default(),
        }
    }
}

/// A host directory made visible to the guest at `guest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// The path under which the guest sees it.
    pub guest: String,
    /// What the guest may do there.
    pub access: Access,
}

/// The rights a guest has in a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read files and list directories; no write, create, delete, rename,
    /// truncate or set-times.
    ReadOnly,
    /// Everything, within the directory.
    ReadWrite,
}

/// One environment variable for the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value; `None` passes the host's value through (and sets nothing
    /// when the host has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A setting a run is made with, as wsandbox's messages name it: a field
/// of the [`Policy`] (`memory`, `serve.max_body_size`), or the policy file
/// itself. A front end whose users set them otherwise names them its own
/// way ([`name_settings`]: the command line says `--memory`), so that a
/// message points at what its reader can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// A granted directory, read-only or read-write (`dirs`).
    Dir(Access),
    /// An environment variable (`env`).
    Env,
    /// The wall-clock limit (`timeout`).
    Timeout,
    /// The instruction budget (`fuel`).
    Fuel,
    /// The memory limit (`memory`).
    Memory,
    /// Running with the layers the host has (`allow_degraded`).
    AllowDegraded,
    /// Running precompiled machine code (`allow_precompiled`).
    AllowPrecompiled,
    /// The largest request body `serve` takes (`serve.max_body_size`).
    MaxBodySize,
    /// How long `serve` waits for a request's head and body
    /// (`serve.request_timeout`).
    RequestTimeout,
    /// Where the guest may send HTTP requests (`allow_http`).
    AllowHttp,
    /// Where the guest may open TCP connections (`allow_tcp`).
    AllowTcp,
    /// More certificate authorities for the guest's HTTPS (`tls_ca`).
    TlsCa,
    /// The policy file.
    PolicyFile,
    /// Where a run's report goes (the launch's `report`).
    Report,
    /// Where `compile` writes its artifact (the compile job's `output`).
    Output,
}

impl Setting {
    /// Its name in the policy: the field's path (`serve.max_body_size`),
    /// `dirs (read-only)`, `policy file`.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Dir(Access::ReadOnly) => "dirs (read-only)",
            Setting::Dir(Access::ReadWrite) => "dirs (read-write)",
            Setting::Env => "env",
            Setting::Timeout => "timeout",
            Setting::Fuel => "fuel",
            Setting::Memory => "memory",
            Setting::AllowDegraded => "allow_degraded",
            Setting::AllowPrecompiled => "allow_precompiled",
            Setting::MaxBodySize => "serve.max_body_size",
            Setting::RequestTimeout => "serve.request_timeout",
            Setting::AllowHttp => "allow_http",
            Setting::AllowTcp => "allow_tcp",
            Setting::TlsCa => "tls_ca",
            Setting::PolicyFile => "policy file",
            Setting::Report => "report",
            Setting::Output => "output",
        }
    }
}

/// How the front end names each setting; the policy's keys if none said.
static SETTING_NAMES: std::sync::OnceLock<fn(Setting) -> &'static str> = std::sync::OnceLock::new();

/// Names every setting in wsandbox's messages by `name`, for the rest of
/// the process (and the sandbox, its copy): for a front end whose users
/// set them otherwise than by the policy's keys (the command line's
/// flags). The first call wins.
pub fn name_settings(name: fn(Setting) -> &'static str) {
    let _ = SETTING_NAMES.set(name);
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = SETTING_NAMES.get().map_or_else(|| self.key(), |name| name(*self));
        f.write_str(name)
    }
}

/// A policy that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A granted directory is missing or is not a directory.
    #[error("{setting} {}: {reason}", host.display())]
    BadDir {
        /// The grant's setting ([`Setting::Dir`]).
        setting: Setting,
        /// The host path as given.
        host: PathBuf,
        /// Why it cannot be granted.
        reason: String,
    },
    /// Two grants claim the same guest path.
    #[error("guest path {0:?} is granted twice")]
    DuplicateGuestPath(String),
    /// A guest path is empty.
    #[error("a granted directory has an empty guest path")]
    EmptyGuestPath,
    /// An environment variable name is empty or contains `=` or NUL.
    #[error("invalid environment variable name {0:?}")]
    BadEnvName(String),
    /// A directory that the sandbox reserves for itself.
    #[error("{setting} {}: cannot grant {}: the sandbox mounts its own there", host.display(), canonical.display())]
    ReservedDir {
        /// The grant's setting ([`Setting::Dir`]).
        setting: Setting,
        /// The host path as given.
        host: PathBuf,
        /// What it resolves to.
        canonical: PathBuf,
    },
    /// The hostname is empty, too long or has characters a hostname cannot.
    #[error("invalid hostname {0:?}: 1 to 64 letters, digits, '-' or '.'")]
    BadHostname(String),
    /// A policy that cannot be read (not the format, an unknown key).
    #[error("cannot read the policy: {0}")]
    Unreadable(String),
    /// `serve` may run no instance at all.
    #[error("serve: max_concurrent must be at least 1")]
    NoConcurrency,
    /// `serve` may hold no connection at all.
    #[error("serve: max_connections must be at least 1")]
    NoConnections,
    /// Two routes of `serve` with the same prefix.
    #[error("serve: route {0}: two routes have this prefix")]
    DuplicateRoute(String),
    /// A policy that cannot be written as a policy file.
    #[error("cannot write the policy as TOML: {0}")]
    Unwritable(String),
    /// A policy file that cannot be read, or is not a policy: a missing
    /// file, bad TOML, an unknown key, a value of the wrong type.
    #[error("{} {}: {}{message}", Setting::PolicyFile, path.display(), line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    File {
        /// The file as named.
        path: PathBuf,
        /// The line of the fault, when there is one.
        line: Option<usize>,
        /// What is wrong, on one line.
        message: String,
    },
    /// A TCP rule without a port.
    #[error("{setting} {rule}: a TCP rule needs a port (HOST:PORT)", setting = Setting::AllowTcp)]
    TcpRuleWithoutPort {
        /// The rule.
        rule: String,
    },
    /// Brokered TCP through `wasi:sockets` is not available.
    #[error(
        "{setting} {rule}: not available: wasmtime-wasi's sockets open sockets of their own, which the sandbox cannot; \
         reach HTTP(S) services with {http}",
        setting = Setting::AllowTcp,
        http = Setting::AllowHttp
    )]
    TcpUnsupported {
        /// The first TCP rule.
        rule: String,
    },
    /// The certificates of `tls_ca` cannot be read.
    #[error("{setting} {}: {reason}", path.display(), setting = Setting::TlsCa)]
    TlsCa {
        /// The file as named.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A passed-through environment variable is not valid UTF-8 on the host.
    #[error("{env} {0}: the host's value is not valid UTF-8", env = Setting::Env)]
    EnvNotUtf8(String),
}

/// Parses a duration as the command line and a policy file take it: a
/// number and a unit — `ns`, `us` (or `µs`), `ms`, `s`, `m` or `h`
/// (`500ms`, `2s`, `1.5m`) — or a bare number of seconds, as wasmtime's
/// `-W timeout=5` reads it.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?}: not a duration (e.g. 500ms, 2s, 1m, or 5 for seconds)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ns" => number / 1e9,
        "us" | "µs" | "μs" => number / 1e6,
        "ms" => number / 1e3,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (ms, s, m or h; a bare number is seconds)"
            ));
        }
    };
    if !(seconds > 0.0 && seconds < 1e9) {
        return Err(format!("{text:?}: must be more than zero"));
    }
    let duration = std::time::Duration::from_secs_f64(seconds);
    match duration.is_zero() {
        true => Err(format!("{text:?}: must be more than zero")),
        false => Ok(duration),
    }
}

/// Writes a duration as [`parse_duration`] reads it back: the shortest
/// exact spelling in whole hours, minutes, seconds, milliseconds,
/// microseconds or nanoseconds. Every message and policy file of
/// wsandbox's writes durations so.
pub fn duration_text(d: std::time::Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    match (secs, nanos) {
        (s, 0) if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        (s, 0) if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        (_, n) if n.is_multiple_of(1_000_000) => format!("{}ms", d.as_millis()),
        (_, n) if n.is_multiple_of(1_000) => format!("{}us", d.as_micros()),
        _ => format!("{}ns", d.as_nanos()),
    }
}

/// The units of a size, all binary: `K`, `KiB` and `KB` each mean 1024
/// bytes (as `ulimit`, the JVM and Docker read them), and so on up. Case
/// does not matter.
const SIZE_UNITS: [(&str, u32); 5] = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40)];

/// Writes a size as [`parse_size`] reads it back: in the largest binary
/// unit that holds it exactly (`64M`, `1536K`, `1G`), else in bytes.
/// Every message and policy file of wsandbox's writes sizes so.
pub fn size_text(bytes: u64) -> String {
    for (unit, shift) in SIZE_UNITS.iter().rev() {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Parses a size as the command line and a policy file take it: a number
/// of bytes (`65536`, `0x10000`, `1_000_000`, as wasmtime's `-W
/// max-memory-size=` takes it), or a whole number and a binary unit — `K`,
/// `M`, `G`, `T`, spelt `k`, `KiB` or `KB` alike ([`SIZE_UNITS`]).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("{text:?}: not a size (e.g. 64M, 1G, or a number of bytes)");
    if let Some(hex) = text.strip_prefix("0x") {
        return match u64::from_str_radix(&hex.replace('_', ""), 16) {
            Ok(0) => Err(format!("{text:?}: must be more than zero")),
            Ok(bytes) => Ok(bytes),
            Err(_) => Err(bad()),
        };
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.replace('_', "").parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_uppercase();
    let prefix = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let Some(&(_, shift)) = SIZE_UNITS.iter().find(|(name, _)| *name == prefix) else {
        let unit = text[split..].trim();
        return Err(format!(
            "{text:?}: unknown unit {unit:?} (K, M, G or T, binary: K, KiB and KB are 1024 bytes)"
        ));
    };
    match number.checked_mul(1 << shift) {
        Some(0) => Err(format!("{text:?}: must be more than zero")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?}: too large")),
    }
}

/// Parses an address to listen on, as `serve --addr` and a policy file
/// take it: `IP:PORT` (`127.0.0.1:8080`, `[::1]:8080`), or `NAME:PORT`
/// with a name the host resolves (`localhost:8080`), which is bound at its
/// first IPv4 address, else its first address. Port 0 picks a free port.
pub fn parse_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(|| {
        format!("{text:?}: not HOST:PORT (an IP address or a name such as localhost, and a port)")
    })?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "{text:?}: not HOST:PORT (an IP address or a name such as localhost, and a port from 0 to 65535)"
        ));
    }
    let addrs: Vec<std::net::SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?}: cannot resolve {host:?}: {}", io_reason(&e)))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: {host:?} has no address"))
}

impl DirGrant {
    /// Parses `HOST[::GUEST]`; the guest path defaults to HOST as written.
    pub fn parse(spec: &str, access: Access) -> DirGrant {
        let (host, guest) = match spec.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (spec, spec),
        };
        DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_owned(),
            access,
        }
    }
}

impl EnvVar {
    /// Parses `NAME=VALUE`, or `NAME` to pass the host's value through.
    pub fn parse(spec: &str) -> EnvVar {
        match spec.split_once('=') {
            Some((name, value)) => EnvVar {
                name: name.to_owned(),
                value: Some(value.to_owned()),
            },
            None => EnvVar {
                name: spec.to_owned(),
                value: None,
            },
        }
    }
}

impl Policy {
    /// Checks that the policy can be applied on this host: every granted
    /// directory exists and is a directory, guest paths are distinct, and
    /// variable names are valid.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut guests = HashSet::new();
        for dir in &self.dirs {
            let bad = |reason: String| PolicyError::BadDir {
                setting: Setting::Dir(dir.access),
                host: dir.host.clone(),
                reason,
            };
            match std::fs::metadata(&dir.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(bad("not a directory".into())),
                Err(e) => return Err(bad(io_reason(&e))),
            }
            if dir.guest.is_empty() {
                return Err(PolicyError::EmptyGuestPath);
            }
            if !guests.insert(dir.guest.trim_end_matches('/')) {
                return Err(PolicyError::DuplicateGuestPath(dir.guest.clone()));
            }
        }
        let host_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if self.hostname.is_empty() || self.hostname.len() > 64 || !self.hostname.chars().all(host_ok) {
            return Err(PolicyError::BadHostname(self.hostname.clone()));
        }
        for var in &self.env {
            if var.name.is_empty() || var.name.contains(['=', '\0']) {
                return Err(PolicyError::BadEnvName(var.name.clone()));
            }
        }
        if self.serve.max_concurrent == Some(0) {
            return Err(PolicyError::NoConcurrency);
        }
        if self.serve.max_connections == Some(0) {
            return Err(PolicyError::NoConnections);
        }
        let mut prefixes = HashSet::new();
        for route in &self.serve.routes {
            if !prefixes.insert(&route.prefix) {
                return Err(PolicyError::DuplicateRoute(route.prefix.to_string()));
            }
        }
        if let Some(rule) = self.allow_tcp.iter().find(|r| r.port == net::PortPattern::Scheme) {
            return Err(PolicyError::TcpRuleWithoutPort {
                rule: rule.to_string(),
            });
        }
        Ok(())
    }

    /// Validates the policy, then replaces every granted host path by its
    /// canonical form (symlinks resolved), which is where the sandbox
    /// mounts it. Paths the sandbox reserves (`/`, `/proc`, `/dev`) are
    /// refused. For root, a path through a symbolic link that another user
    /// owns is refused too, as the kernel's `protected_symlinks` refuses
    /// such links in sticky directories: its owner could point it anywhere.
    /// At `-v`, each grant's resolved path is logged, and a grant that
    /// resolves outside the path named says so.
    pub fn resolve(&mut self) -> Result<(), PolicyError> {
        self.validate()?;
        let links_of = nix::unistd::geteuid().is_root().then_some(0);
        for dir in &mut self.dirs {
            let bad = |reason: String| PolicyError::BadDir {
                setting: Setting::Dir(dir.access),
                host: dir.host.clone(),
                reason,
            };
            let named = std::path::absolute(&dir.host).map_err(|e| bad(io_reason(&e)))?;
            let canonical = canonical_dir(&named, links_of).map_err(bad)?;
            let reserved =
                canonical == Path::new("/") || RESERVED.iter().any(|path| canonical.starts_with(path));
            if reserved {
                return Err(PolicyError::ReservedDir {
                    setting: Setting::Dir(dir.access),
                    host: dir.host.clone(),
                    canonical,
                });
            }
            let flag = Setting::Dir(dir.access);
            if canonical.starts_with(lexical(&named)) {
                tracing::debug!("grant {flag} {}: {}", dir.host.display(), canonical.display());
            } else {
                tracing::debug!(
                    "grant {flag} {}: {} (through a symbolic link: outside {})",
                    dir.host.display(),
                    canonical.display(),
                    lexical(&named).display()
                );
            }
            dir.host = canonical;
        }
        Ok(())
    }

    /// The policy of `route`'s instances: this one, with the route's
    /// limits in place of its own and the route's grants and rules on top
    /// of its own; no routes.
    pub fn for_route(&self, route: &Route) -> Policy {
        let mut policy = self.clone();
        policy.serve.routes = Vec::new();
        policy.timeout = route.timeout.or(self.timeout);
        policy.memory = route.memory.or(self.memory);
        policy.fuel = route.fuel.or(self.fuel);
        policy.dirs.extend(route.dirs.iter().cloned());
        policy.env.extend(route.env.iter().cloned());
        policy.allow_http.extend(route.allow_http.iter().cloned());
        policy
    }

    /// Replaces each passed-through name of `env` by the host's value now
    /// (or drops it when the host has none), so that the guest's
    /// environment no longer depends on this process's: the sandboxed
    /// process has none ([`crate::wall::enter`] empties it).
    pub fn take_host_env(&mut self) -> Result<(), PolicyError> {
        self.env = self
            .guest_env()?
            .into_iter()
            .map(|(name, value)| EnvVar {
                name,
                value: Some(value),
            })
            .collect();
        Ok(())
    }

    /// The guest's environment: explicit values, plus the host's values of
    /// passed-through names (skipped when unset on the host). A later entry
    /// replaces an earlier one of the same name.
    pub fn guest_env(&self) -> Result<Vec<(String, String)>, PolicyError> {
        let mut env: Vec<(String, String)> = Vec::new();
        for var in &self.env {
            let value = match &var.value {
                Some(value) => value.clone(),
                None => match std::env::var(&var.name) {
                    Ok(value) => value,
                    Err(std::env::VarError::NotPresent) => continue,
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(PolicyError::EnvNotUtf8(var.name.clone()));
                    }
                },
            };
            env.retain(|(name, _)| *name != var.name);
            env.push((var.name.clone(), value));
        }
        Ok(env)
    }
}

impl Policy {
    /// Reads a policy file. Relative `host` paths of its directories (its
    /// routes' too), its `tls_ca`, `cache_dir` and its routes' components are taken from
    /// the file's own directory, so a policy and its data travel together.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let fault = |line: Option<usize>, message: String| PolicyError::File {
            path: path.to_path_buf(),
            line,
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fault(None, io_reason(&e)))?;
        let mut policy = Policy::from_toml(&text).map_err(|(line, message)| {
            // wasmtime's `--config` takes a file of its own tables.
            const WASMTIME: [&str; 6] = ["optimize", "codegen", "debug", "wasm", "wasi", "record"];
            match toml::from_str::<toml::Table>(&text) {
                Ok(table) if table.keys().any(|key| WASMTIME.contains(&key.as_str())) => fault(
                    None,
                    "this is wasmtime's configuration ([wasm], [wasi], ...), not a policy file: \
                     give its settings as wsandbox's options (the README's table says which), \
                     and `wsandbox policy` writes the policy file"
                        .into(),
                ),
                _ => fault(line, message),
            }
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        for dir in &mut policy.dirs {
            if dir.host.is_relative() {
                dir.host = base.join(&dir.host);
            }
        }
        for path in [&mut policy.tls_ca, &mut policy.cache_dir] {
            if let Some(path) = path.as_mut().filter(|path| path.is_relative()) {
                *path = base.join(&*path);
            }
        }
        for route in &mut policy.serve.routes {
            if route.component.is_relative() {
                // Absolute, so that the policy as `wsandbox policy` shows it
                // names the same file from anywhere.
                let joined = base.join(&route.component);
                route.component = std::path::absolute(&joined).unwrap_or(joined);
            }
            for dir in route.dirs.iter_mut().filter(|d| d.host.is_relative()) {
                dir.host = base.join(&dir.host);
            }
        }
        Ok(policy)
    }

    /// Parses a policy from TOML text; an error has the line of the fault
    /// (1-based) when there is one, and a one-line message.
    pub fn from_toml(text: &str) -> Result<Policy, (Option<usize>, String)> {
        toml::from_str(text).map_err(|err: toml::de::Error| {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            (line, err.message().trim().replace('\n', "; "))
        })
    }

    /// The policy as a policy file would say it. Fails only for what TOML
    /// cannot hold: a host path that is not UTF-8.
    pub fn to_toml(&self) -> Result<String, PolicyError> {
        toml::to_string(self).map_err(|e| PolicyError::Unwritable(e.to_string()))
    }
}

/// Durations and sizes as people write them in a policy file (`"2s"`,
/// `"64M"`), as the command line takes them.
mod text {
    /// `Option<Duration>` as `"500ms"`, `"2s"`, `"1.5m"`, `"1h"`, or a
    /// number of seconds.
    pub mod duration {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        pub fn serialize<S: Serializer>(value: &Option<Duration>, out: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(d) => out.serialize_str(&super::super::duration_text(*d)),
                None => out.serialize_none(),
            }
        }

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Seconds(f64),
            Text(String),
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Option<Duration>, D::Error> {
            let text = match Written::deserialize(input)? {
                Written::Seconds(seconds) => seconds.to_string(),
                Written::Text(text) => text,
            };
            super::super::parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom)
        }
    }

    /// `Option<SocketAddr>` as `"127.0.0.1:8080"`, read by
    /// [`parse_addr`](super::parse_addr) (so a name is resolved).
    pub mod addr {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::net::SocketAddr;

        pub fn serialize<S: Serializer>(value: &Option<SocketAddr>, out: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(addr) => out.collect_str(addr),
                None => out.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Option<SocketAddr>, D::Error> {
            let text = String::deserialize(input)?;
            super::super::parse_addr(&text)
                .map(Some)
                .map_err(serde::de::Error::custom)
        }
    }

    /// `Option<u64>` bytes as `"64M"`, `"1G"`, `"1536K"`, or a number.
    pub mod size {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(value: &Option<u64>, out: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(bytes) => out.serialize_str(&super::super::size_text(*bytes)),
                None => out.serialize_none(),
            }
        }

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Option<u64>, D::Error> {
            match Written::deserialize(input)? {
                Written::Bytes(0) => Err(serde::de::Error::custom("a size must be more than zero")),
                Written::Bytes(bytes) => Ok(Some(bytes)),
                Written::Text(text) => super::super::parse_size(&text)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}

/// Where the sandbox's root keeps the host's root until it detaches it.
pub const OLD_ROOT: &str = "/oldroot";

/// Where the sandbox mounts its own: no grant may be there (or below).
const RESERVED: [&str; 3] = ["/proc", "/dev", OLD_ROOT];

/// How many symbolic links one path may go through (as the kernel's 40).
const MAX_LINKS: usize = 40;

/// The canonical form of the absolute directory path `path`, resolved as
/// `realpath(3)` does but one component at a time, each opened relative to
/// its parent without following it (`O_PATH|O_NOFOLLOW`): a link is read
/// from the descriptor that was checked, so it cannot be swapped for
/// another between the check and the read. With `links_of`, a link owned
/// by any other uid is refused.
fn canonical_dir(path: &Path, links_of: Option<u32>) -> Result<PathBuf, String> {
    use nix::fcntl::{OFlag, open, openat, readlinkat};
    use nix::sys::stat::{Mode, SFlag, fstat};
    use std::collections::VecDeque;
    use std::path::Component;
    let errno = |e: nix::errno::Errno| io_reason(&std::io::Error::from(e));
    let o_path = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let root = open("/", o_path | OFlag::O_DIRECTORY, Mode::empty()).map_err(errno)?;
    // The directories resolved so far, below the root: name and descriptor.
    let mut done: Vec<(std::ffi::OsString, std::os::fd::OwnedFd)> = Vec::new();
    let mut todo: VecDeque<std::ffi::OsString> = VecDeque::new();
    let push_front = |todo: &mut VecDeque<_>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(name) => todo.push_front(name.to_os_string()),
                Component::ParentDir => todo.push_front("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push_front(&mut todo, path);
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            done.pop();
            continue;
        }
        let base = done.last().map_or(&root, |(_, fd)| fd);
        let fd = openat(base, name.as_os_str(), o_path | OFlag::O_NOFOLLOW, Mode::empty()).map_err(errno)?;
        let stat = fstat(&fd).map_err(errno)?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            let here: PathBuf = done.iter().map(|(n, _)| n.as_os_str()).collect();
            let link = Path::new("/").join(here).join(&name);
            if let Some(uid) = links_of.filter(|&uid| uid != stat.st_uid) {
                return Err(format!(
                    "goes through {}, a symbolic link of uid {}: a run as uid {uid} follows only its own",
                    link.display(),
                    stat.st_uid
                ));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("more than {MAX_LINKS} symbolic links"));
            }
            let target = readlinkat(&fd, "").map_err(errno)?;
            let target = Path::new(&target);
            if target.is_absolute() {
                done.clear();
            }
            push_front(&mut todo, target);
            continue;
        }
        if kind != SFlag::S_IFDIR {
            return Err("not a directory".into());
        }
        done.push((name, fd));
    }
    let mut canonical = PathBuf::from("/");
    canonical.extend(done.iter().map(|(n, _)| n));
    Ok(canonical)
}

/// `path` with `.` and `..` taken away lexically (no look at the disk).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// An I/O error as a short reason, without the "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotADirectory => "not a directory".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(end) => text[..end].to_lowercase(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a front end's names, messages name the policy's fields.
    #[test]
    fn settings_are_named_by_their_keys_unless_a_front_end_names_them() {
        assert_eq!(Setting::Memory.to_string(), "memory");
        assert_eq!(Setting::MaxBodySize.to_string(), "serve.max_body_size");
        let err = PolicyError::BadDir {
            setting: Setting::Dir(Access::ReadOnly),
            host: "/x".into(),
            reason: "missing".into(),
        };
        assert_eq!(err.to_string(), "dirs (read-only) /x: missing");
    }

    #[test]
    fn grants_resolve_through_links_as_realpath_does() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("real", base.join("rel")).unwrap();
        std::os::unix::fs::symlink(base.join("real/sub"), base.join("abs")).unwrap();
        std::os::unix::fs::symlink("../rel/sub", base.join("real/up")).unwrap();
        std::os::unix::fs::symlink("loop", base.join("loop")).unwrap();
        std::fs::write(base.join("file"), "").unwrap();
        let resolve = |p: &str| canonical_dir(&base.join(p), None);
        assert_eq!(resolve("rel/sub").unwrap(), base.join("real/sub"));
        assert_eq!(resolve("abs").unwrap(), base.join("real/sub"));
        assert_eq!(resolve("real/up").unwrap(), base.join("real/sub"));
        assert_eq!(resolve("real/sub/../../rel").unwrap(), base.join("real"));
        assert_eq!(
            resolve("real/../../..").unwrap(),
            base.parent().unwrap().parent().unwrap()
        );
        for p in ["/", "/.."] {
            assert_eq!(canonical_dir(Path::new(p), None).unwrap(), Path::new("/"));
        }
        assert!(resolve("loop").unwrap_err().contains("symbolic links"));
        assert_eq!(resolve("file").unwrap_err(), "not a directory");
        assert_eq!(resolve("file/x").unwrap_err(), "not a directory");
        assert_eq!(resolve("gone").unwrap_err(), "no such file or directory");
    }

    #[test]
    fn root_follows_no_link_of_another_user() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: only root can give a link to another user");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink("real", base.join("mine")).unwrap();
        std::os::unix::fs::symlink("real", base.join("theirs")).unwrap();
        std::os::unix::fs::lchown(base.join("theirs"), Some(65534), Some(65534)).unwrap();
        assert_eq!(
            canonical_dir(&base.join("mine"), Some(0)).unwrap(),
            base.join("real")
        );
        let refused = canonical_dir(&base.join("theirs/."), Some(0)).unwrap_err();
        assert!(refused.contains("symbolic link of uid 65534"), "{refused}");
        assert!(
            refused.contains(&base.join("theirs").display().to_string()),
            "{refused}"
        );
        // Only links: a directory of another user's is walked through.
        std::os::unix::fs::chown(base.join("real"), Some(65534), Some(65534)).unwrap();
        assert!(canonical_dir(&base.join("real"), Some(0)).is_ok());
        assert!(
            canonical_dir(&base.join("theirs"), None).is_ok(),
            "the check is root's"
        );
    }

    #[test]
    fn durations_and_sizes_are_written_as_they_are_read() {
        use std::time::Duration;
        for d in [
            Duration::from_millis(1),
            Duration::from_millis(1500),
            Duration::from_secs(2),
            Duration::from_secs(90),
            Duration::from_secs(120),
            Duration::from_secs(7200),
            Duration::from_micros(1500),
        ] {
            let written = duration_text(d);
            assert_eq!(parse_duration(&written), Ok(d), "{written}");
        }
        let policy = Policy {
            memory: Some(1536 << 10),
            ..Policy::default()
        };
        let text = policy.to_toml().unwrap();
        assert!(text.contains("memory = \"1536K\""), "{text}");
        assert_eq!(Policy::from_toml(&text).unwrap(), policy);
        let bytes = Policy::from_toml("memory = 65536\n").unwrap();
        assert_eq!(bytes.memory, Some(65536));
        assert!(Policy::from_toml("memory = 0\n").is_err());
    }

    #[test]
    fn dir_spec_defaults_guest_to_host() {
        let d = DirGrant::parse("/data", Access::ReadOnly);
        assert_eq!(d.host, PathBuf::from("/data"));
        assert_eq!(d.guest, "/data");
        let d = DirGrant::parse("/srv/x::/x", Access::ReadWrite);
        assert_eq!(d.host, PathBuf::from("/srv/x"));
        assert_eq!(d.guest, "/x");
    }

    #[test]
    fn env_spec_value_or_passthrough() {
        assert_eq!(EnvVar::parse("A=b=c").value.as_deref(), Some("b=c"));
        assert_eq!(EnvVar::parse("A=").value.as_deref(), Some(""));
        assert_eq!(EnvVar::parse("HOME").value, None);
    }

    #[test]
    fn later_env_entries_win() {
        let policy = Policy {
            env: vec![EnvVar::parse("A=1"), EnvVar::parse("B=2"), EnvVar::parse("A=3")],
            ..Policy::default()
        };
        let env = policy.guest_env().unwrap();
        assert_eq!(env, [("B".into(), "2".into()), ("A".into(), "3".into())]);
    }

    #[test]
    fn validate_rejects_bad_grants() {
        let tmp = std::env::temp_dir();
        let dir = |spec: &str| DirGrant::parse(spec, Access::ReadWrite);
        let with = |dirs: Vec<DirGrant>| {
            Policy {
                dirs,
                ..Policy::default()
            }
            .validate()
        };
        assert!(with(vec![dir(tmp.to_str().unwrap())]).is_ok());
        assert!(matches!(
            with(vec![dir("/definitely/not/here")]),
            Err(PolicyError::BadDir { .. })
        ));
        let twice = format!("{}::/a", tmp.display());
        assert!(matches!(
            with(vec![dir(&twice), dir(&twice)]),
            Err(PolicyError::DuplicateGuestPath(_))
        ));
        let bad_env = Policy {
            env: vec![EnvVar::parse("=x")],
            ..Policy::default()
        };
        assert!(matches!(bad_env.validate(), Err(PolicyError::BadEnvName(_))));
    }

    #[test]
    fn a_route_prefix_covers_its_path_and_what_is_below_it() {
        let prefix = |text: &str| RoutePrefix::try_from(text.to_string());
        let api = prefix("/api/").unwrap();
        assert_eq!(api.as_str(), "/api");
        for path in ["/api", "/api/", "/api/users", "/api/v2/x"] {
            assert!(api.covers(path), "{path}");
        }
        for path in ["/apis", "/", "/ap", "/x/api"] {
            assert!(!api.covers(path), "{path}");
        }
        let root = prefix("/").unwrap();
        assert!(root.covers("/") && root.covers("/anything/at/all"));
        for bad in ["api", "", "/a b", "/a?b", "/a#b", "/a//b", "/a\u{7f}"] {
            assert!(prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_route_replaces_the_limits_and_adds_the_grants() {
        let text = r#"
timeout = "10s"
memory = "1G"
env = [{ name = "A", value = "top" }]
allow_http = ["a.example"]

[[serve.routes]]
prefix = "/api"
component = "api.wasm"
timeout = "2s"
env = [{ name = "B", value = "api" }]
allow_http = ["b.example"]
"#;
        let policy = Policy::from_toml(text).unwrap();
        let route = &policy.serve.routes[0];
        let own = policy.for_route(route);
        assert_eq!(own.timeout, Some(std::time::Duration::from_secs(2)));
        assert_eq!(own.memory, Some(1 << 30));
        let env: Vec<&str> = own.env.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(env, ["A", "B"]);
        assert_eq!(own.allow_http.len(), 2);
        assert!(own.serve.routes.is_empty());
        // Written back as it was read.
        let again = Policy::from_toml(&policy.to_toml().unwrap()).unwrap();
        assert_eq!(again, policy);
    }
}
