//! The compilation cache: the machine code of modules compiled before, so
//! that a second run of the same module skips Cranelift.
//!
//! **Where.** `$XDG_CACHE_HOME/wsandbox`, else `~/.cache/wsandbox`, created
//! mode 0700. A cache that cannot be created or read is not used (the run
//! compiles, as with `--no-cache`).
//!
//! **Key.** The SHA-256 of the engine settings that shape the code
//! ([`crate::engine::settings`]: the versions of wsandbox and wasmtime,
//! the target and its CPU features, fuel metering) and of the module's
//! bytes. An
//! entry is named by its key, so a module or setting that changes never
//! meets an old entry.
//!
//! **Entries.** A header (magic, payload length, SHA-256 of the payload)
//! and wasmtime's serialized artifact. Reading checks all three, so a
//! truncated or corrupted entry is never handed to the engine; wasmtime
//! then checks the artifact's own version, settings and CPU features, so a
//! stale one is refused too. Either way the module is compiled afresh and
//! the entry replaced.
//!
//! **Where compilation happens.** Inside the outer wall, after the
//! lockdown, like everything that touches the guest's bytes: a compiler
//! bug that a crafted module triggers lands in the sandbox. The parent,
//! outside, reads an entry before the sandbox exists (the sandbox cannot
//! see the cache) and hands it in; on a miss it hands in an unnamed file
//! (`O_TMPFILE`) in the cache directory, which the sandbox writes the fresh
//! code to and closes *before the guest's first instruction*, then says so.
//! Only then does the parent give the file its name (`linkat` + `rename`,
//! atomic): a guest that takes over its process later can neither reach
//! the file nor claim a write it did not make, because the parent believes
//! only the first account of the load, sent before the guest ran. Root's
//! runs give up root before the sandbox exists, so a small helper forked
//! first, still root, does the naming for them.

