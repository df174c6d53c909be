//! The guest's WASI context: exactly what the policy grants, nothing from
//! the host's ambient authority (no inherited environment, no sockets).

use crate::policy::{Access, Policy};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A WASI context builder for `policy`, with `args` as the guest's argv.
///
/// Preopens are opened here, so a directory that vanished since the policy
/// was validated is an error, not a silently missing grant.
pub(crate) fn builder(policy: &Policy, args: &[String]) -> Result<WasiCtxBuilder, super::Error> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio()
        .allow_blocking_current_thread(true)
        .args(args)
        .envs(&policy.guest_env()?);
    for dir in &policy.dirs {
        let perms = match dir.access {
            Access::ReadOnly => FsPerms::ReadOnly,
            Access::ReadWrite => FsPerms::ReadWrite,
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| crate::policy::PolicyError::BadDir {
                setting: crate::policy::Setting::Dir(dir.access),
                host: dir.host.clone(),
                reason: format!("cannot open: {}", crate::say::error_line(&e)),
            })?;
    }
    Ok(wasi)
}
