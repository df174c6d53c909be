//! The plugin library (`wsandbox::plugin`): a component alive in a
//! sandboxed worker, called from this process.

use crate::{Caller, am_root, callers, for_nobody};
use std::time::{Duration, Instant};
use wsandbox::Policy;
use wsandbox::plugin::{Plugin, PluginError, Val};

/// A plugin of the `shapes` test component, run by the built wsandbox.
fn shapes() -> Plugin {
    Plugin::new(wsandbox_guests::SHAPES, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false)
}

fn one(results: Vec<Val>) -> Val {
    let [val] = <[Val; 1]>::try_from(results).expect("one result");
    val
}

#[test]
fn state_lives_between_calls() {
    let mut plugin = shapes();
    for want in 1..=3u32 {
        assert_eq!(one(plugin.call("counter", &[]).unwrap()), Val::U32(want));
    }
}

#[test]
fn values_of_every_shape_cross_both_ways() {
    let mut plugin = shapes();
    let point = Val::Record(vec![("x".into(), Val::S32(-3)), ("y".into(), Val::S32(4))]);
    let cases: Vec<(&str, Vec<Val>, Val)> = vec![
        (
            "greet",
            vec![Val::String("wörld".into())],
            Val::String("Hello, wörld!".into()),
        ),
        ("values.add", vec![Val::S32(2), Val::S32(-5)], Val::S32(-3)),
        (
            "values.add-wide",
            vec![Val::U64(u64::MAX), Val::U64(2)],
            Val::U64(1),
        ),
        (
            "values.scale",
            vec![Val::Float64(0.1), Val::Float32(3.0)],
            Val::Float64(0.1 * 3.0),
        ),
        ("values.negate", vec![Val::Bool(false)], Val::Bool(true)),
        (
            "values.norm",
            vec![point],
            Val::Record(vec![("x".into(), Val::S32(3)), ("y".into(), Val::S32(4))]),
        ),
        (
            "values.area",
            vec![Val::Variant("empty".into(), None)],
            Val::Float64(0.0),
        ),
        (
            "values.next-color",
            vec![Val::Enum("red".into())],
            Val::Enum("green".into()),
        ),
        (
            "values.allow",
            vec![Val::Flags(vec!["read".into()]), Val::Flags(vec!["write".into()])],
            Val::Flags(vec!["read".into(), "write".into()]),
        ),
        (
            "values.increment",
            vec![Val::Option(Some(Box::new(Val::U32(1))))],
            Val::Option(Some(Box::new(Val::U32(2)))),
        ),
        (
            "values.divide",
            vec![Val::S32(1), Val::S32(0)],
            Val::Result(Err(Some(Box::new(Val::String("cannot divide 1 by 0".into()))))),
        ),
        (
            "values.reverse",
            vec![Val::List(vec![Val::String("a".into()), Val::String("b".into())])],
            Val::List(vec![Val::String("b".into()), Val::String("a".into())]),
        ),
        (
            "values.swap",
            vec![Val::Tuple(vec![Val::U8(7), Val::String("x".into())])],
            Val::Tuple(vec![Val::String("x".into()), Val::U8(7)]),
        ),
        (
            "values.first-char",
            vec![Val::String("é".into())],
            Val::Option(Some(Box::new(Val::Char('é')))),
        ),
        (
            "values.bytes",
            vec![Val::U32(3)],
            Val::List(vec![Val::U8(0), Val::U8(1), Val::U8(2)]),
        ),
    ];
    for (name, args, want) in cases {
        assert_eq!(one(plugin.call(name, &args).unwrap()), want, "{name}");
    }
}

/// A trap is an error value; the next call gets a fresh worker.
#[test]
fn a_trap_is_an_error_and_the_next_call_works() {
    let mut plugin = shapes();
    assert_eq!(one(plugin.call("counter", &[]).unwrap()), Val::U32(1));
    let first = plugin.worker_pid();
    match plugin.call("crash", &[]) {
        Err(PluginError::Trapped(message)) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("want a trap: {other:?}"),
    }
    assert_eq!(
        one(plugin.call("counter", &[]).unwrap()),
        Val::U32(1),
        "a fresh instance"
    );
    assert_ne!(plugin.worker_pid(), first, "a fresh worker");
}

