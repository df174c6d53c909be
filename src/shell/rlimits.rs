//! Resource limits of the sandboxed process (getrlimit(2)):
//!
//! | limit | value | why |
//! | --- | --- | --- |
//! | `RLIMIT_CORE` | 0 | no core dump can leak the sandbox's memory |
//! | `RLIMIT_NOFILE` | 1024 (or lower if the caller's is) | a guest cannot exhaust the host's file table |
//! | `RLIMIT_FSIZE` | 16 GiB (or lower) | no single file fills the disk; an over-long write fails with `EFBIG` (a trap, or an error the guest sees), never a fatal `SIGXFSZ` |
//! | `RLIMIT_DATA` | with `--memory M` only: M + 1 GiB | the whole process is bounded, not just linear memory |
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
//! A limit is only ever lowered: if the caller's limit is already lower,
//! it stays.

use super::sys::{SysError, check};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The limits applied, as (resource, value).
pub const LIMITS: [(Resource, u64); 3] = [
    (Resource::RLIMIT_CORE, 0),
    (Resource::RLIMIT_NOFILE, 1024),
    (Resource::RLIMIT_FSIZE, 16 << 30),
];

/// What the engine may use besides the guest's linear memory.
pub const ENGINE_DATA: u64 = 1 << 30;

/// Lowers each of [`LIMITS`], soft and hard, and with a `memory` limit,
/// `RLIMIT_DATA` to it plus [`ENGINE_DATA`].
pub fn apply(memory: Option<u64>) -> Result<(), SysError> {
    let data = memory.map(|m| (Resource::RLIMIT_DATA, m.saturating_add(ENGINE_DATA)));
    for (resource, value) in LIMITS.into_iter().chain(data) {
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
