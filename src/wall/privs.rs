//! Giving up privilege: every capability in every set, and the right to
//! gain any back (`PR_SET_NO_NEW_PRIVS`). See capabilities(7), prctl(2).
//!
//! The first process of a new user namespace holds every capability inside
//! it; the outer wall's setup needs some of them (mounts, hostname). Once
//! it is built, the sandbox keeps none.

use super::sys::{self, SysError, check};

/// Empties the bounding, ambient, inheritable, permitted and effective
/// sets, then sets `no_new_privs`.
pub fn drop_all() -> Result<(), SysError> {
    sys::drop_capabilities()?;
    check(nix::sys::prctl::set_no_new_privs(), || {
        "prctl(PR_SET_NO_NEW_PRIVS, 1)".into()
    })
}
