//! Guests and callers that push limits: argument and environment lists as
//! large as the host lets a command line be, and a guest that floods its
//! stdout into a reader that goes away.

use crate::{Caller, Kind, both_kinds, callers, for_nobody, output, wsandbox_as};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

both_kinds!(
    huge_argument_and_environment_lists_reach_the_guest_whole,
    a_guest_flooding_stdout_stops_when_the_reader_leaves,
);

/// 20,000 arguments and 2,000 variables (about 1 MiB, half of what Linux
/// lets one `execve` carry) arrive in the guest in order, none lost.
fn huge_argument_and_environment_lists_reach_the_guest_whole(kind: Kind) {
    for caller in callers() {
        huge_lists_as(kind, caller);
    }
}

/// The guest `name` of `kind`, where `caller` can read it.
fn guest(kind: Kind, caller: Caller, name: &str) -> String {
    match caller {
        Caller::Me => kind.guest(name).to_owned(),
        Caller::Nobody => for_nobody(kind.guest(name)),
    }
}

fn huge_lists_as(kind: Kind, caller: Caller) {
    let args: Vec<String> = (0..20_000)
        .map(|i| format!("argument-{i:05}-{}", "a".repeat(24)))
        .collect();
    let mut cmd = wsandbox_as(caller);
    cmd.args(["run"]);
    for i in 0..2_000 {
        cmd.arg("--env").arg(format!("VAR_{i:04}={}", "v".repeat(80)));
    }
    cmd.arg(guest(kind, caller, "hello")).args(&args);
    let out = output(&mut cmd);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let got_args: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("arg["))
        .skip(1)
        .map(|l| l.split_once("]=").unwrap().1)
        .collect();
    assert_eq!(got_args.len(), args.len());
    assert!(
        got_args.iter().zip(&args).all(|(a, b)| a == b),
        "arguments changed on the way"
    );
    let vars = lines.iter().filter(|l| l.starts_with("env VAR_")).count();
    assert_eq!(vars, 2_000);
}

/// `cat` copying an endless stdin (`/dev/zero`) to a pipe whose reader
/// stops after 64 MiB: the guest's next write fails, it ends,
/// and so does wsandbox — promptly, with an exit code, not a signal or a
/// hang, and without a panic of wsandbox's.
fn a_guest_flooding_stdout_stops_when_the_reader_leaves(kind: Kind) {
    for caller in callers() {
        flood_as(kind, caller);
    }
}

fn flood_as(kind: Kind, caller: Caller) {
    let mut child = wsandbox_as(caller)
        .args(["run", &guest(kind, caller, "cat")])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0usize;
    while read < 64 << 20 {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the flood stopped early");
        read += n;
    }
    drop(stdout);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("wsandbox still runs 10 s after its reader left");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    // The guest saw its write fail: `EPIPE` for a component; wasmtime-wasi's
    // preview 1 layer reports a closed output stream as `EIO`.
    assert!(stderr.starts_with("cat: write: "), "{stderr}");
    assert!(
        !stderr.contains("wsandbox") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
