//! The seccomp allow-list as data, and the filter built from it. Shared
//! by wsandbox's build script, which compiles the filter to BPF once, at
//! build time, and by `seccomp.rs`, which installs that BPF: a run spends
//! no time building it.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use std::collections::BTreeMap;

/// Syscalls allowed with any arguments.
const ALLOWED: &[libc::c_long] = &[
    // I/O on open descriptors.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_fstat,
    libc::SYS_fstatfs,
    libc::SYS_ftruncate,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_fadvise64,
    // Paths, relative to a preopened directory (cap-std).
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_statfs,
    libc::SYS_getdents64,
    libc::SYS_readlinkat,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_linkat,
    libc::SYS_symlinkat,
    libc::SYS_utimensat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_getcwd,
    // Memory: linear memories, code, stacks.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_mremap,
    libc::SYS_brk,
    // Threads, signals (wasm traps are signals), time, randomness.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_get_robust_list,
    libc::SYS_rseq,
    libc::SYS_set_tid_address,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_tgkill,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_sigaltstack,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getrandom,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_prlimit64,
    libc::SYS_uname,
    // Waiting (tokio's reactor, stdin's worker).
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_eventfd2,
    libc::SYS_pipe2,
    libc::SYS_poll,
    libc::SYS_ppoll,
];

/// Socket calls on connected sockets the process already has: reading,
/// and asking what they are. With the conditional rules (`sendto` without
/// an address, `TCP_NODELAY`, `shutdown`), what talking on a connection
/// takes. Creating, binding, listening on and connecting sockets stays
/// refused, so nothing new can be reached.
const CONNECTED: &[libc::c_long] = &[
    libc::SYS_recvfrom,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_getsockopt,
];

/// What a server inside the walls needs besides: accepting connections on
/// the listening socket it was handed (`serve`).
const SERVER: &[libc::c_long] = &[libc::SYS_accept, libc::SYS_accept4];

/// What a sandbox with a broker needs besides: receiving the sockets the
/// broker hands in (`SCM_RIGHTS`).
const BROKERED: &[libc::c_long] = &[libc::SYS_recvmsg];

/// Which allow-list a sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscalls {
    /// A guest's runner: `run`, `call`, a plugin's worker.
    Guest,
    /// A server of requests (`serve`): the guest's list, and the socket
    /// calls of [`SERVER`] and [`CONNECTED`] on descriptors it was handed.
    Server,
    /// A guest's runner whose policy allows a destination: the guest's
    /// list, the calls of [`CONNECTED`] and [`BROKERED`].
    GuestBrokered,
    /// A server whose policy allows a destination.
    ServerBrokered,
}

impl Syscalls {
    /// Every list, for the build script.
    pub const ALL: [Syscalls; 4] = [
        Syscalls::Guest,
        Syscalls::Server,
        Syscalls::GuestBrokered,
        Syscalls::ServerBrokered,
    ];

    /// The same list, for a sandbox with a broker: the sockets it is
    /// handed may be received and talked on.
    pub fn brokered(self) -> Syscalls {
        match self {
            Syscalls::Guest | Syscalls::GuestBrokered => Syscalls::GuestBrokered,
            Syscalls::Server | Syscalls::ServerBrokered => Syscalls::ServerBrokered,
        }
    }

    /// Whether it is a server's list (whose sandbox may read its own
    /// memory's use, `/proc/self/statm`).
    pub fn serves(self) -> bool {
        matches!(self, Syscalls::Server | Syscalls::ServerBrokered)
    }

    /// The syscalls this list allows with any arguments.
    fn allowed(self) -> Vec<libc::c_long> {
        let extra: &[&[libc::c_long]] = match self {
            Syscalls::Guest => &[],
            Syscalls::Server => &[CONNECTED, SERVER],
            Syscalls::GuestBrokered => &[CONNECTED, BROKERED],
            Syscalls::ServerBrokered => &[CONNECTED, SERVER, BROKERED],
        };
        ALLOWED
            .iter()
            .chain(extra.iter().copied().flatten())
            .copied()
            .collect()
    }

    /// Whether it talks on connected sockets.
    fn talks(self) -> bool {
        self != Syscalls::Guest
    }

    /// The name of its compiled program in the build's output.
    pub fn static_name(self) -> &'static str {
        match self {
            Syscalls::Guest => "FILTER",
            Syscalls::Server => "SERVER_FILTER",
            Syscalls::GuestBrokered => "BROKERED_FILTER",
            Syscalls::ServerBrokered => "SERVER_BROKERED_FILTER",
        }
    }
}

/// Namespace flags of `clone`: a thread of the sandbox never needs one.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWCGROUP) as u64;

/// The flags every new thread has, and no new process: `clone` must carry
/// all three, so it cannot fork.
const THREAD_FLAGS: u64 = (libc::CLONE_THREAD | libc::CLONE_VM | libc::CLONE_SIGHAND) as u64;

/// `prctl` options the engine uses (thread names; glibc may name
/// anonymous mappings): everything else — `PR_SET_PDEATHSIG`,
/// `PR_SET_DUMPABLE`, `PR_SET_MM`, `PR_SET_SECCOMP`, … — is refused.
const PRCTL_OPTIONS: &[u64] = &[libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64, PR_SET_VMA];

