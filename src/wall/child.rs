//! The sandboxed child's side of [`super::enter`]: steps 4-9 of
//! DESIGN.md, in order, then the word to the supervisor — what was
//! applied, or why setup failed (and the child ends with 125).

use super::channel::{Message, Sender};
use super::{Applied, Isolation, Layer, Prepared, SETUP_FAILED, Sandbox, SetupError, Steps, Syscalls};
use super::{idmap, landlock, privs, rlimits, rootfs, seccomp};
use crate::Policy;
use crate::sys::{self, SysError};
use idmap::IdMap;
use nix::sys::signal::{SigSet, Signal};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// In the child, just after the clone: builds the wall (steps 4-9) and
/// tells the supervisor what it applied; on a failing step, tells it why
/// and ends the process. A panic from here on ends the process with 125,
/// without unwinding: the caller's destructors are the original
/// process's to run.
///
/// # Safety
///
/// Every descriptor of the process but stdio, `keep` and the wall's own is
/// closed in step 8: nothing that owned one may be used or dropped in
/// this process afterwards ([`super::enter`]'s contract).
#[allow(unsafe_code)]
pub(super) unsafe fn sandbox(
    prepared: Prepared,
    isolation: Isolation,
    policy: &mut Policy,
    keep: Vec<OwnedFd>,
    syscalls: Syscalls,
) -> Sandbox {
    crate::say::end_on_panic();
    let Prepared {
        ids,
        host_root,
        grants,
        report: (report_read, report_write),
        go: (go_read, go_write),
        signals,
        steps,
        broker,
    } = prepared;
    drop((report_read, go_write));
    let broker = broker.map(|ends| {
        drop(ends.outside);
        ends.inside
    });
    let syscalls = match broker {
        Some(_) => syscalls.brokered(),
        None => syscalls,
    };
    let inside = Inside {
        ids,
        host_root,
        isolation: &isolation,
        signals,
        steps,
        report: report_write.as_raw_fd(),
        keep: &keep,
        broker: broker.as_ref().map(|fd| fd.as_raw_fd()),
    };
    // SAFETY: this function's own contract.
    let setup = unsafe { set_up(inside, policy, grants, go_read, syscalls) };
    // The parent learns the outcome of setup: what was applied, or why not.
    let mut sender = Sender::new(report_write);
    match setup {
        Ok(applied) => sender.send(&Message::Ready(applied)),
        Err(err) => {
            sender.send(&Message::SetupFailed(err.to_string()));
            sys::exit_now(SETUP_FAILED);
        }
    }
    Sandbox {
        isolation,
        sender,
        kept: keep,
        broker,
    }
}

/// What the child's setup steps share.
struct Inside<'a> {
    ids: IdMap,
    host_root: bool,
    isolation: &'a Isolation,
    signals: SigSet,
    steps: Steps,
    /// The write end of the channel to the supervisor.
    report: RawFd,
    keep: &'a [OwnedFd],
    /// The sandbox's end of the broker's channel.
    broker: Option<RawFd>,
}

