//! The sandbox's filesystem: an empty tmpfs root holding only the granted
//! directories, a minimal `/dev` and a fresh `/proc`.
//!
//! [`plan`] turns a policy into a list of [`MountOp`]s — plain data, tested
//! without privilege — and [`apply`] performs them in order, inside the new
//! mount namespace. The sequence follows bubblewrap: a tmpfs becomes the
//! root by `pivot_root(2)` with the old root kept at `/oldroot`; granted
//! paths are bound from there; then the old root is detached.
//! See mount(2), pivot_root(2), mount_namespaces(7), proc(5).

use super::sys::{SysError, check};
use crate::policy::{Access, Policy};
use nix::mount::{MntFlags, MsFlags};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Where the tmpfs that becomes the root is first mounted. It only has to
/// exist; in the private mount namespace nothing else sees the mount.
pub const STAGING: &str = "/tmp";
/// Where the old root stays, under the new one, until it is detached
/// (the policy refuses a grant there).
pub use crate::policy::OLD_ROOT;

/// Device nodes the sandbox gets, bound from the host's.
pub const DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];
/// The sysctl that keeps the sandbox from creating user namespaces.
pub const MAX_USER_NAMESPACES: &str = "/proc/sys/user/max_user_namespaces";

/// One step of building the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// Make every mount below `/` private, so nothing propagates back out.
    MakePrivate,
    /// Mount an empty tmpfs at `target`.
    Tmpfs {
        /// Where.
        target: PathBuf,
        /// Mount options, e.g. `mode=0755,size=1m`.
        options: String,
    },
    /// `pivot_root(new_root, new_root + put_old)`, then `chdir("/")`.
    PivotRoot {
        /// The directory that becomes `/`.
        new_root: PathBuf,
        /// Where the old root goes, relative to the new one.
        put_old: PathBuf,
    },
    /// Create a directory (and its parents), or an empty file.
    Create {
        /// The path to create.
        path: PathBuf,
        /// A file (a mount point for a device) or a directory.
        file: bool,
    },
    /// Bind `source` at `target`, then remount it with the flags given
    /// (keeping any the kernel has locked); no remount when they are empty.
    Bind {
        /// What to bind (a path under the old root).
        source: PathBuf,
        /// Where.
        target: PathBuf,
        /// `MS_RDONLY` and friends to apply after binding.
        flags: MsFlags,
    },
    /// Mount grant number `grant` at `target`: the directory at `source`
    /// (under the old root), opened without following any link and
    /// checked to be the very directory the supervisor opened, is copied
    /// with every mount below it (`open_tree(OPEN_TREE_CLONE|AT_RECURSIVE)`),
    /// made nosuid, nodev and, when `read_only`, read-only, all the way
    /// down (`mount_setattr(AT_RECURSIVE)`), and attached.
    Grant {
        /// Index of the grant in the policy's `dirs`.
        grant: usize,
        /// The grant's path under the old root.
        source: PathBuf,
        /// Where.
        target: PathBuf,
        /// Read-only, recursively.
        read_only: bool,
    },
    /// Attach the detached, id-mapped copy of grant number `grant` (made
    /// by the parent, see `sys::idmapped_tree`) at `target`.
    Attach {
        /// Index of the grant in the policy's `dirs`.
        grant: usize,
        /// Where.
        target: PathBuf,
    },
    /// Mount a fresh procfs at `target`, read-only, holding only the
    /// processes (`subset=pid`): no `/proc/sys`, `/proc/kcore`,
    /// `/proc/keys`, `/proc/sysrq-trigger` or any other file about the host.
    Proc {
        /// Where.
        target: PathBuf,
    },
    /// Write `contents` to the file at `path` (a sysctl of the sandbox's
    /// own namespaces).
    Write {
        /// The file.
        path: PathBuf,
        /// What to write.
        contents: String,
    },
    /// Detach the mount at `target` and remove its directory.
    Detach {
        /// Where.
        target: PathBuf,
    },
    /// Remount the mount at `target` with `flags` added to those it has.
    Remount {
        /// Which mount.
        target: PathBuf,
        /// `MS_RDONLY` and friends.
        flags: MsFlags,
    },
}

