//! Bad input, tried as a new user would: each gives one clear line on
//! stderr and the exit code of DESIGN.md, never a panic.

use crate::{Kind, both_kinds, for_nobody, output, run, s};
use std::fs;

#[test]
fn missing_module_is_127() {
    run(&["run", "/no/such/module.wasm"])
        .assert_one_line_error(127, &["/no/such/module.wasm", "no such file"]);
}

#[test]
fn text_file_named_wasm_is_126() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notes.wasm");
    fs::write(&path, "these are my notes, not a module\n").unwrap();
    run(&["run", s(&path)]).assert_one_line_error(126, &["notes.wasm", "not WebAssembly"]);
}

#[test]
fn empty_file_is_126() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("empty.wasm");
    fs::write(&path, "").unwrap();
    run(&["run", s(&path)]).assert_one_line_error(126, &["empty.wasm", "empty"]);
}

#[test]
fn directory_is_126() {
    let tmp = tempfile::tempdir().unwrap();
    run(&["run", s(tmp.path())]).assert_one_line_error(126, &["is a directory"]);
}

#[test]
fn corrupt_binary_is_126() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("corrupt.wasm");
    let mut bytes = fs::read(wsandbox_guests::p1("hello")).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(&path, bytes).unwrap();
    run(&["run", s(&path)]).assert_one_line_error(126, &["corrupt.wasm", "invalid module"]);
}

#[test]
fn bad_wat_names_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.wat");
    fs::write(&path, "(module\n  (func (result i32) (i32.add)))\n").unwrap();
    let out = run(&["run", s(&path)]);
    out.assert_one_line_error(126, &["bad.wat", "invalid module"]);
}

#[test]
fn unknown_import_is_126() {
    run(&["run", &wsandbox_guests::wat("unknown-import")])
        .assert_one_line_error(126, &["unknown import", "env::launch_missiles"]);
}

#[test]
fn module_without_start_is_126() {
    run(&["run", &wsandbox_guests::wat("no-start")])
        .assert_one_line_error(126, &["no entry point", "_start"]);
}

#[test]
fn component_without_run_is_126() {
    run(&["run", &wsandbox_guests::wat("component")])
        .assert_one_line_error(126, &["no entry point", "wasi:cli/run"]);
}

both_kinds!(missing_dir_is_125, file_as_dir_is_125);

fn missing_dir_is_125(kind: Kind) {
    run(&["run", "--dir", "/no/such/dir", kind.guest("hello")])
        .assert_one_line_error(125, &["--dir /no/such/dir", "no such file or directory"]);
    run(&["run", "--ro-dir", "/no/such/dir::/data", kind.guest("hello")])
        .assert_one_line_error(125, &["--ro-dir /no/such/dir", "no such file or directory"]);
}

fn file_as_dir_is_125(kind: Kind) {
    let file = kind.guest("hello");
    run(&["run", "--ro-dir", file, file]).assert_one_line_error(125, &["not a directory"]);
}

#[test]
fn same_guest_path_twice_is_125() {
    let tmp = tempfile::tempdir().unwrap();
    let a = format!("{}::/data", s(tmp.path()));
    run(&["run", "--dir", &a, "--ro-dir", &a, wsandbox_guests::p1("hello")])
        .assert_one_line_error(125, &["/data", "granted twice"]);
}

#[test]
fn bad_env_name_is_125() {
    run(&["run", "--env", "=value", wsandbox_guests::p1("hello")])
        .assert_one_line_error(125, &["environment variable"]);
}

#[test]
fn usage_errors_are_2() {
    // One line, and no tip to put the option after `--`, which would hand
    // it to the guest.
    for (args, option) in [
        (
            &["run", "--frobnicate", wsandbox_guests::p1("hello")][..],
            "--frobnicate",
        ),
        (&["--frobnicate", wsandbox_guests::p1("hello")], "--frobnicate"),
        (
            &["serve", "--wasm-timeout=5", wsandbox_guests::PROBE_HTTP],
            "--wasm-timeout",
        ),
    ] {
        let out = run(args);
        out.assert_one_line_error(2, &["unknown option", option]);
        assert!(!out.stderr.contains("tip"), "{out:#?}");
    }
    let out = run(&["run"]);
    out.assert_code(2);
    assert!(out.stderr.contains("MODULE"), "{out:#?}");
    // A word that is no file and no path is a mistyped command, not a
    // module (`wsandbox app.wasm` is an implicit run).
    let out = run(&["frobnicate"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{out:#?}"
    );
    run(&["frobnicate.wasm"]).assert_one_line_error(127, &["frobnicate.wasm"]);
}

#[test]
fn help_and_version_succeed() {
    let out = run(&["run", "--help"]);
    out.assert_code(0);
    for flag in ["--dir", "--ro-dir", "--env", "Examples:"] {
        assert!(out.stdout.contains(flag), "help lacks {flag}: {out:#?}");
    }
    let out = run(&["--version"]);
    assert!(out.assert_code(0).stdout.starts_with("wsandbox "));
}

/// Most users are not root: the same run works as an unprivileged user.
#[test]
fn runs_as_an_unprivileged_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: not root, so every other test already runs unprivileged");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let grant = format!("{}::/out", s(tmp.path()));
    let out = output(
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(for_nobody(env!("CARGO_BIN_EXE_wsandbox")))
            .args([
                "run",
                "--dir",
                &grant,
                &for_nobody(wsandbox_guests::p1("fs")),
                "write",
                "/out/f",
                "by nobody",
            ])
            .stdin(std::process::Stdio::null()),
    );
    out.assert_code(0);
    let meta = fs::metadata(tmp.path().join("f")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
}
