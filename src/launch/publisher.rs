//! Who names a file the sandbox wrote (a cache entry, `compile`'s
//! output) once the run says it was written whole: the caller's process,
//! or — when the caller is root, who is unprivileged by the time the run
//! ends — a helper forked while still root.

use crate::cache::Pending;
use crate::sys::{self, Fork};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

/// Who names a new file once the run says it was written: this process,
/// or, for root (who is unprivileged by then), a helper forked while still
/// root.
#[derive(Debug)]
pub enum Publisher {
    /// This process commits.
    Here(Pending),
    /// A helper process commits when told to.
    Helper {
        /// The helper.
        pid: nix::unistd::Pid,
        /// One byte: `c` to commit; closing it says no.
        tell: File,
    },
}

impl Publisher {
    /// A publisher for `pending`: a helper when this process is about to
    /// give up the rights it needs (`helper`), else this process. Call only
    /// while the process has a single thread.
    pub fn new(pending: Pending, helper: bool) -> std::io::Result<Publisher> {
        if !helper {
            return Ok(Publisher::Here(pending));
        }
        let os = |e: sys::SysError| std::io::Error::from_raw_os_error(e.errno as i32);
        let (read, write) = sys::pipe().map_err(os)?;
        match sys::clone(nix::sched::CloneFlags::empty()).map_err(os)? {
            Fork::Parent(pid) => {
                // The helper has its own descriptors of the unnamed file and
                // of the cache: this process's copies go.
                drop((read, pending));
                Ok(Publisher::Helper {
                    pid,
                    tell: File::from(write),
                })
            }
            Fork::Child => {
                crate::say::end_on_panic();
                // The helper holds nothing of the run but its two files (no
                // pipe of the caller's stays open because of it). It never
                // returns into the caller's frames, whose descriptors these
                // were.
                drop(write);
                let keep: Vec<_> = std::iter::once(read.as_raw_fd()).chain(pending.fds()).collect();
                // SAFETY: this copy of the process ends below without
                // returning into the frames whose values owned the closed
                // descriptors.
                #[allow(unsafe_code)]
                let _ = unsafe { sys::close_fds_except(&keep) };
                let mut byte = [0u8; 1];
                let told = File::from(read).read(&mut byte).is_ok_and(|n| n == 1) && byte[0] == b'c';
                let code = if told && pending.commit().is_err() { 1 } else { 0 };
                sys::exit_now(code)
            }
        }
    }

    /// Names the entry if `commit`, else lets it vanish; waits for a
    /// helper to finish. A failure costs only the next run's compilation.
    pub fn finish(self, commit: bool) {
        match self {
            Publisher::Here(pending) => {
                if commit {
                    let _ = pending.commit();
                }
            }
            Publisher::Helper { pid, mut tell } => {
                if commit {
                    let _ = tell.write_all(b"c");
                }
                drop(tell);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file is named only when the run said it was written whole. (The
    /// helper forked for root needs a single-threaded process: root's runs
    /// in `tests/all/cache.rs` use it.)
    #[test]
    fn a_file_is_named_only_when_told() {
        let dir = tempfile::tempdir().unwrap();
        for commit in [false, true] {
            let name = format!("out-{commit}");
            let pending = Pending::new(dir.path(), &name, 0o644).unwrap();
            pending.sink().unwrap().write_all(b"code").unwrap();
            Publisher::new(pending, false).unwrap().finish(commit);
            let named = std::fs::read(dir.path().join(&name)).ok();
            assert_eq!(named.as_deref(), commit.then_some(&b"code"[..]), "{name}");
        }
    }
}
