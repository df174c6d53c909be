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
        write!(f, "{}: {}", self.call, self.errno)
    }
}

impl std::error::Error for SysError {}

impl SysError {
    /// A failed file operation of std, as the call it made.
    pub fn io(call: String, e: &std::io::Error) -> SysError {
        SysError {
            call,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

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

/// Drops every capability from the bounding set (by number, up to the
/// kernel's last), clears the ambient set, then empties the effective,
/// permitted and inheritable sets in one `capset`: 44 calls in all.
/// See capabilities(7), prctl(2), capset(2).
pub fn drop_capabilities() -> Result<(), SysError> {
    // The bounding set first: dropping from it needs CAP_SETPCAP, which
    // goes with the effective set. Numbers past the kernel's last answer
    // EINVAL; 64 is the most the capability sets can hold.
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only; no memory is passed.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match Errno::result(ret) {
            Ok(_) => {}
            Err(Errno::EINVAL) if cap > 0 => break,
            Err(errno) => {
                return Err(SysError {
                    call: format!("prctl(PR_CAPBSET_DROP, {cap})"),
                    errno,
                });
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    Errno::result(ret).map_err(|errno| SysError {
        call: "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)".into(),
        errno,
    })?;
    // capset(2)'s structs; _LINUX_CAPABILITY_VERSION_3 takes two data
    // structs (64 capabilities a set).
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let empty = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads the header and two data structs, which live on
    // this stack for the length of the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &header, empty.as_ptr()) };
    Errno::result(ret).map(drop).map_err(|errno| SysError {
        call: "capset(all sets empty)".into(),
        errno,
    })
}

/// `clone(flags | SIGCHLD)` without a new stack: a fork whose child starts
/// in the namespaces `flags` name (as the first process of a new pid
/// namespace when `CLONE_NEWPID` is among them).
///
/// Refused (`EBUSY`) unless the process has a single thread: the child is a
/// copy of this thread alone, and would inherit locks the others held.
pub fn clone(flags: nix::sched::CloneFlags) -> Result<Fork, SysError> {
    let threads = threads();
    if threads != Some(1) {
        return Err(SysError {
            call: format!(
                "clone({}) in a process of {} threads (it must have one)",
                flag_names(flags),
                threads.map_or("unknown".into(), |n| n.to_string())
            ),
            errno: Errno::EBUSY,
        });
    }
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a null stack, clone behaves like fork: the child resumes
    // here on a copy of this stack. The process has a single thread (just
    // checked; only this thread could start another), so no lock is held
    // by a thread that does not exist in the child.
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(SysError {
            call: format!("clone({})", flag_names(flags)),
            errno: Errno::last(),
        }),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(nix::unistd::Pid::from_raw(pid as i32))),
    }
}

/// `CLONE_NEWUSER|CLONE_NEWPID`, as the man pages write flags.
fn flag_names(flags: nix::sched::CloneFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    names.join("|")
}

/// The number of threads of this process (`num_threads` of
/// `/proc/self/stat`), if procfs says.
pub fn threads() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command (which may hold spaces and parentheses)
    // start at field 3; num_threads is field 20.
    stat.rsplit_once(')')?.1.split_whitespace().nth(17)?.parse().ok()
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

/// The signals that ask a run to end (a supervisor forwards them to its
/// sandbox; a server drains on the first, stops on a second).
pub const TERMINATION_SIGNALS: [nix::sys::signal::Signal; 3] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGHUP,
];

/// Makes the [`TERMINATION_SIGNALS`] end this process with 128+S.
///
/// The first process of a pid namespace ignores signals whose action is
/// the default, so the parent's forwarded signals need a handler to act.
pub fn exit_on_termination_signals() -> Result<(), SysError> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(exit_on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in TERMINATION_SIGNALS {
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

/// `open_tree(2)` flag: make a detached copy of the mount tree.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `mount_setattr(2)` attributes.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `move_mount(2)` flag: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount tree at `dir` (an `O_PATH` descriptor of
/// `path`, which names it in errors), with every mount below it
/// (`open_tree(OPEN_TREE_CLONE|AT_RECURSIVE)`), made nosuid, nodev and,
/// with `read_only`, read-only, all the way down
/// (`mount_setattr(AT_RECURSIVE)`): a mount below a read-only grant is no
/// way to write. Needs `CAP_SYS_ADMIN` in the user namespace that owns
/// this process's mount namespace, where `dir` must be mounted.
pub fn clone_tree(dir: &OwnedFd, path: &std::path::Path, read_only: bool) -> Result<OwnedFd, SysError> {
    set_tree_attrs(open_tree(dir, path)?, path, read_only, None)
}

/// A detached, id-mapped copy of the mount tree at `dir` (see
/// [`clone_tree`]): ids on disk are seen through the mapping of user
/// namespace `userns`. Needs `CAP_SYS_ADMIN` over the filesystem, that is,
/// real root.
pub fn idmapped_tree(
    dir: &OwnedFd,
    path: &std::path::Path,
    userns: &OwnedFd,
    read_only: bool,
) -> Result<OwnedFd, SysError> {
    set_tree_attrs(open_tree(dir, path)?, path, read_only, Some(userns))
}

/// `open_tree(dir, "", OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH)`.
fn open_tree(dir: &OwnedFd, path: &std::path::Path) -> Result<OwnedFd, SysError> {
    use std::os::fd::FromRawFd;
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint;
    let empty = c"";
    // SAFETY: `empty` is a valid NUL-terminated string for the call, and
    // `dir` an open descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dir.as_raw_fd(), empty.as_ptr(), flags) };
    if fd < 0 {
        return Err(SysError {
            call: format!("open_tree({path:?}, OPEN_TREE_CLONE|AT_RECURSIVE)"),
            errno: Errno::last(),
        });
    }
    // SAFETY: open_tree returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sets nosuid, nodev, maybe read-only and maybe an id mapping on every
/// mount of the detached `tree`.
fn set_tree_attrs(
    tree: OwnedFd,
    path: &std::path::Path,
    read_only: bool,
    userns: Option<&OwnedFd>,
) -> Result<OwnedFd, SysError> {
    let mut attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if read_only {
        attr_set |= MOUNT_ATTR_RDONLY;
    }
    if userns.is_some() {
        attr_set |= MOUNT_ATTR_IDMAP;
    }
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    let empty = c"";
    // SAFETY: `attr` and `empty` live across the call; the size passed is
    // the size of `attr`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(SysError {
            call: format!("mount_setattr({path:?}, AT_RECURSIVE, {attr_set:#x})"),
            errno: Errno::last(),
        });
    }
    Ok(tree)
}

/// Attaches the detached mount `tree` at `target` (`move_mount(2)`).
pub fn attach(tree: &OwnedFd, target: &std::path::Path) -> Result<(), SysError> {
    let call = || format!("move_mount(detached, {target:?})");
    let ctarget = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| SysError {
        call: call(),
        errno: Errno::EINVAL,
    })?;
    let empty = c"";
    // SAFETY: both strings are valid and NUL-terminated for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            ctarget.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(SysError {
            call: call(),
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// The Landlock ABI version this kernel offers
/// (`landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`).
pub fn landlock_abi() -> Result<u32, SysError> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer and size 0, the call only
    // returns the ABI version; it reads and writes no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        return Err(SysError {
            call: "landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION)".into(),
            errno: Errno::last(),
        });
    }
    Ok(ret as u32)
}

