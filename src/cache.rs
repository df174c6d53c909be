//! The compilation cache: the machine code of modules compiled before, so
//! that a second run of the same module skips Cranelift.
//!
//! **Where.** `$XDG_CACHE_HOME/wsandbox`, else `~/.cache/wsandbox` (root's
//! in root's home from the password database), created mode 0700; it
//! must be the user's, not a symlink, and writable by no one else. A
//! cache that cannot be created or read is not used (the run compiles,
//! as with `--no-cache`).
//!
//! **Key.** The BLAKE3 hash of the engine settings that shape the code
//! ([`crate::engine::settings`]: wsandbox's version and wasmtime's own
//! `Engine::precompile_compatibility_hash` — its version, the target and
//! the CPU features Cranelift uses, tunables, wasm features, fuel
//! metering) and of the module's bytes. That hash is itself remembered
//! as an entry, `engine-` and a hash of what the supervisor can tell of
//! the engine without building one (`crate::engine::host_settings`), so
//! that only a host's first run builds an engine outside the walls. An
//! entry is named by its key, so a module or setting that changes never
//! meets an old entry.
//!
//! **Entries.** A header (magic, payload length, MAC) and wasmtime's
//! serialized artifact. The MAC is BLAKE3 keyed with the cache's secret
//! (`key`, 0600), over the entry's name and artifact, written by whoever
//! names the entry outside the walls (the sandbox never has the key).
//! Reading checks all three, so a truncated, corrupted, forged or moved
//! entry is never handed to the engine; wasmtime
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

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first bytes of every entry; the digit is the format's version.
const MAGIC: &[u8; 16] = b"wsandbox-cache2\n";
/// Magic, payload length, MAC.
const HEADER: usize = 16 + 8 + 32;
/// Where the MAC sits in the header.
const MAC_AT: usize = 24;
/// The largest artifact the cache reads or seals (wasmtime's artifacts of
/// even very large modules are tens of MiB).
pub const MAX_ARTIFACT: u64 = 512 << 20;
/// The file holding the key of the cache's MACs.
const KEY_FILE: &str = "key";

/// Why a cache is not used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// There is no place for one (no home directory).
    #[error("no cache directory (no HOME, no XDG_CACHE_HOME, no home in the password database)")]
    Nowhere,
    /// The directory or its key cannot be created, opened or read.
    #[error("{}: {err}", .path.display())]
    Io {
        /// The directory or the key.
        path: PathBuf,
        /// What failed.
        err: std::io::Error,
    },
    /// The directory or its key could be changed by someone else.
    #[error("{}: {why}", .path.display())]
    Unsafe {
        /// The directory or the key.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A grant of the run reaches the cache.
    #[error("the grant {} reaches the cache {}", .grant.display(), .dir.display())]
    Granted {
        /// The granted host directory.
        grant: PathBuf,
        /// The cache directory.
        dir: PathBuf,
    },
}

/// A cache directory, opened (without following a symlink), owned by this
/// process's user and writable by no one else.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    fd: Arc<OwnedFd>,
}