/// Where read-only grants inside read-write ones are mounted, apart.
pub const APART: &str = "/.grants";

/// Where grant number `index` of `policy` (canonical paths) is mounted
/// inside the sandbox: at its own canonical path — except a read-only
/// grant at or inside a read-write one, which goes apart, to
/// `/.grants/INDEX`. Landlock's rights are inherited down a path, so
/// beneath the read-write grant it would be writable at the Landlock
/// layer; apart, Landlock gives it exactly read access. Its place inside
/// the read-write grant is covered by an empty read-only directory.
/// WASI guests do not see the difference: each grant is its own preopen.
pub fn inside_path(policy: &Policy, index: usize) -> PathBuf {
    match apart(policy, index) {
        Some(_) => Path::new(APART).join(index.to_string()),
        None => policy.dirs[index].host.clone(),
    }
}

/// For a grant mounted apart: whether its place inside a read-write grant
/// needs a cover (it lies strictly inside one); `None` when it is mounted
/// at its own path.
fn apart(policy: &Policy, index: usize) -> Option<bool> {
    let dir = &policy.dirs[index];
    if dir.access != Access::ReadOnly {
        return None;
    }
    let outer = policy.dirs.iter().filter(|o| o.access == Access::ReadWrite);
    let mut found = None;
    for rw in outer.filter(|o| dir.host.starts_with(&o.host)) {
        found = Some(found.unwrap_or(false) || rw.host != dir.host);
    }
    found
}

/// The mount operations that build the sandbox's root for `policy`, whose
/// directories are already canonical (see `Policy::resolve`). With
/// `idmapped`, grants are attached from id-mapped copies the parent made
/// instead of bound from the old root. `own_users` says the sandbox has a
/// user namespace of its own (it has, unless degraded).
pub fn plan(policy: &Policy, idmapped: bool, own_users: bool) -> Vec<MountOp> {
    let old = PathBuf::from(OLD_ROOT);
    let under_old = |p: &Path| old.join(p.strip_prefix("/").unwrap_or(p));
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let mut ops = Vec::new();
    if own_users {
        // No user namespace may be created inside the sandbox's, even once
        // its capabilities are gone (user_namespaces(7): the limit is per
        // namespace). Written through the host's procfs, which the fresh
        // one will not show: user sysctls are those of the writer's own
        // user namespace, whichever procfs they are reached through — so
        // without one of its own, the host's limit would be the one written.
        ops.push(MountOp::Write {
            path: MAX_USER_NAMESPACES.into(),
            contents: "0\n".into(),
        });
    }
    ops.extend([
        MountOp::MakePrivate,
        MountOp::Tmpfs {
            target: STAGING.into(),
            options: "mode=0755,size=1m".into(),
        },
        MountOp::PivotRoot {
            new_root: STAGING.into(),
            put_old: OLD_ROOT.trim_start_matches('/').into(),
        },
    ]);
    // Granted directories, shallowest first, so a grant inside another is
    // mounted on top of it.
    let mut dirs: Vec<_> = policy.dirs.iter().enumerate().collect();
    dirs.sort_by_key(|(_, d)| d.host.components().count());
    let mut covers = Vec::new();
    for (grant, dir) in dirs {
        let target = inside_path(policy, grant);
        if apart(policy, grant) == Some(true) {
            // Create is a no-op here: the directory is the grant itself,
            // seen through the read-write grant around it.
            ops.push(MountOp::Create {
                path: dir.host.clone(),
                file: false,
            });
            ops.push(MountOp::Tmpfs {
                target: dir.host.clone(),
                options: "mode=0755,size=16k,nr_inodes=256".into(),
            });
            covers.push(dir.host.clone());
        }
        ops.push(MountOp::Create {
            path: target.clone(),
            file: false,
        });
        ops.push(if idmapped {
            MountOp::Attach { grant, target }
        } else {
            MountOp::Grant {
                grant,
                source: under_old(&dir.host),
                target,
                read_only: dir.access == Access::ReadOnly,
            }
        });
    }
    // The covers become read-only once what lies inside them is mounted.
    for cover in covers {
        ops.push(MountOp::Remount {
            target: cover,
            flags: safe | MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC,
        });
    }
    for dev in DEVICES {
        ops.push(MountOp::Create {
            path: dev.into(),
            file: true,
        });
        ops.push(MountOp::Bind {
            source: under_old(Path::new(dev)),
            target: dev.into(),
            // Read-only: the device still reads and writes (that is the
            // driver's), but its host inode's times and mode cannot be
            // changed through it (utimensat gets EROFS).
            flags: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        });
    }
    ops.push(MountOp::Create {
        path: "/proc".into(),
        file: false,
    });
    ops.push(MountOp::Proc {
        target: "/proc".into(),
    });
    ops.push(MountOp::Detach { target: old });
    ops.push(MountOp::Remount {
        target: "/".into(),
        flags: safe | MsFlags::MS_RDONLY,
    });
    ops
}

