//! Preopened directories: `--dir` grants everything inside, `--ro-dir`
//! grants reading only, and no path, link or rename leads out of either —
//! for a core module (WASI 0.1), a component (0.2) and a WASI 0.3
//! component (`p3-probe`, through `wasi:filesystem@0.3`'s streams and
//! async functions) alike.

use crate::{Caller, Kind, Output, am_root, bare_run, every_kind, for_nobody, output, run, s, wsandbox_as};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

every_kind!(
    read_write_dir_allows_every_operation,
    read_only_dir_refuses_every_change,
    a_read_only_dir_inside_a_read_write_one_refuses_every_change,
    guest_path_defaults_to_the_host_path,
    no_path_leads_out_of_a_preopen,
    symlinks_out_of_a_preopen_are_not_followed,
    nothing_is_visible_without_a_preopen,
    a_link_swapped_in_while_the_guest_reads_leads_nowhere,
);

/// Runs the `fs` guest with `grant` (e.g. `--dir HOST::/box`) and `op`,
/// on the engine alone (no outer wall), with both walls, and — when the
/// tests run as root — with both walls as uid 65534: every answer must be
/// the same, so each check here holds for WASI by itself, and for an
/// unprivileged caller as for root.
fn fs_op(kind: Kind, grant: &[&str], op: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(grant);
    args.push(kind.guest("fs"));
    args.extend_from_slice(op);
    let alone = output(bare_run().args(&args[1..]));
    let walled = run(&args);
    let answer = |o: &Output| (o.code, o.stdout.clone(), o.stderr.clone());
    assert_eq!(
        answer(&alone),
        answer(&walled),
        "{op:?}: the inner wall alone (left) and both walls (right) differ"
    );
    if am_root() {
        let guest = for_nobody(kind.guest("fs"));
        let as_nobody: Vec<&str> = args
            .iter()
            .map(|&a| if a == kind.guest("fs") { guest.as_str() } else { a })
            .collect();
        let nobody = output(wsandbox_as(Caller::Nobody).args(&as_nobody));
        assert_eq!(
            answer(&walled),
            answer(&nobody),
            "{op:?}: root (left) and uid 65534 (right) differ"
        );
    }
    walled
}

/// A temporary directory that uid 65534 may enter and read (the tests run
/// the same operations as that user when they run as root).
fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    tmp
}

/// [`fs_op`] with both walls only, for operations that change the host (a
/// second run would find them done).
fn fs_op_once(kind: Kind, grant: &[&str], op: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(grant);
    args.push(kind.guest("fs"));
    args.extend_from_slice(op);
    run(&args)
}

/// Asserts that the guest's operation failed inside the guest.
#[track_caller]
fn assert_refused(out: &Output, op: &[&str]) {
    assert_eq!(out.code, Some(1), "{op:?} should fail: {out:#?}");
    assert!(out.stderr.starts_with("error: "), "{out:#?}");
}

/// Every file below `dir` with its contents (`<dir>` for directories,
/// `-> target` for links) and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (String, std::time::SystemTime)> {
    let mut all = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let what = if meta.is_symlink() {
            format!("-> {}", fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            all.extend(snapshot(&path));
            "<dir>".into()
        } else {
            fs::read_to_string(&path).unwrap()
        };
        all.insert(s(&path).to_owned(), (what, meta.modified().unwrap()));
    }
    all
}