/// Closes every file descriptor from 3 up, but those in `keep`
/// (`close_range(2)` over the gaps).
///
/// # Safety
///
/// The descriptors closed may be owned by values of this process (an
/// `OwnedFd`, a `File`): none of those may be used or dropped afterwards
/// (a drop would close the number again, by then perhaps another's). For
/// a copy of a process (after `clone`) that ends without returning into
/// the frames holding them.
pub unsafe fn close_fds_except(keep: &[i32]) -> Result<(), SysError> {
    let mut keep: Vec<u32> = keep.iter().map(|&fd| fd as u32).filter(|&fd| fd >= 3).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > first {
            let last = if fd == u32::MAX { u32::MAX } else { fd - 1 };
            // SAFETY: close_range only closes descriptors; what owned them
            // is never used again (the caller's promise).
            let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
            if ret < 0 {
                return Err(SysError {
                    call: format!("close_range({first}, {last})"),
                    errno: Errno::last(),
                });
            }
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// Ignores SIGXFSZ, so that a write past `RLIMIT_FSIZE` fails with `EFBIG`.
pub fn ignore_sigxfsz() -> Result<(), SysError> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no handler code.
    check(unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) }, || {
        "signal(SIGXFSZ, SIG_IGN)".into()
    })
    .map(drop)
}

/// How many processors the machine has online: the most CPU time a
/// process can burn per second of wall-clock time, whatever its affinity.
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf only reads a system value; it has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).unwrap_or(1).max(1)
}

