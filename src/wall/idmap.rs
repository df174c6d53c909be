//! User and group ids: who the sandboxed process is, inside and outside.
//!
//! The sandboxed process writes its own `setgroups` (`deny`), `uid_map`
//! and `gid_map` (user_namespaces(7)).
//! Each map has one line: the id inside maps to the caller's own id
//! outside, so files the guest creates in a read-write grant belong to the
//! caller, and the guest has no other id to become.
//!
//! Root is the exception: a process with host uid 0 keeps owner rights over
//! root's files and sysctls even without capabilities, so a sandbox started
//! by root runs as [`ROOT_SANDBOX_ID`]. Its grants are id-mapped mounts
//! (`mount_setattr(MOUNT_ATTR_IDMAP)`, Linux 5.12) in which root's files
//! appear as that id's: the guest can use them, and what it creates there
//! is owned by root on disk.

use super::sys::{self, Fork, SysError};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::OwnedFd;

/// The host uid and gid a sandbox started by root runs as: `nobody`. Root
/// keeps owner rights over root-owned files and sysctls even without
/// capabilities, so the guest's process never holds host uid 0.
pub const ROOT_SANDBOX_ID: u32 = 65534;

/// One process's id mapping: a single uid and a single gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// The uid inside the sandbox.
    pub inside_uid: u32,
    /// The gid inside the sandbox.
    pub inside_gid: u32,
    /// The host uid it stands for.
    pub host_uid: u32,
    /// The host gid it stands for.
    pub host_gid: u32,
}

impl IdMap {
    /// The mapping for a caller with effective ids `host_uid`/`host_gid`;
    /// the ids inside default to the same numbers.
    pub fn new(host_uid: u32, host_gid: u32, inside_uid: Option<u32>, inside_gid: Option<u32>) -> IdMap {
        IdMap {
            inside_uid: inside_uid.unwrap_or(host_uid),
            inside_gid: inside_gid.unwrap_or(host_gid),
            host_uid,
            host_gid,
        }
    }

    /// The mapping for a caller with effective ids `euid`/`egid`: the caller
    /// itself, or [`ROOT_SANDBOX_ID`] when the caller is `host_root`. The
    /// ids inside default to the caller's.
    pub fn for_caller(
        euid: u32,
        egid: u32,
        host_root: bool,
        inside_uid: Option<u32>,
        inside_gid: Option<u32>,
    ) -> IdMap {
        let (host_uid, host_gid) = if host_root {
            (ROOT_SANDBOX_ID, ROOT_SANDBOX_ID)
        } else {
            (euid, egid)
        };
        IdMap {
            inside_uid: inside_uid.unwrap_or(euid),
            inside_gid: inside_gid.unwrap_or(egid),
            host_uid,
            host_gid,
        }
    }

    /// The text of `uid_map`.
    pub fn uid_map(&self) -> String {
        format!("{} {} 1\n", self.inside_uid, self.host_uid)
    }

    /// The text of `gid_map`.
    pub fn gid_map(&self) -> String {
        format!("{} {} 1\n", self.inside_gid, self.host_gid)
    }
}

/// Writes `setgroups`, `uid_map` and `gid_map` of process `pid`, which is
/// in a new user namespace with no mapping yet.
pub fn write(pid: Pid, map: &IdMap) -> Result<(), SysError> {
    let proc = format!("/proc/{pid}");
    write_file(&format!("{proc}/setgroups"), "deny\n")?;
    write_file(&format!("{proc}/uid_map"), &map.uid_map())?;
    write_file(&format!("{proc}/gid_map"), &map.gid_map())
}

/// Whether this process is root of the host: uid 0 in the initial user
/// namespace (whose map is the identity over every id). Uid 0 inside some
/// other user namespace is an ordinary user of the host.
pub fn is_host_root() -> bool {
    nix::unistd::geteuid().is_root()
        && std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// A user namespace whose only mapping is `map`, held by its fd: the
/// mapping an id-mapped mount applies. A short-lived child creates it and
/// exits once the fd is open.
pub fn user_namespace(map: &IdMap) -> Result<OwnedFd, SysError> {
    let (hold_read, hold_write) = sys::pipe()?;
    match sys::clone(nix::sched::CloneFlags::CLONE_NEWUSER)? {
        Fork::Child => {
            drop(hold_write);
            let _ = std::fs::File::from(hold_read).read(&mut [0u8]);
            sys::exit_now(0)
        }
        Fork::Parent(pid) => {
            drop(hold_read);
            let ns = write(pid, map).and_then(|()| {
                let path = format!("/proc/{pid}/ns/user");
                std::fs::File::open(&path)
                    .map(OwnedFd::from)
                    .map_err(|e| SysError::io(format!("open({path:?})"), &e))
            });
            drop(hold_write);
            let _ = nix::sys::wait::waitpid(pid, None);
            ns
        }
    }
}

/// Writes this process's own maps. A process that changed its ids is not
/// dumpable, and then cannot open its own `/proc/self` files: it is made
/// dumpable for the writes (the caller makes it non-dumpable again).
pub fn write_own(map: &IdMap) -> Result<(), SysError> {
    sys::check(nix::sys::prctl::set_dumpable(true), || {
        "prctl(PR_SET_DUMPABLE, 1)".into()
    })?;
    write_file("/proc/self/setgroups", "deny\n")?;
    write_file("/proc/self/uid_map", &map.uid_map())?;
    write_file("/proc/self/gid_map", &map.gid_map())
}

fn write_file(path: &str, text: &str) -> Result<(), SysError> {
    std::fs::write(path, text)
        .map_err(|e| SysError::io(format!("write({path:?}, {:?})", text.trim_end()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_maps_to_itself_by_default() {
        let map = IdMap::new(1000, 100, None, None);
        assert_eq!(map.uid_map(), "1000 1000 1\n");
        assert_eq!(map.gid_map(), "100 100 1\n");
    }

    #[test]
    fn root_never_maps_to_host_root() {
        let map = IdMap::for_caller(0, 0, true, None, None);
        assert_eq!(map.uid_map(), "0 65534 1\n");
        assert_eq!(map.gid_map(), "0 65534 1\n");
        let map = IdMap::for_caller(0, 0, true, Some(1000), Some(1000));
        assert_eq!(map.uid_map(), "1000 65534 1\n");
        let user = IdMap::for_caller(1000, 100, false, None, None);
        assert_eq!(user, IdMap::new(1000, 100, None, None));
        // Root of a nested user namespace is an ordinary user of the host.
        let nested = IdMap::for_caller(0, 0, false, None, None);
        assert_eq!(nested.uid_map(), "0 0 1\n");
    }

    #[test]
    fn inside_ids_can_be_chosen() {
        let map = IdMap::new(1000, 100, Some(0), Some(0));
        assert_eq!(map.uid_map(), "0 1000 1\n");
        assert_eq!(map.gid_map(), "0 100 1\n");
    }
}
