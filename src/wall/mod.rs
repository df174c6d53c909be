//! The outer wall: before the engine exists, the process isolates itself
//! in new user, mount, pid, uts, ipc and net namespaces (and cgroup where
//! the kernel allows), with an empty root holding only what was granted.
//!
//! [`enter`] is the whole sequence, in the order of `DESIGN.md`: before
//! the clone here (`prepare`), the child's steps 4-9 in
//! `child.rs`, the parent's part in `supervisor.rs`. It returns in both
//! processes: in the sandboxed child — the first process of the new pid
//! namespace — as [`Entered::Sandbox`], which then runs the engine; in the
//! caller's process, which stays in the host's namespaces, as
//! [`Entered::Supervisor`], which waits for the child's end.
//!
//! The namespaces are created by a single `clone` rather than `unshare`
//! then `fork`, so that the parent stays in every namespace of the host
//! (as bubblewrap's does). The child writes its own id maps, except when
//! the caller is root: then the parent, which keeps a saved uid of 0 just
//! long enough, writes them, so that neither process ever has to be
//! dumpable (readable and traceable by every process of the sandbox's host
//! id, `nobody`).
//!
//! Lifetime: the sandbox dies with its supervisor (`PR_SET_PDEATHSIG`); a
//! forwarded SIGINT/SIGTERM/SIGHUP is followed by `SIGKILL` once the
//! caller's grace period has passed; and with a timeout, besides the
//! supervisor's own `SIGKILL` at the deadline, the kernel kills a sandbox
//! that burnt more CPU time than it could have by then (`RLIMIT_CPU`), so
//! that stopping the supervisor (SIGSTOP) does not let a guest spin on.
//! See namespaces(7), user_namespaces(7), pid_namespaces(7).

mod broker;
mod channel;
mod child;
mod idmap;
mod landlock;
mod privs;
mod rlimits;
mod rootfs;
mod seccomp;
mod supervisor;
// The list is compiled to BPF by build.rs; the crate keeps its profiles,
// and compiles the rest again only to check the build's output against it.
#[cfg_attr(not(test), allow(dead_code))]
mod seccomp_list;

pub use broker::{BrokerClient, CONNECT_TIMEOUT, Connection, Network};
pub use channel::{Applied, truncate};
pub use idmap::IdMap;
pub use idmap::ROOT_SANDBOX_ID;
pub use landlock::Enforcement;
pub use rlimits::described as limits_described;
pub use rootfs::{MountOp, plan as mount_plan};
pub use seccomp::Syscalls;
pub use supervisor::Supervisor;

use crate::Policy;
use crate::sys::{self, Fork, SysError};
use channel::{Message, Sender};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::waitpid;
use std::os::fd::OwnedFd;

/// A kernel isolation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// User namespace: mapped ids, no privilege on the host.
    User,
    /// Pid namespace: the sandbox sees only its own processes.
    Pid,
    /// Mount namespace: the empty root and the granted paths.
    Mount,
    /// UTS namespace: its own hostname.
    Uts,
    /// IPC namespace: no System V IPC or POSIX queues shared with the host.
    Ipc,
    /// Network namespace: nothing but `lo`.
    Net,
    /// Cgroup namespace: its own view of the cgroup tree (optional).
    Cgroup,
}

impl Layer {
    /// Every namespace layer, in the order `check` reports them.
    pub const ALL: [Layer; 7] = [
        Layer::User,
        Layer::Pid,
        Layer::Mount,
        Layer::Uts,
        Layer::Ipc,
        Layer::Net,
        Layer::Cgroup,
    ];

    /// Its name, as `check` and error messages print it.
    pub fn name(self) -> &'static str {
        match self {
            Layer::User => "user",
            Layer::Pid => "pid",
            Layer::Mount => "mount",
            Layer::Uts => "uts",
            Layer::Ipc => "ipc",
            Layer::Net => "net",
            Layer::Cgroup => "cgroup",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            Layer::User => CloneFlags::CLONE_NEWUSER,
            Layer::Pid => CloneFlags::CLONE_NEWPID,
            Layer::Mount => CloneFlags::CLONE_NEWNS,
            Layer::Uts => CloneFlags::CLONE_NEWUTS,
            Layer::Ipc => CloneFlags::CLONE_NEWIPC,
            Layer::Net => CloneFlags::CLONE_NEWNET,
            Layer::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }

