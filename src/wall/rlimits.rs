//! Resource limits of the sandboxed process (getrlimit(2)):
//!
//! | limit | value | why |
//! | --- | --- | --- |
//! | `RLIMIT_CORE` | 0 | no core dump can leak the sandbox's memory |
//! | `RLIMIT_NOFILE` | 1024 (or lower if the caller's is) | a guest cannot exhaust the host's file table |
//! | `RLIMIT_FSIZE` | 16 GiB (or lower) | no single file fills the disk; an over-long write fails with `EFBIG` (a trap, or an error the guest sees), never a fatal `SIGXFSZ` |
//! | `RLIMIT_DATA` | with `--memory M` only: M + 1 GiB | the whole process is bounded, not just linear memory |
//! | `RLIMIT_NPROC` | 1024 (or lower), with a user namespace of its own | a backstop behind the filter's threads-only `clone`: no more than 1024 tasks (threads count) |
//! | `RLIMIT_CPU` | with `--timeout T` only: CPUs × T + 1 s, soft = hard | the kernel kills (`SIGKILL`) a sandbox that burns more CPU than it could in T, even if its supervisor is stopped |
//!
//! `RLIMIT_NPROC` counts the tasks of the sandbox's uid *in its own user
//! namespace* (the kernel's per-namespace counts, Linux 5.14), so the
//! caller's other processes do not count against it. Without a user
//! namespace of its own (`--allow-degraded`) it would count every process
//! of the caller's uid on the host, and is left as it is.
//!
//! Why `RLIMIT_DATA` and not `RLIMIT_AS`: wasmtime reserves address space
//! for each linear memory up front (4 GiB plus guard pages, never touched
//! until the guest grows into them; a hello-world run has a `VmSize` of
//! 4.4 GB and a `VmRSS` of 14 MB), so an address-space limit either stops
//! every guest or bounds nothing. `RLIMIT_DATA` counts only private
//! writable mappings: the reservation is `PROT_NONE` and counts only as
//! the guest grows into it, and the engine's own heap counts too. A grow
//! past it fails like a grow past `--memory`. The 1 GiB on top is the
//! engine's: compiling a large module takes hundreds of MiB.
//!
//! Why `RLIMIT_CPU` is the timeout's backstop and not a timer: the
//! sandboxed process is the init of its pid namespace, and the kernel
//! drops a `SIGKILL` a POSIX timer raises in an init (it delivers only
//! what comes from an ancestor namespace, or the kernel's own CPU-limit
//! kill). The limit is the most CPU time the sandbox could burn in T on
//! this machine's CPUs, so it never strikes before the supervisor's
//! deadline; if the supervisor is stopped, a spinning guest is killed
//! within CPUs × T + 1 s. A guest that sleeps burns nothing and is
//! killed when the supervisor resumes, or dies with it.
//!
//! A limit is only ever lowered: if the caller's limit is already lower,
//! it stays.

use super::sys::{SysError, check};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::time::Duration;

/// The CPU seconds a sandbox with `timeout` may burn on `cpus` processors:
/// more than it can in `timeout`, by a second at least.
pub fn cpu_seconds(timeout: Duration, cpus: u64) -> u64 {
    let most = timeout.as_secs_f64() * cpus as f64;
    (most.ceil() as u64).saturating_add(1)
}

/// The limits applied, as (resource, value).
pub const LIMITS: [(Resource, u64); 3] = [
    (Resource::RLIMIT_CORE, 0),
    (Resource::RLIMIT_NOFILE, 1024),
    (Resource::RLIMIT_FSIZE, 16 << 30),
];

/// What [`apply`] sets on every run, in words (`wsandbox check` says it).
pub fn described() -> String {
    let mut said: Vec<String> = LIMITS
        .iter()
        .map(|&(resource, value)| match resource {
            Resource::RLIMIT_CORE if value == 0 => "no core dumps".into(),
            Resource::RLIMIT_NOFILE => format!("{value} open files"),
            Resource::RLIMIT_FSIZE => format!("{} file size", crate::policy::size_text(value)),
            other => format!("{other:?} {value}"),
        })
        .collect();
    said.push(format!("{TASKS} tasks in a user namespace of its own"));
    said.join(", ")
}

/// What the engine may use besides the guest's linear memory.
pub const ENGINE_DATA: u64 = 1 << 30;

/// The most tasks (processes and threads) the sandbox may have, when it
/// has a user namespace of its own.
pub const TASKS: u64 = 1024;

/// Lowers each of [`LIMITS`], soft and hard; with a `memory` limit,
/// `RLIMIT_DATA` to it plus [`ENGINE_DATA`]; with `own_users` (a user
/// namespace of the sandbox's own), `RLIMIT_NPROC` to [`TASKS`]; with a
/// `timeout`, `RLIMIT_CPU` to [`cpu_seconds`].
pub fn apply(memory: Option<u64>, own_users: bool, timeout: Option<Duration>) -> Result<(), SysError> {
    let data = memory.map(|m| (Resource::RLIMIT_DATA, m.saturating_add(ENGINE_DATA)));
    let tasks = own_users.then_some((Resource::RLIMIT_NPROC, TASKS));
    let cpu = timeout.map(|t| (Resource::RLIMIT_CPU, cpu_seconds(t, super::sys::online_cpus())));
    for (resource, value) in LIMITS.into_iter().chain(data).chain(tasks).chain(cpu) {
        let (soft, hard) = check(getrlimit(resource), || format!("getrlimit({resource:?})"))?;
        let hard = value.min(hard);
        let soft = soft.min(hard);
        check(setrlimit(resource, soft, hard), || {
            format!("setrlimit({resource:?}, {soft}, {hard})")
        })?;
    }
    // Past RLIMIT_FSIZE a write fails with EFBIG instead of a fatal SIGXFSZ.
    super::sys::ignore_sigxfsz()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_limit_is_above_what_the_timeout_allows() {
        assert_eq!(cpu_seconds(Duration::from_secs(1), 1), 2);
        assert_eq!(cpu_seconds(Duration::from_secs(1), 2), 3);
        assert_eq!(cpu_seconds(Duration::from_millis(1500), 2), 4);
        assert_eq!(cpu_seconds(Duration::from_millis(10), 1), 2);
        for cpus in 1..64 {
            for ms in [1u64, 999, 1000, 60_000, 3_600_000] {
                let t = Duration::from_millis(ms);
                assert!(cpu_seconds(t, cpus) as f64 > t.as_secs_f64() * cpus as f64);
            }
        }
    }

    #[test]
    fn check_says_the_limits_that_are_applied() {
        assert_eq!(
            described(),
            "no core dumps, 1024 open files, 16G file size, 1024 tasks in a user namespace of its own"
        );
    }
}