impl Cache {
    /// The user's cache directory: `$XDG_CACHE_HOME/wsandbox`, else
    /// `~/.cache/wsandbox`. Root's is always in root's home from the
    /// password database: a `HOME` or `XDG_CACHE_HOME` root inherited
    /// (`sudo -E`) may be another user's.
    pub fn default_dir() -> Option<PathBuf> {
        if nix::unistd::geteuid().is_root() {
            let root = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(0)).ok()??;
            return Some(root.dir.join(".cache/wsandbox"));
        }
        let env = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let base = env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|home| home.join(".cache")))?;
        Some(base.join("wsandbox"))
    }

    /// The user's cache ([`Cache::default_dir`]), created if missing.
    pub fn open_default() -> Result<Cache, Unusable> {
        Cache::open(&Cache::default_dir().ok_or(Unusable::Nowhere)?)
    }

    /// The cache in `dir`, created (mode 0700) if missing. Refused when
    /// `dir` is a symlink, is not a directory, is not owned by this
    /// process's user, or is writable by its group or others.
    pub fn open(dir: &Path) -> Result<Cache, Unusable> {
        let io = |err| Unusable::Io {
            path: dir.into(),
            err,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(&io)?;
        let fd = open_nofollow(None, dir, libc::O_PATH | libc::O_DIRECTORY).map_err(&io)?;
        let stat = nix::sys::stat::fstat(&fd).map_err(|e| io(e.into()))?;
        private(dir, &stat, libc::S_IFDIR, 0o022)?;
        Ok(Cache {
            dir: dir.into(),
            fd: Arc::new(fd),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses the cache for a run granted `grants` (resolved host paths)
    /// if one of them holds the cache, or lies inside it: a guest could
    /// read the key or plant entries. Compared by device and inode, so
    /// that a bind mount or a symlink does not hide it.
    pub fn check_grants<'a>(&self, grants: impl IntoIterator<Item = &'a Path>) -> Result<(), Unusable> {
        use std::os::unix::fs::MetadataExt;
        let id = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        let ancestors = |path: &Path| -> Vec<(u64, u64)> {
            let path = path.canonicalize().unwrap_or_else(|_| path.into());
            path.ancestors().filter_map(id).collect()
        };
        let cache = ancestors(&self.dir);
        let Some(&own) = cache.first() else {
            return Ok(());
        };
        for grant in grants {
            let reaches = id(grant).is_some_and(|g| cache.contains(&g)) || ancestors(grant).contains(&own);
            if reaches {
                return Err(Unusable::Granted {
                    grant: grant.into(),
                    dir: self.dir.clone(),
                });
            }
        }
        Ok(())
    }

    /// The key of a module of these `bytes` compiled with `settings`: a
    /// hex BLAKE3 hash (unkeyed: a name, not a seal; several times faster
    /// than SHA-256 over a module, which every run hashes).
    pub fn key(bytes: &[u8], settings: &str) -> String {
        let mut hash = blake3::Hasher::new();
        hash.update(&(settings.len() as u64).to_le_bytes());
        hash.update(settings.as_bytes());
        hash.update(bytes);
        hex(hash.finalize().as_bytes())
    }

    /// The entry stored under `key`, if there is one, it is a regular file
    /// of this user's no larger than [`MAX_ARTIFACT`], and its MAC holds.
    /// A symlink, a FIFO or a device is never opened as one (`O_NOFOLLOW`,
    /// `O_NONBLOCK`, then `fstat`).
    pub fn lookup(&self, key: &str) -> Option<Entry> {
        let path = Path::new(key);
        let fd = open_nofollow(Some(&self.fd), path, libc::O_RDONLY | libc::O_NONBLOCK).ok()?;
        let stat = nix::sys::stat::fstat(&fd).ok()?;
        private(path, &stat, libc::S_IFREG, 0o022).ok()?;
        let size = u64::try_from(stat.st_size).ok()?;
        if !(HEADER as u64..=HEADER as u64 + MAX_ARTIFACT).contains(&size) {
            return None;
        }
        let mut bytes = vec![0u8; size as usize];
        let mut file = File::from(fd);
        file.read_exact(&mut bytes).ok()?;
        // Nothing more than fstat said.
        if file.read(&mut [0u8; 1]).ok()? != 0 {
            return None;
        }
        let secret = self.secret().ok()?;
        let mac = mac(&secret, key, &bytes[HEADER..]);
        drop(secret);
        read_entry(bytes, &mac)
    }

    /// An unnamed file in the cache directory for a new entry under `key`;
    /// its MAC is written when it is named ([`Pending::commit`]).
    pub fn reserve(&self, key: &str) -> std::io::Result<Pending> {
        let mut pending = Pending::new(&self.dir, key, 0o600)?;
        pending.seal = Some(self.clone());
        Ok(pending)
    }

    /// The cache's secret key, created (32 random bytes, mode 0600) if it
    /// does not exist yet. It never leaves this module, and is zeroed when
    /// dropped.
    fn secret(&self) -> Result<Secret, Unusable> {
        let (path, io) = self.key_path();
        let fd = match open_nofollow(
            Some(&self.fd),
            Path::new(KEY_FILE),
            libc::O_RDONLY | libc::O_NONBLOCK,
        ) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return self.new_secret(),
            other => other.map_err(&io)?,
        };
        let stat = nix::sys::stat::fstat(&fd).map_err(|e| io(e.into()))?;
        private(&path, &stat, libc::S_IFREG, 0o077)?;
        if stat.st_size != 32 {
            return Err(Unusable::Unsafe {
                path,
                why: format!("{} bytes, not 32", stat.st_size),
            });
        }
        let mut secret = Secret::zero();
        File::from(fd).read_exact(&mut secret.0[..]).map_err(&io)?;
        Ok(secret)
    }

    /// The key's path, and how an I/O error on it is told.
    fn key_path(&self) -> (PathBuf, impl Fn(std::io::Error) -> Unusable) {
        let path = self.dir.join(KEY_FILE);
        let named = path.clone();
        (path, move |err| Unusable::Io {
            path: named.clone(),
            err,
        })
    }

    /// Creates the key, whole or not at all (an unnamed file, linked); if
    /// another run created one first, that one.
    fn new_secret(&self) -> Result<Secret, Unusable> {
        let (_, io) = self.key_path();
        let mut secret = Secret::zero();
        File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut secret.0[..]))
            .map_err(&io)?;
        let pending = Pending::new(&self.dir, KEY_FILE, 0o600).map_err(&io)?;
        (&pending.file).write_all(&secret.0[..]).map_err(&io)?;
        match pending.link() {
            Ok(()) => Ok(secret),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => self.secret(),
            Err(err) => Err(io(err)),
        }
    }
}

