//! WASI 0.3 (preview 3) commands: a component exporting
//! `wasi:cli/run@0.3.0` (`guests/components/p3-probe`, whose stdio and
//! files are streams) runs behind both walls with the capabilities and
//! limits of a 0.2 one: arguments, granted variables only, exit codes,
//! stdin, clocks, random, preopens (read-only ones too), no way out of
//! them, `--timeout`, `--memory`, `--fuel`, the cache, an unprivileged
//! caller.

use crate::{Caller, callers, for_nobody, run, s, wsandbox_as};
use std::os::unix::fs::symlink;
use wsandbox_guests::P3_PROBE;

/// `wsandbox run OPTIONS P3_PROBE ARGS`.
fn probe(options: &[&str], args: &[&str]) -> crate::Output {
    let mut all = vec!["run"];
    all.extend_from_slice(options);
    all.push(P3_PROBE);
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn a_wasi_0_3_command_runs_with_its_arguments_granted_variables_and_exit_code() {
    let out = probe(&[], &["hello"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "hello from wasi 0.3\n");
    let out = probe(&[], &["args", "x y", "z"]);
    assert_eq!(out.stdout, "args\nx y\nz\n", "{out:#?}");
    // Only the variables granted, none of the host's.
    let out = probe(&["--env", "FOO=bar", "--env", "EMPTY="], &["env"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "FOO=bar\nEMPTY=\n", "{out:#?}");
    // `exit-with-code`, and `run` returning `err`.
    probe(&[], &["exit", "7"]).assert_code(7);
    probe(&[], &["fail"]).assert_code(1);
    // The clocks move, random differs.
    assert_eq!(probe(&[], &["clock"]).stdout, "clock moves: true\n");
    assert_eq!(probe(&[], &["random"]).stdout, "random differs: true\n");
}

#[test]
fn stdin_streams_to_a_wasi_0_3_command() {
    use std::io::Write;
    let mut child = crate::wsandbox()
        .args(["run", P3_PROBE, "stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"to be or not to be\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "TO BE OR NOT TO BE\n");
}

#[test]
fn a_wasi_0_3_command_reads_and_writes_only_what_is_granted() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "not for the guest").unwrap();
    let rw = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("a.txt"), "read only").unwrap();
    symlink(outside.path().join("secret.txt"), rw.path().join("out")).unwrap();
    symlink("../../../../../../etc/passwd", rw.path().join("up")).unwrap();
    let rw_grant = format!("{}::/rw", s(rw.path()));
    let ro_grant = format!("{}::/ro", s(ro.path()));
    let grants = ["--dir", rw_grant.as_str(), "--ro-dir", ro_grant.as_str()];
    // Read, write and list inside the grants.
    assert_eq!(probe(&grants, &["cat", "/ro/a.txt"]).stdout, "read only");
    probe(&grants, &["write", "/rw/new.txt", "hello"]).assert_code(0);
    assert_eq!(
        std::fs::read_to_string(rw.path().join("new.txt")).unwrap(),
        "hello"
    );
    let listed = probe(&grants, &["ls", "/rw"]);
    assert_eq!(listed.stdout, "new.txt\nout\nup\n", "{listed:#?}");
    // A read-only grant refuses a write, and the file is unchanged.
    let out = probe(&grants, &["write", "/ro/a.txt", "changed"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stdout.starts_with("error: ErrorCode::"), "{out:#?}");
    assert_eq!(
        std::fs::read_to_string(ro.path().join("a.txt")).unwrap(),
        "read only"
    );
    let out = probe(&grants, &["write", "/ro/new.txt", "x"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(!ro.path().join("new.txt").exists());
    // No path leads out: `..`, an absolute path, a link out of the grant.
    for path in [
        "/rw/../../etc/passwd",
        "/rw/..",
        "/rw/out",
        "/rw/up",
        "/etc/passwd",
    ] {
        let out = probe(&grants, &["open", path]);
        out.assert_code(0);
        assert_ne!(out.stdout, "ok\n", "{path}: {out:#?}");
        assert!(out.stdout.starts_with("ErrorCode::"), "{path}: {out:#?}");
    }
    // Without a grant, nothing at all.
    let out = probe(&[], &["cat", "/rw/new.txt"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
}

#[test]
fn a_wasi_0_3_command_is_bounded_as_any_guest() {
    // A trap: 134, the trap on stderr.
    let out = probe(&[], &["trap"]);
    out.assert_code(134);
    assert!(out.stderr.contains("guest trapped: wasm trap"), "{out:#?}");
    // The time limit: 124.
    let started = std::time::Instant::now();
    probe(&["--timeout", "500ms"], &["spin"]).assert_code(124);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Fuel: stopped, 124 too, and said.
    let out = probe(&["--fuel", "2000000"], &["spin"]);
    out.assert_code(124);
    assert!(out.stderr.contains("ran out of fuel"), "{out:#?}");
    // Memory: a grow past the limit traps, naming it.
    probe(&["--memory", "64M"], &["grow", "8"]).assert_code(0);
    let out = probe(&["--memory", "16M"], &["grow", "64"]);
    out.assert_code(134);
    assert!(out.stderr.contains("memory reached its limit"), "{out:#?}");
}

#[test]
fn a_wasi_0_3_command_runs_from_the_cache_and_for_every_caller() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("wsandbox");
    let options = ["-v", "--cache-dir", s(&dir)];
    let first = probe(&options, &["hello"]);
    first.assert_code(0);
    assert!(first.stderr.contains(") compiled: "), "{first:#?}");
    let report = tempfile::NamedTempFile::new().unwrap();
    let report_options = ["-v", "--cache-dir", s(&dir), "--report", s(report.path())];
    let second = probe(&report_options, &["hello"]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    assert_eq!(json["module"]["wasi"], "0.3", "{json}");
    assert_eq!(json["code_source"], "cache", "{json}");
    assert!(second.stderr.contains("loaded from the cache"), "{second:#?}");
    assert_eq!(second.stdout, "hello from wasi 0.3\n");
    for caller in callers() {
        if caller == Caller::Nobody {
            let out = crate::output(wsandbox_as(caller).args(["run", &for_nobody(P3_PROBE), "hello"]));
            out.assert_code(0);
            assert_eq!(out.stdout, "hello from wasi 0.3\n");
        }
    }
}

/// `--version` says which WASI versions run, 0.3 among them.
#[test]
fn the_version_names_wasi_0_3() {
    let version = run(&["--version"]);
    version.assert_code(0);
    assert!(
        version
            .stdout
            .contains("WASI: 0.1 (preview 1), 0.2 (preview 2, with http), 0.3 (preview 3: run, serve)"),
        "{version:#?}"
    );
}
