//! WASI 0.3 (preview 3) commands: a component exporting
//! `wasi:cli/run@0.3.0` (`guests/components/p3-probe`, whose stdio and
//! files are streams) runs behind both walls with the capabilities and
//! limits of a 0.2 one: arguments, granted variables only, exit codes,
//! stdin, clocks, random, `--timeout`, `--memory`, `--fuel`, the cache,
//! an unprivileged caller; its preopens (read-only ones too) and every
//! way out of them are `fs.rs`'s, whose attacks run against it too. A component of async functions with no entry point
//! (`guests/components/p3-calls`) is called function by function
//! (`wsandbox call`); as a plugin it is refused, clearly. Services are
//! `p3_serve.rs`'s.

use crate::{Caller, callers, for_nobody, run, s, wsandbox_as};
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
            .contains("WASI: 0.1 (preview 1), 0.2 (preview 2, with http), 0.3 (preview 3: run, call, serve)"),
        "{version:#?}"
    );
}

#[test]
fn the_functions_of_a_0_3_component_are_called_one_by_one() {
    use wsandbox_guests::P3_CALLS;
    let listed = run(&["call", "--list", P3_CALLS]);
    listed.assert_code(0);
    for line in [
        "wsandbox:p3/calls.add: async func(a: u32, b: u32) -> u32\n",
        "wsandbox:p3/calls.lines: async func(path: string) -> result<list<string>, string>\n",
        "wsandbox:p3/calls.shout: func(s: string) -> string\n",
    ] {
        assert!(listed.stdout.contains(line), "{line:?} in {}", listed.stdout);
    }
    let call = |options: &[&str], expr: &str| {
        let mut all = vec!["call"];
        all.extend_from_slice(options);
        all.extend_from_slice(&[P3_CALLS, expr]);
        run(&all)
    };
    // Async functions and a plain one, by their short names too.
    let added = call(&[], "calls.add(2, 3)");
    added.assert_code(0);
    assert_eq!(added.stdout, "5\n");
    assert_eq!(call(&[], r#"calls.shout("hi")"#).stdout, "\"HI\"\n");
    assert_eq!(
        call(&[], "wsandbox:p3/calls.wait(20)").stdout,
        "\"waited 20 ms\"\n"
    );
    // Its grants, as a command's.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a.txt"), "one\ntwo\n").unwrap();
    std::fs::write(dir.path().join("beside.txt"), "not granted\n").unwrap();
    let grant = format!("{}::/data", s(&data));
    let read = call(&["--ro-dir", &grant], r#"calls.lines("/data/a.txt")"#);
    read.assert_code(0);
    assert_eq!(read.stdout, "ok([\"one\", \"two\"])\n");
    let out = call(&["--ro-dir", &grant], r#"calls.lines("/data/../beside.txt")"#);
    out.assert_code(1);
    assert!(
        out.stdout.starts_with("err(") && !out.stdout.contains("not granted"),
        "{out:#?}"
    );
    // Its limits and failures.
    let trapped = call(&[], "calls.boom()");
    trapped.assert_code(134);
    assert!(trapped.stderr.contains("guest trapped"), "{trapped:#?}");
    call(&["--timeout", "1s"], "calls.wait(30000)").assert_code(124);
    call(&[], "calls.add(1)")
        .assert_one_line_error(2, &["arguments do not fit", "async func(a: u32, b: u32)"]);
    // No entry point to run.
    run(&["run", P3_CALLS]).assert_one_line_error(126, &["no entry point"]);
    // Its version, in the report: 0.3, told by its types.
    let report = dir.path().join("report.json");
    call(&["--report", s(&report)], "calls.add(1, 1)").assert_code(0);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["module"]["wasi"], "0.3", "{report}");
}

#[test]
fn a_plugin_of_the_component_models_async_is_refused_with_a_clear_error() {
    use wsandbox::Policy;
    use wsandbox::plugin::{Plugin, PluginError};
    let mut plugin = Plugin::new(wsandbox_guests::P3_CALLS, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false);
    match plugin.call("calls.add", &[]) {
        Err(PluginError::Start(message)) => {
            assert!(message.contains("not supported yet"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// A local server on 127.0.0.1 that answers one request with `hosts`:
/// its port, and a thread that tells the head it read.
pub(crate) fn one_answer() -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answering = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhosts")
            .unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, answering)
}

#[test]
fn a_wasi_0_3_command_reaches_out_by_the_rules_alone() {
    let (port, answering) = one_answer();
    let url = format!("http://127.0.0.1:{port}/asked");
    // No rule: refused before any socket, and said.
    let refused = probe(&[], &["fetch", &url]);
    refused.assert_code(1);
    assert_eq!(
        refused.stdout, "refused: ErrorCode::HttpRequestDenied\n",
        "{refused:#?}"
    );
    assert!(
        refused
            .stderr
            .contains(&format!("not allowed: no --allow-http rule for 127.0.0.1:{port}")),
        "{refused:#?}"
    );
    // Its rule: through the broker, to the server and back.
    let rule = format!("127.0.0.1:{port}");
    let fetched = probe(&["--allow-http", &rule], &["fetch", &url]);
    fetched.assert_code(0);
    assert_eq!(fetched.stdout, "fetched: 200\nhosts");
    assert!(answering.join().unwrap().starts_with("GET /asked HTTP/1.1\r\n"));
}