fn read_write_dir_allows_every_operation(kind: Kind) {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path();
    fs::write(host.join("a.txt"), "alpha").unwrap();
    fs::create_dir(host.join("empty")).unwrap();
    let grant = format!("{}::/box", s(host));
    let op = |op: &[&str]| fs_op_once(kind, &["--dir", &grant], op);

    assert_eq!(op(&["read", "/box/a.txt"]).assert_code(0).stdout, "alpha");
    assert_eq!(op(&["ls", "/box"]).assert_code(0).stdout, "a.txt\nempty\n");
    op(&["write", "/box/b.txt", "beta"]).assert_code(0);
    assert_eq!(fs::read_to_string(host.join("b.txt")).unwrap(), "beta");
    op(&["append", "/box/b.txt", "!"]).assert_code(0);
    assert_eq!(fs::read_to_string(host.join("b.txt")).unwrap(), "beta!");
    op(&["truncate", "/box/b.txt", "2"]).assert_code(0);
    assert_eq!(fs::read_to_string(host.join("b.txt")).unwrap(), "be");
    op(&["set-times", "/box/b.txt"]).assert_code(0);
    let mtime = fs::metadata(host.join("b.txt")).unwrap().modified().unwrap();
    assert_eq!(mtime, std::time::SystemTime::UNIX_EPOCH);
    op(&["mkdir", "/box/sub"]).assert_code(0);
    assert!(host.join("sub").is_dir());
    op(&["rename", "/box/b.txt", "/box/sub/c.txt"]).assert_code(0);
    assert!(!host.join("b.txt").exists());
    assert_eq!(fs::read_to_string(host.join("sub/c.txt")).unwrap(), "be");
    op(&["symlink", "c.txt", "/box/sub/link"]).assert_code(0);
    assert_eq!(op(&["read", "/box/sub/link"]).assert_code(0).stdout, "be");
    op(&["link", "/box/a.txt", "/box/hard"]).assert_code(0);
    assert_eq!(fs::read_to_string(host.join("hard")).unwrap(), "alpha");
    op(&["rm", "/box/sub/c.txt"]).assert_code(0);
    assert!(!host.join("sub/c.txt").exists());
    op(&["rmdir", "/box/empty"]).assert_code(0);
    assert!(!host.join("empty").exists());
}

fn read_only_dir_refuses_every_change(kind: Kind) {
    let tmp = open_tempdir();
    let host = tmp.path();
    fs::write(host.join("a.txt"), "alpha").unwrap();
    fs::create_dir(host.join("empty")).unwrap();
    let before = snapshot(host);
    let grant = format!("{}::/ro", s(host));
    let op = |op: &[&str]| fs_op(kind, &["--ro-dir", &grant], op);

    // Reading works...
    assert_eq!(op(&["read", "/ro/a.txt"]).assert_code(0).stdout, "alpha");
    assert_eq!(op(&["ls", "/ro"]).assert_code(0).stdout, "a.txt\nempty\n");
    // ...and every change is refused.
    for change in [
        &["write", "/ro/a.txt", "changed"][..],
        &["write", "/ro/new.txt", "new"],
        &["append", "/ro/a.txt", "!"],
        &["truncate", "/ro/a.txt", "0"],
        &["set-times", "/ro/a.txt"],
        &["mkdir", "/ro/sub"],
        &["rm", "/ro/a.txt"],
        &["rmdir", "/ro/empty"],
        &["rename", "/ro/a.txt", "/ro/b.txt"],
        &["symlink", "a.txt", "/ro/link"],
        &["link", "/ro/a.txt", "/ro/hard"],
    ] {
        let out = op(change);
        assert_refused(&out, change);
    }
    assert_eq!(snapshot(host), before, "the read-only directory changed");
}

