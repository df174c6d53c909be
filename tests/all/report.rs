//! `--report FILE`: the outcome as JSON, for every ending, errors included,
//! with what isolated the run.

use crate::{Kind, Output, both_kinds, run, s};
use serde_json::Value;

both_kinds!(
    a_run_that_exits_is_reported_with_everything_applied,
    a_trap_is_reported
);

/// Runs `wsandbox run --report FILE ARGS...` and reads the report.
fn with_report(args: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut all = vec!["run", "--report", s(&report)];
    all.extend_from_slice(args);
    let out = run(&all);
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report: {e}; {out:#?}"));
    assert_eq!(text.lines().count(), 1, "one JSON object on one line: {text}");
    (out, serde_json::from_str(&text).unwrap())
}

fn sha256_of(path: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn a_run_that_exits_is_reported_with_everything_applied(kind: Kind) {
    let guest = kind.guest("exit");
    let (out, json) = with_report(&[guest, "3"]);
    // Rust's std for wasip2 exits with 1 for any failure (see run.rs).
    let code = if kind == Kind::P1 { 3 } else { 1 };
    out.assert_code(code);
    assert_eq!(json["outcome"], "exited", "{json}");
    assert_eq!(json["exit_code"], code);
    assert_eq!(json["message"], Value::Null);
    assert!(json["wall_ms"].as_f64().unwrap() > 0.0);
    assert!(json["cpu_ms"].as_f64().unwrap() > 0.0, "{json}");
    assert!(json["peak_memory_bytes"].as_u64().unwrap() > 1 << 20, "{json}");
    assert_eq!(json["module"]["path"], guest);
    assert_eq!(json["module"]["sha256"], sha256_of(guest));
    assert_eq!(
        json["module"]["kind"],
        if kind == Kind::P1 { "core" } else { "component" }
    );
    assert_eq!(
        json["module"]["wasi"],
        if kind == Kind::P1 { "0.1" } else { "0.2" }
    );
    let isolation = &json["isolation"];
    let namespaces: Vec<&str> = isolation["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        namespaces,
        ["user", "pid", "mount", "uts", "ipc", "net", "cgroup"]
    );
    assert_eq!(isolation["missing"], serde_json::json!([]));
    for applied in [
        "capabilities_dropped",
        "no_new_privs",
        "seccomp",
        "rlimits",
        "fds_closed",
        "own_session",
    ] {
        assert_eq!(isolation[applied], true, "{applied}: {json}");
    }
    assert_eq!(isolation["landlock"], "full");
    // Not metered; the code compiled, or loaded from the tests' cache.
    assert_eq!(json["fuel_consumed"], Value::Null, "{json}");
    let source = json["code_source"].as_str().unwrap();
    assert!(["compiled", "cache"].contains(&source), "{json}");
}

fn a_trap_is_reported(kind: Kind) {
    let guest = if kind == Kind::P1 {
        wsandbox_guests::wat("trap")
    } else {
        kind.guest("exit").to_owned()
    };
    let args: &[&str] = if kind == Kind::P1 { &[] } else { &["panic"] };
    let (out, json) = with_report(&[&[guest.as_str()][..], args].concat());
    out.assert_code(134);
    assert_eq!(json["outcome"], "trapped", "{json}");
    assert_eq!(json["exit_code"], 134);
    assert!(!json["message"].as_str().unwrap().is_empty(), "{json}");
    assert_eq!(json["isolation"]["seccomp"], true);
}

#[test]
fn failures_before_the_sandbox_are_reported_too() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("not.wasm");
    std::fs::write(&wasm, "plain text").unwrap();
    let missing = dir.path().join("missing.wasm");
    for (args, code) in [
        (vec![s(&missing)], 127),
        (vec![s(&wasm)], 126),
        (vec!["--dir", "/nonexistent-wsandbox-dir", s(&wasm)], 125),
    ] {
        let (out, json) = with_report(&args);
        out.assert_code(code);
        assert_eq!(json["outcome"], "error", "{json}");
        assert_eq!(json["exit_code"], code);
        assert_eq!(
            json["message"].as_str().unwrap(),
            out.stderr.trim().trim_start_matches("wsandbox: ")
        );
        assert_eq!(json["isolation"], Value::Null, "no sandbox was built: {json}");
        assert_eq!(json["cpu_ms"], Value::Null);
        assert_eq!(json["code_source"], Value::Null, "no guest started: {json}");
        assert_eq!(json["fuel_consumed"], Value::Null);
    }
}

#[test]
fn an_invalid_component_found_inside_the_sandbox_is_reported() {
    // A component without `wasi:cli/run` is refused by the engine, inside.
    let (out, json) = with_report(&[&wsandbox_guests::wat("component")]);
    out.assert_code(126);
    assert_eq!(json["outcome"], "error", "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("wasi:cli/run"),
        "{json}"
    );
    assert_eq!(
        json["isolation"]["seccomp"], true,
        "the sandbox was built: {json}"
    );
    assert_eq!(
        json["code_source"],
        Value::Null,
        "the guest never started: {json}"
    );
}

#[test]
fn a_report_to_stderr_is_its_last_line() {
    let out = run(&["run", "--report", "-", &wsandbox_guests::wat("hello")]);
    out.assert_code(0);
    let last = out.stderr.lines().last().unwrap();
    let json: Value = serde_json::from_str(last).unwrap();
    assert_eq!(json["outcome"], "exited");
}

#[test]
fn an_unwritable_report_fails_before_the_guest_runs() {
    let out = run(&[
        "run",
        "--report",
        "/nonexistent-dir/report.json",
        &wsandbox_guests::wat("hello"),
    ]);
    out.assert_one_line_error(125, &["--report", "/nonexistent-dir/report.json"]);
    assert_eq!(out.stdout, "", "the guest ran");
}