/// 32 bytes of key that are zeroed when dropped, kept on the heap so that
/// no copy is left behind by a move.
struct Secret(Box<[u8; 32]>);

impl Secret {
    fn zero() -> Secret {
        Secret(Box::new([0u8; 32]))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        *self.0 = [0u8; 32];
        // The zeroed bytes count as read: the stores are not elided.
        std::hint::black_box(&mut self.0);
    }
}

/// The MAC of an entry named `name` whose artifact is `artifact`: BLAKE3
/// keyed with the cache's secret, over the name and the artifact, so that
/// an entry can be neither forged nor moved to another module's name.
fn mac(secret: &Secret, name: &str, artifact: &[u8]) -> [u8; 32] {
    let mut hasher = MacHasher::new(secret, name, artifact.len() as u64);
    hasher.0.update(artifact);
    hasher.finish()
}

/// A keyed BLAKE3 hasher over an entry, overwritten when dropped.
struct MacHasher(blake3::Hasher);

impl MacHasher {
    fn new(secret: &Secret, name: &str, length: u64) -> MacHasher {
        let mut hasher = MacHasher(blake3::Hasher::new_keyed(&secret.0));
        hasher.0.update(b"wsandbox cache entry\0");
        hasher.0.update(&(name.len() as u64).to_le_bytes());
        hasher.0.update(name.as_bytes());
        hasher.0.update(&length.to_le_bytes());
        hasher
    }