use crate::engine::Module;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The first bytes of every entry; the digit is the format's version.
const MAGIC: &[u8; 16] = b"wsandbox-cache1\n";
/// Magic, payload length, payload SHA-256.
const HEADER: usize = 16 + 8 + 32;

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The user's cache: `$XDG_CACHE_HOME/wsandbox` or `~/.cache/wsandbox`,
    /// created if missing; `None` if there is no such place or it cannot be
    /// created.
    pub fn open_default() -> Option<Cache> {
        let env = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let base = env("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| env("HOME").map(|home| home.join(".cache")))?;
        Cache::open(&base.join("wsandbox")).ok()
    }

    /// The cache in `dir`, created (mode 0700) if missing.
    pub fn open(dir: &Path) -> std::io::Result<Cache> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Cache { dir: dir.into() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `module` compiled with `settings`: a hex SHA-256.
    pub fn key(module: &Module, settings: &str) -> String {
        let mut hash = Sha256::new();
        hash.update((settings.len() as u64).to_le_bytes());
        hash.update(settings.as_bytes());
        hash.update(&module.bytes);
        hex(&hash.finalize())
    }

    /// The entry stored under `key`, if there is one and it is whole.
    pub fn lookup(&self, key: &str) -> Option<Entry> {
        let mut file = File::open(self.dir.join(key)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        read_entry(bytes)
    }

    /// An unnamed file in the cache directory for a new entry under `key`.
    pub fn reserve(&self, key: &str) -> std::io::Result<Pending> {
        Pending::new(&self.dir, key, 0o600)
    }
}

/// A file being written without a name (`O_TMPFILE`), named by
/// [`Pending::commit`] only once it is whole: a cache entry, or the output
/// of `wsandbox compile`.
#[derive(Debug)]
pub struct Pending {
    dir: PathBuf,
    name: String,
    file: File,
}

impl Pending {
    /// An unnamed file in `dir` (with permissions `mode`), to be named `name`.
    pub fn new(dir: &Path, name: &str, mode: u32) -> std::io::Result<Pending> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(mode)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir)?;
        Ok(Pending {
            dir: dir.into(),
            name: name.into(),
            file,
        })
    }

    /// Another descriptor of the unnamed file, for the sandbox to write the
    /// entry to ([`write_entry`]).
    pub fn sink(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// Gives the written file its name, replacing any file of that name at
    /// once (a link under a temporary name, then `rename`).
    pub fn commit(self) -> std::io::Result<()> {
        use nix::fcntl::AT_FDCWD;
        use std::os::fd::AsRawFd;
        let temporary = self
            .dir
            .join(format!(".{}.{}.tmp", self.name, std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        let source = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        nix::unistd::linkat(
            AT_FDCWD,
            source.as_str(),
            AT_FDCWD,
            &temporary,
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        )?;
        std::fs::rename(&temporary, self.dir.join(&self.name)).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    }
}

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
        use crate::shell::sys::{self, Fork};
        if !helper {
            return Ok(Publisher::Here(pending));
        }
        let os = |e: sys::SysError| std::io::Error::from_raw_os_error(e.errno as i32);
        let (read, write) = sys::pipe().map_err(os)?;
        match sys::clone(nix::sched::CloneFlags::empty()).map_err(os)? {
            Fork::Parent(pid) => {
                drop(read);
                // The helper has its own descriptors of the unnamed file.
                std::mem::forget(pending);
                Ok(Publisher::Helper {
                    pid,
                    tell: File::from(write),
                })
            }
            Fork::Child => {
                crate::say::end_on_panic();
                // The helper holds nothing of the run but its two files (no
                // pipe of the caller's stays open because of it).
                use std::os::fd::AsRawFd;
                let _ = sys::close_fds_except(&[read.as_raw_fd(), pending.file.as_raw_fd()]);
                std::mem::forget(write);
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

    /// In the sandboxed process: lets go of the publisher without closing
    /// descriptors the sandbox has already closed.
    pub fn abandon_in_sandbox(self) {
        std::mem::forget(self);
    }
}

/// Writes `artifact` as an entry: header, then the artifact.
pub fn write_entry(sink: &mut File, artifact: &[u8]) -> std::io::Result<()> {
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    header.extend_from_slice(&Sha256::digest(artifact));
    sink.write_all(&header)?;
    sink.write_all(artifact)?;
    sink.flush()
}

/// A whole entry read from the cache: its artifact is checked against the
/// header's length and checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry(Vec<u8>);

impl Entry {
    /// The artifact (kept in place after the header: no copy of megabytes).
    pub fn artifact(&self) -> &[u8] {
        &self.0[HEADER..]
    }
}

/// The entry in `bytes`, if its header holds: magic, length and checksum.
pub fn read_entry(bytes: Vec<u8>) -> Option<Entry> {
    if bytes.len() < HEADER || &bytes[..16] != MAGIC {
        return None;
    }
    let length = u64::from_le_bytes(bytes[16..24].try_into().ok()?);
    if length != (bytes.len() - HEADER) as u64 {
        return None;
    }
    let checksum: [u8; 32] = bytes[24..HEADER].try_into().ok()?;
    if Sha256::digest(&bytes[HEADER..]).as_slice() != checksum {
        return None;
    }
    Some(Entry(bytes))
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(artifact: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("e")).unwrap();
        write_entry(&mut file, artifact).unwrap();
        std::fs::read(dir.path().join("e")).unwrap()
    }

    #[test]
    fn an_entry_reads_back() {
        let artifact = b"\x7fELF machine code".to_vec();
        assert_eq!(read_entry(entry(&artifact)).unwrap().artifact(), artifact);
        assert_eq!(read_entry(entry(b"")).unwrap().artifact(), b"");
    }

    #[test]
    fn damage_anywhere_is_caught() {
        let whole = entry(b"some machine code, long enough to damage");
        for at in 0..whole.len() {
            let mut damaged = whole.clone();
            damaged[at] ^= 0x20;
            assert_eq!(read_entry(damaged), None, "a flipped byte at {at}");
        }
        for length in 0..whole.len() {
            assert_eq!(read_entry(whole[..length].to_vec()), None, "cut at {length}");
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert_eq!(read_entry(longer), None);
    }

    #[test]
    fn keys_differ_by_module_and_settings() {
        let module = |bytes: &[u8]| Module::from_bytes(Path::new("m.wat"), bytes.to_vec()).unwrap();
        let (a, b) = (module(b"(module)"), module(b"(module (func))"));
        assert_ne!(Cache::key(&a, "s"), Cache::key(&b, "s"));
        assert_ne!(Cache::key(&a, "s"), Cache::key(&a, "t"));
        assert_eq!(Cache::key(&a, "s"), Cache::key(&a, "s"));
        assert_eq!(Cache::key(&a, "s").len(), 64);
    }

    #[test]
    fn a_reserved_entry_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("c")).unwrap();
        let pending = cache.reserve("k").unwrap();
        write_entry(&mut pending.sink().unwrap(), b"code").unwrap();
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 0);
        pending.commit().unwrap();
        assert_eq!(cache.lookup("k").unwrap().artifact(), b"code");
        // A second commit replaces the first.
        let pending = cache.reserve("k").unwrap();
        write_entry(&mut pending.sink().unwrap(), b"new code").unwrap();
        Publisher::new(pending, false).unwrap().finish(true);
        assert_eq!(cache.lookup("k").unwrap().artifact(), b"new code");
        // A pending entry never committed leaves nothing behind.
        let pending = cache.reserve("j").unwrap();
        Publisher::new(pending, false).unwrap().finish(false);
        let names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["k"]);
    }
}
