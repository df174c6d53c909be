//! The compilation cache and `wsandbox compile`: a second run loads the
//! code the first compiled; a damaged or stale entry is compiled again and
//! replaced, never trusted; `--no-cache` leaves the cache alone; artifacts
//! of `wsandbox compile` run only with `--allow-precompiled`.

use crate::{Caller, Kind, Output, both_kinds, callers, for_nobody, output, s, wsandbox_as};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

both_kinds!(
    a_guest_cannot_plant_code_in_the_cache,
    a_second_run_loads_the_code_of_the_first,
    a_damaged_entry_is_compiled_again_and_replaced,
    a_stale_entry_is_compiled_again_and_replaced,
    a_compiled_artifact_runs_only_when_trusted,
);

/// An empty directory for `caller`'s `XDG_CACHE_HOME`.
pub fn own_cache(caller: Caller) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("wsandbox-cache")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if caller == Caller::Nobody {
        nix::unistd::chown(dir.path(), Some(65534.into()), Some(65534.into())).unwrap();
    }
    dir
}

/// Runs `wsandbox run ARGS...` as `caller` with the cache `cache/wsandbox`
/// (`--cache-dir`: root's runs take no cache location from the
/// environment) and `--report`; returns the output and the report.
fn run_cached(caller: Caller, cache: &Path, args: &[&str]) -> (Output, Value) {
    let report = tempfile::NamedTempFile::new().unwrap();
    std::fs::set_permissions(report.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut cmd = wsandbox_as(caller);
    cmd.args(["run", "--report", s(report.path())])
        .args(["--cache-dir", s(&cache.join("wsandbox"))])
        .args(args);
    let out = output(&mut cmd);
    let json = std::fs::read_to_string(report.path()).unwrap();
    let json = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json:?}; {out:#?}"));
    (out, json)
}

/// The entries of the cache under `base` (not its key, nor temporary files).
fn entries(base: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(base.join("wsandbox")) else {
        return Vec::new();
    };
    let entry = |name: &str| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    let mut all: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| entry(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    all.sort();
    all
}

/// The hello guest of `kind`, where any caller can read it.
fn guest(kind: Kind) -> String {
    for_nobody(kind.guest("hello"))
}

fn a_second_run_loads_the_code_of_the_first(kind: Kind) {
    for caller in callers() {
        let cache = own_cache(caller);
        let guest = guest(kind);
        let (first, json) = run_cached(caller, cache.path(), &[&guest]);
        first.assert_code(0);
        assert_eq!(json["code_source"], "compiled", "{caller:?}: {json}");
        let [entry] = &entries(cache.path())[..] else {
            panic!("{caller:?}: want one entry: {:?}", entries(cache.path()));
        };
        // The cache is private to its owner, who is the caller (root's
        // helper names root's entries while the sandbox runs as nobody).
        let owner = if caller == Caller::Nobody {
            65534
        } else {
            nix::unistd::geteuid().as_raw()
        };
        let meta = std::fs::metadata(entry).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (owner, 0o600), "{caller:?}");
        let dir = std::fs::metadata(entry.parent().unwrap()).unwrap();
        assert_eq!(dir.mode() & 0o777, 0o700, "{caller:?}");
        let (second, json) = run_cached(caller, cache.path(), &[&guest]);
        second.assert_code(0);
        assert_eq!(json["code_source"], "cache", "{caller:?}: {json}");
        assert_eq!((&second.stdout, &second.stderr), (&first.stdout, &first.stderr));
        let again = std::fs::metadata(entry).unwrap();
        assert_eq!(
            again.ino(),
            meta.ino(),
            "{caller:?}: a hit must not rewrite the entry"
        );
    }
}

/// Damage the way a full disk, a crash or a stray write would: a flipped
/// byte, a cut, another file's bytes.
fn a_damaged_entry_is_compiled_again_and_replaced(kind: Kind) {
    let caller = Caller::Me;
    let cache = own_cache(caller);
    let guest = guest(kind);
    run_cached(caller, cache.path(), &[&guest]).0.assert_code(0);
    let [entry] = &entries(cache.path())[..] else {
        panic!("want one entry")
    };
    let whole = std::fs::read(entry).unwrap();
    let mut flipped = whole.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    let damages: [(&str, Vec<u8>); 4] = [
        ("a flipped byte", flipped),
        ("a cut", whole[..whole.len() / 3].to_vec()),
        ("an empty file", Vec::new()),
        ("another file", b"\x7fELF\x02\x01\x01 not machine code".to_vec()),
    ];
    for (damage, bytes) in damages {
        std::fs::write(entry, &bytes).unwrap();
        let (out, json) = run_cached(caller, cache.path(), &[&guest]);
        out.assert_code(0);
        assert!(
            out.stdout.starts_with("hello from a wasm guest"),
            "{damage}: {out:#?}"
        );
        assert_eq!(json["code_source"], "compiled", "{damage}: {json}");
        assert!(
            std::fs::read(entry).unwrap() == whole,
            "{damage}: the entry was not replaced"
        );
        let (_, json) = run_cached(caller, cache.path(), &[&guest]);
        assert_eq!(json["code_source"], "cache", "{damage}: {json}");
    }
}

/// Replaces `entry` by an entry of `artifact` sealed with its cache's key,
/// as a run of the cache's owner would write it (the owner's ids lent to
/// this process's for the time it takes).
fn seal(entry: &Path, artifact: &[u8]) {
    use std::os::unix::fs::MetadataExt;
    let dir = entry.parent().unwrap();
    let owner = std::fs::metadata(dir).unwrap().uid();
    let me = nix::unistd::geteuid();
    let chown = |uid: nix::unistd::Uid| {
        for path in [dir.to_path_buf(), dir.join("key"), entry.to_path_buf()] {
            nix::unistd::chown(&path, Some(uid), None).unwrap();
        }
    };
    chown(me);
    let cache = wsandbox::cache::Cache::open(dir).unwrap();
    let name = entry.file_name().unwrap().to_str().unwrap();
    let pending = cache.reserve(name).unwrap();
    wsandbox::cache::write_entry(&mut pending.sink().unwrap(), artifact).unwrap();
    pending.commit().unwrap();
    chown(owner.into());
}

/// An entry whose MAC holds but whose code the engine refuses (here:
/// code compiled with fuel metering, under the key of a run without) is
/// compiled again, not run; a user's run also replaces it (root's does
/// not, see `open_cache` in src/cli/run.rs).
fn a_stale_entry_is_compiled_again_and_replaced(kind: Kind) {
    for caller in callers() {
        let cache = own_cache(caller);
        let guest = guest(kind);
        run_cached(caller, cache.path(), &[&guest]).0.assert_code(0);
        let [entry] = &entries(cache.path())[..] else {
            panic!("want one entry")
        };
        let good = std::fs::read(entry).unwrap();
        let artifact = cache.path().join("metered.cwasm");
        crate::run(&["compile", "--metered", &guest, "-o", s(&artifact)]).assert_code(0);
        seal(entry, &std::fs::read(&artifact).unwrap());
        let stale = std::fs::read(entry).unwrap();
        let (out, json) = run_cached(caller, cache.path(), &[&guest]);
        out.assert_code(0);
        assert!(
            out.stdout.starts_with("hello from a wasm guest"),
            "{caller:?}: {out:#?}"
        );
        assert_eq!(json["code_source"], "compiled", "{caller:?}: {json}");
        let now = std::fs::read(entry).unwrap();
        if caller == Caller::Nobody || !crate::am_root() {
            assert!(now == good, "{caller:?}: the stale entry was not replaced");
            let (_, json) = run_cached(caller, cache.path(), &[&guest]);
            assert_eq!(json["code_source"], "cache", "{caller:?}: {json}");
        } else {
            assert!(now == stale, "root's run replaced an entry without its helper");
        }
    }
}

#[test]
fn no_cache_neither_reads_nor_writes() {
    let cache = own_cache(Caller::Me);
    let guest = guest(Kind::P1);
    let (out, json) = run_cached(Caller::Me, cache.path(), &["--no-cache", &guest]);
    out.assert_code(0);
    assert_eq!(json["code_source"], "compiled");
    assert_eq!(entries(cache.path()), Vec::<PathBuf>::new());
    run_cached(Caller::Me, cache.path(), &[&guest]);
    let (_, json) = run_cached(Caller::Me, cache.path(), &["--no-cache", &guest]);
    assert_eq!(json["code_source"], "compiled", "--no-cache read the cache");
}

/// Code with fuel metering differs from code without: each has its entry.
#[test]
fn metered_and_plain_code_have_their_own_entries() {
    let cache = own_cache(Caller::Me);
    let guest = guest(Kind::P1);
    let fuel = ["--fuel", "1000000000"];
    let (_, plain) = run_cached(Caller::Me, cache.path(), &[&guest]);
    let (out, metered) = run_cached(Caller::Me, cache.path(), &[fuel[0], fuel[1], &guest]);
    out.assert_code(0);
    assert_eq!(
        (&plain["code_source"], &metered["code_source"]),
        (&"compiled".into(), &"compiled".into())
    );
    assert_eq!(entries(cache.path()).len(), 2);
    let (_, metered) = run_cached(Caller::Me, cache.path(), &[fuel[0], fuel[1], &guest]);
    assert_eq!(metered["code_source"], "cache");
    assert!(metered["fuel_consumed"].as_u64().unwrap() > 0, "{metered}");
}

/// A cache that cannot be created is no cache: the run goes on (and `-v`
/// says why).
#[test]
fn an_unusable_cache_is_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let (out, json) = run_cached(Caller::Me, &file, &[&guest(Kind::P1)]);
    out.assert_code(0);
    assert_eq!(out.stderr, "");
    assert_eq!(json["code_source"], "compiled");
    let (out, _) = run_cached(Caller::Me, &file, &["-v", &guest(Kind::P1)]);
    assert!(out.stderr.contains("compilation cache not used: "), "{out:#?}");
    // One another user could change is not used either.
    let shared = tempfile::tempdir().unwrap();
    std::fs::create_dir(shared.path().join("wsandbox")).unwrap();
    let mode = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(shared.path().join("wsandbox"), mode).unwrap();
    let (out, json) = run_cached(Caller::Me, shared.path(), &["-v", &guest(Kind::P1)]);
    out.assert_code(0);
    assert!(out.stderr.contains("others may change it"), "{out:#?}");
    assert_eq!(json["code_source"], "compiled");
    assert_eq!(entries(shared.path()), Vec::<PathBuf>::new());
}

