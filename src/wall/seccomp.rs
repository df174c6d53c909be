//! The syscall allow-list: what wasmtime and wasmtime-wasi use once the
//! sandbox is built, and nothing else. See seccomp(2).
//!
//! - Everything not listed fails with `EPERM` ("operation not permitted",
//!   which callers report plainly) — among them `io_uring_*`, `userfaultfd`,
//!   `bpf`, `perf_event_open`, `ptrace`, `process_vm_*`, the key syscalls,
//!   `mount`, `umount2`, `pivot_root`, `unshare`, `setns`, `kexec_*`, module
//!   loading, `personality`, and every socket call.
//! - `clone` is allowed only for threads (`CLONE_THREAD|CLONE_VM|
//!   CLONE_SIGHAND`, no namespace flag): no process can be forked;
//!   `clone3`, whose flags a filter cannot read, fails with `ENOSYS`, so
//!   the C library falls back to `clone` for new threads. `memfd_create`
//!   fails with `ENOSYS` too: no limit of the process counts a memfd's
//!   memory, and wasmtime does without.
//! - Arguments are checked where a call is only as safe as what it is
//!   asked: `prctl` for thread names only (no `PR_SET_PDEATHSIG`,
//!   `PR_SET_DUMPABLE`, …); `ioctl` for `TCGETS`, `TIOCGWINSZ`,
//!   `FIONREAD`, `FIOCLEX`/`FIONCLEX`, and `FIONBIO` off stdio (nothing
//!   that changes a terminal or asks the network stack); `fcntl` for
//!   duplicating and the descriptor and status flags, `F_SETFL` off stdio
//!   (the caller's stdio must not turn non-blocking under wsandbox's own
//!   messages). A server's `sendto` needs a connected socket (no address,
//!   no `MSG_FASTOPEN`), its `setsockopt` only `TCP_NODELAY`, its
//!   `shutdown` only the writing side; `sendmsg` and `recvmsg` are refused.
//! - The architecture is checked (a foreign one kills the process), and
//!   x32 syscall numbers match no rule, so they fail too.
//!
//! Installed last of all the layers, after `no_new_privs`; the engine's
//! threads, created later, inherit it. The list itself is in
//! `seccomp_list.rs`, compiled to BPF at build time into one program: a
//! binary search over the syscalls decided by number, then seccompiler's
//! code for the rules with conditions (see `seccomp_list::program`).

use super::sys::SysError;

/// The filter, compiled to BPF by the build script from `seccomp_list.rs`.
mod bpf {
    include!(concat!(env!("OUT_DIR"), "/seccomp_bpf.rs"));
}

pub use super::seccomp_list::Syscalls;