/// A call that does not fit is an error; the worker and its state live on.
#[test]
fn a_call_that_does_not_fit_leaves_the_worker_alive() {
    let mut plugin = shapes();
    plugin.call("counter", &[]).unwrap();
    for (name, args) in [
        ("nope", vec![]),
        ("values.add", vec![Val::S32(1)]),
        ("values.add", vec![Val::String("1".into()), Val::S32(1)]),
    ] {
        match plugin.call(name, &args) {
            Err(PluginError::Call(message)) => assert!(!message.is_empty()),
            other => panic!("{name}: want a call error: {other:?}"),
        }
    }
    assert_eq!(one(plugin.call("counter", &[]).unwrap()), Val::U32(2));
}

#[test]
fn a_call_past_its_time_limit_is_stopped() {
    let mut plugin = shapes().call_timeout(Duration::from_millis(500));
    plugin.start().unwrap();
    let pid = plugin.worker_pid().unwrap();
    let started = Instant::now();
    match plugin.call("spin", &[]) {
        Err(PluginError::Timeout(limit)) => assert_eq!(limit, Duration::from_millis(500)),
        other => panic!("want a timeout: {other:?}"),
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(
        crate::wall::gone(pid as i32, Duration::from_secs(2)),
        "the worker was left running"
    );
    assert_eq!(
        one(plugin.call("values.add", &[Val::S32(1), Val::S32(2)]).unwrap()),
        Val::S32(3)
    );
}

/// With `fuel` in the policy, each call gets that much. The error names
/// the policy's field, as the host program set it: not a flag it never
/// passed.
#[test]
fn each_call_has_the_policys_fuel() {
    let policy = Policy {
        fuel: Some(5_000_000),
        ..Policy::default()
    };
    let mut plugin = Plugin::new(wsandbox_guests::SHAPES, policy)
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false);
    for _ in 0..3 {
        plugin.call("values.add", &[Val::S32(1), Val::S32(2)]).unwrap();
    }
    match plugin.call("spin", &[]) {
        Err(PluginError::OutOfFuel(message)) => {
            assert!(message.contains("(fuel 5000000)"), "{message}");
            assert!(!message.contains("--"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    plugin.call("values.add", &[Val::S32(1), Val::S32(2)]).unwrap();
}

/// The worker runs inside the outer wall: checked from outside.
#[test]
fn the_worker_is_inside_the_namespaces() {
    let mut plugin = shapes();
    plugin.start().unwrap();
    let pid = plugin.worker_pid().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let ns = |pid: &str, name: &str| std::fs::read_link(format!("/proc/{pid}/ns/{name}")).unwrap();
    let sandboxed: Vec<&str> = children
        .split_whitespace()
        .filter(|child| ns(child, "pid") != ns("self", "pid"))
        .collect();
    assert_eq!(sandboxed.len(), 1, "one sandboxed child: {children}");
    for name in ["user", "pid", "mnt", "uts", "ipc", "net"] {
        assert_ne!(ns(sandboxed[0], name), ns("self", name), "{name}");
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", sandboxed[0])).unwrap();
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('2')),
        "{status}"
    );
}

/// Several plugins run at once, each its own worker.
#[test]
fn plugins_run_in_parallel() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut plugin = shapes();
                for want in 1..=10u32 {
                    assert_eq!(one(plugin.call("counter", &[]).unwrap()), Val::U32(want));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// The example plugin through the plugin world's conveniences.
#[test]
fn the_plugin_world_is_a_function_call() {
    let mut plugin = Plugin::new(wsandbox_guests::WORDS, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false);
    let meta = plugin.metadata().unwrap();
    assert_eq!((meta.name.as_str(), meta.version.as_str()), ("words", "1.0.0"));
    let out = plugin.handle(b"the cat saw the dog\nthe end").unwrap().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"lines": 2, "words": 7, "top": [["the", 3], ["cat", 1], ["dog", 1]]}"#
    );
    assert!(plugin.handle(&[0xff]).unwrap().unwrap_err().contains("not UTF-8"));
    // A large input crosses whole.
    let big = "word ".repeat(200_000);
    let out = plugin.handle(big.as_bytes()).unwrap().unwrap();
    assert!(String::from_utf8(out).unwrap().contains("\"words\": 200000"));
}

/// A worker that speaks another protocol version, or garbage, is refused
/// with a clear error, and nothing hangs.
#[test]
fn a_worker_of_another_protocol_is_refused() {
    use wsandbox::plugin::wire::{FromWorker, send};
    let dir = tempfile::tempdir().unwrap();
    let mut hello = Vec::new();
    send(&mut hello, &FromWorker::Hello { protocol: 99 }).unwrap();
    let json = br#"{"hello":{"protocol":2}}"#;
    let mut json_hello = (json.len() as u32).to_be_bytes().to_vec();
    json_hello.extend_from_slice(json);
    let frames: [(&str, Vec<u8>); 4] = [
        ("version", hello),
        // Protocol 2 spoke JSON: its version is still read.
        ("json", json_hello),
        ("garbage", b"\x00\x00\x00\x10this is not json".to_vec()),
        ("http", b"HTTP/1.1 200 OK\r\n\r\n".to_vec()),
    ];
    for (name, frame) in frames {
        let frame_path = dir.path().join(format!("{name}.frame"));
        std::fs::write(&frame_path, &frame).unwrap();
        let fake = dir.path().join(format!("{name}-worker"));
        // Called as: FAKE worker [--no-cache] --channel-fd N MODULE.
        std::fs::write(
            &fake,
            format!(
                "#!/bin/bash\nwhile [ \"$1\" != --channel-fd ]; do shift; done\ncat '{}' >&\"$2\"\nsleep 0.2\n",
                frame_path.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut plugin = Plugin::new(wsandbox_guests::SHAPES, Policy::default()).binary(&fake);
        let started = Instant::now();
        let err = plugin.call("counter", &[]).unwrap_err();
        match (name, &err) {
            ("version", PluginError::Version { found: 99 }) => {}
            ("json", PluginError::Version { found: 2 }) => {}
            ("garbage" | "http", PluginError::Protocol(_)) => {}
            _ => panic!("{name}: {err:?}"),
        }
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: it hung");
    }
}

/// A worker that asks its host for a function the host did not offer gets
/// an error answer, and nothing of the host's runs; one that sends values
/// nested too deep is refused.
#[test]
fn a_worker_asking_for_a_function_not_offered_runs_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use wsandbox::plugin::wire::{FromWorker, WireVal};
    let dir = tempfile::tempdir().unwrap();
    let mut frames = hello_ready();
    frames.push(FromWorker::HostCall {
        name: "not-offered".into(),
        args: vec![WireVal::String("x".into())],
    });
    frames.push(FromWorker::Returned(vec![WireVal::U32(7)]));
    let fake = fake_worker(dir.path(), "asking", &frames, "sleep 5");
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&ran);
    let mut plugin = Plugin::new(wsandbox_guests::SHAPES, Policy::default())
        .binary(&fake)
        .call_timeout(Duration::from_secs(5))
        .host_fn("offered", move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(vec![])
        });
    assert_eq!(plugin.call("anything", &[]).unwrap(), vec![Val::U32(7)]);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    // Arguments nested deeper than any type: refused before they are built.
    let mut deep = WireVal::Bool(true);
    for _ in 0..200 {
        deep = WireVal::List(vec![deep]);
    }
    let mut frames = hello_ready();
    frames.push(FromWorker::HostCall {
        name: "offered".into(),
        args: vec![deep],
    });
    let fake = fake_worker(dir.path(), "deep", &frames, "sleep 5");
    let mut plugin = Plugin::new(wsandbox_guests::SHAPES, Policy::default())
        .binary(&fake)
        .call_timeout(Duration::from_secs(5))
        .host_fn("offered", |_| Ok(vec![]));
    match plugin.call("anything", &[]) {
        Err(PluginError::Protocol(why)) => assert!(why.contains("nested too deep"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_worker_that_cannot_start_says_why() {
    let mut plugin =
        Plugin::new("/nonexistent/plugin.wasm", Policy::default()).binary(env!("CARGO_BIN_EXE_wsandbox"));
    match plugin.call("counter", &[]) {
        Err(PluginError::Start(message)) => assert!(message.contains("no such file"), "{message}"),
        other => panic!("{other:?}"),
    }
    let mut plugin =
        Plugin::new(wsandbox_guests::wat("math"), Policy::default()).binary(env!("CARGO_BIN_EXE_wsandbox"));
    match plugin.call("add", &[]) {
        Err(PluginError::Start(message)) => assert!(message.contains("must be a component"), "{message}"),
        other => panic!("{other:?}"),
    }
    let mut plugin = Plugin::new(wsandbox_guests::SHAPES, Policy::default()).binary("/nonexistent/wsandbox");
    assert!(matches!(plugin.call("counter", &[]), Err(PluginError::Start(_))));
}

/// The library works for an unprivileged host program too: the worker
/// runs as uid 65534 (through setpriv, which passes the channel on).
#[test]
fn an_unprivileged_host_gets_the_same_worker() {
    if !callers().contains(&Caller::Nobody) || !am_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("wsandbox-as-nobody");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {} \"$@\"\n",
            for_nobody(env!("CARGO_BIN_EXE_wsandbox"))
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut plugin = Plugin::new(for_nobody(wsandbox_guests::SHAPES), Policy::default())
        .binary(&wrapper)
        .cache(false);
    for want in 1..=2u32 {
        assert_eq!(one(plugin.call("counter", &[]).unwrap()), Val::U32(want));
    }
    let pid = plugin.worker_pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
}

/// The example host program of `examples/plugin_host.rs` runs the example
/// plugin on its stdin, with itself as the worker
/// (`wsandbox::plugin::worker_main`): no `wsandbox` binary anywhere — an
/// empty environment, `PATH` empty, no `WSANDBOX_BIN` — as the caller and
/// as nobody.
#[test]
fn the_example_host_program_is_its_own_worker() {
    use std::io::Write;
    for caller in crate::callers() {
        let example = crate::example("plugin_host");
        let program = example.get_program().to_str().unwrap().to_owned();
        let mut host = match caller {
            crate::Caller::Me => std::process::Command::new(&program),
            crate::Caller::Nobody => {
                let mut cmd = std::process::Command::new("/usr/bin/setpriv");
                cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(crate::for_nobody(&program));
                cmd
            }
        };
        host.arg(crate::for_nobody(wsandbox_guests::WORDS))
            .env_clear()
            .env("PATH", "")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = host.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"to be or not to be")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{caller:?}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "{\"lines\": 1, \"words\": 6, \"top\": [[\"be\", 2], [\"to\", 2], [\"not\", 1]]}\n",
            "{caller:?}"
        );
        assert!(
            stderr.contains("plugin_host: words 1.0.0: counts the lines"),
            "{caller:?}: {stderr}"
        );
        assert!(
            stderr.contains("plugin_host: the plugin logs (info): 18 bytes, 6 words"),
            "{caller:?}: {stderr}"
        );
    }
}

/// A fake worker (a bash script) that finds its channel, writes its pid to
/// `pid` and then does `body` (`$fd` is the channel); with `frames`, those
/// frames (the worker's hello and exports) are sent first.
fn fake_worker(
    dir: &std::path::Path,
    name: &str,
    frames: &[wsandbox::plugin::wire::FromWorker],
    body: &str,
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut bytes = Vec::new();
    for frame in frames {
        wsandbox::plugin::wire::send(&mut bytes, frame).unwrap();
    }
    let frames_path = dir.join(format!("{name}.frames"));
    std::fs::write(&frames_path, bytes).unwrap();
    let fake = dir.join(name);
    std::fs::write(
        &fake,
        format!(
            "#!/bin/bash\nwhile [ \"$1\" != --channel-fd ]; do shift; done\nfd=$2\necho $$ > '{pid}'\ncat '{frames}' >&\"$fd\"\n{body}\n",
            pid = dir.join(format!("{name}.pid")).display(),
            frames = frames_path.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    fake
}

/// The pid a fake worker wrote.
fn fake_pid(dir: &std::path::Path, name: &str) -> i32 {
    std::fs::read_to_string(dir.join(format!("{name}.pid")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A worker that says hello and its (no) exports.
fn hello_ready() -> Vec<wsandbox::plugin::wire::FromWorker> {
    use wsandbox::plugin::wire::{FromWorker, PROTOCOL};
    vec![
        FromWorker::Hello { protocol: PROTOCOL },
        FromWorker::Ready { exports: vec![] },
    ]
}

/// Every wait on a worker has a deadline: a worker that never says hello,
/// one that takes no request, one that closed its channel but lives on —
/// each call fails in time with an error, and the worker is gone.
#[test]
fn no_worker_can_make_its_host_wait_forever() {
    let dir = tempfile::tempdir().unwrap();
    // A request larger than the socket's buffer, so that a worker that
    // does not read it blocks the send; and a small one.
    let big = Val::String("x".repeat(16 << 20));
    let small = Val::String("x".into());
    let cases: [(&str, Vec<_>, &str, &Val); 3] = [
        ("silent", vec![], "exec sleep 100", &small),
        ("deaf", hello_ready(), "exec sleep 100", &big),
        (
            "undead",
            hello_ready(),
            "sleep 0.5\neval \"exec $fd>&-\"\nexec sleep 100",
            &small,
        ),
    ];
    for (name, frames, body, arg) in cases {
        let fake = fake_worker(dir.path(), name, &frames, body);
        let mut plugin = Plugin::new(wsandbox_guests::SHAPES, Policy::default())
            .binary(&fake)
            .start_timeout(Duration::from_millis(500))
            .call_timeout(Duration::from_secs(if name == "undead" { 30 } else { 1 }));
        let started = Instant::now();
        let err = plugin.call("greet", std::slice::from_ref(arg)).unwrap_err();
        let took = started.elapsed();
        match (name, &err) {
            ("silent", PluginError::Start(why)) => assert!(why.contains("within 500ms"), "{why}"),
            ("deaf", PluginError::Timeout(limit)) => assert_eq!(*limit, Duration::from_secs(1)),
            ("undead", PluginError::Died(why)) => assert!(why.contains("killed"), "{why}"),
            _ => panic!("{name}: {err:?}"),
        }
        assert!(took < Duration::from_secs(10), "{name}: took {took:?}");
        assert!(
            crate::wall::gone(fake_pid(dir.path(), name), Duration::from_secs(5)),
            "{name}: the worker lives on"
        );
    }
}

/// A plugin whose start function loops: `start` fails at the call
/// timeout, and the worker is gone.
#[test]
fn a_start_function_that_loops_is_stopped_at_the_call_timeout() {
    let mut plugin = Plugin::new(wsandbox_guests::wat("spin-start"), Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false)
        .call_timeout(Duration::from_secs(1));
    let started = Instant::now();
    match plugin.start() {
        Err(PluginError::Timeout(limit)) => assert_eq!(limit, Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(plugin.worker_pid().is_none());
}

/// An answer is bounded before it is decoded: too many bytes, or too many
/// values for its bytes, is an error (and a fresh worker answers next).
#[test]
fn an_answer_too_costly_to_decode_is_refused() {
    let mut plugin = shapes().max_answer(1 << 20);
    // 2 MiB of bytes: 2 MiB on the wire.
    match plugin.call("values.bytes", &[Val::U32(2 << 20)]) {
        Err(PluginError::Protocol(why)) => assert!(why.contains("at most 1048576"), "{why}"),
        other => panic!("{other:?}"),
    }
    // 40 000 strings in 120 KB: more values than 1 MiB may hold (one per
    // 64 bytes), refused as they are counted.
    let words = Val::List((0..40_000).map(|_| Val::String("w".into())).collect());
    match plugin.call("values.reverse", &[words]) {
        Err(PluginError::Protocol(why)) => assert!(why.contains("more than 16384 values"), "{why}"),
        other => panic!("{other:?}"),
    }
    let small = Val::List(vec![Val::String("a".into()), Val::String("b".into())]);
    let reversed = one(plugin.call("values.reverse", &[small]).unwrap());
    assert_eq!(
        reversed,
        Val::List(vec![Val::String("b".into()), Val::String("a".into())])
    );
}

/// The policy, env values included, never appears on the worker's
/// command line, which `ps` shows to every user.
#[test]
fn the_policy_is_not_on_the_workers_command_line() {
    let secret = format!("SECRET{}", std::process::id());
    let policy = Policy {
        env: vec![wsandbox::policy::EnvVar {
            name: "API_TOKEN".into(),
            value: Some(secret.clone()),
        }],
        ..Policy::default()
    };
    let mut plugin = Plugin::new(wsandbox_guests::SHAPES, policy)
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false);
    assert_eq!(one(plugin.call("counter", &[]).unwrap()), Val::U32(1));
    let pid = plugin.worker_pid().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains(&secret), "{cmdline}");
    assert!(!cmdline.contains("API_TOKEN"), "{cmdline}");
}

/// What a worker writes on stderr reaches the host program's stderr as
/// lines prefixed with the plugin's name, each cut at 4 KiB, control
/// characters escaped: a plugin cannot forge the host's log, drive its
/// terminal, or make it hold a line of any size.
#[test]
fn a_workers_stderr_is_bounded_escaped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_worker(
        dir.path(),
        "noisy",
        &[],
        "printf 'forged\\nwsandbox: all good\\033[2J\\n' >&2\nhead -c 5000000 /dev/zero | tr '\\0' x >&2\nprintf '\\nlast words\\n' >&2\nexit 3",
    );
    let out = crate::example("plugin_host")
        .arg(wsandbox_guests::WORDS)
        .env("WSANDBOX_BIN", &fake)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.len() < 20_000, "{} bytes of stderr", stderr.len());
    assert!(!out.status.success());
    assert!(!stderr.contains('\x1b'), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.contains(&"words: forged"), "{stderr}");
    assert!(lines.contains(&"words: wsandbox: all good\\u{1b}[2J"), "{stderr}");
    let long: Vec<_> = lines.iter().filter(|l| l.starts_with("words: xxxx")).collect();
    assert_eq!(long.len(), 1, "{stderr}");
    assert!(
        long[0].len() < 4200 && long[0].ends_with(" [...]"),
        "{}",
        long[0].len()
    );
    assert!(lines.contains(&"words: last words"), "{stderr}");
}
