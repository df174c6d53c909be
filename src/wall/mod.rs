//! The outer wall: before the engine exists, the process isolates itself
//! in new user, mount, pid, uts, ipc and net namespaces (and cgroup where
//! the kernel allows), with an empty root holding only what was granted.
//!
//! [`enter`] is the whole sequence, one step per line, in the order of
//! `DESIGN.md`. It returns only in the sandboxed child — the first process
//! of the new pid namespace — which then runs the engine. The parent stays
//! in the host's namespaces, supervises, and exits with the child's status.
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

mod channel;
mod idmap;
mod landlock;
mod privs;
mod rlimits;
mod rootfs;
mod seccomp;
// The list is compiled to BPF by build.rs; the crate keeps its profiles,
// and compiles the rest again only to check the build's output against it.
#[cfg_attr(not(test), allow(dead_code))]
mod seccomp_list;

pub use channel::{Applied, Loaded, Message};
pub use idmap::IdMap;
pub use idmap::ROOT_SANDBOX_ID;
pub use rlimits::described as limits_described;
pub use rootfs::{MountOp, plan as mount_plan};
pub use seccomp::Syscalls;

use crate::Policy;
use crate::sys::{self, Fork, SysError};
use channel::{Receiver, Sender};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// A kernel isolation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        "the {} namespace{} cannot be created ({}); to enable: {}; or run with --allow-degraded",
        missing.iter().map(|s| s.layer.name()).collect::<Vec<_>>().join(", "),
        if missing.len() > 1 { "s" } else { "" },
        missing[0].available.as_ref().unwrap_err(),
        missing[0].layer.hint(missing[0].available.as_ref().unwrap_err().errno)
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
    /// Layers that were refused (only with `--allow-degraded`).
    pub missing: Vec<Layer>,
}

/// How a supervised run ended, as the parent saw it.
#[derive(Debug, Clone)]
pub struct Ending {
    /// The code wsandbox exits with: the child's, or 128+S.
    pub exit_code: i32,
    /// The signal that ended the sandbox, when one did (sent to the
    /// sandbox, or forwarded to it by wsandbox).
    pub signal: Option<i32>,
    /// Why setup failed, when it did.
    pub setup_error: Option<String>,
    /// The run passed the policy's timeout and was killed.
    pub timed_out: bool,
    /// What the child applied (absent when setup failed).
    pub applied: Option<Applied>,
    /// How the child said the guest ended, and its message: untrusted (the
    /// guest ran in that process), absent if it said nothing.
    pub guest: Option<(String, Option<String>)>,
    /// The fuel the child said the guest burnt (untrusted, as `guest`).
    pub fuel_consumed: Option<u64>,
    /// How the guest's code was loaded, as the child said before the guest
    /// started (so not the guest's word); absent if it never started.
    pub loaded: Option<Loaded>,
    /// CPU time the sandbox used, user and system, in milliseconds.
    pub cpu_ms: f64,
    /// The sandbox's peak resident memory, in bytes.
    pub peak_memory_bytes: u64,
}

/// The sandboxed process's side of the wall: what was applied, and the
/// line to its supervisor.
#[derive(Debug)]
pub struct Sandbox {
    /// The layers in place.
    pub isolation: Isolation,
    sender: Sender,
}

impl Sandbox {
    /// Tells the supervisor how the guest's code was loaded. Call it once,
    /// after every descriptor the guest must not have is closed and just
    /// before the guest starts: the supervisor believes only this first
    /// account.
    pub fn loaded(&mut self, loaded: Loaded) {
        self.sender.send(&Message::Loaded(loaded));
    }

    /// Tells the supervisor how the guest ended: `exited`, `trapped`,
    /// `fuel` or `error`, with a message and the fuel burnt.
    pub fn ended(&mut self, outcome: &str, message: Option<String>, fuel_consumed: Option<u64>) {
        self.sender.send(&Message::Ended {
            outcome: outcome.into(),
            message,
            fuel_consumed,
        });
    }
}

