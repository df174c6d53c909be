//! Every raw system call of the outer wall, and every `unsafe` block of
//! wsandbox. Each error names the call and its arguments, as in
//! `mount("/x", …): EPERM`.

use nix::errno::Errno;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

/// A failed system call: which call, with which arguments, and the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    /// The call and its arguments, e.g. `mount("/x", "/y", MS_BIND)`.
    pub call: String,
    /// What the kernel answered.
    pub errno: Errno,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.call, self.errno, self.errno.desc())
    }
}

impl std::error::Error for SysError {}

/// Attaches the call's description to a nix result.
pub fn check<T>(result: nix::Result<T>, call: impl FnOnce() -> String) -> Result<T, SysError> {
    result.map_err(|errno| SysError { call: call(), errno })
}

/// Which side of a fork this process is on.
pub enum Fork {
    /// The original process; the child has this pid.
    Parent(nix::unistd::Pid),
    /// The new process.
    Child,
}

/// `clone(flags | SIGCHLD)` without a new stack: a fork whose child starts
/// in the namespaces `flags` name (as the first process of a new pid
/// namespace when `CLONE_NEWPID` is among them).
///
/// Call only while the process has a single thread: the child is a copy of
/// this thread alone.
pub fn clone(flags: nix::sched::CloneFlags) -> Result<Fork, SysError> {
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a null stack, clone behaves like fork: the child resumes
    // here on a copy of this stack. The caller guarantees a single thread,
    // so no lock is held by a thread that does not exist in the child.
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(SysError {
            call: format!("clone({flags:?})"),
            errno: Errno::last(),
        }),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(nix::unistd::Pid::from_raw(pid as i32))),
    }
}

/// Ends this process at once, without running exit handlers: for a child
/// of [`clone`] whose setup failed, and for signal handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit only ends the process; it is async-signal-safe.
    unsafe { libc::_exit(code) }
}

extern "C" fn exit_on_signal(signal: libc::c_int) {
    exit_now(128 + signal)
}

/// Makes SIGINT, SIGTERM and SIGHUP end this process with 128+S.
///
/// The first process of a pid namespace ignores signals whose action is
/// the default, so the parent's forwarded signals need a handler to act.
pub fn exit_on_termination_signals() -> Result<(), SysError> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(exit_on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler calls only _exit, which is async-signal-safe.
        check(unsafe { sigaction(signal, &action) }, || {
            format!("sigaction({signal})")
        })?;
    }
    Ok(())
}

/// Sets the `IFF_UP` flag of network interface `name` (e.g. `lo`).
pub fn interface_up(name: &str) -> Result<(), SysError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let call = || format!("ioctl(SIOCSIFFLAGS, {name:?}, IFF_UP)");
    let sock = check(
        socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        ),
        || "socket(AF_INET, SOCK_DGRAM)".into(),
    )?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`,
    // which lives across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(SysError {
            call: format!("ioctl(SIOCGIFFLAGS, {name:?})"),
            errno: Errno::last(),
        });
    }
    // SAFETY: the kernel filled the flags member of the union above.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`, which lives across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(SysError {
            call: call(),
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// A pipe whose ends close on exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    check(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC), || {
        "pipe2(O_CLOEXEC)".into()
    })
}