    fn finish(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

impl Drop for MacHasher {
    fn drop(&mut self) {
        // The keyed state gives way to an unkeyed one, in place.
        self.0 = blake3::Hasher::new();
        std::hint::black_box(&mut self.0);
    }
}

/// Overwrites the stack below the caller's frame, where keyed hashing
/// left words of state behind: call it after the cache was read and
/// before the sandbox, a copy of this process, exists.
#[inline(never)]
pub fn scrub_stack() {
    let mut below = [0u8; 64 << 10];
    std::hint::black_box(&mut below);
}

/// Opens `path` (relative to `dir` if given) without following a symlink
/// in its last component, close-on-exec, without becoming a terminal.
fn open_nofollow(dir: Option<&OwnedFd>, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    let flags =
        nix::fcntl::OFlag::from_bits_retain(flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY);
    let mode = nix::sys::stat::Mode::empty();
    Ok(match dir {
        Some(dir) => nix::fcntl::openat(dir.as_fd(), path, flags, mode)?,
        None => nix::fcntl::open(path, flags, mode)?,
    })
}

/// Refuses `stat` unless it is of `kind` (`S_IFDIR`, `S_IFREG`), owned
/// by this process's user, and without any of the permission bits
/// `forbidden`.
fn private(path: &Path, stat: &nix::sys::stat::FileStat, kind: u32, forbidden: u32) -> Result<(), Unusable> {
    let unsafe_because = |why: String| Unusable::Unsafe {
        path: path.into(),
        why,
    };
    let me = nix::unistd::geteuid().as_raw();
    if stat.st_mode & libc::S_IFMT != kind {
        return Err(unsafe_because(
            "not a regular file or directory of the cache's".into(),
        ));
    }
    if stat.st_uid != me {
        return Err(unsafe_because(format!("owned by uid {}, not {me}", stat.st_uid)));
    }
    if stat.st_mode & forbidden != 0 {
        return Err(unsafe_because(format!(
            "mode {:o}: others may change it",
            stat.st_mode & 0o7777
        )));
    }
    Ok(())
}

/// A file being written without a name (`O_TMPFILE`), named by
/// [`Pending::commit`] only once it is whole: a cache entry (sealed with
/// its MAC then), or the output of `wsandbox compile`.
#[derive(Debug)]
pub struct Pending {
    dir: PathBuf,
    name: String,
    file: File,
    /// The cache whose key seals the entry, for a cache entry.
    seal: Option<Cache>,
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
            seal: None,
        })
    }

    /// Another descriptor of the unnamed file, for the sandbox to write the
    /// entry to ([`write_entry`]).
    pub fn sink(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// The descriptors this needs until it is committed.
    pub fn fds(&self) -> Vec<std::os::fd::RawFd> {
        let cache = self.seal.iter().map(|c| c.fd.as_raw_fd());
        std::iter::once(self.file.as_raw_fd()).chain(cache).collect()
    }

    /// Gives the written file its name, replacing any file of that name at
    /// once (a link under a temporary name, then `rename`). A cache entry
    /// is sealed first: its MAC, computed here from what the sandbox wrote,
    /// goes into its header.
    pub fn commit(self) -> std::io::Result<()> {
        if let Some(cache) = &self.seal {
            let secret = cache.secret().map_err(std::io::Error::other)?;
            seal(&self.file, &self.name, &secret)?;
        }
        let temporary = format!(".{}.{}.tmp", self.name, std::process::id());
        let _ = std::fs::remove_file(self.dir.join(&temporary));
        self.link_as(&temporary)?;
        std::fs::rename(self.dir.join(&temporary), self.dir.join(&self.name)).inspect_err(|_| {
            let _ = std::fs::remove_file(self.dir.join(&temporary));
        })
    }

    /// Gives the file its name unless that name exists (`AlreadyExists`).
    fn link(&self) -> std::io::Result<()> {
        self.link_as(&self.name)
    }

    fn link_as(&self, name: &str) -> std::io::Result<()> {
        use nix::fcntl::AT_FDCWD;
        let source = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        nix::unistd::linkat(
            AT_FDCWD,
            source.as_str(),
            AT_FDCWD,
            &self.dir.join(name),
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        )?;
        Ok(())
    }
}

/// Writes the MAC of the entry in `file` (written by the sandbox: checked
/// like any file of the cache's, read in pieces) into its header.
fn seal(file: &File, name: &str, secret: &Secret) -> std::io::Result<()> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("cache entry: {why}"));
    let size = file.metadata()?.len();
    if !(HEADER as u64..=HEADER as u64 + MAX_ARTIFACT).contains(&size) {
        return Err(bad("no header, or too large"));
    }
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, 0)?;
    let length = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    if &header[..16] != MAGIC || length != size - HEADER as u64 {
        return Err(bad("not an entry of this version"));
    }
    let mut hasher = MacHasher::new(secret, name, length);
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = HEADER as u64;
    while at < size {
        let n = chunk.len().min((size - at) as usize);
        file.read_exact_at(&mut chunk[..n], at)?;
        hasher.0.update(&chunk[..n]);
        at += n as u64;
    }
    file.write_all_at(&hasher.finish(), MAC_AT as u64)
}

/// Writes `artifact` as an entry: header (its MAC left zero: the sandbox
/// has no key; the entry is sealed when it is named), then the artifact.
pub fn write_entry(sink: &mut File, artifact: &[u8]) -> std::io::Result<()> {
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    header.extend_from_slice(&[0u8; 32]);
    sink.write_all(&header)?;
    sink.write_all(artifact)?;
    sink.flush()
}

/// A whole entry read from the cache, its MAC checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry(Vec<u8>);

impl Entry {
    /// The entry's bytes, and where the artifact starts in them (after
    /// the header: no copy of megabytes).
    pub fn into_parts(self) -> (Vec<u8>, usize) {
        (self.0, HEADER)
    }