/// How long after a forwarded SIGINT/SIGTERM/SIGHUP a sandbox that is
/// still alive is sent `SIGKILL`, for a command (`run`, `call`).
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether [`enter`] will give up host root before the sandbox exists (it
/// does when called by root): what must be done as root is done before.
pub fn gives_up_root() -> bool {
    idmap::is_host_root()
}

/// Builds the outer wall around this process for `policy`, whose paths are
/// resolved. Must be called while the process has a single thread.
///
/// The granted directories are opened here, once; what the sandbox mounts
/// is each directory opened, with every mount below it, read-only all the
/// way down for a read-only grant. In the sandbox, each `policy.dirs[i].host`
/// becomes the path where grant `i` is mounted (see
/// [`rootfs::inside_path`]: a read-only grant inside a read-write one is
/// mounted apart).
///
/// Returns only in the sandboxed child, where of the caller's descriptors
/// only stdio and `keep` stay open, `syscalls` is the seccomp allow-list,
/// and the environment is empty and every argument and environment string
/// zeroed (read what the guest needs before: [`Policy::take_host_env`]).
/// The parent closes its copies of `keep` (they are the sandbox's),
/// supervises, calls `on_end` with how the run ended (to write a report),
/// and exits. A sandbox still alive `stop_grace` after a forwarded
/// SIGINT/SIGTERM/SIGHUP is killed (exit still 128+S). A panic in either
/// process from then on ends it with exit code 125, without unwinding
/// ([`crate::say::end_on_panic`]).
pub fn enter(
    policy: &mut Policy,
    keep: &[std::os::fd::RawFd],
    syscalls: Syscalls,
    stop_grace: std::time::Duration,
    on_end: &mut dyn FnMut(&Ending),
) -> Result<Sandbox, WallError> {
    // 1. The policy is valid and resolved, and the module read (by the caller).
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
    let (report_read, report_write) = sys::pipe()?;
    let (go_read, go_write) = sys::pipe()?;
    let signals = termination_signals();
    sys::check(signals.thread_block(), || "sigprocmask(SIG_BLOCK)".into())?;
    // 2-3. One clone into the new namespaces; the parent supervises.
    steps.done("prepared: ids, pipes, signals");
    let (isolation, fork) = match sys::clone(flags_of(&Layer::ALL)) {
        Ok(fork) => (
            Isolation {
                applied: Layer::ALL.to_vec(),
                missing: vec![],
            },
            fork,
        ),
        Err(_) => {
            let isolation = degrade(policy)?;
            let fork = sys::clone(flags_of(&isolation.applied))?;
            (isolation, fork)
        }
    };
    let go = match fork {
        Fork::Parent(child) => {
            drop((report_write, go_read));
            sys::close_passed(keep);
            if host_root {
                // Root's maps are written from outside, then root is gone
                // for good; the child waits for `go` until then.
                let own_users = isolation.applied.contains(&Layer::User);
                if let Err(err) = write_child_maps(child, &ids, own_users) {
                    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(err.into());
                }
            }
            // The supervisor never returns, nor unwinds into the caller's
            // stack below (its destructors would run twice).
            crate::say::end_on_panic();
            supervise(
                child,
                go_write,
                Receiver::new(report_read),
                &signals,
                Lifetime {
                    timeout: policy.timeout,
                    stop_grace,
                },
                on_end,
            )
        }
        Fork::Child => {
            // The caller's destructors are the original process's to run.
            crate::say::end_on_panic();
            drop((report_read, go_write));
            go_read
        }
    };
    let setup = (|grants: rootfs::Grants| -> Result<Applied, SetupError> {
        // 4. Die with the parent; no core dumps or ptrace; signals act again.
        sys::check(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL), || {
            "prctl(PR_SET_PDEATHSIG)".into()
        })?;
        // Nothing of the caller's environment or argv is left to read.
        sys::scrub_args_and_env()?;
        wait_for_parent(go)?;
        steps.done("the supervisor let go");
        // (2.) The id maps: one id, its own, written by the process itself
        // (root's by the parent, before `go`); root's saved uid 0 is gone.
        let own_users = isolation.applied.contains(&Layer::User);
        if host_root {
            let (uid, gid) = if own_users {
                (ids.inside_uid, ids.inside_gid)
            } else {
                (ids.host_uid, ids.host_gid)
            };
            drop_ids(uid, gid)?;
        } else if own_users {
            idmap::write_own(&ids)?;
        }
        steps.done("id maps");
        sys::check(nix::sys::prctl::set_dumpable(false), || {
            "prctl(PR_SET_DUMPABLE, 0)".into()
        })?;
        sys::check(signals.thread_unblock(), || "sigprocmask(SIG_UNBLOCK)".into())?;
        sys::exit_on_termination_signals()?;
        // 5-6. Private mounts, tmpfs root, grants, /dev, pivot_root, /proc, old root gone, root read-only.
        if isolation.applied.contains(&Layer::Mount) {
            let own_users = isolation.applied.contains(&Layer::User);
            rootfs::apply(&rootfs::plan(policy, host_root, own_users), &grants)?;
            steps.done("mounts: empty root, grants, /dev, /proc, pivot_root");
            let inside: Vec<_> = (0..policy.dirs.len())
                .map(|i| rootfs::inside_path(policy, i))
                .collect();
            for (dir, inside) in policy.dirs.iter_mut().zip(inside) {
                dir.host = inside;
            }
        }
        drop(grants);
        // 7. Hostname, and `lo` up in the empty network namespace.
        if isolation.applied.contains(&Layer::Uts) {
            sys::check(nix::unistd::sethostname(&policy.hostname), || {
                format!("sethostname({:?})", policy.hostname)
            })?;
        }
        if isolation.applied.contains(&Layer::Net) {
            sys::interface_up("lo")?;
            steps.done("hostname and lo");
        }
        // 8. Limits (the kernel's backstop for the timeout too); no descriptor of the caller's but stdio and `keep`; a session of its own.
        rlimits::apply(policy.memory, own_users, policy.timeout)?;
        steps.done("rlimits");
        let keep: Vec<_> = keep.iter().copied().chain([report_write.as_raw_fd()]).collect();
        sys::close_fds_except(&keep)?;
        steps.done("descriptors closed");
        if !policy.keep_terminal {
            sys::check(nix::unistd::setsid(), || "setsid()".into())?;
        }
        // 9. No capability in any set, no way to gain one back, Landlock...
        privs::drop_all()?;
        steps.done("capabilities dropped");
        let landlock = landlock::restrict(policy, &rootfs::DEVICES)?;
        steps.done("landlock");
        // ...and the syscall allow-list, last.
        seccomp::install(syscalls)?;
        steps.done("seccomp");
        Ok(Applied {
            namespaces: isolation.applied.iter().map(|l| l.name().into()).collect(),
            missing: isolation.missing.iter().map(|l| l.name().into()).collect(),
            host_ids: (ids.host_uid, ids.host_gid),
            capabilities_dropped: true,
            no_new_privs: true,
            seccomp: true,
            landlock: landlock.name().into(),
            rlimits: true,
            fds_closed: true,
            own_session: !policy.keep_terminal,
        })
    })(grants);
    // The parent learns the outcome of setup: what was applied, or why not.
    let mut sender = Sender::new(report_write);
    match setup {
        Ok(applied) => sender.send(&Message::Ready(applied)),
        Err(err) => {
            sender.send(&Message::SetupFailed(err.to_string()));
            sys::exit_now(crate::error::EXIT_SANDBOX_FAILED as i32);
        }
    }
    Ok(Sandbox { isolation, sender })
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

/// Root's parent, after the clone: with its saved uid 0 as effective uid
/// for a moment, writes the child's id maps (when it has a user namespace
/// of its own), then drops uid 0 from every set. Neither process was
/// dumpable at any point.
fn write_child_maps(child: Pid, ids: &IdMap, own_users: bool) -> Result<(), SysError> {
    use nix::unistd::{Uid, setresuid};
    let (root, uid) = (Uid::from_raw(0), Uid::from_raw(ids.host_uid));
    let keep = Uid::from_raw(u32::MAX);
    let written = match own_users {
        true => sys::check(setresuid(keep, root, keep), || "setresuid(-1, 0, -1)".into())
            .and_then(|()| idmap::write(child, ids)),
        false => Ok(()),
    };
    if let Err(err) = sys::check(setresuid(uid, uid, uid), || format!("setresuid({uid})")) {
        // Never go on with a way back to root.
        let _ = writeln!(std::io::stderr(), "wsandbox: cannot give up root: {err}");
        sys::exit_now(crate::error::EXIT_SANDBOX_FAILED as i32);
    }
    written
}

/// Sets every uid and every gid of this process to `uid` and `gid`, and
/// checks none is left as it was: for root's child, whose saved uid was 0.
fn drop_ids(uid: u32, gid: u32) -> Result<(), SysError> {
    use nix::unistd::{Gid, Uid, getresuid, setresgid, setresuid};
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    sys::check(setresgid(gid, gid, gid), || format!("setresgid({gid})"))?;
    sys::check(setresuid(uid, uid, uid), || format!("setresuid({uid})"))?;
    let ids = sys::check(getresuid(), || "getresuid()".into())?;
    if [ids.real, ids.effective, ids.saved] != [uid; 3] {
        return Err(SysError {
            call: format!("setresuid({uid}): still {ids:?}"),
            errno: nix::errno::Errno::EPERM,
        });
    }
    Ok(())
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
        crate::say!(
            "wsandbox: warning: running without the {} namespace(s) (--allow-degraded)",
            names.join(", ")
        );
    }
    Ok(isolation)
}

