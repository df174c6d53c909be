//! The outer wall against native code: each attack runs in a fresh sandbox
//! built by the library's one pipeline (`wsandbox::launch`, a native job
//! in place of the guest) — exactly what `wsandbox run` builds before the
//! engine — as code an escape from wasmtime would run, and must fail. Attacks run as the caller and, when that is root, as nobody; and
//! once more in the sandbox `wsandbox serve` builds (the server's syscall
//! list, a listening socket handed in), and in a sandbox with a broker
//! (its policy allows one host address: native code asks the broker for
//! others, and re-aims the sockets it hands in).
//!
//! A plain `main` (harness = false): the process must stay single-threaded
//! to fork. It prints one line per attack and `N passed, M failed`.

use nix::sched::CloneFlags;
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wsandbox::launch::{CacheChoice, Job, Launch, NativeBody};
use wsandbox::policy::net::{Answer, Ask, Host, Kind, Outcome, Rule, Scheme};
use wsandbox::policy::{Access, DirGrant, Policy};
use wsandbox::sys::{self, Fork};
use wsandbox::wall::{Entered, Syscalls};

/// What the native body of the sandbox runs, set in the forked process
/// that launches it (a native body is a plain function: it takes what it
/// needs from here).
static ATTACK: OnceLock<(Target, Attack, Syscalls)> = OnceLock::new();
/// Likewise for [`spawn_sandbox`]'s bodies.
static BODY: OnceLock<Body> = OnceLock::new();

/// Launches `body` behind the outer wall through the library's pipeline,
/// keeping `keep`, and ends this (forked) process with the launch's exit
/// code: the sandbox's, or 125 and the error when the wall could not be
/// built.
fn launch(
    policy: Policy,
    keep: Vec<OwnedFd>,
    syscalls: Syscalls,
    body: NativeBody,
    report: Option<PathBuf>,
) -> ! {
    let launch = Launch {
        policy,
        module: PathBuf::new(),
        bytes: None,
        job: Job::Native { body, keep, syscalls },
        cache: CacheChoice::Off,
        report,
    };
    match launch.execute() {
        Ok(code) => sys::exit_now(code.into()),
        Err(err) => {
            eprintln!("cannot launch the sandbox: {err}");
            sys::exit_now(err.exit_code().into())
        }
    }
}

/// The native body of [`in_sandbox`]: the attack of [`ATTACK`], on its
/// target (a server's with the listener handed in); 0 when it was
/// stopped.
///
/// # Safety
///
/// As a [`NativeBody`]: it uses the kept descriptors and the numbers the
/// target names (the attacks try them).
unsafe fn attack_body(kept: Vec<OwnedFd>) -> u8 {
    let (target, attack, syscalls) = ATTACK.get().expect("an attack");
    let handed = kept.first().map(|fd| fd.as_raw_fd());
    let target = &match syscalls {
        Syscalls::GuestBrokered => Target {
            broker: handed.unwrap_or(-1),
            ..target.clone()
        },
        _ => Target {
            listener: handed.unwrap_or(target.listener),
            ..target.clone()
        },
    };
    match attack(target) {
        Ok(()) => 0,
        Err(what) => {
            eprintln!("    {what}");
            1
        }
    }
}

/// The native body of [`spawn_sandbox`]: [`BODY`], with the kept ready
/// pipe.
///
/// # Safety
///
/// As a [`NativeBody`]: it uses only the kept descriptor.
unsafe fn spawn_body(kept: Vec<OwnedFd>) -> u8 {
    let body = BODY.get().expect("a body");
    body(kept[0].as_raw_fd())
}

/// What an attack may use: the granted directories, a host listener, and
/// (in a server's sandbox) that listener's descriptor, handed in.
#[derive(Clone)]
struct Target {
    ro: PathBuf,
    rw: PathBuf,
    /// A read-only grant inside `rw` (grant number 2).
    nested: PathBuf,
    /// A mount inside `ro` (a tmpfs the test mounted, writable by all),
    /// when the test could make one (as root).
    submount: Option<PathBuf>,
    /// A host directory no grant holds, with a file `secret`: the
    /// sandbox's stdin (the directory) and stdout (its file `out`, opened
    /// append-only).
    outside: PathBuf,
    port: u16,
    listener: std::os::fd::RawFd,
    /// In a sandbox with a broker (its policy allows `127.0.0.1:port`):
    /// the broker's channel.
    broker: std::os::fd::RawFd,
}

/// An attack returns `Ok` when it was stopped, `Err(what happened)` when it
/// got through.
type Attack = fn(&Target) -> Result<(), String>;

/// `Ok` when the raw system call `nr` fails with exactly `errno`: the
/// answer of the seccomp filter, given before the kernel looks at any
/// argument (all of them null or zero here).
fn denied(nr: libc::c_long, args: [u64; 6], errno: i32) -> Result<(), String> {
    // SAFETY: the arguments are integers and null pointers; a call that is
    // not refused fails on them (EFAULT, EINVAL, EBADF) without touching
    // this process's memory.
    let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    let got = nix::errno::Errno::last_raw();
    match ret {
        -1 if got == errno => Ok(()),
        -1 => Err(format!("syscall {nr} failed with errno {got}, not {errno}")),
        ok => Err(format!("syscall {nr} succeeded: {ok}")),
    }
}

/// `Ok` when setting socket option `option` of `level` on the handed
/// listener is refused by the filter.
fn sockopt(t: &Target, level: i32, option: i32) -> Result<(), String> {
    let args = [t.listener as u64, level as u64, option as u64, 0, 0, 0];
    denied(libc::SYS_setsockopt, args, libc::EPERM)
}

/// `Ok` when `openat(dirfd, path, flags)` fails.
fn open_refused(dirfd: i32, path: &std::ffi::CStr, flags: i32) -> Result<(), String> {
    // SAFETY: `path` is a valid NUL-terminated string; a descriptor the
    // call returns is closed at once.
    let fd = unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Ok(());
    }
    // SAFETY: `fd` was just opened and is not used again.
    unsafe { libc::close(fd) };
    Err(format!("openat({dirfd}, {path:?}, {flags:#o}) succeeded"))
}

/// `Ok` when `result` is an error.
fn refused<T: std::fmt::Debug, E>(what: &str, result: Result<T, E>) -> Result<(), String> {
    match result {
        Ok(value) => Err(format!("{what} succeeded: {value:?}")),
        Err(_) => Ok(()),
    }
}