/// The granted directories as the supervisor opened them, before the
/// walls, and (for root) their id-mapped copies.
pub struct Grants {
    /// Each grant's directory, `O_PATH`, in the policy's order.
    pub opened: Vec<OwnedFd>,
    /// The id-mapped copies that `Attach` names (root only).
    pub trees: Vec<OwnedFd>,
}

/// Opens each granted directory of `policy` (canonical paths) with
/// `O_PATH`, refusing any symbolic link on the way (`RESOLVE_NO_SYMLINKS`):
/// one that appeared since the path was resolved would change the grant.
/// What the sandbox mounts is checked to be what is opened here.
pub fn open_grants(policy: &Policy) -> Result<Vec<OwnedFd>, SysError> {
    let grants = policy.dirs.iter().map(|dir| {
        check(open_dir_without_links(&dir.host), || {
            format!(
                "open grant {:?} (O_PATH, RESOLVE_NO_SYMLINKS: a link in it since it was resolved?)",
                dir.host
            )
        })
    });
    grants.collect()
}

/// The directory at `path`, `O_PATH`, reached without following any
/// symbolic link (`RESOLVE_NO_SYMLINKS`).
fn open_dir_without_links(path: &Path) -> nix::Result<OwnedFd> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    openat2(nix::fcntl::AT_FDCWD, path, how)
}

/// Performs `ops` in order, stopping at the first failure.
pub fn apply(ops: &[MountOp], grants: &Grants) -> Result<(), SysError> {
    for op in ops {
        apply_one(op, grants)?;
    }
    Ok(())
}