    /// Whether a run needs this layer (cgroup is applied where allowed).
    pub fn required(self) -> bool {
        self != Layer::Cgroup
    }

    /// How to make the layer available when the kernel refused it with
    /// `errno`.
    pub fn hint(self, errno: nix::errno::Errno) -> &'static str {
        use nix::errno::Errno;
        match (self, errno) {
            (Layer::User, Errno::ENOSPC) => {
                "raise the limit: sysctl -w user.max_user_namespaces=15000 (it is 0 here, or used up)"
            }
            (Layer::User, Errno::EPERM) => {
                "allow unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1, \
                 and on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for wsandbox"
            }
            (Layer::User, _) => "a kernel built with CONFIG_USER_NS",
            (_, Errno::ENOSPC) => "raise the matching limit: sysctl user.max_<layer>_namespaces",
            _ => "a kernel with this namespace, and no security policy that refuses it",
        }
    }
}

/// Whether one layer can be set up here, and why not.
#[derive(Debug, Clone)]
pub struct LayerStatus {
    /// The layer.
    pub layer: Layer,
    /// `Err` carries the kernel's refusal.
    pub available: Result<(), SysError>,
}

/// The outer wall could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WallError {
    /// A system call failed in the parent.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// Required layers are missing and degraded mode was not asked for.
    #[error(
        "the {} namespace{} cannot be created ({}); to enable: {}; or run with {}",
        missing.iter().map(|s| s.layer.name()).collect::<Vec<_>>().join(", "),
        if missing.len() > 1 { "s" } else { "" },
        missing[0].available.as_ref().unwrap_err(),
        missing[0].layer.hint(missing[0].available.as_ref().unwrap_err().errno),
        crate::policy::Setting::AllowDegraded
    )]
    Unavailable {
        /// The layers the kernel refused.
        missing: Vec<LayerStatus>,
    },
}

/// A step inside the sandbox failed; its message goes to the parent.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error(transparent)]
    Landlock(#[from] landlock::LandlockError),
}

/// Tries each namespace layer in a short-lived child and reports which the
/// kernel grants (each with a user namespace, as a run would ask). The
/// user namespace is tried first and named as the cause when it fails.
pub fn probe() -> Vec<LayerStatus> {
    let user = try_clone(CloneFlags::CLONE_NEWUSER);
    Layer::ALL
        .iter()
        .map(|&layer| LayerStatus {
            layer,
            available: match (&user, layer) {
                (_, Layer::User) => user.clone(),
                (Err(err), _) => Err(err.clone()),
                (Ok(()), _) => try_clone(CloneFlags::CLONE_NEWUSER | layer.flag()),
            },
        })
        .collect()
}

fn try_clone(flags: CloneFlags) -> Result<(), SysError> {
    match sys::clone(flags)? {
        Fork::Child => sys::exit_now(0),
        Fork::Parent(pid) => {
            let _ = waitpid(pid, None);
            Ok(())
        }
    }
}

/// What [`enter`] applied: the layers in place and the ones missing.
#[derive(Debug, Clone, Default)]
pub struct Isolation {
    /// Layers applied.
    pub applied: Vec<Layer>,
    /// Layers that were refused (only with `allow_degraded`).
    pub missing: Vec<Layer>,
}

/// How the sandbox ended, as the kernel and the supervisor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Setup failed inside the sandbox, before any code of the caller's
    /// ran there: why (the failing call, its arguments and errno).
    SetupFailed(String),
    /// Killed past the policy's timeout, by the supervisor or by the
    /// kernel's CPU limit.
    TimedOut,
    /// Ended by this signal: sent to it, or forwarded by the supervisor and
    /// not heeded within the grace period.
    Signaled(i32),
    /// Exited with this status; `forwarded` is the signal the supervisor
    /// forwarded before, if it did.
    Exited {
        /// The exit status.
        code: i32,
        /// The SIGINT/SIGTERM/SIGHUP forwarded to it.
        forwarded: Option<i32>,
    },
    /// The supervisor could not wait for it (never on Linux).
    Lost,
}