/// `--ro-dir` inside a `--dir`: the guest reads it where it asked (the
/// sandbox mounts it apart, see rootfs::inside_path), and changes nothing
/// in it, while the read-write directory around it stays writable.
fn a_read_only_dir_inside_a_read_write_one_refuses_every_change(kind: Kind) {
    let tmp = open_tempdir();
    let host = tmp.path();
    let inner = host.join("inner");
    fs::create_dir(&inner).unwrap();
    fs::write(inner.join("a.txt"), "alpha").unwrap();
    fs::create_dir(inner.join("empty")).unwrap();
    let before = snapshot(&inner);
    let grants = [
        "--dir",
        &format!("{}::/box", s(host)),
        "--ro-dir",
        &format!("{}::/box/inner", s(&inner)),
    ];
    let op = |op: &[&str]| fs_op(kind, &grants, op);
    assert_eq!(op(&["read", "/box/inner/a.txt"]).assert_code(0).stdout, "alpha");
    assert_eq!(op(&["ls", "/box/inner"]).assert_code(0).stdout, "a.txt\nempty\n");
    for change in [
        &["write", "/box/inner/a.txt", "changed"][..],
        &["write", "/box/inner/new.txt", "new"],
        &["truncate", "/box/inner/a.txt", "0"],
        &["set-times", "/box/inner/a.txt"],
        &["mkdir", "/box/inner/sub"],
        &["rm", "/box/inner/a.txt"],
        &["rmdir", "/box/inner/empty"],
        &["rename", "/box/inner/a.txt", "/box/moved.txt"],
        &["link", "/box/inner/a.txt", "/box/hard"],
    ] {
        assert_refused(&op(change), change);
    }
    assert_eq!(snapshot(&inner), before, "the read-only directory changed");
    let out = fs_op_once(kind, &grants, &["write", "/box/new.txt", "new"]);
    out.assert_code(0);
    assert_eq!(fs::read_to_string(host.join("new.txt")).unwrap(), "new");
}

fn guest_path_defaults_to_the_host_path(kind: Kind) {
    let tmp = open_tempdir();
    fs::write(tmp.path().join("f"), "same path").unwrap();
    let file = tmp.path().join("f");
    let out = fs_op(kind, &["--ro-dir", s(tmp.path())], &["read", s(&file)]);
    assert_eq!(out.assert_code(0).stdout, "same path");
}

/// Layout for the escape tests: `box/` is granted; `secret.txt` and
/// `outside/` sit next to it on the host.
struct Escape {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Escape {
    fn new() -> Escape {
        let tmp = open_tempdir();
        let root = tmp.path().to_path_buf();
        fs::create_dir(root.join("box")).unwrap();
        fs::write(root.join("box/inside.txt"), "inside").unwrap();
        fs::create_dir(root.join("box/sub")).unwrap();
        fs::write(root.join("secret.txt"), "secret").unwrap();
        fs::create_dir(root.join("outside")).unwrap();
        fs::write(root.join("outside/secret.txt"), "secret too").unwrap();
        Escape { _tmp: tmp, root }
    }