/// What version 1 of the format trusted: an entry with the right name,
/// magic and length, and the SHA-256 of its artifact where the MAC goes.
fn forged_entry(artifact: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut forged = b"wsandbox-cache2\n".to_vec();
    forged.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    forged.extend_from_slice(&sha2::Sha256::digest(artifact));
    forged.extend_from_slice(artifact);
    forged
}

/// The machine code of a guest of `kind` that exits 7: what a forger
/// would rather have run than the hello guest.
fn exits_7(kind: Kind, dir: &Path) -> Vec<u8> {
    let wat = match kind {
        Kind::P1 => "exit-code",
        Kind::P2 => "exit-code-component",
        Kind::P3 => unreachable!("a test of both_kinds!"),
    };
    let artifact = dir.join(format!("{wat}.cwasm"));
    crate::run(&["compile", &wsandbox_guests::wat(wat), "-o", s(&artifact)]).assert_code(0);
    let code = std::fs::read(&artifact).unwrap();
    std::fs::remove_file(&artifact).unwrap();
    code
}

/// The attack of a guest granted the caller's home: it moves a forged
/// entry (the right name, recomputed checksum, valid length) over the
/// entry of a module the caller runs next. Its own run does not use the
/// cache (a grant reaches it); the next run refuses the entry (its MAC),
/// compiles, and replaces it.
fn a_guest_cannot_plant_code_in_the_cache(kind: Kind) {
    for caller in callers() {
        let home = own_cache(caller);
        let base = home.path().join(".cache");
        let guest = guest(kind);
        run_cached(caller, &base, &[&guest]).0.assert_code(0);
        let [entry] = &entries(&base)[..] else {
            panic!("{caller:?}: want one entry")
        };
        let staged = home.path().join("forged");
        std::fs::write(&staged, forged_entry(&exits_7(kind, home.path()))).unwrap();
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o666)).unwrap();
        let name = entry.file_name().unwrap().to_str().unwrap();
        let planter = for_nobody(Kind::P1.guest("fs"));
        let grant = format!("{}::/home", s(home.path()));
        let target = format!("/home/.cache/wsandbox/{name}");
        let (out, json) = run_cached(
            caller,
            &base,
            &["-v", "--dir", &grant, &planter, "rename", "/home/forged", &target],
        );
        out.assert_code(0);
        assert!(
            out.stderr.contains("compilation cache not used: the grant"),
            "{caller:?}: {out:#?}"
        );
        assert_eq!(
            json["code_source"], "compiled",
            "{caller:?}: the planter used the cache"
        );
        assert!(!staged.exists(), "{caller:?}: the planter's rename failed");
        let (out, json) = run_cached(caller, &base, &[&guest]);
        out.assert_code(0);
        assert!(
            out.stdout.starts_with("hello from a wasm guest"),
            "{caller:?}: {out:#?}"
        );
        assert_eq!(json["code_source"], "compiled", "{caller:?}: {json}");
        let (out, json) = run_cached(caller, &base, &[&guest]);
        out.assert_code(0);
        assert_eq!(
            json["code_source"], "cache",
            "{caller:?}: the entry was not replaced"
        );
    }
}