/// How a supervised run ended.
#[derive(Debug, Clone)]
pub struct Ending {
    /// How the sandbox ended.
    pub end: End,
    /// What the child applied (absent when setup failed).
    pub applied: Option<Applied>,
    /// What the code above the wall said from inside ([`Sandbox::say`]),
    /// in order. Untrusted: the guest ran in that process, and can only
    /// add to what was said before it started.
    pub said: Vec<serde_json::Value>,
    /// CPU time the sandbox used, user and system, in milliseconds.
    pub cpu_ms: f64,
    /// The sandbox's peak resident memory, in bytes.
    pub peak_memory_bytes: u64,
    /// What the sandbox asked the broker, and what came of it.
    pub network: Network,
}

/// What [`enter`] returns in each of the two processes it makes.
#[derive(Debug)]
pub enum Entered {
    /// Outside (the caller's own process): the sandbox's supervisor.
    Supervisor(Supervisor),
    /// Inside: the sandboxed process, walls up.
    Sandbox(Sandbox),
}

/// The sandboxed process's side of the wall: what was applied, the line to
/// its supervisor, and the descriptors it kept.
#[derive(Debug)]
pub struct Sandbox {
    /// The layers in place.
    pub isolation: Isolation,
    sender: Sender,
    kept: Vec<OwnedFd>,
    broker: Option<OwnedFd>,
}

impl Sandbox {
    /// Tells the supervisor `what`: it arrives in [`Ending::said`]. The
    /// supervisor reads a bounded amount in all (256 KiB).
    pub fn say(&mut self, what: &impl serde::Serialize) {
        if let Ok(value) = serde_json::to_value(what) {
            self.sender.send(&Message::Said(value));
        }
    }

    /// The descriptors [`enter`] was given to keep, in the order given
    /// (empty once taken).
    pub fn take_kept(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.kept)
    }

    /// The sandbox's end of the broker's channel, when the policy allows
    /// a destination (`allow_http`, `allow_tcp`): a `SOCK_SEQPACKET` socket
    /// that takes a [`crate::policy::net::Ask`] per message and gives a
    /// [`crate::policy::net::Answer`] per message, with the connected
    /// socket (`SCM_RIGHTS`). `None` once taken, or with no rule.
    pub fn take_broker(&mut self) -> Option<OwnedFd> {
        self.broker.take()
    }
}