/// `prctl(PR_SET_VMA)` (naming anonymous mappings), not in every libc.
const PR_SET_VMA: u64 = 0x5356_4d41;

/// `ioctl` requests allowed on any descriptor: `isatty` and the terminal's
/// size (reads only), bytes ready to read, close-on-exec. Nothing that
/// changes a terminal (`TIOCSTI`, `TIOCSETD`, `TCSETS`, `TIOCLINUX`) or
/// asks the network stack (`SIOCGIFCONF` …).
const IOCTL_REQUESTS: &[u64] = &[
    libc::TCGETS,
    libc::TIOCGWINSZ,
    libc::FIONREAD,
    libc::FIOCLEX,
    libc::FIONCLEX,
];

/// `fcntl` commands allowed on any descriptor: duplicating, reading and
/// setting close-on-exec, reading the status flags.
const FCNTL_COMMANDS: &[u64] = &[
    libc::F_DUPFD as u64,
    libc::F_DUPFD_CLOEXEC as u64,
    libc::F_GETFD as u64,
    libc::F_SETFD as u64,
    libc::F_GETFL as u64,
];

/// The highest descriptor shared with the caller (stdio): its file status
/// flags are the caller's too, so `O_NONBLOCK` may not be set on it
/// (`fcntl(F_SETFL)`, `ioctl(FIONBIO)`) — the supervisor writes there.
const LAST_STDIO: u64 = 2;

/// `MSG_FASTOPEN`: `sendto` that connects first.
const MSG_FASTOPEN: u64 = 0x2000_0000;

/// What a refused syscall gets: "operation not permitted".
const REFUSED: SeccompAction = SeccompAction::Errno(libc::EPERM as u32);

/// Syscalls answered `ENOSYS` whatever their arguments: `clone3`, whose
/// flags a filter cannot read (the C library falls back to `clone`), and
/// `memfd_create`, whose memory no limit of the process counts (wasmtime
/// then initialises memories without a memfd image).
const NOT_IMPLEMENTED: &[libc::c_long] = &[libc::SYS_clone3, libc::SYS_memfd_create];

/// The allow-list's rules with conditions on the arguments: threads but
/// not processes, a few `prctl` options, `ioctl` requests and `fcntl`
/// commands; for a server or a sandbox with a broker, `sendto` on a
/// connected socket only, one socket option and `shutdown` of the writing
/// side.
fn conditional_rules(syscalls: Syscalls) -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let err = |e: seccompiler::BackendError| e.to_string();
    let cond = |arg, len, op, value| SeccompCondition::new(arg, len, op, value).map_err(err);
    let rule = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions).map_err(err);
    // One rule per allowed value of argument `arg` (its low 32 bits).
    let one_of = |arg, values: &[u64]| -> Result<Vec<SeccompRule>, String> {
        values
            .iter()
            .map(|&v| rule(vec![cond(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)?]))
            .collect()
    };
    // Request or command `value` (argument 1) on a descriptor past stdio.
    let off_stdio = |value| {
        rule(vec![
            cond(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)?,
            cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Gt, LAST_STDIO)?,
        ])
    };
    let mut ioctl = one_of(1, IOCTL_REQUESTS)?;
    ioctl.push(off_stdio(libc::FIONBIO)?);
    let mut fcntl = one_of(1, FCNTL_COMMANDS)?;
    fcntl.push(off_stdio(libc::F_SETFL as u64)?);
    let mut rules = BTreeMap::from([
        (
            libc::SYS_clone,
            vec![rule(vec![
                cond(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(THREAD_FLAGS),
                    THREAD_FLAGS,
                )?,
                cond(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(NAMESPACE_FLAGS),
                    0,
                )?,
            ])?],
        ),
        (libc::SYS_prctl, one_of(0, PRCTL_OPTIONS)?),
        (libc::SYS_ioctl, ioctl),
        (libc::SYS_fcntl, fcntl),
    ]);
    if syscalls.talks() {
        rules.insert(
            libc::SYS_sendto,
            vec![rule(vec![
                cond(4, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0)?,
                cond(
                    3,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::MaskedEq(MSG_FASTOPEN),
                    0,
                )?,
            ])?],
        );
        rules.insert(
            libc::SYS_setsockopt,
            vec![rule(vec![
                cond(
                    1,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Eq,
                    libc::IPPROTO_TCP as u64,
                )?,
                cond(
                    2,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Eq,
                    libc::TCP_NODELAY as u64,
                )?,
            ])?],
        );
        rules.insert(
            libc::SYS_shutdown,
            one_of(1, &[libc::SHUT_WR as u64, libc::SHUT_RDWR as u64])?,
        );
    }
    Ok(rules)
}