/// Installs the filter of `syscalls` on this thread (and so on every thread
/// it creates).
pub fn install(syscalls: Syscalls) -> Result<(), SysError> {
    let filter: &[seccompiler::sock_filter] = match syscalls {
        Syscalls::Guest => &bpf::FILTER,
        Syscalls::Server => &bpf::SERVER_FILTER,
        Syscalls::GuestBrokered => &bpf::BROKERED_FILTER,
        Syscalls::ServerBrokered => &bpf::SERVER_BROKERED_FILTER,
    };
    seccompiler::apply_filter(filter).map_err(|_| SysError {
        call: "seccomp(SECCOMP_SET_MODE_FILTER)".into(),
        errno: nix::errno::Errno::last(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::seccomp_list;
    use super::Syscalls;
    use seccompiler::sock_filter;

    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;

    /// A classic-BPF interpreter for the instructions seccompiler and the
    /// search use, over a `seccomp_data`; returns the action and how many
    /// instructions ran.
    fn run(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
        let word = |offset: u32| -> u32 {
            match offset {
                0 => nr,
                4 => arch,
                8 | 12 => 0,
                o @ 16..=63 => {
                    let arg = args[((o - 16) / 8) as usize];
                    if (o - 16) % 8 == 0 {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                o => panic!("load from offset {o}"),
            }
        };
        let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let i = program[pc].clone();
            steps += 1;
            pc += 1;
            let branch = |taken: bool| if taken { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 => acc = word(i.k),              // ld w abs
                0x54 => acc &= i.k,                   // alu and k
                0x05 => pc += i.k as usize,           // ja
                0x15 => pc += branch(acc == i.k),     // jeq k
                0x25 => pc += branch(acc > i.k),      // jgt k
                0x35 => pc += branch(acc >= i.k),     // jge k
                0x45 => pc += branch(acc & i.k != 0), // jset k
                0x06 => return (i.k, steps),          // ret k
                code => panic!("instruction {code:#x}"),
            }
        }
    }

    /// The kernel's answer for several filters: the strictest action.
    fn strictest(actions: impl Iterator<Item = u32>) -> u32 {
        actions.min_by_key(|&a| (a & 0xffff_0000) as i32).unwrap()
    }

    fn cases() -> Vec<(u32, u32, [u64; 6])> {
        let mut cases = Vec::new();
        let ns = [
            0u64,
            libc::CLONE_NEWUSER as u64,
            libc::CLONE_NEWNET as u64,
            0x11 | libc::CLONE_NEWNS as u64,
        ];
        let arg_sets: Vec<[u64; 6]> = ns
            .iter()
            .flat_map(|f| {
                let thread = (libc::CLONE_VM | libc::CLONE_THREAD) as u64;
                [
                    [f | thread, 0, 0, 0, 0, 0],
                    [f | thread | libc::CLONE_SIGHAND as u64, 0, 0, 0, 0, 0],
                    [f | libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
                ]
            })
            .chain(
                [
                    libc::TIOCSTI,
                    libc::TIOCLINUX,
                    libc::TCGETS,
                    libc::FIONREAD,
                    libc::FIONBIO,
                    libc::SIOCGIFCONF,
                    0x1_0000_0000 | libc::TIOCSTI,
                    0x1_0000_0000 | libc::TCGETS,
                ]
                .iter()
                .flat_map(|&cmd| [[1, cmd, 0, 0, 0, 0], [7, cmd, 0, 0, 0, 0]]),
            )
            .chain(
                [
                    libc::F_SETFL,
                    libc::F_GETFL,
                    libc::F_SETOWN,
                    libc::F_SETPIPE_SZ,
                    libc::F_ADD_SEALS,
                ]
                .iter()
                .flat_map(|&cmd| [[2, cmd as u64, 0, 0, 0, 0], [3, cmd as u64, 0, 0, 0, 0]]),
            )
            .chain(
                [
                    libc::PR_SET_NAME,
                    libc::PR_SET_PDEATHSIG,
                    libc::PR_SET_DUMPABLE,
                    libc::PR_SET_MM,
                ]
                .iter()
                .map(|&option| [option as u64, 0, 0, 0, 0, 0]),
            )
            .chain([
                // sendto: flags, destination.
                [3, 0, 0, 0x4000, 0, 0],
                [3, 0, 0, 0x2000_4000, 0, 0],
                [3, 0, 0, 0, 0x7ff0_0000, 16],
                // setsockopt: level, option.
                [3, libc::IPPROTO_TCP as u64, libc::TCP_NODELAY as u64, 0, 0, 0],
                [3, libc::IPPROTO_TCP as u64, libc::TCP_ULP as u64, 0, 0, 0],
                [3, libc::SOL_SOCKET as u64, libc::SO_ATTACH_FILTER as u64, 0, 0, 0],
            ])
            .collect();
        for nr in (0..600).chain([0x4000_0000, 0x4000_0001, 0x4000_0038, 0x4000_0200, u32::MAX]) {
            for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386] {
                for args in &arg_sets {
                    cases.push((arch, nr, *args));
                }
            }
        }
        cases
    }

    #[test]
    fn the_built_filters_are_the_list_compiled() {
        let program = seccomp_list::program(std::env::consts::ARCH, Syscalls::Guest).unwrap();
        assert_eq!(program, super::bpf::FILTER);
        let program = seccomp_list::program(std::env::consts::ARCH, Syscalls::Server).unwrap();
        assert_eq!(program, super::bpf::SERVER_FILTER);
        let program = seccomp_list::program(std::env::consts::ARCH, Syscalls::GuestBrokered).unwrap();
        assert_eq!(program, super::bpf::BROKERED_FILTER);
        let program = seccomp_list::program(std::env::consts::ARCH, Syscalls::ServerBrokered).unwrap();
        assert_eq!(program, super::bpf::SERVER_BROKERED_FILTER);
    }

    /// What no list that talks on sockets allows: opening, aiming or
    /// re-aiming one (`connect` again, or `AF_UNSPEC` first; an address
    /// to `sendto`; `sendmsg`, whose address a filter cannot read),
    /// `MSG_FASTOPEN`, closing its reading side, and the socket options
    /// that attach code or change where it goes.
    const NEVER_ON_A_SOCKET: &[(&str, libc::c_long, [u64; 6])] = &[
        ("socket", libc::SYS_socket, [libc::AF_INET as u64, 1, 0, 0, 0, 0]),
        ("socketpair", libc::SYS_socketpair, [1, 1, 0, 0, 0, 0]),
        ("connect", libc::SYS_connect, [3, 0x7fff_0000, 16, 0, 0, 0]),
        ("bind", libc::SYS_bind, [3, 0x7fff_0000, 16, 0, 0, 0]),
        ("listen", libc::SYS_listen, [3, 1, 0, 0, 0, 0]),
        (
            "sendto an address",
            libc::SYS_sendto,
            [3, 0, 0, 0, 0x7fff_0000, 16],
        ),
        (
            "sendto MSG_FASTOPEN",
            libc::SYS_sendto,
            [3, 0, 0, 0x2000_0000, 0, 0],
        ),
        ("sendmsg", libc::SYS_sendmsg, [3, 0, 0, 0, 0, 0]),
        ("sendmmsg", libc::SYS_sendmmsg, [3, 0, 0, 0, 0, 0]),
        (
            "shutdown SHUT_RD",
            libc::SYS_shutdown,
            [3, libc::SHUT_RD as u64, 0, 0, 0, 0],
        ),
        (
            "SO_ATTACH_FILTER",
            libc::SYS_setsockopt,
            [3, libc::SOL_SOCKET as u64, libc::SO_ATTACH_FILTER as u64, 0, 0, 0],
        ),
        (
            "SO_BINDTODEVICE",
            libc::SYS_setsockopt,
            [3, libc::SOL_SOCKET as u64, libc::SO_BINDTODEVICE as u64, 0, 0, 0],
        ),
        (
            "TCP_ULP",
            libc::SYS_setsockopt,
            [3, libc::IPPROTO_TCP as u64, libc::TCP_ULP as u64, 0, 0, 0],
        ),
        (
            "TCP_FASTOPEN_CONNECT",
            libc::SYS_setsockopt,
            [
                3,
                libc::IPPROTO_TCP as u64,
                libc::TCP_FASTOPEN_CONNECT as u64,
                0,
                0,
                0,
            ],
        ),
        (
            "TCP_REPAIR",
            libc::SYS_setsockopt,
            [3, libc::IPPROTO_TCP as u64, libc::TCP_REPAIR as u64, 0, 0, 0],
        ),
    ];

    #[test]
    fn a_brokered_sandbox_may_receive_and_talk_on_sockets_but_not_open_or_retarget_any() {
        let eperm = ERRNO | libc::EPERM as u32;
        let (tcp, nodelay) = (libc::IPPROTO_TCP as u64, libc::TCP_NODELAY as u64);
        for syscalls in [Syscalls::GuestBrokered, Syscalls::ServerBrokered] {
            let program = seccomp_list::program(std::env::consts::ARCH, syscalls).unwrap();
            let answer =
                |nr: libc::c_long, args: [u64; 6]| run(&program, AUDIT_ARCH_X86_64, nr as u32, args).0;
            for (what, nr, args) in [
                (
                    "recvmsg (the broker's sockets)",
                    libc::SYS_recvmsg,
                    [3, 0, 0, 0, 0, 0],
                ),
                ("recvfrom", libc::SYS_recvfrom, [3, 0, 0, 0, 0, 0]),
                (
                    "send",
                    libc::SYS_sendto,
                    [3, 0, 0, libc::MSG_NOSIGNAL as u64, 0, 0],
                ),
                ("TCP_NODELAY", libc::SYS_setsockopt, [3, tcp, nodelay, 0, 0, 0]),
                (
                    "shutdown SHUT_WR",
                    libc::SYS_shutdown,
                    [3, libc::SHUT_WR as u64, 0, 0, 0, 0],
                ),
                ("getpeername", libc::SYS_getpeername, [3, 0, 0, 0, 0, 0]),
            ] {
                assert_eq!(answer(nr, args), ALLOW, "{syscalls:?}: {what}");
            }
            for &(what, nr, args) in NEVER_ON_A_SOCKET {
                assert_eq!(answer(nr, args), eperm, "{syscalls:?}: {what}");
            }
        }
        // A plain guest's runner receives nothing; a brokered one accepts nothing.
        let guest = seccomp_list::program(std::env::consts::ARCH, Syscalls::Guest).unwrap();
        assert_eq!(
            run(
                &guest,
                AUDIT_ARCH_X86_64,
                libc::SYS_recvmsg as u32,
                [3, 0, 0, 0, 0, 0]
            )
            .0,
            eperm
        );
        let brokered = seccomp_list::program(std::env::consts::ARCH, Syscalls::GuestBrokered).unwrap();
        assert_eq!(
            run(
                &brokered,
                AUDIT_ARCH_X86_64,
                libc::SYS_accept4 as u32,
                [3, 0, 0, 0, 0, 0]
            )
            .0,
            eperm
        );
    }

    #[test]
    fn the_search_answers_every_call_as_seccompiler_alone_does() {
        for syscalls in Syscalls::ALL {
            let program = seccomp_list::program(std::env::consts::ARCH, syscalls).unwrap();
            let reference = seccomp_list::reference(std::env::consts::ARCH, syscalls).unwrap();
            for (arch, nr, args) in cases() {
                let (got, _) = run(&program, arch, nr, args);
                let want = strictest(reference.iter().map(|p| run(p, arch, nr, args).0));
                assert_eq!(got, want, "{syscalls:?}: arch {arch:#x} nr {nr} args {args:x?}");
            }
        }
    }

    #[test]
    fn a_server_may_answer_connections_but_not_open_any() {
        let guest = seccomp_list::program(std::env::consts::ARCH, Syscalls::Guest).unwrap();
        let server = seccomp_list::program(std::env::consts::ARCH, Syscalls::Server).unwrap();
        let answer =
            |program: &[sock_filter], nr: libc::c_long| run(program, AUDIT_ARCH_X86_64, nr as u32, [0; 6]).0;
        for on_a_connection in [
            libc::SYS_accept4,
            libc::SYS_recvfrom,
            libc::SYS_sendto,
            libc::SYS_getsockopt,
        ] {
            assert_eq!(
                answer(&server, on_a_connection),
                ALLOW,
                "syscall {on_a_connection}"
            );
            assert_eq!(
                answer(&guest, on_a_connection),
                ERRNO | libc::EPERM as u32,
                "syscall {on_a_connection}"
            );
        }
        let server_answer =
            |nr: libc::c_long, args: [u64; 6]| run(&server, AUDIT_ARCH_X86_64, nr as u32, args).0;
        let eperm = ERRNO | libc::EPERM as u32;
        let (tcp, nodelay) = (libc::IPPROTO_TCP as u64, libc::TCP_NODELAY as u64);
        assert_eq!(
            server_answer(libc::SYS_setsockopt, [3, tcp, nodelay, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            server_answer(libc::SYS_sendto, [3, 0, 0, libc::MSG_NOSIGNAL as u64, 0, 0]),
            ALLOW
        );
        assert_eq!(
            server_answer(libc::SYS_shutdown, [3, libc::SHUT_WR as u64, 0, 0, 0, 0]),
            ALLOW
        );
        let recvmsg = ("recvmsg", libc::SYS_recvmsg, [3, 0, 0, 0, 0, 0]);
        for &(what, nr, args) in NEVER_ON_A_SOCKET.iter().chain([&recvmsg]) {
            assert_eq!(server_answer(nr, args), eperm, "{what}");
        }
    }

    #[test]
    fn the_documented_answers() {
        let program = seccomp_list::program(std::env::consts::ARCH, Syscalls::Guest).unwrap();
        let answer = |nr: libc::c_long, args: [u64; 6]| run(&program, AUDIT_ARCH_X86_64, nr as u32, args).0;
        let none = [0; 6];
        assert_eq!(answer(libc::SYS_read, none), ALLOW);
        assert_eq!(answer(libc::SYS_clone3, none), ERRNO | libc::ENOSYS as u32);
        for refused in [
            libc::SYS_io_uring_setup,
            libc::SYS_userfaultfd,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_keyctl,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_kexec_load,
            libc::SYS_init_module,
            libc::SYS_personality,
            libc::SYS_socket,
        ] {
            assert_eq!(
                answer(refused, none),
                ERRNO | libc::EPERM as u32,
                "syscall {refused}"
            );
        }
        let eperm = ERRNO | libc::EPERM as u32;
        assert_eq!(answer(libc::SYS_memfd_create, none), ERRNO | libc::ENOSYS as u32);
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(answer(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
        let ns = libc::CLONE_NEWUSER as u64;
        assert_eq!(answer(libc::SYS_clone, [thread | ns, 0, 0, 0, 0, 0]), eperm);
        let fork = libc::SIGCHLD as u64;
        assert_eq!(answer(libc::SYS_clone, [fork, 0, 0, 0, 0, 0]), eperm, "fork");
        let shared_vm = (libc::CLONE_VM | libc::SIGCHLD) as u64;
        assert_eq!(
            answer(libc::SYS_clone, [shared_vm, 0, 0, 0, 0, 0]),
            eperm,
            "vfork-like"
        );
        for option in [libc::PR_SET_NAME, libc::PR_GET_NAME] {
            assert_eq!(answer(libc::SYS_prctl, [option as u64, 0, 0, 0, 0, 0]), ALLOW);
        }
        for option in [
            libc::PR_SET_PDEATHSIG,
            libc::PR_SET_DUMPABLE,
            libc::PR_SET_MM,
            libc::PR_SET_SECCOMP,
            libc::PR_SET_NO_NEW_PRIVS,
            libc::PR_SET_CHILD_SUBREAPER,
            libc::PR_SET_PTRACER,
        ] {
            let args = [option as u64, 0, 0, 0, 0, 0];
            assert_eq!(answer(libc::SYS_prctl, args), eperm, "prctl {option}");
        }
        for (fd, request) in [
            (0, libc::TCGETS),
            (1, libc::TIOCGWINSZ),
            (5, libc::FIONREAD),
            (5, libc::FIONBIO),
        ] {
            assert_eq!(
                answer(libc::SYS_ioctl, [fd, request, 0, 0, 0, 0]),
                ALLOW,
                "ioctl {request:#x}"
            );
        }
        for (fd, request) in [
            (0, libc::TIOCSTI),
            (0, libc::TIOCLINUX),
            (0, libc::TIOCSETD),
            (0, libc::TCSETS),
            (1, libc::FIONBIO),
            (3, libc::SIOCGIFCONF),
            (3, libc::SIOCGIFADDR),
        ] {
            let args = [fd, request, 0, 0, 0, 0];
            assert_eq!(answer(libc::SYS_ioctl, args), eperm, "ioctl {fd} {request:#x}");
        }
        for (fd, command) in [
            (2, libc::F_GETFL),
            (2, libc::F_GETFD),
            (3, libc::F_SETFL),
            (3, libc::F_DUPFD_CLOEXEC),
        ] {
            let args = [fd, command as u64, 0, 0, 0, 0];
            assert_eq!(answer(libc::SYS_fcntl, args), ALLOW, "fcntl {fd} {command}");
        }
        for (fd, command) in [
            (2, libc::F_SETFL),
            (0, libc::F_SETFL),
            (3, libc::F_SETOWN),
            (3, 10), // F_SETSIG
            (3, libc::F_SETPIPE_SZ),
            (3, libc::F_SETLEASE),
            (3, libc::F_NOTIFY),
        ] {
            let args = [fd, command as u64, 0, 0, 0, 0];
            assert_eq!(answer(libc::SYS_fcntl, args), eperm, "fcntl {fd} {command}");
        }
        assert_eq!(run(&program, AUDIT_ARCH_I386, 3, none).0, KILL_PROCESS);
        assert_eq!(
            answer(0x4000_0000 | libc::SYS_read, none),
            ERRNO | libc::EPERM as u32,
            "x32"
        );
    }

    /// The kernel runs the filter once per syscall number when it is
    /// installed (its action cache), and on every call that is not cached:
    /// no number may take more than a short walk.
    #[test]
    fn every_call_is_settled_in_a_few_steps() {
        let program = seccomp_list::program(std::env::consts::ARCH, Syscalls::Guest).unwrap();
        let [_, linear] = seccomp_list::reference(std::env::consts::ARCH, Syscalls::Guest).unwrap();
        let longest = |p: &[sock_filter]| {
            (0..600)
                .map(|nr| run(p, AUDIT_ARCH_X86_64, nr, [0; 6]).1)
                .max()
                .unwrap()
        };
        let (tree, chain) = (longest(&program), longest(&linear));
        assert!(
            tree <= 40 && chain > 4 * tree,
            "search: {tree} steps, linear chain: {chain}"
        );
    }
}