const ATTACKS: &[(&str, Attack)] = &[
    ("open /etc/passwd", |_| {
        refused("open", std::fs::read("/etc/passwd"))
    }),
    ("list the root outside the grants", |_| {
        refused("read_dir(/)", std::fs::read_dir("/"))
    }),
    ("read procfs outside the grants", |_| {
        refused("read", std::fs::read("/proc/1/environ"))
    }),
    ("read its own procfs files (but a server's statm)", |_| {
        for file in [
            "environ",
            "cmdline",
            "maps",
            "mem",
            "status",
            "stat",
            "mountinfo",
            "fd/0",
        ] {
            refused(file, std::fs::read(format!("/proc/self/{file}")))?;
        }
        Ok(())
    }),
    ("write a sysctl or a procfs knob", |_| {
        let write = |path: &str| std::fs::OpenOptions::new().write(true).open(path);
        refused(
            "open /proc/sys/kernel/hostname",
            write("/proc/sys/kernel/hostname"),
        )?;
        refused("open /proc/sysrq-trigger", write("/proc/sysrq-trigger"))?;
        refused("open /proc/self/oom_score_adj", write("/proc/self/oom_score_adj"))
    }),
    ("write into the read-only grant", |t| {
        refused("create", std::fs::write(t.ro.join("new"), "x"))?;
        refused("overwrite", std::fs::write(t.ro.join("file"), "x"))?;
        refused("remove", std::fs::remove_file(t.ro.join("file")))
    }),
    ("write into a read-only grant inside the read-write one", |t| {
        refused("create", std::fs::write(t.nested.join("new"), "x"))?;
        refused("overwrite", std::fs::write(t.nested.join("file"), "x"))?;
        refused("mkdir", std::fs::create_dir(t.nested.join("dir")))?;
        // Where it is mounted apart (grant number 2).
        refused("create apart", std::fs::write("/.grants/2/new", "x"))?;
        refused("overwrite apart", std::fs::write("/.grants/2/file", "x"))
    }),
    ("write into a mount inside the read-only grant", |t| {
        match &t.submount {
            Some(sub) => {
                refused("create", std::fs::write(sub.join("new"), "x"))?;
                refused("overwrite", std::fs::write(sub.join("file"), "x"))
            }
            None => Ok(()),
        }
    }),
    (
        "change the host inode's times of a device (utimensat /dev/null)",
        |_| {
            // SAFETY: a valid path and a null `times` (meaning: now).
            let ret = unsafe { libc::utimensat(libc::AT_FDCWD, c"/dev/null".as_ptr(), std::ptr::null(), 0) };
            if ret == 0 {
                return Err("utimensat(/dev/null, now) succeeded".into());
            }
            Ok(())
        },
    ),
    (
        "walk from stdin, a host directory, to its files and parent",
        |_| {
            open_refused(0, c"secret", libc::O_RDONLY)?;
            open_refused(0, c"..", libc::O_RDONLY | libc::O_DIRECTORY)?;
            open_refused(0, c"new", libc::O_WRONLY | libc::O_CREAT)
        },
    ),
    ("reopen stdin and stdout through /proc/self/fd", |_| {
        open_refused(libc::AT_FDCWD, c"/proc/self/fd/0/secret", libc::O_RDONLY)?;
        open_refused(libc::AT_FDCWD, c"/proc/self/fd/0/..", libc::O_RDONLY)?;
        // stdout is the host's file, append-only: not to be read, nor
        // truncated.
        open_refused(libc::AT_FDCWD, c"/proc/self/fd/1", libc::O_RDONLY)?;
        open_refused(libc::AT_FDCWD, c"/proc/self/fd/1", libc::O_WRONLY | libc::O_TRUNC)
    }),
    ("write outside through the read-write grant", |t| {
        refused("write ..", std::fs::write(t.rw.join("../escaped"), "x"))
    }),
    ("mount a tmpfs", |_| {
        refused(
            "mount",
            nix::mount::mount(
                Some("tmpfs"),
                "/",
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            ),
        )
    }),
    ("unshare a user namespace", |_| {
        refused(
            "unshare(CLONE_NEWUSER)",
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER),
        )
    }),
    ("unshare a mount namespace", |_| {
        refused(
            "unshare(CLONE_NEWNS)",
            nix::sched::unshare(CloneFlags::CLONE_NEWNS),
        )
    }),
    ("chroot", |_| refused("chroot", nix::unistd::chroot("/dev"))),
    ("pivot_root", |_| {
        refused("pivot_root", nix::unistd::pivot_root("/", "/"))
    }),
    ("sethostname", |_| {
        refused("sethostname", nix::unistd::sethostname("escaped"))
    }),
    ("connect to a host TCP listener", |t| {
        refused("connect", std::net::TcpStream::connect(("127.0.0.1", t.port)))
    }),
    ("io_uring_setup", |_| {
        denied(libc::SYS_io_uring_setup, [1, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("io_uring_enter", |_| {
        denied(libc::SYS_io_uring_enter, [0, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("userfaultfd", |_| {
        denied(libc::SYS_userfaultfd, [0; 6], libc::EPERM)
    }),
    ("bpf", |_| denied(libc::SYS_bpf, [0; 6], libc::EPERM)),
    ("perf_event_open", |_| {
        denied(
            libc::SYS_perf_event_open,
            [0, 0, u64::MAX, u64::MAX, 0, 0],
            libc::EPERM,
        )
    }),
    ("ptrace", |_| {
        denied(
            libc::SYS_ptrace,
            [libc::PTRACE_TRACEME as u64, 0, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("process_vm_readv", |_| {
        denied(libc::SYS_process_vm_readv, [1, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("keyctl", |_| denied(libc::SYS_keyctl, [0; 6], libc::EPERM)),
    ("add_key", |_| denied(libc::SYS_add_key, [0; 6], libc::EPERM)),
    ("request_key", |_| {
        denied(libc::SYS_request_key, [0; 6], libc::EPERM)
    }),
    ("setns", |_| {
        denied(libc::SYS_setns, [0, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("umount2", |_| {
        denied(libc::SYS_umount2, [0, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("kexec_load", |_| {
        denied(libc::SYS_kexec_load, [0; 6], libc::EPERM)
    }),
    ("init_module", |_| {
        denied(libc::SYS_init_module, [0; 6], libc::EPERM)
    }),
    ("finit_module", |_| {
        denied(libc::SYS_finit_module, [0; 6], libc::EPERM)
    }),
    ("personality", |_| {
        denied(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("a TCP socket", |_| {
        denied(
            libc::SYS_socket,
            [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("a unix socket", |_| {
        denied(
            libc::SYS_socket,
            [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("clone into a new user namespace", |_| {
        let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
        denied(libc::SYS_clone, [flags, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("clone3 (flags unreadable by a filter)", |_| {
        denied(libc::SYS_clone3, [0; 6], libc::ENOSYS)
    }),
    ("push input into a terminal (TIOCSTI)", |_| {
        denied(libc::SYS_ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0], libc::EPERM)
    }),
    ("undo the parent-death signal (prctl PR_SET_PDEATHSIG 0)", |_| {
        denied(
            libc::SYS_prctl,
            [libc::PR_SET_PDEATHSIG as u64, 0, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("become dumpable again (prctl PR_SET_DUMPABLE 1)", |_| {
        denied(
            libc::SYS_prctl,
            [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("fork a process (clone without CLONE_THREAD)", |_| {
        denied(
            libc::SYS_clone,
            [libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("memory no limit counts (memfd_create)", |_| {
        denied(libc::SYS_memfd_create, [0; 6], libc::ENOSYS)
    }),
    ("list the host's interfaces (SIOCGIFCONF)", |t| {
        denied(
            libc::SYS_ioctl,
            [t.listener as u64, libc::SIOCGIFCONF, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("change the terminal's line discipline (TIOCSETD)", |_| {
        denied(libc::SYS_ioctl, [0, libc::TIOCSETD, 0, 0, 0, 0], libc::EPERM)
    }),
    ("change the terminal's settings (TCSETS)", |_| {
        denied(libc::SYS_ioctl, [0, libc::TCSETS, 0, 0, 0, 0], libc::EPERM)
    }),
    ("make the caller's stderr non-blocking (F_SETFL)", |_| {
        let flags = libc::O_NONBLOCK as u64;
        denied(
            libc::SYS_fcntl,
            [2, libc::F_SETFL as u64, flags, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("make the caller's stdout non-blocking (FIONBIO)", |_| {
        denied(libc::SYS_ioctl, [1, libc::FIONBIO, 0, 0, 0, 0], libc::EPERM)
    }),
    ("grow a pipe's buffer (F_SETPIPE_SZ)", |_| {
        denied(
            libc::SYS_fcntl,
            [0, libc::F_SETPIPE_SZ as u64, 1 << 20, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("send with an address (sendto)", |t| {
        denied(libc::SYS_sendto, [t.listener as u64, 0, 0, 0, 8, 16], libc::EPERM)
    }),
    ("connect by sending (MSG_FASTOPEN)", |t| {
        denied(
            libc::SYS_sendto,
            [t.listener as u64, 0, 0, 0x2000_0000, 0, 0],
            libc::EPERM,
        )
    }),
    ("sendmsg", |t| {
        denied(libc::SYS_sendmsg, [t.listener as u64, 0, 0, 0, 0, 0], libc::EPERM)
    }),
    ("attach a socket filter (SO_ATTACH_FILTER)", |t| {
        sockopt(t, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER)
    }),
    ("a kernel TLS module (TCP_ULP)", |t| {
        sockopt(t, libc::IPPROTO_TCP, libc::TCP_ULP)
    }),
    ("connect on the first write (TCP_FASTOPEN_CONNECT)", |t| {
        sockopt(t, libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT)
    }),
    ("raise a resource limit", |_| {
        use nix::sys::resource::{Resource, setrlimit};
        refused(
            "setrlimit(CORE)",
            setrlimit(Resource::RLIMIT_CORE, 1 << 20, 1 << 20),
        )
    }),
    ("start more tasks than RLIMIT_NPROC allows (1024)", |_| {
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let stop_rx = std::sync::Arc::new(std::sync::Mutex::new(stop_rx));
        let mut started = 0;
        let result = loop {
            if started > 1100 {
                break Err(format!("{started} threads started"));
            }
            let rx = stop_rx.clone();
            let spawned = std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || drop(rx.lock().map(|rx| rx.recv())));
            match spawned {
                Ok(_) => started += 1,
                Err(_) if started >= 16 => break Ok(()),
                Err(e) => break Err(format!("only {started} threads: {e}")),
            }
        };
        drop(stop_tx);
        result
    }),
];

/// Refused to a guest's runner, allowed to a server (see SERVER_ALLOWED).
const GUEST_ONLY: &[(&str, Attack)] = &[
    ("accept a connection (the guest's list)", |_| {
        denied(libc::SYS_accept4, [0; 6], libc::EPERM)
    }),
    ("receive from a socket (the guest's list)", |_| {
        denied(libc::SYS_recvfrom, [0; 6], libc::EPERM)
    }),
    ("read its memory's use, /proc/self/statm (a server's)", |_| {
        refused("read", std::fs::read("/proc/self/statm"))
    }),
];

/// Controls of a server's sandbox: it may wait for connections on the
/// socket it was handed (non-blocking: none is pending, so `EAGAIN`), and
/// read its own memory's use (its one file of procfs).
const SERVER_ALLOWED: &[(&str, Attack)] = &[
    (
        "accept on the handed listening socket",
        |t| match nix::sys::socket::accept(t.listener) {
            Err(nix::errno::Errno::EAGAIN) => Ok(()),
            other => Err(format!("accept: {other:?}, not EAGAIN")),
        },
    ),
    ("read its memory's use, /proc/self/statm (for /metrics)", |_| {
        let text = std::fs::read_to_string("/proc/self/statm").map_err(|e| format!("read: {e}"))?;
        match text.split_whitespace().count() {
            7 => Ok(()),
            _ => Err(format!("not statm: {text:?}")),
        }
    }),
];

/// Asks the broker (the raw protocol, as native code inside would) for
/// `host`:`port`; its answer and the socket that came with it.
fn ask_broker(t: &Target, host: Host, port: u16) -> Result<(Outcome, Option<OwnedFd>), String> {
    use std::os::fd::BorrowedFd;
    // SAFETY: the broker's channel stays open for the attack's whole life.
    let channel = unsafe { BorrowedFd::borrow_raw(t.broker) };
    let ask = Ask {
        id: 7,
        kind: Kind::Http(Scheme::Http),
        host,
        port,
        timeout_ms: 2000,
    };
    nix::unistd::write(channel, &serde_json::to_vec(&ask).unwrap()).map_err(|e| format!("write: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let (n, mut fds) = sys::recv_with_fds(channel, &mut buf).map_err(|e| format!("recvmsg: {e}"))?;
    let answer: Answer = serde_json::from_slice(&buf[..n]).map_err(|e| format!("the answer: {e}"))?;
    if answer.id != 7 {
        return Err(format!("an answer to question {}", answer.id));
    }
    Ok((answer.outcome, fds.pop()))
}

/// A connection to the host listener, made by the broker.
fn brokered_socket(t: &Target) -> Result<OwnedFd, String> {
    match ask_broker(t, Host::Ip([127, 0, 0, 1].into()), t.port)? {
        (Outcome::Connected { .. }, Some(socket)) => Ok(socket),
        other => Err(format!("the allowed connection was not made: {other:?}")),
    }
}

/// `Ok` when the raw `nr` on a brokered socket (argument 0) fails with EPERM.
fn on_brokered(t: &Target, nr: libc::c_long, args: [u64; 5]) -> Result<(), String> {
    let socket = brokered_socket(t)?;
    let [a, b, c, d, e] = args;
    denied(nr, [socket.as_raw_fd() as u64, a, b, c, d, e], libc::EPERM)
}

/// A `sockaddr_in` for 127.0.0.1:`port`, in this process's memory, for
/// the calls that take an address (the filter refuses them before the
/// kernel reads it).
fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    }
}

/// A sandbox with a broker (`allow_http` names the host listener only):
/// native code asks it for what no rule names, and re-aims the sockets it
/// hands in.
const BROKERED_ATTACKS: &[(&str, Attack)] = &[
    (
        "ask the broker for an address no rule names",
        |t| match ask_broker(t, Host::Ip([127, 0, 0, 1].into()), t.port.wrapping_add(1))? {
            (Outcome::Refused { .. }, None) => Ok(()),
            other => Err(format!("answered {other:?}")),
        },
    ),
    ("ask the broker for a name no rule names", |t| {
        match ask_broker(t, Host::Name("evil.example".into()), 80)? {
            (Outcome::Refused { .. }, None) => Ok(()),
            other => Err(format!("answered {other:?}")),
        }
    }),
    (
        "ask the broker for the cloud metadata address",
        |t| match ask_broker(t, Host::Ip([169, 254, 169, 254].into()), 80)? {
            (Outcome::Refused { .. }, None) => Ok(()),
            other => Err(format!("answered {other:?}")),
        },
    ),
    ("confuse the broker with malformed questions", |t| {
        use std::os::fd::BorrowedFd;
        // SAFETY: the broker's channel stays open for the attack's life.
        let channel = unsafe { BorrowedFd::borrow_raw(t.broker) };
        for junk in [
            &b"{"[..],
            &b"\xff\xfe"[..],
            &[b'x'; 8192][..],
            br#"{"id":1,"kind":"tcp","host":{"ip":"127.0.0.1"},"port":1}"#,
        ] {
            nix::unistd::write(channel, junk).map_err(|e| format!("write: {e}"))?;
        }
        // Still answering, and by the rules.
        match ask_broker(t, Host::Name("evil.example".into()), 80)? {
            (Outcome::Refused { .. }, None) => Ok(()),
            other => Err(format!("answered {other:?}")),
        }
    }),
    ("open a socket of its own beside the broker", |_| {
        denied(
            libc::SYS_socket,
            [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
            libc::EPERM,
        )
    }),
    ("re-aim a brokered socket (connect again)", |t| {
        let to = loopback(t.port.wrapping_add(1));
        let size = std::mem::size_of::<libc::sockaddr_in>() as u64;
        on_brokered(t, libc::SYS_connect, [&to as *const _ as u64, size, 0, 0, 0])
    }),
    ("disconnect a brokered socket (connect AF_UNSPEC)", |t| {
        let unspec = libc::sockaddr {
            sa_family: libc::AF_UNSPEC as libc::sa_family_t,
            sa_data: [0; 14],
        };
        let size = std::mem::size_of::<libc::sockaddr>() as u64;
        on_brokered(t, libc::SYS_connect, [&unspec as *const _ as u64, size, 0, 0, 0])
    }),
    ("send to another address on a brokered socket (sendto)", |t| {
        let to = loopback(t.port.wrapping_add(1));
        let size = std::mem::size_of::<libc::sockaddr_in>() as u64;
        on_brokered(
            t,
            libc::SYS_sendto,
            [b"x".as_ptr() as u64, 1, 0, &to as *const _ as u64, size],
        )
    }),
    (
        "sendmsg on a brokered socket (its address unreadable by the filter)",
        |t| on_brokered(t, libc::SYS_sendmsg, [0, 0, 0, 0, 0]),
    ),
    ("bind a brokered socket", |t| {
        let to = loopback(0);
        let size = std::mem::size_of::<libc::sockaddr_in>() as u64;
        on_brokered(t, libc::SYS_bind, [&to as *const _ as u64, size, 0, 0, 0])
    }),
    ("bind a brokered socket to a device (SO_BINDTODEVICE)", |t| {
        on_brokered(
            t,
            libc::SYS_setsockopt,
            [libc::SOL_SOCKET as u64, libc::SO_BINDTODEVICE as u64, 0, 0, 0],
        )
    }),
    ("listen on a brokered socket", |t| {
        on_brokered(t, libc::SYS_listen, [1, 0, 0, 0, 0])
    }),
];

/// Controls of a sandbox with a broker: the allowed connection is made,
/// and may be talked on.
const BROKERED_ALLOWED: &[(&str, Attack)] =
    &[("talk on the brokered connection to the allowed address", |t| {
        use std::io::Write as _;
        let mut stream = std::net::TcpStream::from(brokered_socket(t)?);
        let peer = stream.peer_addr().map_err(|e| format!("getpeername: {e}"))?;
        if peer.port() != t.port {
            return Err(format!("connected to {peer}"));
        }
        stream.write_all(b"hello").map_err(|e| format!("send: {e}"))
    })];

/// Controls: what the sandbox must still allow, so the refusals above are
/// not an artefact of a broken sandbox.
const ALLOWED: &[(&str, Attack)] = &[
    ("read the read-only grant", |t| {
        std::fs::read_to_string(t.ro.join("file"))
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("write the read-write grant", |t| {
        let name = format!("written-by-{}", nix::unistd::getuid());
        std::fs::write(t.rw.join(name), "ok").map_err(|e| e.to_string())
    }),
    ("name a thread (prctl PR_SET_NAME)", |_| {
        nix::sys::prctl::set_name(c"worker").map_err(|e| e.to_string())
    }),
    ("start a thread", |_| {
        std::thread::spawn(|| 7)
            .join()
            .map_err(|_| "join".to_string())
            .and_then(|v| {
                if v == 7 {
                    Ok(())
                } else {
                    Err(format!("thread returned {v}"))
                }
            })
    }),
    ("read stderr's status flags (F_GETFL)", |_| {
        nix::fcntl::fcntl(std::io::stderr(), nix::fcntl::FcntlArg::F_GETFL)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("write /dev/null", |_| {
        std::fs::write("/dev/null", "x").map_err(|e| e.to_string())
    }),
    ("read /dev/zero and /dev/urandom", |_| {
        use std::io::Read;
        for dev in ["/dev/zero", "/dev/urandom"] {
            let mut buf = [1u8; 16];
            std::fs::File::open(dev)
                .and_then(|mut f| f.read_exact(&mut buf))
                .map_err(|e| format!("{dev}: {e}"))?;
        }
        Ok(())
    }),
    (
        "read the read-only grant inside the read-write one, where it is mounted",
        |_| match std::fs::read_to_string("/.grants/2/file") {
            Ok(text) if text == "read me too" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    ),
];

/// The sandbox's code for [`lifetime`] checks: it gets the write end of
/// a pipe, writes one byte once it runs, and never returns.
type Body = fn(std::os::fd::RawFd) -> !;

/// How [`spawn_sandbox`] starts a sandbox, besides its body.
#[derive(Default)]
struct Run {
    timeout: Option<std::time::Duration>,
    /// The supervisor's and the sandbox's stderr, if not the test's.
    stderr: Option<std::os::fd::OwnedFd>,
    /// Where the launch writes its report, if anywhere.
    report: Option<PathBuf>,
    /// Not through the pipeline but the wall itself, whose supervisor then
    /// panics at the end: what the pipeline's supervisor would do should
    /// its own code panic.
    supervisor_panics: bool,
}

/// Dropped only if a process of the sandbox unwinds into the stack of the
/// code that called `enter`: it leaves a file `unwound` in the rw grant.
struct Unwound(PathBuf);

impl Drop for Unwound {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("unwound"), "");
    }
}

/// Starts a sandbox (as [`in_sandbox`] does, as `uid`, as `run` says)
/// running `body`; returns the supervisor's pid once the body runs.
fn spawn_sandbox(target: &Target, uid: Option<u32>, run: Run, body: Body) -> nix::unistd::Pid {
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
    let _ = std::io::stdout().flush();
    match sys::clone(CloneFlags::empty()).expect("fork") {
        Fork::Parent(pid) => {
            drop(ready_w);
            let mut byte = [0u8];
            let mut ready = std::fs::File::from(ready_r);
            std::io::Read::read_exact(&mut ready, &mut byte).expect("the sandbox did not start");
            pid
        }
        Fork::Child => {
            drop(ready_r);
            let _unwound = Unwound(target.rw.clone());
            if let Some(stderr) = run.stderr {
                nix::unistd::dup2_stderr(stderr).unwrap();
            }
            switch_to(uid);
            let mut policy = Policy {
                dirs: vec![grant(&target.rw, Access::ReadWrite)],
                timeout: run.timeout,
                ..Policy::default()
            };
            if run.supervisor_panics {
                policy.resolve().unwrap();
                let kept = enter(&mut policy, vec![ready_w], Syscalls::Guest, |_, _| {
                    panic!("the supervisor panics")
                });
                body(kept[0].as_raw_fd())
            }
            let _ = BODY.set(body);
            launch(policy, vec![ready_w], Syscalls::Guest, spawn_body, run.report)
        }
    }
}

/// Builds the outer wall for `policy`, keeping `keep`, as a launch does:
/// returns the kept descriptors in the sandbox. The supervisor waits as a
/// launch's does (`wsandbox::launch::supervise`), calls `on_end` with how
/// the run ended and its exit code, and exits with that code.
fn enter(
    policy: &mut Policy,
    keep: Vec<OwnedFd>,
    syscalls: Syscalls,
    on_end: impl FnOnce(&wsandbox::wall::Ending, u8),
) -> Vec<OwnedFd> {
    // SAFETY: in the sandbox, the attack's body uses only the descriptors
    // kept (and stdio), and ends the process: nothing that owned another
    // descriptor runs there again.
    let entered = unsafe { wsandbox::wall::enter(policy, keep, syscalls, wsandbox::wall::STOP_GRACE) };
    match entered {
        Err(err) => {
            eprintln!("cannot enter the sandbox: {err}");
            sys::exit_now(125)
        }
        Ok(Entered::Supervisor(supervisor)) => {
            let (ending, code) = wsandbox::launch::supervise(supervisor, policy.timeout);
            on_end(&ending, code);
            let _ = std::io::stdout().flush();
            sys::exit_now(code.into())
        }
        Ok(Entered::Sandbox(mut sandbox)) => sandbox.take_kept(),
    }
}

fn say_ready(fd: std::os::fd::RawFd) {
    // SAFETY: `fd` is the pipe's write end, open in this process.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::unistd::write(fd, b"r").unwrap();
}

/// The sandboxed process of supervisor `pid`: its child in another pid
/// namespace.
fn sandbox_of(pid: nix::unistd::Pid) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    children
        .split_whitespace()
        .find(|c| ns(c) != ns(&pid.to_string()))
        .expect("a sandboxed child")
        .parse()
        .unwrap()
}

/// Waits up to `limit` for `pid` to end; its status and how long it took.
fn wait_for(
    pid: nix::unistd::Pid,
    limit: std::time::Duration,
) -> (Option<nix::sys::wait::WaitStatus>, std::time::Duration) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(20)),
            status => return (status.ok(), started.elapsed()),
        }
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(pid, None);
    (None, started.elapsed())
}

/// `/proc/PID/status`'s `Uid:` line, as numbers.
fn uids(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line[4..].split_whitespace().map(|v| v.parse().unwrap()).collect()
}

/// Checks of how a sandbox's life ends and who can look at it, made from
/// outside on a running sandbox. `Ok` when the control held.
fn lifetime(target: &Target, uid: Option<u32>) -> Vec<(&'static str, Result<(), String>)> {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::WaitStatus;
    use std::time::Duration;
    let mut results = Vec::new();
    // Native code that ignores every signal it is forwarded.
    let deaf: Body = |fd| {
        use nix::sys::signal::{SigHandler, signal};
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: SIG_IGN installs no handler code.
            unsafe { signal(sig, SigHandler::SigIgn) }.unwrap();
        }
        say_ready(fd);
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    };
    let supervisor = spawn_sandbox(target, uid, Run::default(), deaf);
    kill(supervisor, Signal::SIGTERM).unwrap();
    let grace = wsandbox::wall::STOP_GRACE;
    let (status, took) = wait_for(supervisor, grace + Duration::from_secs(5));
    results.push((
        "ignore a forwarded SIGTERM: killed after the grace period, exit 143",
        match status {
            Some(WaitStatus::Exited(_, 143)) if took >= grace - Duration::from_millis(100) => Ok(()),
            other => Err(format!("{other:?} after {took:?}")),
        },
    ));
    // Native code that spins while its supervisor is stopped.
    let spin: Body = |fd| {
        say_ready(fd);
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    };
    let run = Run {
        timeout: Some(Duration::from_secs(1)),
        ..Run::default()
    };
    let supervisor = spawn_sandbox(target, uid, run, spin);
    kill(supervisor, Signal::SIGSTOP).unwrap();
    let sandbox = sandbox_of(supervisor);
    let state = |pid: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next().map(String::from))
    };
    // The kernel counts CPU time (CPUs × 1 s + 1 s): on a loaded machine
    // that takes longer than it says, hence the wide wall-clock bound.
    let limit = Duration::from_secs(60);
    let started = std::time::Instant::now();
    while state(sandbox).as_deref() != Some("Z") && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    let dead = state(sandbox);
    kill(supervisor, Signal::SIGCONT).unwrap();
    let (status, _) = wait_for(supervisor, Duration::from_secs(5));
    results.push((
        "stop the supervisor past --timeout: the kernel still kills a spinning sandbox, exit 124",
        match (dead.as_deref(), status) {
            (Some("Z"), Some(WaitStatus::Exited(_, 124))) => Ok(()),
            other => Err(format!(
                "state, status: {other:?} (after {:?})",
                started.elapsed()
            )),
        },
    ));
    // Native code that makes the stderr it shares with its supervisor
    // non-blocking (through a copy: fd 2 itself is refused) and fills the
    // pipe behind it: the supervisor's line at the timeout cannot be
    // written, which must cost neither its exit code nor the run's end.
    let (jammed_r, jammed_w) = nix::unistd::pipe().unwrap();
    let jam: Body = |fd| {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let copy = nix::unistd::dup(std::io::stderr()).unwrap();
        fcntl(&copy, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        while nix::unistd::write(&copy, &[b'x'; 4096]).is_ok() {}
        say_ready(fd);
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    };
    let report = target.rw.join("report.json");
    let run = Run {
        timeout: Some(Duration::from_secs(1)),
        stderr: Some(jammed_w),
        report: Some(report.clone()),
        ..Run::default()
    };
    let supervisor = spawn_sandbox(target, uid, run, jam);
    let patience = wsandbox::say::PATIENCE;
    let (status, took) = wait_for(supervisor, patience + Duration::from_secs(10));
    drop(jammed_r);
    let reported = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    results.push((
        "fill the supervisor's stderr, made non-blocking: it still ends the run, exit 124",
        match (status, &reported) {
            (Some(WaitStatus::Exited(_, 124)), report)
                if report.contains("\"outcome\":\"timeout\"") && report.contains("\"exit_code\":124") =>
            {
                Ok(())
            }
            other => Err(format!("status, report: {other:?} after {took:?}")),
        },
    ));
    // A panic in the sandbox, and one in the supervisor (in its callback):
    // either process ends with 125 at once, never unwinding into the stack
    // of the code that called `enter` (whose destructors are not theirs).
    let panics: Body = |fd| {
        say_ready(fd);
        panic!("native code panics");
    };
    let unwound = target.rw.join("unwound");
    let supervisor = spawn_sandbox(target, uid, Run::default(), panics);
    let (status, _) = wait_for(supervisor, Duration::from_secs(10));
    results.push((
        "panic in the sandbox: exit 125, nothing of the caller's unwound",
        match (status, unwound.exists()) {
            (Some(WaitStatus::Exited(_, 125)), false) => Ok(()),
            other => Err(format!("status, unwound: {other:?}")),
        },
    ));
    let _ = std::fs::remove_file(&unwound);
    let run = Run {
        supervisor_panics: true,
        ..Run::default()
    };
    let quits: Body = |fd| {
        say_ready(fd);
        sys::exit_now(0)
    };
    let supervisor = spawn_sandbox(target, uid, run, quits);
    let (status, _) = wait_for(supervisor, Duration::from_secs(10));
    results.push((
        "panic in the supervisor: exit 125, nothing of the caller's unwound",
        match (status, unwound.exists()) {
            (Some(WaitStatus::Exited(_, 125)), false) => Ok(()),
            other => Err(format!("status, unwound: {other:?}")),
        },
    ));
    let _ = std::fs::remove_file(&unwound);
    // Root's run: no process of the sandbox's host id can read or trace
    // the supervisor or the sandbox, and no uid of either is 0.
    if uid.is_none() && nix::unistd::geteuid().is_root() {
        let sleep: Body = |fd| {
            say_ready(fd);
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        };
        let supervisor = spawn_sandbox(target, None, Run::default(), sleep);
        let sandbox = sandbox_of(supervisor);
        let nobody = wsandbox::wall::ROOT_SANDBOX_ID;
        let check = || -> Result<(), String> {
            for pid in [supervisor.as_raw(), sandbox] {
                if uids(pid) != [nobody; 4] {
                    return Err(format!("pid {pid} has uids {:?}", uids(pid)));
                }
            }
            let _ = std::io::stdout().flush();
            match sys::clone(CloneFlags::empty()).expect("fork") {
                Fork::Child => {
                    switch_to(Some(nobody));
                    for pid in [supervisor.as_raw(), sandbox] {
                        for file in ["environ", "mem", "maps"] {
                            if std::fs::read(format!("/proc/{pid}/{file}")).is_ok_and(|b| !b.is_empty()) {
                                eprintln!("    nobody read /proc/{pid}/{file}");
                                sys::exit_now(1);
                            }
                        }
                        // SAFETY: PTRACE_ATTACH takes no pointer.
                        if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) } == 0 {
                            eprintln!("    nobody attached to {pid}");
                            sys::exit_now(1);
                        }
                    }
                    sys::exit_now(0)
                }
                Fork::Parent(helper) => match wait_for(helper, Duration::from_secs(10)).0 {
                    Some(WaitStatus::Exited(_, 0)) => Ok(()),
                    other => Err(format!("nobody's probe: {other:?}")),
                },
            }
        };
        let result = check();
        kill(supervisor, Signal::SIGKILL).unwrap();
        wait_for(supervisor, Duration::from_secs(5));
        results.push(("as nobody, read or trace root's supervisor and sandbox", result));
    }
    results
}

/// Gives up root for `uid` (and the same gid), if one is given.
fn switch_to(uid: Option<u32>) {
    if let Some(uid) = uid {
        let id = nix::unistd::Uid::from_raw(uid);
        let gid = nix::unistd::Gid::from_raw(uid);
        nix::unistd::setgroups(&[]).unwrap();
        nix::unistd::setresgid(gid, gid, gid).unwrap();
        nix::unistd::setresuid(id, id, id).unwrap();
    }
}

/// The environment variable that holds, in scan mode, the secret's bytes
/// inverted, in hex: the scanner never holds the secret itself.
const SCAN: &str = "WSANDBOX_ESCAPE_SCAN";

/// The readable mappings of this process, from `/proc/self/maps`.
fn readable_mappings() -> Vec<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|p| p.starts_with('r')))
        .filter(|l| !l.contains("[vvar") && !l.contains("[vsyscall]"))
        .filter_map(|l| {
            let (start, end) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

/// Whether the secret whose inverted bytes are `inverted` is anywhere in
/// `mappings` of this process's memory. Each page is copied through a pipe
/// (a page that cannot be read fails with EFAULT instead of a fault).
fn memory_holds(mappings: &[(usize, usize)], inverted: &[u8]) -> bool {
    let (r, w) = nix::unistd::pipe().unwrap();
    let page = 4096;
    let mut buf = vec![0u8; inverted.len() + page];
    for &(start, end) in mappings {
        let mut kept = 0; // bytes of the previous page kept before this one
        for addr in (start..end).step_by(page) {
            // SAFETY: the kernel reads [addr, addr + page) from this
            // process's memory on its behalf; an unreadable page is EFAULT.
            let n = unsafe {
                libc::write(
                    std::os::fd::AsRawFd::as_raw_fd(&w),
                    addr as *const libc::c_void,
                    page,
                )
            };
            if n != page as isize {
                kept = 0;
                continue;
            }
            let got = nix::unistd::read(&r, &mut buf[kept..kept + page]).unwrap();
            let len = kept + got;
            let found = buf[..len]
                .windows(inverted.len())
                .any(|w| w.iter().zip(inverted).all(|(b, i)| !b == *i));
            if found {
                return true;
            }
            kept = (inverted.len() - 1).min(len);
            buf.copy_within(len - kept..len, 0);
        }
    }
    false
}

/// Scan mode: this process was started with a secret in its environment
/// and argv. The scanner must find it in its own memory before the
/// sandbox (a control), and not in the sandboxed process.
fn scan(inverted_hex: &str) -> ! {
    let inverted: Vec<u8> = (0..inverted_hex.len() / 2)
        .map(|i| u8::from_str_radix(&inverted_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mappings = readable_mappings();
    if !memory_holds(&mappings, &inverted) {
        println!("    the control failed: the secret is not found before the sandbox");
        std::process::exit(2);
    }
    let _ = std::io::stdout().flush();
    let _ = SCANNED.set((mappings, inverted));
    launch(Policy::default(), Vec::new(), Syscalls::Guest, scan_body, None)
}

/// What [`scan`] looks for in the sandbox's memory, and where.
static SCANNED: OnceLock<Scanned> = OnceLock::new();

/// The readable mappings, and the secret's bytes inverted.
type Scanned = (Vec<(usize, usize)>, Vec<u8>);

/// The native body of [`scan`]: 1 when the sandbox's memory still holds
/// the secret.
///
/// # Safety
///
/// As a [`NativeBody`]: it reads memory, uses no descriptor.
unsafe fn scan_body(_: Vec<OwnedFd>) -> u8 {
    let (mappings, inverted) = SCANNED.get().expect("a secret");
    u8::from(memory_holds(mappings, inverted))
}

/// Starts this program in scan mode with a fresh secret in its
/// environment and argv; `Ok` when the sandbox held none of it.
/// A grant resolved, then its directory renamed away and a link to the
/// `outside` directory put in its place before the wall is built: `enter`
/// must refuse (one error), never mount where the link leads.
fn swapped_grant(target: &Target, uid: Option<u32>) -> Result<(), String> {
    let _ = std::io::stdout().flush();
    match sys::clone(CloneFlags::empty()).expect("fork") {
        Fork::Parent(pid) => match nix::sys::wait::waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
        Fork::Child => {
            switch_to(uid);
            let dir = target.rw.join(format!("swapped-{}", nix::unistd::getuid()));
            let _ = std::fs::remove_file(&dir);
            let _ = std::fs::remove_dir_all(dir.with_extension("away"));
            std::fs::create_dir(&dir).unwrap();
            let mut policy = Policy {
                dirs: vec![grant(&dir, Access::ReadOnly)],
                ..Policy::default()
            };
            policy.resolve().unwrap();
            std::fs::rename(&dir, dir.with_extension("away")).unwrap();
            std::os::unix::fs::symlink(&target.outside, &dir).unwrap();
            // The wall itself, not the pipeline: the link comes between
            // the policy's resolution and the wall, where the pipeline
            // leaves no room.
            // SAFETY: the sandbox reads a file and ends the process.
            let entered = unsafe {
                wsandbox::wall::enter(
                    &mut policy,
                    Vec::new(),
                    Syscalls::Guest,
                    wsandbox::wall::STOP_GRACE,
                )
            };
            match entered {
                Err(err) if err.to_string().contains("RESOLVE_NO_SYMLINKS") => sys::exit_now(0),
                Err(err) => {
                    eprintln!("    another error: {err}");
                    sys::exit_now(1)
                }
                Ok(Entered::Supervisor(supervisor)) => {
                    let (_, code) = wsandbox::launch::supervise(supervisor, None);
                    sys::exit_now(code.into())
                }
                Ok(_) => {
                    let seen = std::fs::read_to_string(dir.join("secret"));
                    eprintln!("    the sandbox was built; the link's target: {seen:?}");
                    sys::exit_now(1)
                }
            }
        }
    }
}

fn secret_scan(uid: Option<u32>) -> Result<(), String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        ^ u128::from(std::process::id());
    let secret: String = (0..24)
        .map(|i| (b'A' + ((seed >> (i * 5)) % 26) as u8) as char)
        .collect();
    let secret = format!("SECRET{secret}");
    let inverted: String = secret.bytes().map(|b| format!("{:02x}", !b)).collect();
    let me = std::env::current_exe().unwrap();
    let mut cmd = match uid {
        Some(uid) => {
            let mut cmd = std::process::Command::new("setpriv");
            cmd.args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
            ]);
            cmd.arg(me);
            cmd
        }
        None => std::process::Command::new(me),
    };
    cmd.arg(format!("--token={secret}"))
        .env("API_TOKEN", &secret)
        .env(SCAN, inverted);
    let status = cmd.status().map_err(|e| e.to_string())?;
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => Err("the secret is in the sandbox's memory".into()),
        other => Err(format!("the scanner ended with {other:?}")),
    }
}

fn main() {
    if let Ok(inverted) = std::env::var(SCAN) {
        scan(&inverted);
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ro, rw) = (tmp.path().join("ro"), tmp.path().join("rw"));
    std::fs::create_dir(&ro).unwrap();
    std::fs::create_dir(&rw).unwrap();
    std::fs::write(ro.join("file"), "read me").unwrap();
    let nested = rw.join("inner");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(nested.join("file"), "read me too").unwrap();
    for dir in [tmp.path(), &ro, &rw, &nested] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "secret").unwrap();
    std::fs::write(outside.join("out"), "").unwrap();
    std::fs::set_permissions(
        outside.join("out"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let submount = submount(&ro);
    let dev_null_times = times("/dev/null");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = Target {
        ro: ro.canonicalize().unwrap(),
        rw: rw.canonicalize().unwrap(),
        nested: nested.canonicalize().unwrap(),
        submount,
        outside: outside.canonicalize().unwrap(),
        port: listener.local_addr().unwrap().port(),
        listener: std::os::fd::AsRawFd::as_raw_fd(&listener),
        broker: -1,
    };
    let callers: &[Option<u32>] = if nix::unistd::geteuid().is_root() {
        &[None, Some(65534)]
    } else {
        println!("not root: attacks run as this user only");
        &[None]
    };
    let (mut passed, mut failed) = (0, 0);
    // The guest's runner as each caller; a server as the caller; a guest's
    // runner with a broker (its policy allows the host listener).
    let runs = callers
        .iter()
        .map(|&caller| (caller, Syscalls::Guest))
        .chain([(None, Syscalls::Server), (None, Syscalls::GuestBrokered)]);
    for (caller, syscalls) in runs {
        let uid = caller.map_or("caller".to_string(), |uid| format!("uid {uid}"));
        let (who, only, allowed) = match syscalls {
            Syscalls::Guest => (uid, GUEST_ONLY, ALLOWED),
            Syscalls::Server => (format!("{uid}, server"), &[][..], SERVER_ALLOWED),
            Syscalls::GuestBrokered => (format!("{uid}, brokered"), BROKERED_ATTACKS, BROKERED_ALLOWED),
            Syscalls::ServerBrokered => unreachable!("not a run of its own"),
        };
        let cases = ATTACKS
            .iter()
            .chain(only)
            .map(|a| (a, true))
            .chain(ALLOWED.iter().chain(allowed).map(|a| (a, false)));
        for ((name, attack), is_attack) in cases {
            let ok = in_sandbox(&target, caller, syscalls, *attack);
            let verdict = if ok { "ok" } else { "FAILED" };
            let kind = if is_attack { "stopped" } else { "allowed" };
            println!("escape [{who}] {name}: {kind} ... {verdict}");
            if ok { passed += 1 } else { failed += 1 }
        }
    }
    for &caller in callers {
        let who = caller.map_or("caller".to_string(), |uid| format!("uid {uid}"));
        let checks = lifetime(&target, caller).into_iter().chain([
            (
                "scan the sandbox's memory for a secret of the caller's environment and argv",
                secret_scan(caller),
            ),
            (
                "swap a link in for a grant once it is resolved",
                swapped_grant(&target, caller),
            ),
        ]);
        for (name, result) in checks {
            let verdict = match &result {
                Ok(()) => "ok",
                Err(what) => {
                    println!("    {what}");
                    "FAILED"
                }
            };
            println!("escape [{who}] {name}: stopped ... {verdict}");
            if result.is_ok() { passed += 1 } else { failed += 1 }
        }
    }
    // The host was not touched.
    if tmp.path().join("escaped").exists() {
        println!("escape: a file appeared outside the grants ... FAILED");
        failed += 1;
    }
    if times("/dev/null") != dev_null_times {
        println!("escape: the host's /dev/null has other times ... FAILED");
        failed += 1;
    }
    if std::fs::read_dir(&outside).unwrap().count() != 2
        || std::fs::read(outside.join("secret")).unwrap() != b"secret"
    {
        println!("escape: the directory on stdin was changed ... FAILED");
        failed += 1;
    }
    if let Some(sub) = &target.submount {
        let _ = nix::mount::umount(sub);
    }
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// Runs `attack` inside a new sandbox granting `ro` read-only and `rw`
/// read-write, as `uid` (or the caller), with the `syscalls` list (and for
/// a server, the listener handed in). `true` when the attack's result is
/// the expected one.
fn in_sandbox(target: &Target, uid: Option<u32>, syscalls: Syscalls, attack: Attack) -> bool {
    let _ = std::io::stdout().flush();
    match sys::clone(CloneFlags::empty()).expect("fork") {
        Fork::Parent(pid) => matches!(
            nix::sys::wait::waitpid(pid, None),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
        ),
        Fork::Child => {
            switch_to(uid);
            stdio_outside(target);
            let mut policy = Policy {
                dirs: vec![
                    grant(&target.ro, Access::ReadOnly),
                    grant(&target.rw, Access::ReadWrite),
                    grant(&target.nested, Access::ReadOnly),
                ],
                ..Policy::default()
            };
            // The sandbox's exit status comes back through its supervisor.
            let keep: Vec<OwnedFd> = match syscalls {
                Syscalls::Guest => Vec::new(),
                // The wall hands the broker's channel in, and chooses the
                // brokered list: the launch asks for the guest's.
                Syscalls::GuestBrokered | Syscalls::ServerBrokered => {
                    let rule = format!("127.0.0.1:{}", target.port);
                    policy.allow_http = vec![Rule::parse(&rule, false).unwrap()];
                    Vec::new()
                }
                // A descriptor of the listener's of this process's own: the
                // sandbox keeps it under another number.
                Syscalls::Server => {
                    // SAFETY: the listener is open for the test's whole life.
                    let listener = unsafe { std::os::fd::BorrowedFd::borrow_raw(target.listener) };
                    vec![listener.try_clone_to_owned().expect("dup")]
                }
            };
            let _ = ATTACK.set((target.clone(), attack, syscalls));
            let asked = match syscalls {
                Syscalls::GuestBrokered => Syscalls::Guest,
                other => other,
            };
            launch(policy, keep, asked, attack_body, None)
        }
    }
}

/// The sandbox's stdin becomes the host directory `outside`, its stdout
/// that directory's file `out`, append-only.
fn stdio_outside(target: &Target) {
    let dir = std::fs::File::open(&target.outside).unwrap();
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(target.outside.join("out"))
        .unwrap();
    nix::unistd::dup2_stdin(&dir).unwrap();
    nix::unistd::dup2_stdout(&out).unwrap();
}

/// The access and modification times of `path`, as the host sees them.
fn times(path: &str) -> (i64, i64, i64, i64) {
    let st = nix::sys::stat::stat(path).unwrap();
    (st.st_atime, st.st_atime_nsec, st.st_mtime, st.st_mtime_nsec)
}

/// As root: a tmpfs at `ro/sub`, writable by all, mounted in a mount
/// namespace of this test's own (the host's table is not touched). `None`
/// (and a line saying so) when the test cannot mount.
fn submount(ro: &Path) -> Option<PathBuf> {
    use nix::mount::{MsFlags, mount};
    if !nix::unistd::geteuid().is_root() {
        println!("not root: no mount inside the read-only grant to attack");
        return None;
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).unwrap();
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    let sub = ro.join("sub");
    std::fs::create_dir(&sub).unwrap();
    mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0777"),
    )
    .unwrap();
    std::fs::write(sub.join("file"), "x").unwrap();
    std::fs::set_permissions(
        sub.join("file"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    Some(sub.canonicalize().unwrap())
}

fn grant(path: &Path, access: Access) -> DirGrant {
    DirGrant {
        host: path.to_path_buf(),
        guest: path.display().to_string(),
        access,
    }
}