fn apply_one(op: &MountOp, grants: &Grants) -> Result<(), SysError> {
    use nix::mount::mount;
    const NONE: Option<&str> = None;
    match op {
        MountOp::MakePrivate => check(
            mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE),
            || "mount(\"/\", MS_REC|MS_PRIVATE)".into(),
        ),
        MountOp::Tmpfs { target, options } => {
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            check(
                mount(
                    Some("tmpfs"),
                    target,
                    Some("tmpfs"),
                    flags,
                    Some(options.as_str()),
                ),
                || format!("mount(tmpfs, {target:?}, {options:?})"),
            )
        }
        MountOp::PivotRoot { new_root, put_old } => {
            let put_old_full = new_root.join(put_old);
            std::fs::create_dir(&put_old_full).map_err(|e| io_error("mkdir", &put_old_full, e))?;
            check(nix::unistd::pivot_root(new_root, &put_old_full), || {
                format!("pivot_root({new_root:?}, {put_old_full:?})")
            })?;
            check(nix::unistd::chdir("/"), || "chdir(\"/\")".into())
        }
        MountOp::Create { path, file } => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error("mkdir", parent, e))?;
            }
            let made = if *file {
                std::fs::File::create(path).map(drop)
            } else {
                std::fs::create_dir_all(path)
            };
            made.map_err(|e| io_error(if *file { "create" } else { "mkdir" }, path, e))
        }
        MountOp::Bind {
            source,
            target,
            flags,
        } => {
            check(
                mount(
                    Some(source),
                    target,
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                ),
                || format!("mount({source:?}, {target:?}, MS_BIND|MS_REC)"),
            )?;
            if flags.is_empty() {
                return Ok(());
            }
            remount(target, *flags)
        }
        MountOp::Grant {
            grant,
            source,
            target,
            read_only,
        } => {
            let found = check(open_dir_without_links(source), || {
                format!("open {source:?} (O_PATH, RESOLVE_NO_SYMLINKS)")
            })?;
            let id = |fd: &OwnedFd, what: &str| {
                check(nix::sys::stat::fstat(fd), || format!("fstat({what})")).map(|st| (st.st_dev, st.st_ino))
            };
            if id(&found, &source.display().to_string())? != id(&grants.opened[*grant], "the grant")? {
                return Err(SysError {
                    call: format!("mount grant {source:?}: not the directory resolved before the walls"),
                    errno: nix::errno::Errno::ESTALE,
                });
            }
            let tree = super::sys::clone_tree(&found, source, *read_only)?;
            super::sys::attach(&tree, target)
        }
        MountOp::Attach { grant, target } => super::sys::attach(&grants.trees[*grant], target),
        MountOp::Proc { target } => check(
            mount(
                Some("proc"),
                target,
                Some("proc"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("subset=pid"),
            ),
            || format!("mount(proc, {target:?}, MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, \"subset=pid\")"),
        )
        .map_err(|err| masked_proc(err, nix::errno::Errno::EPERM)),
        MountOp::Write { path, contents } => std::fs::write(path, contents)
            .map_err(|e| io_error("write", path, e))
            .map_err(|err| match path.starts_with("/proc") {
                true => masked_proc(err, nix::errno::Errno::EROFS),
                false => err,
            }),
        MountOp::Detach { target } => {
            check(nix::mount::umount2(target, MntFlags::MNT_DETACH), || {
                format!("umount2({target:?}, MNT_DETACH)")
            })?;
            std::fs::remove_dir(target).map_err(|e| io_error("rmdir", target, e))
        }
        MountOp::Remount { target, flags } => remount(target, *flags),
    }
}

/// Remounts the bind mount at `target` with `flags`, plus the flags it
/// already has: in a user namespace the kernel refuses to clear flags it
/// locked when the mount was copied from a more privileged namespace.
fn remount(target: &Path, flags: MsFlags) -> Result<(), SysError> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let current = check(statvfs(target), || format!("statvfs({target:?})"))?.flags();
    let mut keep = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(st) {
            keep |= ms;
        }
    }
    let all = flags | keep | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    check(
        nix::mount::mount(None::<&str>, target, None::<&str>, all, None::<&str>),
        || format!("mount({target:?}, MS_REMOUNT|{:?})", flags | keep),
    )
}

/// `err`, with a word on how to run wsandbox in a container when it is
/// `errno`: what a container's runtime makes of procfs (parts of `/proc`
/// masked, `/proc/sys` read-only) keeps the sandbox from mounting its own.
fn masked_proc(mut err: SysError, errno: nix::errno::Errno) -> SysError {
    if err.errno == errno {
        err.call.push_str(
            " (in a container, /proc is masked: podman needs --security-opt unmask=/proc/*, \
             Kubernetes procMount: Unmasked)",
        );
    }
    err
}