/// Entries that would make a careless reader hang or read without end: a
/// symlink to `/dev/zero`, a FIFO nobody writes, a 16 GiB sparse file.
/// Each is refused at once and the run compiles.
#[test]
fn hostile_entries_are_not_read() {
    let cache = own_cache(Caller::Me);
    let guest = guest(Kind::P1);
    run_cached(Caller::Me, cache.path(), &[&guest]).0.assert_code(0);
    let [entry] = &entries(cache.path())[..] else {
        panic!("want one entry")
    };
    type Make<'a> = &'a dyn Fn(&Path);
    let hostile: [(&str, Make); 3] = [
        ("a symlink to /dev/zero", &|p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
        ("a FIFO", &|p| {
            nix::unistd::mkfifo(p, nix::sys::stat::Mode::S_IRWXU).unwrap()
        }),
        ("a 16 GiB sparse file", &|p| {
            std::fs::File::create(p).unwrap().set_len(16 << 30).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }),
    ];
    for (what, make) in hostile {
        std::fs::remove_file(entry).unwrap();
        make(entry);
        // Bounded from outside: a hang is a failure, not a stuck test.
        let mut cmd = std::process::Command::new("timeout");
        cmd.args(["20", env!("CARGO_BIN_EXE_wsandbox"), "run"])
            .args(["--cache-dir", s(&cache.path().join("wsandbox")), &guest])
            .stdin(std::process::Stdio::null());
        let started = std::time::Instant::now();
        let out = output(&mut cmd);
        out.assert_code(0);
        assert!(
            out.stdout.starts_with("hello from a wasm guest"),
            "{what}: {out:#?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: {:?}",
            started.elapsed()
        );
        let meta = std::fs::symlink_metadata(entry).unwrap();
        assert!(
            meta.is_file() && meta.len() < 1 << 30,
            "{what}: the entry was not replaced"
        );
    }
}

/// Root takes no cache location from an inherited `HOME` or
/// `XDG_CACHE_HOME` (`sudo -E`): a forged entry in another user's cache is
/// never read, and nothing is written there.
#[test]
fn roots_cache_is_never_in_anothers_home() {
    if !crate::am_root() {
        eprintln!("not root: root's cache location is not tested");
        return;
    }
    let scratch = own_cache(Caller::Me);
    let guest = guest(Kind::P1);
    run_cached(Caller::Me, scratch.path(), &[&guest]).0.assert_code(0);
    let [entry] = &entries(scratch.path())[..] else {
        panic!("want one entry")
    };
    // Nobody's home, with nobody's cache holding a forged entry.
    let home = own_cache(Caller::Nobody);
    let dir = home.path().join(".cache/wsandbox");
    std::fs::create_dir_all(&dir).unwrap();
    let planted = dir.join(entry.file_name().unwrap());
    std::fs::write(&planted, forged_entry(&exits_7(Kind::P1, scratch.path()))).unwrap();
    for path in [home.path().join(".cache"), dir.clone(), planted.clone()] {
        nix::unistd::chown(&path, Some(65534.into()), Some(65534.into())).unwrap();
    }
    let before = std::fs::read(&planted).unwrap();
    let mut cmd = crate::wsandbox_as(Caller::Me);
    cmd.env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .args(["run", "-v", &guest]);
    let out = output(&mut cmd);
    out.assert_code(0);
    assert!(out.stdout.starts_with("hello from a wasm guest"), "{out:#?}");
    let root_home = nix::unistd::User::from_uid(0.into()).unwrap().unwrap().dir;
    let used = format!(
        "compilation cache: {}",
        root_home.join(".cache/wsandbox").display()
    );
    assert!(out.stderr.contains(&used), "{out:#?}");
    assert_eq!(std::fs::read(&planted).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [entry.file_name().unwrap()],
        "root wrote into nobody's cache"
    );
}

/// Writes `module` compiled to a fresh file as `caller`; returns the path.
fn compile(caller: Caller, dir: &Path, module: &str, extra: &[&str]) -> PathBuf {
    // Named as the module, in a folder of its own: the guest's argv[0] is
    // the same.
    let folder = dir.join(if extra.is_empty() { "plain" } else { "metered" });
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let artifact = folder.join(Path::new(module).file_name().unwrap());
    let mut cmd = wsandbox_as(caller);
    cmd.arg("compile").args(extra).args([module, "-o", s(&artifact)]);
    output(&mut cmd).assert_code(0);
    artifact
}

fn a_compiled_artifact_runs_only_when_trusted(kind: Kind) {
    for caller in callers() {
        let dir = own_cache(caller);
        let guest = guest(kind);
        let artifact = compile(caller, dir.path(), &guest, &[]);
        let (out, _) = run_cached(caller, dir.path(), &[s(&artifact)]);
        out.assert_one_line_error(126, &[s(&artifact), "precompiled", "--allow-precompiled"]);
        let (out, json) = run_cached(caller, dir.path(), &["--allow-precompiled", s(&artifact), "a b"]);
        out.assert_code(0);
        assert_eq!(json["code_source"], "precompiled", "{caller:?}: {json}");
        let (plain, _) = run_cached(caller, dir.path(), &["--no-cache", &guest, "a b"]);
        assert_eq!(
            (&out.stdout, &out.stderr),
            (&plain.stdout, &plain.stderr),
            "{caller:?}"
        );
        // A precompiled run neither needs nor fills the cache.
        assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "{caller:?}");
    }
}