/// 4-9, in the child: every step of the wall, in order.
///
/// # Safety
///
/// As [`sandbox`]'s: step 8 closes every descriptor but stdio and `keep`.
#[allow(unsafe_code)]
unsafe fn set_up(
    mut inside: Inside<'_>,
    policy: &mut Policy,
    grants: rootfs::Grants,
    go: OwnedFd,
    syscalls: Syscalls,
) -> Result<Applied, SetupError> {
    let applied = |layer| inside.isolation.applied.contains(&layer);
    let own_users = applied(Layer::User);
    // 4. Die with the parent; no core dumps or ptrace; signals act again.
    sys::check(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL), || {
        "prctl(PR_SET_PDEATHSIG)".into()
    })?;
    // Nothing of the caller's environment or argv is left to read.
    sys::scrub_args_and_env()?;
    wait_for_parent(go)?;
    inside.steps.done("the supervisor let go");
    // (2.) The id maps: one id, its own, written by the process itself
    // (root's by the parent, before `go`); root's saved uid 0 is gone.
    let ids = &inside.ids;
    if inside.host_root {
        let (uid, gid) = if own_users {
            (ids.inside_uid, ids.inside_gid)
        } else {
            (ids.host_uid, ids.host_gid)
        };
        drop_ids(uid, gid)?;
    } else if own_users {
        idmap::write_own(ids)?;
    }
    inside.steps.done("id maps");
    sys::check(nix::sys::prctl::set_dumpable(false), || {
        "prctl(PR_SET_DUMPABLE, 0)".into()
    })?;
    sys::check(inside.signals.thread_unblock(), || {
        "sigprocmask(SIG_UNBLOCK)".into()
    })?;
    sys::exit_on_termination_signals()?;
    // 5-6. Private mounts, tmpfs root, grants, /dev, pivot_root, /proc, old root gone, root read-only.
    if applied(Layer::Mount) {
        rootfs::apply(&rootfs::plan(policy, inside.host_root, own_users), &grants)?;
        inside
            .steps
            .done("mounts: empty root, grants, /dev, /proc, pivot_root");
        let paths: Vec<_> = (0..policy.dirs.len())
            .map(|i| rootfs::inside_path(policy, i))
            .collect();
        for (dir, path) in policy.dirs.iter_mut().zip(paths) {
            dir.host = path;
        }
    }
    drop(grants);
    // 7. Hostname, and `lo` up in the empty network namespace.
    if applied(Layer::Uts) {
        sys::check(nix::unistd::sethostname(&policy.hostname), || {
            format!("sethostname({:?})", policy.hostname)
        })?;
    }
    if applied(Layer::Net) {
        sys::interface_up("lo")?;
        inside.steps.done("hostname and lo");
    }
    // 8. Limits (the kernel's backstop for the timeout too); no descriptor of the caller's but stdio and `keep`; a session of its own.
    rlimits::apply(policy.memory, own_users, policy.timeout)?;
    inside.steps.done("rlimits");
    let keep: Vec<RawFd> = inside
        .keep
        .iter()
        .map(|fd| fd.as_raw_fd())
        .chain([inside.report])
        .chain(inside.broker)
        .collect();
    // SAFETY: `sandbox`'s contract: what owned the others is never used
    // or dropped in this process again.
    unsafe { sys::close_fds_except(&keep)? };
    inside.steps.done("descriptors closed");
    if !policy.keep_terminal {
        sys::check(nix::unistd::setsid(), || "setsid()".into())?;
    }
    // 9. No capability in any set, no way to gain one back, Landlock...
    privs::drop_all()?;
    inside.steps.done("capabilities dropped");
    let own: &[&str] = match syscalls.serves() {
        true => &[landlock::OWN_MEMORY],
        false => &[],
    };
    let landlock = landlock::restrict(policy, &rootfs::DEVICES, own)?;
    inside.steps.done("landlock");
    // ...and the syscall allow-list, last.
    seccomp::install(syscalls)?;
    inside.steps.done("seccomp");
    Ok(Applied {
        namespaces: inside.isolation.applied.clone(),
        missing: inside.isolation.missing.clone(),
        host_ids: (ids.host_uid, ids.host_gid),
        landlock,
        own_session: !policy.keep_terminal,
    })
}

/// In the child: waits until the parent has written the id maps, and makes
/// sure the parent is still alive now that its death would kill this
/// process. `go` is closed by the parent only when it exits.
fn wait_for_parent(go: OwnedFd) -> Result<(), SysError> {
    let mut go = std::fs::File::from(go);
    let mut byte = [0u8; 1];
    match go.read(&mut byte) {
        Ok(1) => {}
        _ => sys::exit_now(SETUP_FAILED),
    }
    let mut fds = [nix::poll::PollFd::new(go.as_fd(), nix::poll::PollFlags::POLLIN)];
    let ready = sys::check(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), || {
        "poll(go pipe)".into()
    })?;
    let hung_up = ready > 0
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLHUP));
    if hung_up {
        sys::exit_now(SETUP_FAILED);
    }
    Ok(())
}

/// Sets every uid and every gid of this process to `uid` and `gid`, and
/// checks none is left as it was: for root's child, whose saved uid was 0.
fn drop_ids(uid: u32, gid: u32) -> Result<(), SysError> {
    use nix::unistd::{Gid, Uid, getresuid, setresgid, setresuid};
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    sys::check(setresgid(gid, gid, gid), || format!("setresgid({gid})"))?;
    sys::check(setresuid(uid, uid, uid), || format!("setresuid({uid})"))?;
    let ids = sys::check(getresuid(), || "getresuid()".into())?;
    if [ids.real, ids.effective, ids.saved] != [uid; 3] {
        return Err(SysError {
            call: format!("setresuid({uid}): still {ids:?}"),
            errno: nix::errno::Errno::EPERM,
        });
    }
    Ok(())
}