/// The signals the parent forwards to the sandbox.
fn termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGCHLD] {
        set.add(signal);
    }
    set
}

/// In the child: waits until the parent has written the id maps, and makes
/// sure the parent is still alive now that its death would kill this
/// process. `go` is closed by the parent only when it exits.
fn wait_for_parent(go: OwnedFd) -> Result<(), SysError> {
    let mut go = std::fs::File::from(go);
    let mut byte = [0u8; 1];
    match go.read(&mut byte) {
        Ok(1) => {}
        _ => sys::exit_now(crate::error::EXIT_SANDBOX_FAILED as i32),
    }
    let mut fds = [nix::poll::PollFd::new(go.as_fd(), nix::poll::PollFlags::POLLIN)];
    let ready = sys::check(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), || {
        "poll(go pipe)".into()
    })?;
    let hung_up = ready > 0
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLHUP));
    if hung_up {
        sys::exit_now(crate::error::EXIT_SANDBOX_FAILED as i32);
    }
    Ok(())
}

/// How long a sandbox may live: its timeout, and how long it has to end
/// after a forwarded signal.
struct Lifetime {
    timeout: Option<std::time::Duration>,
    stop_grace: std::time::Duration,
}

/// The parent: lets the child go, relays its setup error if any, forwards
/// SIGINT/SIGTERM/SIGHUP (and sends `SIGKILL` if the sandbox is still
/// alive a grace period later), kills the sandbox at the timeout (exit
/// 124), and exits with the child's status (128+S when a signal killed it
/// or was forwarded before it was killed), after telling `on_end` how the
/// run ended.
///
/// The timeout is the outer wall's: the guest runs uninstrumented, and
/// whether it spins in wasm or blocks in a host call, `SIGKILL` ends it —
/// this process's, or the kernel's at the CPU limit if this process was
/// stopped: a sandbox killed by `SIGKILL` after the deadline timed out.
fn supervise(
    child: Pid,
    go: OwnedFd,
    mut messages: Receiver,
    signals: &SigSet,
    lifetime: Lifetime,
    on_end: &mut dyn FnMut(&Ending),
) -> ! {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::time::{Duration, Instant};
    let timeout = lifetime.timeout;
    let deadline = timeout.map(|t| Instant::now() + t);
    let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
    // The signals stay blocked; they are read from a descriptor, so that
    // waiting can end at the deadline too.
    let signal_fd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    let mut go = std::fs::File::from(go);
    let _ = go.write_all(b"g");
    let (setup_error, applied) = match messages.next() {
        Some(Message::Ready(applied)) => (None, Some(applied)),
        Some(Message::SetupFailed(error)) => (Some(error), None),
        _ => (None, None),
    };
    if let Some(error) = &setup_error {
        crate::say!("wsandbox: cannot set up the sandbox: {error}");
    }
    let mut forwarded: Option<i32> = None;
    // When a sandbox that was sent a signal is killed, if still alive.
    let mut kill_at: Option<Instant> = None;
    let mut grace_over = false;
    let mut timed_out = false;
    let forward = |signal: Signal, forwarded: &mut Option<i32>, kill_at: &mut Option<Instant>| {
        let _ = nix::sys::signal::kill(child, signal);
        *forwarded = Some(signal as i32);
        kill_at.get_or_insert(Instant::now() + lifetime.stop_grace);
    };
    let (exit_code, signal) = loop {
        match waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, _)) | Ok(WaitStatus::Signaled(..)) if timed_out => {
                break (crate::error::EXIT_TIMEOUT as i32, None);
            }
            // The kernel's CPU limit, while this process was stopped.
            Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) if past_deadline() => {
                timed_out = true;
                break (crate::error::EXIT_TIMEOUT as i32, None);
            }
            // Killed past the grace period: the signal it did not heed.
            Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) if grace_over => {
                let signal = forwarded.unwrap_or(Signal::SIGKILL as i32);
                break (128 + signal, Some(signal));
            }
            Ok(WaitStatus::Exited(_, code)) => break (code, forwarded),
            Ok(WaitStatus::Signaled(_, signal, _)) => break (128 + signal as i32, Some(signal as i32)),
            Ok(_) => {}
            Err(_) => break (crate::error::EXIT_SANDBOX_FAILED as i32, None),
        }
        let now = Instant::now();
        let left = deadline.map(|d| d.saturating_duration_since(now));
        if left == Some(Duration::ZERO) && !timed_out {
            timed_out = true;
            let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
            continue;
        }
        if !grace_over && kill_at.is_some_and(|at| now >= at) {
            grace_over = true;
            let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
            continue;
        }
        let Some(signal_fd) = &signal_fd else {
            // No signalfd (never on Linux ≥ 2.6.27): plain waiting.
            match signals.wait() {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(signal) => forward(signal, &mut forwarded, &mut kill_at),
            }
            continue;
        };
        // The next thing to do, if nothing happens before: the deadline, or
        // the end of the grace period.
        let next = [
            left.filter(|_| !timed_out),
            kill_at
                .filter(|_| !grace_over)
                .map(|at| at.saturating_duration_since(now)),
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = match next {
            // Round up, so the moment is not polled for in a busy loop.
            Some(next) => {
                PollTimeout::try_from(next + Duration::from_micros(999)).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let _ = poll(&mut [PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)], wait);
        while let Ok(Some(info)) = signal_fd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(signal) => forward(signal, &mut forwarded, &mut kill_at),
            }
        }
    };
    if timed_out {
        let limit = timeout.unwrap_or_default();
        crate::say!("wsandbox: the guest ran past its time limit (--timeout {limit:?}) and was stopped");
    }
    let said = messages.drain();
    let loaded = said.iter().find_map(|m| match m {
        Message::Loaded(loaded) => Some(loaded.clone()),
        _ => None,
    });
    let (guest, fuel_consumed) = said
        .into_iter()
        .find_map(|m| match m {
            Message::Ended {
                outcome,
                message,
                fuel_consumed,
            } => Some(((outcome, message), fuel_consumed)),
            _ => None,
        })
        .unzip();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).ok();
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
    on_end(&Ending {
        exit_code,
        signal,
        setup_error,
        timed_out,
        applied,
        guest,
        fuel_consumed: fuel_consumed.flatten(),
        loaded,
        cpu_ms: usage.map_or(0.0, |u| ms(u.user_time()) + ms(u.system_time())),
        peak_memory_bytes: usage.map_or(0, |u| u.max_rss() as u64 * 1024),
    });
    let _ = std::io::stdout().flush();
    std::process::exit(exit_code)
}
