//! Limits: `--timeout` stops a guest, whether it blocks in a host call or
//! spins in wasm, with exit 124 soon after the deadline.

use crate::{Kind, both_kinds, run, s};
use std::time::{Duration, Instant};

both_kinds!(
    a_sleeping_guest_is_stopped_at_the_timeout,
    a_guest_that_ends_in_time_is_untouched
);

/// How late past the deadline wsandbox may end.
const GRACE: Duration = Duration::from_millis(700);

fn a_sleeping_guest_is_stopped_at_the_timeout(kind: Kind) {
    let started = Instant::now();
    let out = run(&["run", "--timeout", "500ms", kind.guest("sleep"), "30"]);
    let took = started.elapsed();
    out.assert_code(124);
    assert_eq!(out.stdout, "sleeping\n");
    assert_eq!(
        out.stderr,
        "wsandbox: the guest ran past its time limit (--timeout 500ms) and was stopped\n"
    );
    assert!(took >= Duration::from_millis(500), "ended early: {took:?}");
    assert!(took < Duration::from_millis(500) + GRACE, "ended late: {took:?}");
}

fn a_guest_that_ends_in_time_is_untouched(kind: Kind) {
    let out = run(&["run", "--timeout", "20s", kind.guest("sleep"), "0.1"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "sleeping\nawake\n");
    assert_eq!(out.stderr, "");
}

/// A guest spinning in wasm makes no host call: the outer wall stops it.
#[test]
fn a_spinning_guest_is_stopped_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let out = run(&[
        "run",
        "--timeout",
        "0.3s",
        "--report",
        s(&report),
        &wsandbox_guests::wat("spin"),
    ]);
    let took = started.elapsed();
    out.assert_code(124);
    assert!(took < Duration::from_millis(300) + GRACE, "ended late: {took:?}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["outcome"], "timeout", "{json}");
    assert_eq!(json["exit_code"], 124);
    assert!(json["cpu_ms"].as_f64().unwrap() > 100.0, "it did spin: {json}");
}

#[test]
fn bad_durations_are_usage_errors() {
    for bad in ["5", "0s", "-1s", "abc", "10 parsecs", "1e3s", ""] {
        let out = run(&["run", &format!("--timeout={bad}"), &wsandbox_guests::wat("hello")]);
        out.assert_code(2);
        assert!(out.stderr.contains("--timeout"), "{bad:?}: {out:#?}");
        assert_eq!(out.stdout, "", "{bad:?}: the guest ran");
    }
}