/// How long after a forwarded SIGINT/SIGTERM/SIGHUP a sandbox that is
/// still alive is sent `SIGKILL`, for a command (`run`, `call`).
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The exit status of a sandbox whose setup failed (its supervisor reports
/// [`End::SetupFailed`] whatever the status).
const SETUP_FAILED: i32 = 125;

/// Whether [`enter`] will give up host root before the sandbox exists (it
/// does when called by root): what must be done as root is done before.
pub fn gives_up_root() -> bool {
    idmap::is_host_root()
}

/// What the child needs from before the clone.
struct Prepared {
    ids: IdMap,
    host_root: bool,
    grants: rootfs::Grants,
    report: (OwnedFd, OwnedFd),
    go: (OwnedFd, OwnedFd),
    signals: SigSet,
    steps: Steps,
    broker: Option<BrokerEnds>,
}

/// The broker's channel, made before the clone when the policy allows a
/// destination.
struct BrokerEnds {
    /// The sandbox's end.
    inside: OwnedFd,
    /// The supervisor's.
    outside: OwnedFd,
    rules: broker::Rules,
}

/// Builds the outer wall around this process for `policy`, whose paths are
/// resolved. Refused while the process has more than one thread.
///
/// The granted directories are opened here, once; what the sandbox mounts
/// is each directory opened, with every mount below it, read-only all the
/// way down for a read-only grant. In the sandbox, each `policy.dirs[i].host`
/// becomes the path where grant `i` is mounted (see
/// [`rootfs::inside_path`]: a read-only grant inside a read-write one is
/// mounted apart).
///
/// Returns in both processes. In the caller's own process,
/// [`Entered::Supervisor`]; its copies of `keep` are closed (they are the
/// sandbox's). In the sandboxed child, [`Entered::Sandbox`]: of the
/// caller's descriptors only stdio and `keep` (in [`Sandbox::take_kept`])
/// stay open (and the broker's channel, [`Sandbox::take_broker`], when the
/// policy allows a destination), `syscalls` is the seccomp allow-list
/// ([`Syscalls::brokered`] with a broker), the environment is
/// empty and every argument and environment string zeroed (read what the
/// guest needs before: [`Policy::take_host_env`]).
///
/// A panic in the child ends it with exit code 125, without unwinding
/// ([`crate::say::end_on_panic`]). A sandbox still alive `stop_grace`
/// after a forwarded SIGINT/SIGTERM/SIGHUP is killed.
///
/// # Safety
///
/// The child is a copy of the caller in which every descriptor but stdio
/// and `keep` is closed — under whatever values of the caller's owned
/// them. In the child ([`Entered::Sandbox`]) the caller must never use or
/// drop a value that owned a descriptor before this call (a file, a
/// socket, a pipe), nor let one be used: it must end the process when it
/// is done (`exit`), without returning into the frames that hold such
/// values — as [`crate::launch`] does, after dropping its own. (Dropping
/// one would close a number the sandbox may have reused for its own.)
/// This is why the wall, like `CommandExt::pre_exec`, is `unsafe` to
/// enter: code that goes on in a copy of a process cannot be checked.
#[allow(unsafe_code)]
pub unsafe fn enter(
    policy: &mut Policy,
    keep: Vec<OwnedFd>,
    syscalls: Syscalls,
    stop_grace: std::time::Duration,
) -> Result<Entered, WallError> {
    // 1. The policy is valid and resolved, and the module read (by the caller).
    let prepared = prepare(policy)?;
    // 2-3. One clone into the new namespaces; the parent supervises.
    let (isolation, fork) = match sys::clone(flags_of(&Layer::ALL)) {
        Ok(fork) => (
            Isolation {
                applied: Layer::ALL.to_vec(),
                missing: vec![],
            },
            fork,
        ),
        Err(err) if err.errno == nix::errno::Errno::EBUSY => return Err(err.into()),
        Err(_) => {
            let isolation = degrade(policy)?;
            let fork = sys::clone(flags_of(&isolation.applied))?;
            (isolation, fork)
        }
    };
    match fork {
        Fork::Parent(child) => {
            drop(keep);
            let supervisor = Supervisor::new(child, prepared, &isolation, policy.timeout, stop_grace)?;
            Ok(Entered::Supervisor(supervisor))
        }
        // SAFETY: the caller's promise (see # Safety) is what `sandbox`
        // asks: nothing of the caller's that owned a descriptor is used
        // in this process again.
        Fork::Child => Ok(Entered::Sandbox(unsafe {
            child::sandbox(prepared, isolation, policy, keep, syscalls)
        })),
    }
}

/// Before the clone: the ids, the granted directories opened (and for
/// root, id-mapped copies of them; then root is given up), the pipes, and
/// the termination signals blocked.
fn prepare(policy: &Policy) -> Result<Prepared, WallError> {
    let (euid, egid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let host_root = idmap::is_host_root();
    let ids = IdMap::for_caller(euid, egid, host_root, policy.uid, policy.gid);
    // Host root runs the sandbox as an unprivileged id; id-mapped copies of
    // the grants show root's files as that id's, so they stay usable.
    let mut steps = Steps::start();
    let opened = rootfs::open_grants(policy)?;
    let trees = if host_root {
        idmapped_trees(policy, &opened, euid, egid)?
    } else {
        Vec::new()
    };
    let grants = rootfs::Grants { opened, trees };
    if host_root {
        become_sandbox_user(ids.host_uid, ids.host_gid)?;
    }
    let report = sys::pipe()?;
    let go = sys::pipe()?;
    let broker = match broker::Rules::of(policy) {
        Some(rules) => {
            let (inside, outside) = sys::check(
                nix::sys::socket::socketpair(
                    nix::sys::socket::AddressFamily::Unix,
                    nix::sys::socket::SockType::SeqPacket,
                    None,
                    nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                ),
                || "socketpair(AF_UNIX, SOCK_SEQPACKET)".into(),
            )?;
            Some(BrokerEnds {
                inside,
                outside,
                rules,
            })
        }
        None => None,
    };
    let signals = termination_signals();
    sys::check(signals.thread_block(), || "sigprocmask(SIG_BLOCK)".into())?;
    steps.done("prepared: ids, pipes, signals");
    Ok(Prepared {
        ids,
        host_root,
        grants,
        report,
        go,
        signals,
        steps,
        broker,
    })
}

/// Logs each step of the wall with the time it took (at debug level:
/// `-v`), in the supervisor and in the sandbox.
struct Steps {
    last: std::time::Instant,
}

impl Steps {
    fn start() -> Steps {
        Steps {
            last: std::time::Instant::now(),
        }
    }

    fn done(&mut self, step: &str) {
        let now = std::time::Instant::now();
        tracing::debug!(
            "outer wall: {step}: {:.3} ms",
            (now - self.last).as_secs_f64() * 1e3
        );
        self.last = now;
    }
}

/// Detached, id-mapped copies of every granted directory, in which the
/// caller's own ids appear as the sandbox's host ids.
fn idmapped_trees(
    policy: &Policy,
    opened: &[OwnedFd],
    euid: u32,
    egid: u32,
) -> Result<Vec<OwnedFd>, WallError> {
    if policy.dirs.is_empty() {
        return Ok(Vec::new());
    }
    let sandbox = IdMap::for_caller(euid, egid, true, None, None);
    let userns = idmap::user_namespace(&IdMap {
        inside_uid: euid,
        inside_gid: egid,
        host_uid: sandbox.host_uid,
        host_gid: sandbox.host_gid,
    })?;
    let mut trees = Vec::with_capacity(policy.dirs.len());
    for (dir, fd) in policy.dirs.iter().zip(opened) {
        let read_only = dir.access == crate::policy::Access::ReadOnly;
        trees.push(sys::idmapped_tree(fd, &dir.host, &userns, read_only)?);
    }
    Ok(trees)
}

/// Root gives up host root before the namespaces exist: no supplementary
/// groups, the sandbox's host ids — all but a saved uid of 0, which
/// [`write_child_maps`] uses once and drops — and not dumpable, so that no
/// process of that id (`nobody`) can read or trace it. From here on,
/// root's run is an unprivileged user's run.
fn become_sandbox_user(uid: u32, gid: u32) -> Result<(), SysError> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    sys::check(setgroups(&[]), || "setgroups([])".into())?;
    sys::check(setresgid(gid, gid, gid), || format!("setresgid({gid})"))?;
    sys::check(setresuid(uid, uid, Uid::from_raw(0)), || {
        format!("setresuid({uid}, {uid}, 0)")
    })?;
    sys::check(nix::sys::prctl::set_dumpable(false), || {
        "prctl(PR_SET_DUMPABLE, 0)".into()
    })
}

fn flags_of(layers: &[Layer]) -> CloneFlags {
    layers.iter().fold(CloneFlags::empty(), |f, l| f | l.flag())
}

/// When the kernel refused the full set: which layers it grants. Without
/// `allow_degraded` a missing required layer is an error; with it, the run
/// goes on with what is granted and says on stderr what is missing.
fn degrade(policy: &Policy) -> Result<Isolation, WallError> {
    let statuses = probe();
    let user_ok = statuses
        .iter()
        .any(|s| s.layer == Layer::User && s.available.is_ok());
    let (ok, refused): (Vec<_>, Vec<_>) = statuses
        .into_iter()
        .partition(|s| s.available.is_ok() && (user_ok || s.layer == Layer::User));
    let missing_required: Vec<LayerStatus> = refused.iter().filter(|s| s.layer.required()).cloned().collect();
    if !missing_required.is_empty() && !policy.allow_degraded {
        return Err(WallError::Unavailable {
            missing: missing_required,
        });
    }
    let isolation = Isolation {
        applied: ok.iter().map(|s| s.layer).collect(),
        missing: refused.iter().map(|s| s.layer).collect(),
    };
    if !isolation.missing.is_empty() {
        let names: Vec<_> = isolation.missing.iter().map(|l| l.name()).collect();
        crate::say_log!(
            WARN,
            "wsandbox: warning: running without the {} namespace(s) ({})",
            names.join(", "),
            crate::policy::Setting::AllowDegraded
        );
    }
    Ok(isolation)
}

/// The signals the parent forwards to the sandbox, and `SIGCHLD`, which
/// wakes it when the sandbox ends.
fn termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in sys::TERMINATION_SIGNALS.into_iter().chain([Signal::SIGCHLD]) {
        set.add(signal);
    }
    set
}