/// An artifact runs only with the fuel metering it was compiled with, and
/// the refusal says how to get one that runs.
#[test]
fn an_artifact_runs_only_with_its_own_metering() {
    let dir = tempfile::tempdir().unwrap();
    let guest = guest(Kind::P1);
    let metered = compile(Caller::Me, dir.path(), &guest, &["--metered"]);
    let plain = compile(Caller::Me, dir.path(), &guest, &[]);
    let run = |args: &[&str]| crate::run(&[&["run", "--allow-precompiled"], args].concat());
    run(&["--fuel", "1000000000", s(&metered)]).assert_code(0);
    run(&[s(&metered)]).assert_one_line_error(
        126,
        &["incompatible artifact", "compile it again without fuel metering"],
    );
    run(&["--fuel", "1000000000", s(&plain)]).assert_one_line_error(
        126,
        &["incompatible artifact", "compile it again with fuel metering"],
    );
    // Out of fuel is out of fuel, precompiled or not.
    let spin = compile(
        Caller::Me,
        dir.path(),
        &wsandbox_guests::wat("spin"),
        &["--metered"],
    );
    let out = run(&["--fuel", "1000", s(&spin)]);
    out.assert_code(124);
    assert!(out.stderr.contains("fuel"), "{out:#?}");
}

