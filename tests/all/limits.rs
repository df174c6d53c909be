//! Limits: `--timeout` stops a guest, whether it blocks in a host call or
//! spins in wasm, with exit 124 soon after the deadline; `--fuel` stops it
//! at the same instruction every time, exit 124 too; `--memory` bounds
//! each instance's linear memory, and a guest that traps for lack of it
//! gets exit 134 with the limit named.

use crate::{Kind, both_kinds, run, s, wsandbox};
use std::time::{Duration, Instant};

both_kinds!(
    a_sleeping_guest_is_stopped_at_the_timeout,
    a_guest_that_ends_in_time_is_untouched,
    a_guest_within_the_memory_limit_runs,
    a_guest_whose_initial_memory_is_over_the_limit_cannot_start,
    a_spinning_guest_is_stopped_at_the_timeout,
    a_spinning_guest_runs_out_of_fuel,
    a_small_job_finishes_within_its_fuel,
    a_stopped_supervisor_does_not_let_a_guest_spin_on,
);

/// A guest that loops in wasm forever, making no host call.
fn spinning(kind: Kind) -> String {
    match kind {
        Kind::P1 => wsandbox_guests::wat("spin"),
        Kind::P2 => wsandbox_guests::wat("spin-component"),
        Kind::P3 => unreachable!("a test of both_kinds!"),
    }
}

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
fn a_spinning_guest_is_stopped_at_the_timeout(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let out = run(&[
        "run",
        "--timeout",
        "0.3s",
        "--report",
        s(&report),
        &spinning(kind),
    ]);
    let took = started.elapsed();
    out.assert_code(124);
    assert!(took < Duration::from_millis(300) + GRACE, "ended late: {took:?}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["outcome"], "timeout", "{json}");
    assert_eq!(json["exit_code"], 124);
    assert!(json["cpu_ms"].as_f64().unwrap() > 100.0, "it did spin: {json}");
}

fn a_spinning_guest_runs_out_of_fuel(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = run(&[
        "run",
        "--fuel",
        "5000000",
        "--report",
        s(&report),
        &spinning(kind),
    ]);
    out.assert_code(124);
    assert_eq!(
        out.stderr,
        "wsandbox: the guest ran out of fuel (--fuel 5000000) and was stopped\n"
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["outcome"], "fuel", "{json}");
    assert_eq!(json["exit_code"], 124);
    assert_eq!(json["fuel_consumed"], 5000000, "{json}");
}

/// A job within its budget runs as without one, and burns the same fuel
/// on every run: the budget is deterministic.
fn a_small_job_finishes_within_its_fuel(kind: Kind) {
    let burnt = || {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let out = run(&[
            "run",
            "--fuel",
            "1000000000",
            "--report",
            s(&report),
            kind.guest("hello"),
            "x",
        ]);
        out.assert_code(0);
        assert!(out.stdout.starts_with("hello from a wasm guest\n"), "{out:#?}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(json["outcome"], "exited", "{json}");
        json["fuel_consumed"].as_u64().unwrap()
    };
    let first = burnt();
    assert!(first > 100 && first < 1_000_000_000, "{first}");
    assert_eq!(burnt(), first, "the same run burnt different fuel");
    // Without --fuel nothing is metered, and nothing reported.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    run(&["run", "--report", s(&report), kind.guest("hello")]).assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["fuel_consumed"], serde_json::Value::Null);
}

#[test]
fn bad_fuel_is_a_usage_error() {
    for bad in ["0", "-1", "abc", "1.5", "", "99999999999999999999999"] {
        let out = run(&["run", &format!("--fuel={bad}"), &wsandbox_guests::wat("hello")]);
        out.assert_code(2);
        assert!(out.stderr.contains("--fuel"), "{bad:?}: {out:#?}");
        assert_eq!(out.stdout, "", "{bad:?}: the guest ran");
    }
}

#[test]
fn bad_durations_are_usage_errors() {
    // A bare number is seconds, as wasmtime's -W timeout= reads it.
    for bad in ["5x", "0", "0s", "-1s", "abc", "10 parsecs", "1e3s", ""] {
        let out = run(&["run", &format!("--timeout={bad}"), &wsandbox_guests::wat("hello")]);
        out.assert_code(2);
        assert!(out.stderr.contains("--timeout"), "{bad:?}: {out:#?}");
        assert_eq!(out.stdout, "", "{bad:?}: the guest ran");
    }
}

fn a_guest_within_the_memory_limit_runs(kind: Kind) {
    let out = run(&["run", "--memory", "64M", kind.guest("hello")]);
    out.assert_code(0);
    assert!(out.stdout.starts_with("hello from a wasm guest\n"));
}

/// Rust guests start with 17 pages (1.06 MiB) of memory.
fn a_guest_whose_initial_memory_is_over_the_limit_cannot_start(kind: Kind) {
    let out = run(&["run", "--memory", "1M", kind.guest("hello")]);
    out.assert_code(134);
    assert_eq!(out.stdout, "");
    let first = out.stderr.lines().next().unwrap();
    assert!(first.starts_with("wsandbox: guest trapped: "), "{out:#?}");
    assert!(first.contains("--memory 1M"), "{out:#?}");
}

/// A grow past the limit fails (`memory.grow` returns -1); the guest then
/// traps, and the trap's message names the limit.
#[test]
fn a_guest_that_grows_past_the_memory_limit_traps_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = run(&[
        "run",
        "--memory",
        "8M",
        "--report",
        s(&report),
        &wsandbox_guests::wat("grow"),
    ]);
    out.assert_code(134);
    let first = out.stderr.lines().next().unwrap();
    assert_eq!(
        first,
        "wsandbox: guest trapped: wasm trap: wasm `unreachable` instruction executed \
         (the guest's memory reached its limit, --memory 8M)"
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["outcome"], "trapped");
    assert!(
        json["message"].as_str().unwrap().contains("--memory 8M"),
        "{json}"
    );
    // Without the limit the same guest grows on: the limit is what stopped it.
    let peak = json["peak_memory_bytes"].as_u64().unwrap();
    assert!(peak < 64 << 20, "the sandbox used {peak} bytes");
}

#[test]
fn bad_sizes_are_usage_errors() {
    for bad in ["0", "-1M", "64X", "M", "", "99999999999G"] {
        let out = run(&["run", &format!("--memory={bad}"), &wsandbox_guests::wat("hello")]);
        out.assert_code(2);
        assert!(out.stderr.contains("--memory"), "{bad:?}: {out:#?}");
        assert_eq!(out.stdout, "", "{bad:?}: the guest ran");
    }
}

/// Stopping wsandbox (SIGSTOP, as any process of the same user can) does
/// not pause `--timeout` for a spinning guest: the kernel kills it at its
/// CPU limit (CPUs × timeout + 1 s), and wsandbox, once resumed, exits 124.
fn a_stopped_supervisor_does_not_let_a_guest_spin_on(kind: Kind) {
    use nix::sys::signal::{Signal, kill};
    let mut child = wsandbox()
        .args(["run", "--timeout", "1s", &spinning(kind)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let supervisor = nix::unistd::Pid::from_raw(child.id() as i32);
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    // The sandboxed child, once it exists (in a pid namespace of its own).
    let started = Instant::now();
    let sandbox = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap_or_default();
        let found = children
            .split_whitespace()
            .find(|c| ns(c).is_some() && ns(c) != ns(&child.id().to_string()));
        if let Some(pid) = found {
            break pid.parse::<i32>().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no sandbox");
        std::thread::sleep(Duration::from_millis(5));
    };
    // The CPU time (utime + stime, in ticks of 1/100 s) the sandbox has
    // used, or None once it is gone.
    let cpu = || -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{sandbox}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        (fields[0] != "Z").then_some(ticks as f64 / 100.0)
    };
    // Stop the supervisor once the guest spins (not while the sandbox
    // still waits for the supervisor to let it start).
    while cpu().is_some_and(|used| used < 0.2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the guest does not spin"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(supervisor, Signal::SIGSTOP).unwrap();
    // The limit is CPU time, not wall time: on a loaded machine the guest
    // takes longer to use it up.
    let allowed = wsandbox::sys::online_cpus() as f64 + 1.0;
    let (mut used, stopped) = (0.0f64, Instant::now());
    let killed = loop {
        match cpu() {
            None => break true,
            Some(now) => used = now,
        }
        if stopped.elapsed() > Duration::from_secs(120) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    kill(supervisor, Signal::SIGCONT).unwrap();
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the guest still ran 120 s after the supervisor stopped ({used:.1} s of CPU)"
    );
    assert!(
        used <= allowed + 0.5,
        "the guest used {used:.1} s of CPU, its limit is {allowed} s"
    );
    assert_eq!(status.code(), Some(124));
}