fn compile(filter: Result<SeccompFilter, seccompiler::BackendError>) -> Result<BpfProgram, String> {
    BpfProgram::try_from(filter.map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

/// The filter wsandbox installs, one program:
///
/// 1. the architecture check, as seccompiler writes it (a foreign one
///    kills the process);
/// 2. a binary search over the syscalls decided by their number alone —
///    the unconditional allow-list, and `clone3`, `memfd_create` → `ENOSYS` — so any call
///    is settled in a handful of comparisons;
/// 3. everything else falls through to seccompiler's compilation of the
///    conditional rules (`clone`, `prctl`, `ioctl`, `fcntl`, a server's
///    socket calls), whose default is `EPERM`.
///
/// Seccompiler writes one linear chain per filter; with ~90 syscalls that
/// is ~450 instructions, and the kernel runs the whole chain once per
/// syscall number when it builds its action cache at install time (about
/// 0.3 ms of every start here). The search makes that a few steps each.
/// [`reference`] is the same policy as two plain seccompiler filters; a
/// test runs both on every syscall number and requires the same answers.
pub fn program(arch: &str, syscalls: Syscalls) -> Result<BpfProgram, String> {
    let target = TargetArch::try_from(arch).map_err(|e| e.to_string())?;
    let residual = compile(SeccompFilter::new(
        conditional_rules(syscalls)?,
        REFUSED,
        SeccompAction::Allow,
        target,
    ))?;
    // The residual program starts with the architecture check and then
    // loads the syscall number: the search goes in between.
    let (arch_check, rest) = residual.split_at(3);
    let load_nr = rest[0].clone();
    assert_eq!(
        (load_nr.code, load_nr.k),
        (BPF_LD | BPF_W | BPF_ABS, 0),
        "seccompiler's program loads the syscall number after the architecture check"
    );
    let mut decided: Vec<(u32, u32)> = syscalls
        .allowed()
        .iter()
        .map(|&nr| (nr as u32, u32::from(SeccompAction::Allow)))
        .collect();
    decided.extend(
        NOT_IMPLEMENTED
            .iter()
            .map(|&nr| (nr as u32, u32::from(SeccompAction::Errno(libc::ENOSYS as u32)))),
    );
    decided.sort_unstable();
    decided.dedup_by_key(|(nr, _)| *nr);
    let mut tree = Vec::new();
    search(&decided, &mut tree);
    let mut out: BpfProgram = arch_check.to_vec();
    out.push(load_nr);
    let residual_at = out.len() + tree.len();
    for (i, step) in tree.into_iter().enumerate() {
        out.push(match step {
            Step::Insn(insn) => insn,
            // Into the residual program, after its own architecture check.
            Step::ToResidual => jump_always((residual_at + 3 - (out.len() + 1)) as u32),
        });
        debug_assert_eq!(out.len(), arch_check.len() + 2 + i);
    }
    out.extend_from_slice(&residual);
    Ok(out)
}

/// The same policy as [`program`], as seccompiler alone writes it: a
/// filter that turns [`NOT_IMPLEMENTED`] into `ENOSYS`, then the whole allow-list as
/// one linear chain (the kernel takes the strictest answer of the two).
pub fn reference(arch: &str, syscalls: Syscalls) -> Result<[BpfProgram; 2], String> {
    let target = TargetArch::try_from(arch).map_err(|e| e.to_string())?;
    let mut rules = conditional_rules(syscalls)?;
    rules.extend(syscalls.allowed().iter().map(|&nr| (nr, vec![])));
    let allow_list = compile(SeccompFilter::new(rules, REFUSED, SeccompAction::Allow, target))?;
    let not_implemented = compile(SeccompFilter::new(
        NOT_IMPLEMENTED.iter().map(|&nr| (nr, vec![])).collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        target,
    ))?;
    Ok([not_implemented, allow_list])
}

const BPF_LD: u16 = 0x00;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;

/// A step of the search; jumps into the residual program are resolved once
/// the search's length is known.
enum Step {
    Insn(seccompiler::sock_filter),
    ToResidual,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}

fn jump_always(offset: u32) -> seccompiler::sock_filter {
    insn(BPF_JMP | BPF_JA, 0, 0, offset)
}

/// Appends a search of `decided` (sorted by number): leaves of a few
/// `jeq nr → ret action`, inner nodes `jge` on the first number of the
/// upper half; a number found nowhere goes on to the residual program.
fn search(decided: &[(u32, u32)], out: &mut Vec<Step>) {
    const LEAF: usize = 4;
    if decided.len() <= LEAF {
        for &(nr, action) in decided {
            out.push(Step::Insn(insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, nr)));
            out.push(Step::Insn(insn(BPF_RET | BPF_K, 0, 0, action)));
        }
        out.push(Step::ToResidual);
        return;
    }
    let (lower, upper) = decided.split_at(decided.len() / 2);
    let mut left = Vec::new();
    search(lower, &mut left);
    match u8::try_from(left.len()) {
        Ok(skip) => out.push(Step::Insn(insn(BPF_JMP | BPF_JGE | BPF_K, skip, 0, upper[0].0))),
        Err(_) => {
            out.push(Step::Insn(insn(BPF_JMP | BPF_JGE | BPF_K, 0, 1, upper[0].0)));
            out.push(Step::Insn(jump_always(left.len() as u32)));
        }
    }
    out.extend(left);
    search(upper, out);
}