    fn grant(&self) -> String {
        format!("{}::/box", s(&self.root.join("box")))
    }
}

fn no_path_leads_out_of_a_preopen(kind: Kind) {
    let e = Escape::new();
    let before = snapshot(&e.root);
    let grant = e.grant();
    for access in ["--dir", "--ro-dir"] {
        let op = |op: &[&str]| fs_op(kind, &[access, &grant], op);
        for attempt in [
            &["read", "/box/../secret.txt"][..],
            &["read", "/box/../../../../../../etc/passwd"],
            &["read", "/box/sub/../../secret.txt"],
            &["ls", "/box/.."],
            &["write", "/box/../created.txt", "x"],
            &["mkdir", "/box/../newdir"],
            &["rm", "/box/../secret.txt"],
            &["rename", "/box/inside.txt", "/box/../moved.txt"],
            &["rename", "/box/../secret.txt", "/box/stolen.txt"],
            &["link", "/box/../secret.txt", "/box/hard"],
            &["read", "/etc/passwd"],
            &["read", "/proc/self/environ"],
        ] {
            let out = op(attempt);
            assert_refused(&out, attempt);
            assert!(
                !out.stdout.contains("secret") && !out.stdout.contains("root:"),
                "{out:#?}"
            );
        }
        // `..` that stays inside resolves: the refusals are about leaving.
        assert_eq!(
            op(&["read", "/box/sub/../inside.txt"]).assert_code(0).stdout,
            "inside"
        );
    }
    assert_eq!(snapshot(&e.root), before, "an escape attempt changed the host");
}

fn symlinks_out_of_a_preopen_are_not_followed(kind: Kind) {
    let e = Escape::new();
    let b = e.root.join("box");
    symlink(e.root.join("secret.txt"), b.join("abs")).unwrap();
    symlink("../secret.txt", b.join("rel")).unwrap();
    symlink(e.root.join("outside"), b.join("dir")).unwrap();
    symlink("../outside", b.join("reldir")).unwrap();
    symlink("chain2", b.join("chain1")).unwrap();
    symlink("../secret.txt", b.join("chain2")).unwrap();
    symlink("/etc/passwd", b.join("passwd")).unwrap();
    symlink("inside.txt", b.join("fine")).unwrap();
    let before = snapshot(&e.root);
    let grant = e.grant();
    let op = |op: &[&str]| fs_op(kind, &["--dir", &grant], op);

    // A link that stays inside works, so the refusals below are about leaving.
    assert_eq!(op(&["read", "/box/fine"]).assert_code(0).stdout, "inside");
    for attempt in [
        &["read", "/box/abs"][..],
        &["read", "/box/rel"],
        &["read", "/box/chain1"],
        &["read", "/box/passwd"],
        &["ls", "/box/dir"],
        &["read", "/box/dir/secret.txt"],
        &["ls", "/box/reldir"],
        &["read", "/box/reldir/secret.txt"],
        &["write", "/box/rel", "overwritten"],
        &["write", "/box/dir/new.txt", "x"],
        &["rename", "/box/inside.txt", "/box/dir/moved.txt"],
    ] {
        let out = op(attempt);
        assert_refused(&out, attempt);
        assert!(
            !out.stdout.contains("secret") && !out.stdout.contains("root:"),
            "{out:#?}"
        );
    }
    assert_eq!(snapshot(&e.root), before, "an escape attempt changed the host");

    // A hard link to a link is a second link (linkat does not follow it),
    // which leads nowhere either.
    let linked = fs_op_once(kind, &["--dir", &grant], &["link", "/box/rel", "/box/hard"]);
    assert!(linked.code == Some(0) || linked.code == Some(1), "{linked:#?}");
    assert_refused(&op(&["read", "/box/hard"]), &["read", "/box/hard"]);

    // A link the guest plants itself leads nowhere either.
    for (target, link) in [
        ("/etc/passwd", "/box/planted-abs"),
        ("../secret.txt", "/box/planted-rel"),
    ] {
        let planted = fs_op_once(kind, &["--dir", &grant], &["symlink", target, link]);
        let read = op(&["read", link]);
        assert_refused(&read, &["read", link]);
        assert!(planted.code == Some(0) || planted.code == Some(1), "{planted:#?}");
    }
    assert_eq!(fs::read_to_string(e.root.join("secret.txt")).unwrap(), "secret");
}

fn nothing_is_visible_without_a_preopen(kind: Kind) {
    for path in ["/", ".", "/tmp", "/etc"] {
        assert_refused(&fs_op(kind, &[], &["ls", path]), &["ls", path]);
    }
    let write = ["write", "/tmp/wsandbox-should-not-exist", "x"];
    assert_refused(&fs_op(kind, &[], &write), &write);
    assert!(!Path::new("/tmp/wsandbox-should-not-exist").exists());
}

/// A host process swaps a directory of the grant with a link out of it,
/// again and again, while the guest reads a file through it (check and use
/// race): every read finds the file inside or fails; none reads the one
/// outside. On the engine alone and with both walls.
fn a_link_swapped_in_while_the_guest_reads_leads_nowhere(kind: Kind) {
    use std::ffi::CString;
    use std::sync::atomic::{AtomicBool, Ordering};
    let e = Escape::new();
    let b = e.root.join("box");
    fs::write(b.join("sub/f"), "inside").unwrap();
    fs::write(e.root.join("outside/f"), "SECRET").unwrap();
    symlink("../outside", b.join("alt")).unwrap();
    let grant = e.grant();
    let args = [
        "--dir",
        &grant,
        kind.guest("fs"),
        "read-many",
        "/box/sub/f",
        "3000",
    ];
    for walled in [false, true] {
        let (mut inside, mut refused) = (0, 0);
        // Most runs race in the first try; a loaded machine may need more.
        for _attempt in 0..20 {
            let stop = AtomicBool::new(false);
            let out = std::thread::scope(|scope| {
                scope.spawn(|| {
                    let sub = CString::new(s(&b.join("sub"))).unwrap();
                    let alt = CString::new(s(&b.join("alt"))).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        // SAFETY: two valid paths; RENAME_EXCHANGE swaps them atomically.
                        let swapped = unsafe {
                            libc::renameat2(
                                libc::AT_FDCWD,
                                sub.as_ptr(),
                                libc::AT_FDCWD,
                                alt.as_ptr(),
                                libc::RENAME_EXCHANGE,
                            )
                        };
                        assert_eq!(swapped, 0, "renameat2: {}", std::io::Error::last_os_error());
                    }
                });
                let out = if walled {
                    run(&[&["run"][..], &args].concat())
                } else {
                    output(bare_run().args(args))
                };
                stop.store(true, Ordering::Relaxed);
                out
            });
            out.assert_code(0);
            assert!(
                !out.stdout.contains("SECRET"),
                "walled: {walled}: read through the swapped link"
            );
            for line in out.stdout.lines() {
                match line {
                    "inside" => inside += 1,
                    l if l.starts_with("error: ") => refused += 1,
                    other => panic!("unexpected line {other:?}"),
                }
            }
            // Keep going until the race was really run: reads that found the
            // directory and reads that met the link.
            if inside > 0 && refused > 0 {
                break;
            }
        }
        assert!(
            inside > 0 && refused > 0,
            "walled: {walled}: the swap never raced ({inside} inside, {refused} refused)"
        );
    }
    assert_eq!(fs::read_to_string(e.root.join("outside/f")).unwrap(), "SECRET");
}