    /// The artifact (kept in place after the header: no copy of megabytes).
    pub fn artifact(&self) -> &[u8] {
        &self.0[HEADER..]
    }
}

/// The entry in `bytes`, if its header holds: magic, length, and the MAC
/// `expected` (computed over the artifact by the caller).
fn read_entry(bytes: Vec<u8>, expected: &[u8; 32]) -> Option<Entry> {
    if bytes.len() < HEADER || &bytes[..16] != MAGIC {
        return None;
    }
    let length = u64::from_le_bytes(bytes[16..24].try_into().ok()?);
    if length != (bytes.len() - HEADER) as u64 {
        return None;
    }
    let stored: [u8; 32] = bytes[MAC_AT..HEADER].try_into().ok()?;
    // In constant time.
    (blake3::Hash::from(stored) == *expected).then_some(Entry(bytes))
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
    use std::os::unix::fs::PermissionsExt;

    /// A fresh cache in a temporary directory.
    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("c")).unwrap();
        (dir, cache)
    }

    /// Stores `artifact` under `name` as a run does: written unsealed, then
    /// sealed and named.
    fn store(cache: &Cache, name: &str, artifact: &[u8]) -> PathBuf {
        let pending = cache.reserve(name).unwrap();
        write_entry(&mut pending.sink().unwrap(), artifact).unwrap();
        pending.commit().unwrap();
        cache.dir().join(name)
    }

    #[test]
    fn an_entry_reads_back() {
        let (_dir, cache) = cache();
        store(&cache, "a", b"\x7fELF machine code");
        assert_eq!(cache.lookup("a").unwrap().artifact(), b"\x7fELF machine code");
        store(&cache, "empty", b"");
        assert_eq!(cache.lookup("empty").unwrap().artifact(), b"");
        assert!(cache.lookup("missing").is_none());
    }

    #[test]
    fn damage_anywhere_is_caught() {
        let (_dir, cache) = cache();
        let path = store(&cache, "k", b"some machine code, long enough to damage");
        let whole = std::fs::read(&path).unwrap();
        for at in 0..whole.len() {
            let mut damaged = whole.clone();
            damaged[at] ^= 0x20;
            std::fs::write(&path, &damaged).unwrap();
            assert_eq!(cache.lookup("k"), None, "a flipped byte at {at}");
        }
        for length in 0..whole.len() {
            std::fs::write(&path, &whole[..length]).unwrap();
            assert_eq!(cache.lookup("k"), None, "cut at {length}");
        }
        let mut longer = whole.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert_eq!(cache.lookup("k"), None);
        std::fs::write(&path, &whole).unwrap();
        assert!(cache.lookup("k").is_some(), "the control");
    }

    /// What someone who can write the directory but does not hold the key
    /// can make: an entry with the right length and any MAC (here the
    /// artifact's SHA-256, as version 1 had), or another entry's, moved.
    #[test]
    fn forged_and_moved_entries_are_refused() {
        let (_dir, cache) = cache();
        let artifact = b"machine code of the attacker's choice".to_vec();
        let mut forged = Vec::new();
        forged.extend_from_slice(MAGIC);
        forged.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
        forged.extend_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(&artifact));
        forged.extend_from_slice(&artifact);
        std::fs::write(cache.dir().join("forged"), &forged).unwrap();
        std::fs::set_permissions(cache.dir().join("forged"), PermissionsExt::from_mode(0o600)).unwrap();
        assert_eq!(cache.lookup("forged"), None);
        // A sealed entry, under another module's name.
        let path = store(&cache, "theirs", b"code of another module");
        std::fs::copy(&path, cache.dir().join("mine")).unwrap();
        assert_eq!(cache.lookup("mine"), None);
        assert!(cache.lookup("theirs").is_some());
        // Another cache's key seals nothing here.
        let (_other_dir, other) = self::cache();
        let path = store(&other, "mine", b"code sealed with another key");
        std::fs::copy(&path, cache.dir().join("mine")).unwrap();
        assert_eq!(cache.lookup("mine"), None);
    }

    #[test]
    fn symlinks_fifos_and_huge_files_are_not_read() {
        let (_dir, cache) = cache();
        let path = store(&cache, "real", b"code");
        std::os::unix::fs::symlink(&path, cache.dir().join("link")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", cache.dir().join("zero")).unwrap();
        nix::unistd::mkfifo(&cache.dir().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let sparse = File::create(cache.dir().join("sparse")).unwrap();
        sparse.set_len(16 << 30).unwrap();
        let started = std::time::Instant::now();
        for name in ["link", "zero", "fifo", "sparse"] {
            assert_eq!(cache.lookup(name), None, "{name}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(cache.lookup("real").is_some(), "the control");
    }

    #[test]
    fn the_key_is_private_and_made_once() {
        let (_dir, cache) = cache();
        store(&cache, "k", b"code");
        let key = cache.dir().join(KEY_FILE);
        let meta = std::fs::symlink_metadata(&key).unwrap();
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
        let bytes = std::fs::read(&key).unwrap();
        assert_ne!(bytes, [0u8; 32]);
        store(&cache, "j", b"more code");
        assert_eq!(std::fs::read(&key).unwrap(), bytes, "the key changed");
        // A key others could read or change is not used.
        std::fs::set_permissions(&key, PermissionsExt::from_mode(0o644)).unwrap();
        assert_eq!(cache.lookup("k"), None);
        std::fs::set_permissions(&key, PermissionsExt::from_mode(0o600)).unwrap();
        assert!(cache.lookup("k").is_some());
        // Nor one that is a symlink.
        std::fs::rename(&key, cache.dir().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(cache.dir().join("elsewhere"), &key).unwrap();
        assert_eq!(cache.lookup("k"), None);
    }

    #[test]
    fn a_directory_others_may_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = |path: &Path| Cache::open(path).map(drop).map_err(|e| e.to_string());
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, PermissionsExt::from_mode(0o777)).unwrap();
        assert!(open(&shared).unwrap_err().contains("others may change it"));
        std::fs::set_permissions(&shared, PermissionsExt::from_mode(0o770)).unwrap();
        assert!(open(&shared).unwrap_err().contains("others may change it"));
        std::fs::set_permissions(&shared, PermissionsExt::from_mode(0o700)).unwrap();
        open(&shared).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        assert!(open(&link).is_err(), "a symlink was followed");
    }

    #[test]
    fn a_grant_that_reaches_the_cache_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("home/.cache/wsandbox")).unwrap();
        let inside = cache.dir().join("sub");
        std::fs::create_dir(&inside).unwrap();
        let beside = dir.path().join("home/work");
        std::fs::create_dir(&beside).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("home"), &link).unwrap();
        for grant in [
            dir.path().join("home"),
            dir.path().join("home/.cache"),
            cache.dir().to_path_buf(),
            inside,
            link,
        ] {
            let err = cache.check_grants([grant.as_path()]).unwrap_err();
            assert!(matches!(err, Unusable::Granted { .. }), "{grant:?}: {err}");
        }
        cache.check_grants([beside.as_path()]).unwrap();
        cache.check_grants(std::iter::empty()).unwrap();
    }

    #[test]
    fn keys_differ_by_module_and_settings() {
        let (a, b): (&[u8], &[u8]) = (b"(module)", b"(module (func))");
        assert_ne!(Cache::key(a, "s"), Cache::key(b, "s"));
        assert_ne!(Cache::key(a, "s"), Cache::key(a, "t"));
        assert_eq!(Cache::key(a, "s"), Cache::key(a, "s"));
        assert_eq!(Cache::key(a, "s").len(), 64);
    }

    #[test]
    fn a_reserved_entry_appears_only_when_committed() {
        let (_dir, cache) = cache();
        let pending = cache.reserve("k").unwrap();
        write_entry(&mut pending.sink().unwrap(), b"code").unwrap();
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 0);
        pending.commit().unwrap();
        assert_eq!(cache.lookup("k").unwrap().artifact(), b"code");
        // A second commit replaces the first.
        let pending = cache.reserve("k").unwrap();
        write_entry(&mut pending.sink().unwrap(), b"new code").unwrap();
        pending.commit().unwrap();
        assert_eq!(cache.lookup("k").unwrap().artifact(), b"new code");
        // A pending entry never committed leaves nothing behind.
        drop(cache.reserve("j").unwrap());
        let mut names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["k", KEY_FILE]);
    }
}