#[test]
fn compile_refuses_bad_input_and_leaves_the_output_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.cwasm");
    std::fs::write(&out_path, "what was there").unwrap();
    let bad = dir.path().join("bad.wat");
    std::fs::write(&bad, r#"(module (func (export "_start") i32.add))"#).unwrap();
    let compile = |module: &str, out: &Path| crate::run(&["compile", module, "-o", s(out)]);
    compile(s(&bad), &out_path).assert_one_line_error(126, &["bad.wat", "invalid module"]);
    compile(s(&dir.path().join("missing.wasm")), &out_path).assert_one_line_error(127, &["missing.wasm"]);
    compile(
        &wsandbox_guests::wat("hello"),
        &dir.path().join("no/such/dir/out"),
    )
    .assert_one_line_error(125, &["-o", "no such file or directory"]);
    // An artifact is not compiled twice.
    let artifact = dir.path().join("hello.cwasm");
    compile(&wsandbox_guests::wat("hello"), &artifact).assert_code(0);
    compile(s(&artifact), &out_path).assert_one_line_error(126, &["already a precompiled artifact"]);
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "what was there");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "no temporary file is left: {names:?}");
    // Without -o, a usage error.
    crate::run(&["compile", &wsandbox_guests::wat("hello")]).assert_code(2);
}

/// The key is made of wasmtime's own hash of the engine, which the cache
/// remembers: the first run on a host hashes an engine outside the walls,
/// the next ones take the hash from the cache and build their engine
/// inside only.
#[test]
fn the_engines_hash_is_remembered_for_the_next_runs() {
    let cache = tempfile::tempdir().unwrap();
    let hello = wsandbox_guests::wat("hello");
    let run_once = || {
        let out = crate::run(&["-v", "run", "--cache-dir", cache.path().to_str().unwrap(), &hello]);
        out.assert_code(0);
        out.stderr.contains("the engine's hash remembered as engine-")
    };
    assert!(run_once(), "the first run hashes the engine");
    let remembered: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("engine-"))
        .collect();
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    assert!(!run_once(), "the next run takes the hash from the cache");
    // A metered run's engine is another one.
    let out = crate::run(&[
        "-v",
        "run",
        "--fuel",
        "1000000",
        "--cache-dir",
        cache.path().to_str().unwrap(),
        &hello,
    ]);
    assert!(
        out.stderr.contains("the engine's hash remembered as engine-"),
        "{out:#?}"
    );
}