/// Root does not follow a link that another user owns to a grant (that
/// user could point it anywhere): one line, exit 125, before any sandbox.
#[test]
fn root_follows_no_link_of_another_user_to_a_grant() {
    if !am_root() {
        println!("skipped: only root can give a link to another user");
        return;
    }
    let tmp = open_tempdir();
    fs::create_dir(tmp.path().join("real")).unwrap();
    let link = tmp.path().join("theirs");
    symlink("real", &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let guest = Kind::P1.guest("exit");
    let out = run(&["run", "--ro-dir", &format!("{}/.", s(&link)), guest]);
    assert_eq!(out.code, Some(125), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    assert!(out.stderr.contains("a symbolic link of uid 65534"), "{out:#?}");
    // Root's own link is followed.
    let mine = tmp.path().join("mine");
    symlink("real", &mine).unwrap();
    run(&["run", "--ro-dir", s(&mine), guest]).assert_code(0);
}

/// `-v` names where each grant resolved, and says when a link took it
/// outside the path named.
#[test]
fn verbose_shows_where_each_grant_resolves() {
    let tmp = open_tempdir();
    let host = tmp.path().canonicalize().unwrap();
    fs::create_dir_all(host.join("real/sub")).unwrap();
    symlink(host.join("real"), host.join("link")).unwrap();
    let guest = Kind::P1.guest("exit");
    let named = host.join("link/sub");
    let out = run(&[
        "run",
        "-v",
        "--ro-dir",
        s(&host.join("real")),
        "--dir",
        s(&named),
        guest,
    ]);
    out.assert_code(0);
    let real = host.join("real");
    assert!(
        out.stderr
            .contains(&format!("grant --ro-dir {}: {}\n", s(&real), s(&real))),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "grant --dir {}: {} (through a symbolic link: outside {})",
            s(&named),
            s(&real.join("sub")),
            s(&named)
        )),
        "{}",
        out.stderr
    );
}