fn io_error(call: &str, path: &Path, e: std::io::Error) -> SysError {
    SysError::io(format!("{call}({path:?})"), &e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DirGrant;

    fn policy(dirs: &[(&str, Access)]) -> Policy {
        Policy {
            dirs: dirs
                .iter()
                .map(|(host, access)| DirGrant {
                    host: host.into(),
                    guest: host.to_string(),
                    access: *access,
                })
                .collect(),
            ..Policy::default()
        }
    }

    fn binds(ops: &[MountOp]) -> Vec<(String, String, MsFlags)> {
        ops.iter()
            .filter_map(|op| match op {
                MountOp::Bind {
                    source,
                    target,
                    flags,
                } => Some((source.display().to_string(), target.display().to_string(), *flags)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn root_is_a_tmpfs_pivoted_first_and_read_only_last() {
        let ops = plan(&Policy::default(), false, true);
        assert!(matches!(&ops[0], MountOp::Write { .. }));
        assert_eq!(ops[1], MountOp::MakePrivate);
        assert!(matches!(&ops[2], MountOp::Tmpfs { target, .. } if target == Path::new(STAGING)));
        assert!(matches!(&ops[3], MountOp::PivotRoot { .. }));
        assert_eq!(
            ops[ops.len() - 2],
            MountOp::Detach {
                target: OLD_ROOT.into()
            }
        );
        assert_eq!(
            ops[ops.len() - 1],
            MountOp::Remount {
                target: "/".into(),
                flags: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV
            }
        );
    }

    #[test]
    fn nothing_of_the_host_but_devices_without_grants() {
        let ops = plan(&Policy::default(), false, true);
        let from_host: Vec<_> = binds(&ops)
            .into_iter()
            .filter(|(source, ..)| source.starts_with(OLD_ROOT))
            .map(|(_, target, _)| target)
            .collect();
        assert_eq!(from_host, DEVICES);
    }

    fn grants(ops: &[MountOp]) -> Vec<(usize, String, String, bool)> {
        ops.iter()
            .filter_map(|op| match op {
                MountOp::Grant {
                    grant,
                    source,
                    target,
                    read_only,
                } => Some((
                    *grant,
                    source.display().to_string(),
                    target.display().to_string(),
                    *read_only,
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn grants_are_mounted_from_the_old_root_with_their_access() {
        let ops = plan(
            &policy(&[
                ("/srv/data/out", Access::ReadWrite),
                ("/srv/data", Access::ReadOnly),
            ]),
            false,
            true,
        );
        assert_eq!(
            grants(&ops),
            [
                (1, "/oldroot/srv/data".into(), "/srv/data".into(), true),
                (0, "/oldroot/srv/data/out".into(), "/srv/data/out".into(), false),
            ],
            "the outer grant first, so the inner one is mounted on top"
        );
        // Every grant is mounted after the pivot and before the old root goes.
        let pivot = ops
            .iter()
            .position(|op| matches!(op, MountOp::PivotRoot { .. }))
            .unwrap();
        let detach = ops
            .iter()
            .position(|op| matches!(op, MountOp::Detach { .. }))
            .unwrap();
        for (i, op) in ops.iter().enumerate() {
            if matches!(op, MountOp::Grant { .. } | MountOp::Bind { .. }) {
                assert!(pivot < i && i < detach, "{op:?}");
            }
        }
    }

    #[test]
    fn a_read_only_grant_inside_a_read_write_one_is_mounted_apart_and_covered() {
        let p = policy(&[
            ("/srv/work", Access::ReadWrite),
            ("/srv/work/src", Access::ReadOnly),
            ("/srv/work/src/gen", Access::ReadWrite),
            ("/srv/other", Access::ReadOnly),
        ]);
        let ops = plan(&p, false, true);
        assert_eq!(
            grants(&ops),
            [
                (0, "/oldroot/srv/work".into(), "/srv/work".into(), false),
                (3, "/oldroot/srv/other".into(), "/srv/other".into(), true),
                (1, "/oldroot/srv/work/src".into(), "/.grants/1".into(), true),
                (
                    2,
                    "/oldroot/srv/work/src/gen".into(),
                    "/srv/work/src/gen".into(),
                    false
                ),
            ]
        );
        // No rule of Landlock's above it gives write access: no read-write
        // grant's inside path is a prefix of a read-only grant's.
        for ro in (0..p.dirs.len()).filter(|&i| p.dirs[i].access == Access::ReadOnly) {
            for rw in (0..p.dirs.len()).filter(|&i| p.dirs[i].access == Access::ReadWrite) {
                assert!(
                    !inside_path(&p, ro).starts_with(inside_path(&p, rw)),
                    "{ro} in {rw}"
                );
            }
        }
        // Its place in the read-write grant: an empty tmpfs, mounted after
        // the read-write grant and before what lies inside it, made
        // read-only once that is mounted.
        let at = |want: &dyn Fn(&MountOp) -> bool| ops.iter().position(want).unwrap();
        let cover =
            at(&|op| matches!(op, MountOp::Tmpfs { target, .. } if target == Path::new("/srv/work/src")));
        let outer = at(&|op| matches!(op, MountOp::Grant { grant: 0, .. }));
        let inner = at(&|op| matches!(op, MountOp::Grant { grant: 2, .. }));
        let sealed = at(
            &|op| matches!(op, MountOp::Remount { target, flags } if target == Path::new("/srv/work/src") && flags.contains(MsFlags::MS_RDONLY)),
        );
        assert!(outer < cover && cover < inner && inner < sealed, "{ops:#?}");
        // The same directory granted both ways: the read-only grant apart,
        // and nothing covers the read-write one.
        let both = policy(&[("/srv/a", Access::ReadOnly), ("/srv/a", Access::ReadWrite)]);
        assert_eq!(inside_path(&both, 0), Path::new("/.grants/0"));
        assert_eq!(inside_path(&both, 1), Path::new("/srv/a"));
        assert!(
            !plan(&both, false, true)
                .iter()
                .any(|op| matches!(op, MountOp::Tmpfs { target, .. } if target.starts_with("/srv")))
        );
        // Read-write inside read-only needs nothing of the kind.
        let rw_in_ro = policy(&[("/srv/a", Access::ReadOnly), ("/srv/a/b", Access::ReadWrite)]);
        assert_eq!(inside_path(&rw_in_ro, 0), Path::new("/srv/a"));
        assert_eq!(inside_path(&rw_in_ro, 1), Path::new("/srv/a/b"));
    }

    #[test]
    fn devices_are_bound_read_only() {
        let ops = plan(&Policy::default(), false, true);
        for (_, target, flags) in binds(&ops) {
            assert!(
                flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC),
                "{target}"
            );
            assert!(
                !flags.contains(MsFlags::MS_NODEV),
                "{target}: a device must stay one"
            );
        }
    }

    #[test]
    fn nested_user_namespaces_are_forbidden_before_anything_is_mounted() {
        let ops = plan(&Policy::default(), false, true);
        assert_eq!(
            ops[0],
            MountOp::Write {
                path: MAX_USER_NAMESPACES.into(),
                contents: "0\n".into()
            },
            "through the host's procfs, before the pivot"
        );
        // Without a user namespace of its own, the sysctl would be the host's.
        assert!(
            !plan(&Policy::default(), false, false)
                .iter()
                .any(|op| matches!(op, MountOp::Write { .. }))
        );
    }

    #[test]
    fn idmapped_grants_are_attached_not_bound() {
        let ops = plan(
            &policy(&[("/srv/b/c", Access::ReadWrite), ("/srv/a", Access::ReadOnly)]),
            true,
            true,
        );
        let attached: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                MountOp::Attach { grant, target } => Some((*grant, target.display().to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(attached, [(1, "/srv/a".to_string()), (0, "/srv/b/c".to_string())]);
        assert!(grants(&ops).is_empty());
        assert!(binds(&ops).iter().all(|(s, ..)| !s.starts_with("/oldroot/srv")));
    }

    #[test]
    fn proc_is_fresh_and_nothing_is_mounted_inside_it() {
        let ops = plan(&Policy::default(), false, true);
        let proc = ops
            .iter()
            .position(|op| {
                *op == MountOp::Proc {
                    target: "/proc".into(),
                }
            })
            .unwrap();
        let pivot = ops
            .iter()
            .position(|op| matches!(op, MountOp::PivotRoot { .. }))
            .unwrap();
        assert!(pivot < proc);
        // subset=pid leaves nothing about the host in it to mask.
        assert!(binds(&ops).iter().all(|(_, t, _)| !t.starts_with("/proc")));
    }
}
