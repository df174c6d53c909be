//! `wsandbox run`: arguments, environment, exit codes, traps and stdio,
//! for core modules and components alike.

use crate::{Kind, both_kinds, output, run, wsandbox};
use std::io::{Read, Write};
use std::process::Stdio;

both_kinds!(
    args_reach_the_guest_after_its_file_name,
    env_is_explicit_and_never_inherited,
    exit_status_is_the_guests,
    panic_is_a_trap_with_a_wasm_backtrace,
    a_large_pipe_streams_through,
);

fn args_reach_the_guest_after_its_file_name(kind: Kind) {
    let out = run(&["run", kind.guest("hello"), "one", "two words", "--dir", "-x"]);
    out.assert_code(0);
    let args: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("arg[")).collect();
    assert_eq!(
        args,
        [
            "arg[0]=hello.wasm",
            "arg[1]=one",
            "arg[2]=two words",
            "arg[3]=--dir",
            "arg[4]=-x"
        ]
    );
    assert!(out.stdout.starts_with("hello from a wasm guest\n"));
}

fn env_is_explicit_and_never_inherited(kind: Kind) {
    let out = output(
        wsandbox()
            .env("WSANDBOX_TEST_SECRET", "must-not-leak")
            .env("WSANDBOX_TEST_PASSED", "from the host")
            .env_remove("WSANDBOX_TEST_UNSET")
            .args(["run", "--env", "GREETING=hi=there", "--env", "EMPTY="])
            .args(["--env", "WSANDBOX_TEST_PASSED", "--env", "WSANDBOX_TEST_UNSET"])
            .args(["--env", "GREETING=later wins", kind.guest("hello")]),
    );
    out.assert_code(0);
    let env: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("env ")).collect();
    assert_eq!(
        env,
        [
            "env EMPTY=",
            "env GREETING=later wins",
            "env WSANDBOX_TEST_PASSED=from the host",
        ]
    );
}

fn exit_status_is_the_guests(kind: Kind) {
    run(&["run", kind.guest("exit"), "ok"]).assert_code(0);
    run(&["run", kind.guest("exit"), "0"]).assert_code(0);
    match kind {
        Kind::P1 => {
            run(&["run", kind.guest("exit"), "42"]).assert_code(42);
        }
        // Rust's std on wasip2 reports only failure, through `wasi:cli/exit.exit(err)`:
        // that is status 1. The exact code needs `exit-with-code` (tested below).
        Kind::P2 => {
            run(&["run", kind.guest("exit"), "42"]).assert_code(1);
        }
        Kind::P3 => unreachable!("a test of both_kinds!"),
    }
}

#[test]
fn exit_codes_of_text_modules_and_components() {
    run(&["run", &wsandbox_guests::wat("exit-code")]).assert_code(7);
    run(&["run", &wsandbox_guests::wat("exit-code-component")]).assert_code(42);
}

fn panic_is_a_trap_with_a_wasm_backtrace(kind: Kind) {
    let out = run(&["run", kind.guest("exit"), "panic"]);
    out.assert_code(134);
    assert!(out.stderr.contains("the guest panicked on purpose"), "{out:#?}");
    assert!(
        out.stderr.contains(
            "wsandbox: guest trapped: wasm trap: wasm `unreachable` instruction executed\nwasm backtrace:\n"
        ),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains("exit::main"),
        "backtrace names the guest's frames: {out:#?}"
    );
}

#[test]
fn trap_in_text_module_names_its_frames() {
    let out = run(&["run", &wsandbox_guests::wat("trap")]);
    out.assert_code(134);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "wsandbox: guest trapped: wasm trap: wasm `unreachable` instruction executed"
    );
    assert_eq!(lines[1], "wasm backtrace:");
    assert!(lines[2].ends_with("!inner"), "{out:#?}");
    assert!(lines[3].ends_with("!outer"), "{out:#?}");
}

#[test]
fn hello_wat_runs() {
    let out = run(&["run", &wsandbox_guests::wat("hello")]);
    out.assert_code(0);
    assert_eq!(out.stdout, "hello from WebAssembly\n");
    assert_eq!(out.stderr, "");
}

/// 256 MiB through `cat`: what comes out is what went in, and wsandbox's
/// peak memory stays far below the size of the stream.
fn a_large_pipe_streams_through(kind: Kind) {
    const SIZE: usize = 256 << 20;
    let mut child = wsandbox()
        .args(["run", kind.guest("cat")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsandbox");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..SIZE / chunk.len() {
            chunk.fill((i % 251) as u8);
            stdin.write_all(&chunk).expect("write to wsandbox");
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let (mut received, mut sum, mut peak) = (0usize, 0u64, 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stdout.read(&mut buf).expect("read from wsandbox");
        if n == 0 {
            break;
        }
        // Every 16 MiB, the high-water marks of wsandbox and its sandbox.
        if received >> 24 != (received + n) >> 24 {
            peak = peak.max(peak_rss(child.id()));
        }
        sum += buf[..n].iter().map(|&b| b as u64).sum::<u64>();
        received += n;
    }
    writer.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let expected: u64 = (0..SIZE >> 20).map(|i| (i % 251) as u64 * (1 << 20)).sum();
    assert_eq!((received, sum), (SIZE, expected));
    assert!(peak > 0, "no sample of wsandbox's memory was taken");
    assert!(peak < 128 << 20, "wsandbox or its sandbox peaked at {peak} bytes");
}

/// The larger peak resident set (`VmHWM`) of process `pid` and its
/// children, so far. (Not `getrusage(RUSAGE_CHILDREN)`: that counts the
/// children of every test running in this process.)
fn peak_rss(pid: u32) -> u64 {
    let hwm = |pid: &str| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap_or("VmHWM: 0 kB");
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .map(hwm)
        .fold(hwm(&pid.to_string()), u64::max)
}
