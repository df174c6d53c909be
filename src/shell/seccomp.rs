//! The syscall allow-list: what wasmtime and wasmtime-wasi use once the
//! sandbox is built, and nothing else. See seccomp(2).
//!
//! - Everything not listed fails with `EPERM` ("operation not permitted",
//!   which callers report plainly) — among them `io_uring_*`, `userfaultfd`,
//!   `bpf`, `perf_event_open`, `ptrace`, `process_vm_*`, the key syscalls,
//!   `mount`, `umount2`, `pivot_root`, `unshare`, `setns`, `kexec_*`, module
//!   loading, `personality`, and every socket call.
//! - `clone` is allowed only without namespace flags; `clone3`, whose flags
//!   a filter cannot read, fails with `ENOSYS`, so the C library falls back
//!   to `clone` for new threads.
//! - `ioctl` is allowed but for `TIOCSTI` and `TIOCLINUX` (no input pushed
//!   into a terminal).
//! - The architecture is checked (a foreign one kills the process), and
//!   x32 syscall numbers match no rule, so they fail too.
//!
//! Installed last of all the layers, after `no_new_privs`; the engine's
//! threads, created later, inherit it. The list itself is in
//! `seccomp_list.rs`, compiled to BPF at build time.

use super::sys::SysError;

/// The filters, compiled to BPF by the build script from
/// `seccomp_list.rs`: `CLONE3_FILTER`, then `ALLOW_LIST`.
mod bpf {
    include!(concat!(env!("OUT_DIR"), "/seccomp_bpf.rs"));
}

/// Installs the two filters on this thread (and so on every thread it
/// creates), in their order.
pub fn install() -> Result<(), SysError> {
    for program in [&bpf::CLONE3_FILTER[..], &bpf::ALLOW_LIST[..]] {
        seccompiler::apply_filter(program).map_err(|_| SysError {
            call: "seccomp(SECCOMP_SET_MODE_FILTER)".into(),
            errno: nix::errno::Errno::last(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_filters_are_the_list_compiled() {
        let [clone3, allow_list] = super::super::seccomp_list::filters(std::env::consts::ARCH).unwrap();
        assert_eq!(clone3, bpf::CLONE3_FILTER);
        assert_eq!(allow_list, bpf::ALLOW_LIST);
        assert!(allow_list.len() > 100, "{} instructions", allow_list.len());
    }
}
