//! wsandbox's integration tests: one binary that drives the built
//! `wsandbox` the way a user would, with the guests of `guests/`.

mod admin;
mod cache;
mod call;
mod deploy;
mod errors;
mod fs;
mod fuzz;
mod hosted;
mod hostile;
mod layers;
mod limits;
mod logs;
mod outgoing;
mod p3;
mod p3_serve;
mod plugin;
mod policy;
mod pool;
mod python;
mod readme;
mod report;
mod routes;
mod run;
mod serve;
mod wall;
mod wasmtime;

use std::path::Path;
use std::process::{Command, Stdio};

/// The two kinds of guest every behaviour is checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A core module built for `wasm32-wasip1`.
    P1,
    /// A component built for `wasm32-wasip2`.
    P2,
    /// A WASI 0.3 component: `p3-probe`, which has the `fs` guest's
    /// operations (and only those of the Rust guests).
    P3,
}

impl Kind {
    /// The path of the Rust guest `name` of this kind.
    pub fn guest(self, name: &str) -> &'static str {
        match (self, name) {
            (Kind::P1, _) => wsandbox_guests::p1(name),
            (Kind::P2, _) => wsandbox_guests::p2(name),
            (Kind::P3, "fs") => wsandbox_guests::P3_PROBE,
            (Kind::P3, _) => panic!("no WASI 0.3 twin of the guest {name}"),
        }
    }
}

/// Defines `mod $test { fn p1(); fn p2(); }`, running `$test(Kind)` once
/// with a core module and once with a component.
#[macro_export]
macro_rules! both_kinds {
    ($($test:ident),* $(,)?) => {$(
        $crate::kinds_of!($test: P1 p1, P2 p2);
    )*};
}

/// [`both_kinds!`], and once more with a WASI 0.3 component
/// ([`Kind::P3`]).
#[macro_export]
macro_rules! every_kind {
    ($($test:ident),* $(,)?) => {$(
        $crate::kinds_of!($test: P1 p1, P2 p2, P3 p3);
    )*};
}

/// `mod $test`, with a test `fn $name()` running `$test(Kind::$kind)` for
/// each kind given.
#[macro_export]
macro_rules! kinds_of {
    ($test:ident: $($kind:ident $name:ident),*) => {
        mod $test {
            $(
                #[test]
                fn $name() {
                    super::$test($crate::Kind::$kind)
                }
            )*
        }
    };
}

/// A finished `wsandbox` process.
#[derive(Debug)]
pub struct Output {
    /// Its exit code (`None` if a signal killed it).
    pub code: Option<i32>,
    /// What it wrote on stdout.
    pub stdout: String,
    /// What it wrote on stderr.
    pub stderr: String,
}

/// The compilation cache of the tests' runs (not the user's own): under
/// the target directory, so that a test run leaves nothing behind, and
/// shared, so that the tests exercise cache hits as users will.
pub const TEST_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/cache");

/// A `wsandbox` command with an empty stdin, using the tests' cache.
pub fn wsandbox() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsandbox"));
    cmd.stdin(Stdio::null()).env("XDG_CACHE_HOME", TEST_CACHE);
    cmd
}

/// The engine alone, without the outer wall (`examples/bare_run.rs`,
/// which `cargo test` builds next to this test binary): the inner wall's
/// tests run through it too, so that each wall is shown to hold alone.
pub fn bare_run() -> Command {
    example("bare_run")
}

/// The example program `name` of `examples/`, which `cargo test` builds.
pub fn example(name: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests through `cargo test`, which builds the examples",
        path.display()
    );
    let mut cmd = Command::new(path);
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `wsandbox ARGS...` to its end.
pub fn run(args: &[&str]) -> Output {
    output(wsandbox().args(args))
}

/// Runs `cmd` to its end and collects its output.
pub fn output(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn wsandbox");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Output {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code; output: {self:#?}");
        self
    }

    /// Asserts that wsandbox failed with one clear line on stderr that
    /// contains every one of `words`, and nothing of a Rust panic.
    #[track_caller]
    pub fn assert_one_line_error(&self, code: i32, words: &[&str]) -> &Self {
        self.assert_code(code);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "want one line on stderr: {self:#?}");
        assert!(lines[0].starts_with("wsandbox: ") || code == 2, "{self:#?}");
        for word in words {
            assert!(lines[0].contains(word), "stderr lacks {word:?}: {self:#?}");
        }
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        self
    }
}

/// The user a test runs wsandbox as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Whoever runs the tests (root in CI).
    Me,
    /// uid/gid 65534 through `setpriv`, when the tests run as root.
    Nobody,
}

/// Whether the tests run as root.
pub fn am_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Both callers where the tests run as root; only `Me` otherwise (with a
/// printed reason).
pub fn callers() -> Vec<Caller> {
    if am_root() {
        vec![Caller::Me, Caller::Nobody]
    } else {
        eprintln!("not root: the unprivileged run is the only one, and setpriv is not needed");
        vec![Caller::Me]
    }
}

/// A `wsandbox` command run by `caller`.
pub fn wsandbox_as(caller: Caller) -> Command {
    let mut cmd = match caller {
        Caller::Me => Command::new(env!("CARGO_BIN_EXE_wsandbox")),
        Caller::Nobody => {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(for_nobody(env!("CARGO_BIN_EXE_wsandbox")));
            cmd
        }
    };
    // Nobody cannot write there, and so runs without a cache (tests/all/
    // cache.rs gives nobody one of its own).
    cmd.stdin(Stdio::null()).env("XDG_CACHE_HOME", TEST_CACHE);
    cmd
}

/// A path as a `&str` (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `path`, or a copy of it that uid 65534 can read and run. The tests run
/// wsandbox and guests as nobody; a checkout under a private directory
/// (such as `/root`) is out of nobody's reach, so such files are copied to
/// a world-readable folder first.
pub fn for_nobody(path: &str) -> String {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Mutex, OnceLock};
    if reachable_by_others(Path::new(path)) {
        return path.to_owned();
    }
    static COPIES: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let mut copies = COPIES.get_or_init(Default::default).lock().unwrap();
    if let Some(copy) = copies.get(path) {
        return copy.clone();
    }
    let dir = std::env::temp_dir().join(format!("wsandbox-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join(format!(
        "{}-{}",
        copies.len(),
        Path::new(path).file_name().unwrap().to_string_lossy()
    ));
    std::fs::copy(path, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = copy.to_string_lossy().into_owned();
    copies.insert(path.to_owned(), copy.clone());
    copy
}

/// Whether others may search every directory above `path` and read it.
fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode()).unwrap_or(0);
    mode(path) & 0o004 != 0 && path.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0)
}
