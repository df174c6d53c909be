//! Resource limits of the sandboxed process (getrlimit(2)):
//!
//! | limit | value | why |
//! | --- | --- | --- |
//! | `RLIMIT_CORE` | 0 | no core dump can leak the sandbox's memory |
//! | `RLIMIT_NOFILE` | 1024 (or lower if the caller's is) | a guest cannot exhaust the host's file table |
//! | `RLIMIT_FSIZE` | 16 GiB (or lower) | no single file fills the disk; an over-long write fails with `EFBIG` (wasmtime-wasi makes that a trap: exit 134) |
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

/// Lowers each of [`LIMITS`], soft and hard.
pub fn apply() -> Result<(), SysError> {
    for (resource, value) in LIMITS {
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