/// The CPU time this process has burnt, user and system, all its threads
/// (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_time() -> Option<std::time::Duration> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid timespec for the call to fill.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    let secs = u64::try_from(time.tv_sec).ok()?;
    let nanos = u32::try_from(time.tv_nsec).ok()?;
    (read == 0).then(|| std::time::Duration::new(secs, nanos))
}

/// The resident memory of this process in bytes (`resident` of
/// `/proc/self/statm`, in pages), if procfs says.
pub fn resident_bytes() -> Option<u64> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open("/proc/self/statm")
        .ok()?
        .take(256)
        .read_to_string(&mut text)
        .ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system value; it has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).unwrap_or(4096)))
}

unsafe extern "C" {
    /// The C library's environment: a null-terminated array of `NAME=value`.
    static mut environ: *mut *mut libc::c_char;
}

/// Overwrites with zeroes every argument and environment string of this
/// process, and empties its environment: the strings the kernel put on
/// the stack at `execve` (what `/proc/PID/cmdline` and `environ` show),
/// and any `setenv` put on the heap. Afterwards `std::env::var` finds
/// nothing and `std::env::args` yields empty strings.
///
/// Call only while the process has a single thread, and read what it
/// needs from the environment before.
pub fn scrub_args_and_env() -> Result<(), SysError> {
    // SAFETY: single-threaded (the caller's promise), so nothing reads the
    // environment meanwhile. Each entry is a NUL-terminated string written
    // by the kernel on the stack or by setenv on the heap — writable —
    // and zeroing its bytes up to the NUL stays inside it. clearenv then
    // leaves an empty environment.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            std::ptr::write_bytes(*entry, 0, libc::strlen(*entry));
            entry = entry.add(1);
        }
        libc::clearenv();
    }
    // The kernel's copies: fields 48-51 of /proc/self/stat are the start
    // and end of the argument and of the environment area.
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| SysError::io("read(/proc/self/stat)".into(), &e))?;
    // After the name in parentheses, field 3 (the state) comes first:
    // field N is word N - 3.
    let words: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| words.get(n - 3).and_then(|w| w.parse::<usize>().ok());
    let (Some(args), Some(env)) = (field(48).zip(field(49)), field(50).zip(field(51))) else {
        return Err(SysError {
            call: "parse(/proc/self/stat)".into(),
            errno: Errno::EINVAL,
        });
    };
    for (start, end) in [args, env] {
        if start != 0 && start < end {
            // SAFETY: the kernel reports [start, end) as this process's
            // argument or environment area, a part of its stack mapping,
            // which is writable; nothing else lives there.
            unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
        }
    }
    Ok(())
}

/// Takes ownership of descriptor `fd`, which this process inherited across
/// `exec` (a plugin worker's channel, named on its command line), and marks
/// it close-on-exec. Refuses stdio, a descriptor that is not open, and one
/// that is close-on-exec: every descriptor Rust's standard library opens
/// is, so such a one may be owned by something in this process — as is a
/// descriptor this function took already.
pub fn inherited_fd(fd: i32) -> Result<OwnedFd, SysError> {
    use std::os::fd::FromRawFd;
    static TAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _taking = TAKING.lock().unwrap_or_else(|e| e.into_inner());
    let refused = |errno| SysError {
        call: format!("fcntl({fd}, F_GETFD): not an inherited descriptor"),
        errno,
    };
    if fd < 3 {
        return Err(refused(Errno::EBADF));
    }
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(refused(Errno::last()));
    }
    if flags & libc::FD_CLOEXEC != 0 {
        return Err(refused(Errno::EBADF));
    }
    // SAFETY: F_SETFD only sets the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(refused(Errno::last()));
    }
    // SAFETY: the descriptor is open and was not close-on-exec: nothing of
    // this process's Rust code opened it (the standard library opens every
    // descriptor close-on-exec) and no earlier call took it (it would be
    // close-on-exec now; the lock orders the calls).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Receives one message of a `SOCK_SEQPACKET` socket into `buf` (the rest
/// of a longer one is dropped), with the descriptors passed along with it
/// (`SCM_RIGHTS`, at most four), close-on-exec. Returns the message's
/// length — 0 when the other end is closed — and the descriptors, owned.
pub fn recv_with_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Vec<OwnedFd>), Errno> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel installed each of these descriptors in this
            // process for this message, and nothing else knows them: they
            // are this caller's to own (and close).
            fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Ok((msg.bytes, fds))
}
