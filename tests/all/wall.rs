//! The outer wall, checked from outside on the running sandbox: its
//! namespaces, id maps, root, mounts, processes, hostname and network, and
//! how it ends on signals — as root and as an unprivileged user.

use crate::{Caller, Output, am_root, callers, for_nobody, output, run, s, wsandbox_as};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

/// The p1 guest `name`, where `caller` can read it.
fn guest_for(caller: Caller, name: &str) -> String {
    match caller {
        Caller::Me => wsandbox_guests::p1(name).to_owned(),
        Caller::Nobody => for_nobody(wsandbox_guests::p1(name)),
    }
}

/// A running sandbox whose guest sleeps; killed when dropped.
struct Sandbox {
    wsandbox: Child,
    /// The host pid of the sandboxed process (PID 1 inside).
    pid: i32,
    _stdout: BufReader<ChildStdout>,
}

impl Sandbox {
    /// Starts `wsandbox run OPTIONS sleep.wasm` as `caller` and waits until
    /// the guest runs, so the wall is fully built.
    fn start(caller: Caller, options: &[&str]) -> Sandbox {
        let mut cmd = wsandbox_as(caller);
        cmd.arg("run").args(options).arg(guest_for(caller, "sleep"));
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        Sandbox::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Sandbox {
        let mut wsandbox = cmd.spawn().expect("spawn wsandbox");
        let mut stdout = BufReader::new(wsandbox.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "sleeping\n", "the guest did not start");
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", wsandbox.id())).unwrap();
        // Besides the sandbox, root's run may have a helper child that names
        // a new cache entry; the sandbox is the one in a pid namespace of
        // its own.
        let own_pid_ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let pids: Vec<i32> = children
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .filter(|&p: &i32| own_pid_ns(p as u32) != own_pid_ns(wsandbox.id()))
            .collect();
        assert_eq!(
            pids.len(),
            1,
            "wsandbox should have one sandboxed child: {pids:?}"
        );
        Sandbox {
            wsandbox,
            pid: pids[0],
            _stdout: stdout,
        }
    }

    /// `/proc/<sandboxed pid>/<rel>`.
    fn proc(&self, rel: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{rel}", self.pid))
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.proc(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// A line `Name:\tvalue` of `/proc/<pid>/status`.
    fn status(&self, name: &str) -> String {
        let status = self.read("status");
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap();
        line.split_once(':').unwrap().1.trim().to_owned()
    }

    /// Runs `nsenter -t PID FLAGS -- COMMAND`.
    fn nsenter(&self, flags: &[&str], command: &[&str]) -> Output {
        output(
            Command::new("nsenter")
                .args(["-t", &self.pid.to_string()])
                .args(flags)
                .arg("--")
                .args(command),
        )
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.wsandbox.kill();
        let _ = self.wsandbox.wait();
    }
}

/// Waits up to `limit` for `process` to end; its exit code if it did.
fn wait_for(process: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = process.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Whether host pid `pid` is gone (or a zombie nobody will reap).
pub fn gone(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.rsplit(')').next().unwrap().trim_start().starts_with('Z') => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

#[test]
fn every_namespace_differs_from_the_hosts() {
    for caller in callers() {
        let sandbox = Sandbox::start(caller, &[]);
        for ns in ["user", "pid", "mnt", "uts", "ipc", "net", "cgroup"] {
            let inside = std::fs::read_link(sandbox.proc(&format!("ns/{ns}"))).unwrap();
            let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
            assert_ne!(
                inside, host,
                "{caller:?}: the sandbox shares the host's {ns} namespace"
            );
        }
        // The sandboxed process is PID 1 of its own pid namespace.
        let nspid = sandbox.status("NSpid");
        assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid}");
    }
}

#[test]
fn ids_are_mapped_as_documented() {
    let me = nix::unistd::geteuid().as_raw();
    let my_gid = nix::unistd::getegid().as_raw();
    for caller in callers() {
        let sandbox = Sandbox::start(caller, &[]);
        assert_eq!(sandbox.read("setgroups").trim(), "deny");
        let (inside, host) = match caller {
            // Root of the host runs the sandbox as nobody; everyone else as themself.
            Caller::Me if am_root() => ((0, 0), (NOBODY, NOBODY)),
            Caller::Me => ((me, my_gid), (me, my_gid)),
            Caller::Nobody => ((NOBODY, NOBODY), (NOBODY, NOBODY)),
        };
        let fields = |text: String| text.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            fields(sandbox.read("uid_map")),
            [inside.0.to_string(), host.0.to_string(), "1".into()]
        );
        assert_eq!(
            fields(sandbox.read("gid_map")),
            [inside.1.to_string(), host.1.to_string(), "1".into()]
        );
        let uid = sandbox.status("Uid");
        assert!(
            uid.split_whitespace().all(|id| id == host.0.to_string()),
            "{caller:?}: Uid {uid}"
        );
        assert_eq!(sandbox.status("Groups"), "", "no supplementary groups survive");
    }
    // --uid and --gid choose the ids inside.
    let sandbox = Sandbox::start(Caller::Me, &["--uid", "1234", "--gid", "4321"]);
    assert!(sandbox.read("uid_map").split_whitespace().next() == Some("1234"));
    assert!(sandbox.read("gid_map").split_whitespace().next() == Some("4321"));
}

#[test]
fn root_holds_only_the_grants_dev_and_proc() {
    for caller in callers() {
        let tmp = tempfile::tempdir().unwrap();
        let (ro, rw) = (tmp.path().join("ro"), tmp.path().join("rw"));
        for dir in [tmp.path(), &ro, &rw] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let sandbox = Sandbox::start(
            caller,
            &["--ro-dir", s(&ro), "--dir", &format!("{}::/out", s(&rw))],
        );
        let root = sandbox.proc("root");
        let mut top: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        let grant_top = ro
            .components()
            .nth(1)
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let mut want = vec!["dev".to_string(), "proc".to_string(), grant_top];
        want.sort();
        assert_eq!(
            top, want,
            "{caller:?}: the root holds more than the grants, /dev and /proc"
        );
        for host_dir in ["etc", "usr", "home", "root", "bin", "sys"] {
            assert!(
                !root.join(host_dir).exists(),
                "{caller:?}: /{host_dir} is visible"
            );
        }
        let mut devices: Vec<String> = std::fs::read_dir(root.join("dev"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        devices.sort();
        assert_eq!(devices, ["null", "random", "urandom", "zero"]);

        // mountinfo lists only those mounts, read-only where they should be.
        let mountinfo = sandbox.read("mountinfo");
        let mounts: Vec<(String, String)> = mountinfo
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f[4].to_owned(), f[5].to_owned())
            })
            .collect();
        for (point, options) in &mounts {
            let allowed = point == "/"
                || point == s(&ro)
                || point == s(&rw)
                || point.starts_with("/dev/")
                || point == "/proc"
                || point.starts_with("/proc/");
            assert!(allowed, "{caller:?}: unexpected mount {point}");
            if point == "/" || point == s(&ro) {
                assert!(
                    options.split(',').any(|o| o == "ro"),
                    "{point} should be read-only: {options}"
                );
            }
            if point == s(&rw) {
                assert!(
                    options.split(',').any(|o| o == "rw"),
                    "{point} should be writable: {options}"
                );
            }
            if point == "/proc" {
                assert!(options.split(',').any(|o| o == "ro"), "{point}: {options}");
            }
        }
        for point in ["/", "/proc", "/dev/null", s(&ro), s(&rw)] {
            assert!(
                mounts.iter().any(|(p, _)| p == point),
                "{caller:?}: {point} is not mounted"
            );
        }
        assert!(!mountinfo.contains("oldroot"), "the old root is still attached");
    }
}

/// A read-only grant is read-only all the way down: a mount below it on
/// the host (a tmpfs the test mounts, as root, in a mount namespace of its
/// own) is read-only in the sandbox too, and a read-only grant inside a
/// read-write one is mounted apart, read-only, its place in the read-write
/// one covered by a read-only directory. Seen from outside, in mountinfo.
#[test]
fn read_only_grants_are_read_only_all_the_way_down() {
    if !am_root() {
        println!("skipped: only root can mount below a grant");
        return;
    }
    for caller in callers() {
        let tmp = tempfile::tempdir().unwrap();
        let (ro, rw) = (tmp.path().join("ro"), tmp.path().join("rw"));
        let (sub, inner) = (ro.join("sub"), rw.join("inner"));
        for dir in [tmp.path(), &ro, &rw, &sub, &inner] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        }
        let wsandbox = wsandbox_as(caller);
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o mode=0777 tmpfs \"$0\" && exec \"$@\"")
            .arg(&sub)
            .arg(wsandbox.get_program())
            .args(wsandbox.get_args())
            .args(["run", "--ro-dir", s(&ro), "--dir", s(&rw), "--ro-dir"])
            .arg(&inner)
            .arg(guest_for(caller, "sleep"))
            .env("XDG_CACHE_HOME", crate::TEST_CACHE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let sandbox = Sandbox::spawn(cmd);
        let mountinfo = sandbox.read("mountinfo");
        let mounts: Vec<(&str, &str)> = mountinfo
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f[4], f[5])
            })
            .collect();
        let options = |point: &str| {
            let found: Vec<_> = mounts.iter().filter(|(p, _)| *p == point).collect();
            assert_eq!(found.len(), 1, "{caller:?}: {point} in {mountinfo}");
            found[0].1.split(',').map(String::from).collect::<Vec<_>>()
        };
        assert!(
            options(s(&sub)).contains(&"ro".into()),
            "{caller:?}: the mount below --ro-dir is writable"
        );
        assert!(options(s(&rw)).contains(&"rw".into()));
        for point in [s(&ro), s(&inner), "/.grants/2"] {
            assert!(
                options(point).contains(&"ro".into()),
                "{caller:?}: {point} is writable"
            );
        }
        // Nothing of the read-only grant inside the read-write one is seen
        // below the read-write one, where Landlock would let it be written.
        let root = sandbox.proc("root");
        let under_rw = root.join(inner.strip_prefix("/").unwrap());
        assert_eq!(std::fs::read_dir(&under_rw).unwrap().count(), 0, "{caller:?}");
    }
}

#[test]
fn proc_shows_only_the_sandboxs_processes() {
    for caller in callers() {
        let sandbox = Sandbox::start(caller, &[]);
        let pids: Vec<String> = std::fs::read_dir(sandbox.proc("root/proc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.chars().all(|c| c.is_ascii_digit()))
            .collect();
        assert_eq!(pids, ["1"], "{caller:?}");
        // Nothing about the host: of what the host's /proc shows (sysctls,
        // kernel memory, keys, triggers...), nothing is there at all.
        let mut checked = 0;
        for host_file in [
            "sys",
            "meminfo",
            "mounts",
            "keys",
            "timer_list",
            "kcore",
            "sysrq-trigger",
        ] {
            if !Path::new("/proc").join(host_file).exists() {
                continue; // not in this kernel
            }
            checked += 1;
            assert!(
                !sandbox.proc(&format!("root/proc/{host_file}")).exists(),
                "{caller:?}: /proc/{host_file} is in the sandbox"
            );
        }
        assert!(checked >= 3, "the host's /proc has no sys, meminfo or mounts");
        assert!(sandbox.proc("root/proc/1/status").exists(), "{caller:?}");
    }
}

#[test]
fn hostname_is_its_own() {
    let sandbox = Sandbox::start(Caller::Me, &[]);
    let out = sandbox.nsenter(&["-u"], &["hostname"]);
    assert_eq!(out.assert_code(0).stdout.trim(), "wsandbox");
    let sandbox = Sandbox::start(Caller::Me, &["--hostname", "build-42"]);
    let out = sandbox.nsenter(&["-u"], &["hostname"]);
    assert_eq!(out.assert_code(0).stdout.trim(), "build-42");
    let mine = nix::unistd::gethostname().unwrap();
    assert_ne!(mine.to_string_lossy(), "build-42", "the host's hostname changed");
}

#[test]
fn network_is_only_lo_and_reaches_nothing_of_the_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    // From the host's own namespace, the listener answers.
    output(Command::new("bash").args(["-c", &connect])).assert_code(0);
    for caller in callers() {
        let sandbox = Sandbox::start(caller, &[]);
        let links = sandbox.nsenter(&["-n"], &["ip", "-o", "link"]);
        let links: Vec<&str> = links.stdout.lines().collect();
        assert_eq!(links.len(), 1, "{caller:?}: {links:?}");
        assert!(links[0].contains(": lo:") && links[0].contains("UP"), "{links:?}");
        let out = sandbox.nsenter(&["-n"], &["bash", "-c", &connect]);
        assert_ne!(
            out.code,
            Some(0),
            "{caller:?}: the host's listener was reached from the sandbox"
        );
    }
}

#[test]
fn sigterm_ends_the_run_with_143_and_leaves_nothing() {
    for caller in callers() {
        let mut sandbox = Sandbox::start(caller, &[]);
        let started = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sandbox.wsandbox.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = wait_for(&mut sandbox.wsandbox, Duration::from_secs(1)).expect("still running after 1s");
        assert_eq!(status.code(), Some(143), "{caller:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            gone(sandbox.pid, Duration::from_secs(1)),
            "{caller:?}: the sandboxed process survived"
        );
    }
}

/// The report of a run ended by a signal says so; the parent writes it.
#[test]
fn a_run_ended_by_sigterm_is_reported_killed() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut sandbox = Sandbox::start(Caller::Me, &["--report", s(&report)]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sandbox.wsandbox.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_for(&mut sandbox.wsandbox, Duration::from_secs(2)).expect("still running");
    assert_eq!(status.code(), Some(143));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["outcome"], "killed", "{json}");
    assert_eq!(json["exit_code"], 143, "{json}");
    assert!(json["message"].as_str().unwrap().contains("SIGTERM"), "{json}");
}

#[test]
fn sigkill_of_wsandbox_takes_the_sandbox_down() {
    for caller in callers() {
        let mut sandbox = Sandbox::start(caller, &[]);
        sandbox.wsandbox.kill().unwrap();
        sandbox.wsandbox.wait().unwrap();
        assert!(
            gone(sandbox.pid, Duration::from_secs(2)),
            "{caller:?}: the sandbox outlived wsandbox"
        );
    }
}

/// Ctrl-C in a terminal sends SIGINT to the whole foreground process group.
#[test]
fn ctrl_c_ends_the_run_with_130() {
    let mut cmd = wsandbox_as(Caller::Me);
    cmd.args(["run", wsandbox_guests::p2("sleep")]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut sandbox = Sandbox::spawn(cmd);
    let group = nix::unistd::Pid::from_raw(sandbox.wsandbox.id() as i32);
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_for(&mut sandbox.wsandbox, Duration::from_secs(1)).expect("still running after 1s");
    assert_eq!(status.code(), Some(130));
    assert!(gone(sandbox.pid, Duration::from_secs(1)));
}

/// Runs `script` in a user namespace where no further user namespace may
/// be created (`user.max_user_namespaces` = 0), with `$WSANDBOX` set.
fn without_user_namespaces(script: &str) -> Output {
    output(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "sh", "-c"])
            .arg(format!("echo 0 > /proc/sys/user/max_user_namespaces && {script}"))
            .env("WSANDBOX", env!("CARGO_BIN_EXE_wsandbox"))
            .env("HELLO", wsandbox_guests::p1("hello"))
            .stdin(Stdio::null()),
    )
}

#[test]
fn refused_user_namespaces_are_a_clear_125() {
    let out = without_user_namespaces(r#"exec "$WSANDBOX" run "$HELLO""#);
    out.assert_one_line_error(
        125,
        &[
            "user",
            "cannot be created",
            "max_user_namespaces",
            "--allow-degraded",
        ],
    );
    assert_eq!(out.stdout, "", "the guest must not run");
}

#[test]
fn allow_degraded_runs_and_lists_what_is_missing() {
    let out = without_user_namespaces(r#"exec "$WSANDBOX" run --allow-degraded "$HELLO""#);
    out.assert_code(0);
    assert!(out.stdout.starts_with("hello from a wasm guest\n"), "{out:#?}");
    assert!(
        out.stderr
            .contains("running without the user, pid, mount, uts, ipc, net"),
        "{out:#?}"
    );
}

#[test]
fn check_reports_every_layer() {
    let out = run(&["check"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "user", "pid", "mount", "uts", "ipc", "net", "cgroup", "seccomp", "landlock", "privs", "limits",
            "wasi"
        ]
    );
    assert!(lines[..7].iter().all(|l| l.ends_with(" available")), "{out:#?}");
    assert!(lines[7].starts_with("seccomp  available"), "{out:#?}");
    assert!(lines[8].starts_with("landlock available (ABI "), "{out:#?}");
    assert!(lines[9].starts_with("privs    applied ("), "{out:#?}");
    assert!(lines[10].starts_with("limits   applied ("), "{out:#?}");
    assert!(
        lines[11].starts_with("wasi     0.1 (")
            && lines[11].contains(
                ", 0.3 (async components: run wasi:cli/run@0.3, call, serve wasi:http/handler@0.3)"
            ),
        "{out:#?}"
    );

    let out = without_user_namespaces(r#"exec "$WSANDBOX" check"#);
    out.assert_code(125);
    assert!(
        out.stdout
            .starts_with("user     unavailable (required): clone(CLONE_NEWUSER): ENOSPC"),
        "{out:#?}"
    );
    assert!(out.stdout.contains("max_user_namespaces"), "{out:#?}");
    assert!(
        out.stdout
            .contains("pid      unavailable (required): needs the user namespace"),
        "{out:#?}"
    );
}

/// A setup step that fails inside the sandbox: its error, naming the call,
/// reaches the caller through the parent, not as "child exited 1".
#[test]
fn a_failure_inside_the_sandbox_reaches_the_caller_intact() {
    // With a directory of /proc covered by another mount, the kernel
    // refuses a fresh procfs inside a new user namespace (it would reveal
    // what is covered).
    let out = output(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
            .arg(r#"mount -t tmpfs none /proc/tty && exec "$WSANDBOX" run "$HELLO""#)
            .env("WSANDBOX", env!("CARGO_BIN_EXE_wsandbox"))
            .env("HELLO", wsandbox_guests::p1("hello"))
            .stdin(Stdio::null()),
    );
    out.assert_one_line_error(
        125,
        &["cannot set up the sandbox", "mount(proc, \"/proc\"", "EPERM"],
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn no_privilege_is_left() {
    for caller in callers() {
        let sandbox = Sandbox::start(caller, &[]);
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(sandbox.status(set), "0000000000000000", "{caller:?}: {set}");
        }
        assert_eq!(sandbox.status("NoNewPrivs"), "1", "{caller:?}");
        assert_eq!(sandbox.status("Seccomp"), "2", "{caller:?}: no seccomp filter");
    }
}

#[test]
fn the_callers_descriptors_do_not_reach_the_sandbox() {
    for caller in callers() {
        // bash opens fd 7 without close-on-exec and execs wsandbox with it.
        let mut cmd = Command::new("bash");
        cmd.args(["-c", r#"exec 7</etc/hostname; exec "$@""#, "bash"]);
        let inner = wsandbox_as(caller);
        cmd.arg(inner.get_program()).args(inner.get_args());
        cmd.args(["run", &guest_for(caller, "sleep")]);
        // A cache of its own, empty: the run writes a new entry, through a
        // file that must be closed before the guest starts.
        let cache = crate::cache::own_cache(caller);
        cmd.env("XDG_CACHE_HOME", cache.path());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let sandbox = Sandbox::spawn(cmd);
        let fds = |pid: u32| -> Vec<String> {
            let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            fds.sort();
            fds
        };
        assert!(
            fds(sandbox.wsandbox.id()).contains(&"7".to_string()),
            "the test did not pass fd 7"
        );
        // The sandbox has stdio, and beyond it only what the engine opened
        // itself after the wall was built (epoll, eventfds, pipes, memfds
        // of wasm memory images): no file of the host.
        let fds = fds(sandbox.pid as u32);
        assert_eq!(fds[..3], ["0", "1", "2"]);
        for fd in &fds[3..] {
            let target = std::fs::read_link(sandbox.proc(&format!("fd/{fd}"))).unwrap();
            let target = target.to_string_lossy();
            let engine_own = !target.starts_with('/') || target.starts_with("/memfd:");
            assert!(engine_own, "{caller:?}: fd {fd} -> {target} reached the sandbox");
        }
    }
}

#[test]
fn the_sandbox_has_a_session_of_its_own() {
    // Fields after the command: state, ppid, pgrp, session.
    let session = |stat: String| {
        stat.rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(3)
            .unwrap()
            .to_owned()
    };
    let sandbox = Sandbox::start(Caller::Me, &[]);
    let mine = session(std::fs::read_to_string("/proc/self/stat").unwrap());
    assert_ne!(session(sandbox.read("stat")), mine);
    // Unless the terminal is kept on purpose.
    let kept = Sandbox::start(Caller::Me, &["--keep-terminal"]);
    assert_eq!(session(kept.read("stat")), mine);
}

#[test]
fn resource_limits_are_lowered() {
    let sandbox = Sandbox::start(Caller::Me, &[]);
    let limits = sandbox.read("limits");
    let own = std::fs::read_to_string("/proc/self/limits").unwrap();
    let limit = |name: &str| limit_in(&limits, name);
    assert_eq!(limit("Max core file size"), ["0", "0"]);
    let at_most = |name: &str, most: u64| {
        let values = limit(name);
        assert!(
            values.iter().all(|v| v.parse::<u64>().is_ok_and(|v| v <= most)),
            "{name}: {values:?}"
        );
    };
    at_most("Max open files", 1024);
    at_most("Max file size", 16 << 30);
    // At most 1024 tasks (threads count), in the sandbox's own user namespace.
    at_most("Max processes", 1024);
    // Without --timeout and --memory, the CPU time and the data size are
    // the caller's.
    for name in ["Max cpu time", "Max data size"] {
        assert_eq!(limit(name), limit_in(&own, name), "{name}");
    }
    drop(sandbox);
    // With --memory, the whole process is bounded: linear memory plus the
    // engine's 1 GiB.
    let sandbox = Sandbox::start(Caller::Me, &["--memory", "64M"]);
    let data = ((64u64 << 20) + (1 << 30)).to_string();
    assert_eq!(
        limit_in(&sandbox.read("limits"), "Max data size"),
        [data.as_str(), data.as_str()]
    );
    drop(sandbox);
    // With --timeout T, the kernel's backstop: CPUs × T + 1 s of CPU time.
    let sandbox = Sandbox::start(Caller::Me, &["--timeout", "30s"]);
    let cpu = (30 * wsandbox::sys::online_cpus() + 1).to_string();
    assert_eq!(
        limit_in(&sandbox.read("limits"), "Max cpu time"),
        [cpu.as_str(), cpu.as_str()]
    );
}

/// The soft and hard values of limit `name` in a `/proc/PID/limits` text.
fn limit_in(limits: &str, name: &str) -> Vec<String> {
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name}"));
    line[name.len()..]
        .split_whitespace()
        .take(2)
        .map(String::from)
        .collect()
}

/// Past RLIMIT_FSIZE a write fails with EFBIG, which wasmtime-wasi turns
/// into a trap that names it; SIGXFSZ does not kill the sandbox silently.
/// The limit is lowered here with prlimit; wsandbox keeps a caller's lower
/// limit.
#[test]
fn a_write_past_the_file_size_limit_fails_without_killing() {
    for (guest, message) in [
        (wsandbox_guests::p1("fs"), "FileTooLarge: File too large"),
        // wasi:filesystem has no error code for EFBIG: wasmtime says `io`.
        (wsandbox_guests::p2("fs"), "I/O error"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let grant = format!("{}::/out", s(tmp.path()));
        let big = "x".repeat(8192);
        let out = output(
            Command::new("prlimit")
                .arg("--fsize=4096")
                .arg(env!("CARGO_BIN_EXE_wsandbox"))
                .args([
                    "run",
                    "--no-cache",
                    "--dir",
                    &grant,
                    guest,
                    "write",
                    "/out/big",
                    &big,
                ])
                .stdin(Stdio::null()),
        );
        // The write fails with EFBIG, handed to the guest as an error, and
        // the guest exits 1; SIGXFSZ never kills the sandbox (153).
        assert_eq!(out.code, Some(1), "{guest}: {out:#?}");
        assert!(out.stderr.contains(message), "{guest}: {out:#?}");
        let written = std::fs::metadata(tmp.path().join("big")).unwrap().len();
        assert_eq!(written, 4096, "{guest}: up to the limit, and not a byte past it");
    }
}

/// The caller's environment and argv are gone from the sandboxed process
/// before the engine exists: `/proc/PID/environ` and `cmdline` (the
/// kernel's copies on its stack) hold only zeroes, whoever the caller is.
/// The memory of the whole process is scanned from inside by
/// `tests/escape.rs`.
#[test]
fn the_sandbox_keeps_no_environment_or_argv_of_the_callers() {
    let secret = format!(
        "SECRET{}X{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    for caller in callers() {
        let mut cmd = wsandbox_as(caller);
        cmd.env("WSANDBOX_TEST_TOKEN", &secret)
            .args(["run", &guest_for(caller, "sleep"), "30", &secret])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let sandbox = Sandbox::spawn(cmd);
        for file in ["environ", "cmdline"] {
            match std::fs::read(sandbox.proc(file)) {
                Ok(bytes) => {
                    assert!(
                        bytes.iter().all(|&b| b == 0),
                        "{caller:?}: {file} is not empty: {:?}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
                // An unprivileged caller cannot read a non-dumpable process's.
                Err(e) => assert!(!am_root(), "{caller:?}: {file}: {e}"),
            }
        }
        // The supervisor keeps both, outside.
        if am_root() {
            let outside = std::fs::read(format!("/proc/{}/environ", sandbox.wsandbox.id())).unwrap();
            assert!(String::from_utf8_lossy(&outside).contains(&secret), "{caller:?}");
        }
    }
}

/// Whether the readable memory of process `pid` holds `needle`, read
/// through `/proc/PID/mem` (as root).
fn memory_holds(pid: i32, needle: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let Ok(mem) = std::fs::File::open(format!("/proc/{pid}/mem")) else {
        return false;
    };
    let mut chunk = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next().unwrap(), fields.next().unwrap());
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let (start, end) = (
            u64::from_str_radix(start, 16).unwrap(),
            u64::from_str_radix(end, 16).unwrap(),
        );
        // Overlapping chunks, so that nothing is missed at a boundary.
        let mut at = start;
        while at < end {
            let n = chunk.len().min((end - at) as usize);
            let Ok(read) = mem.read_at(&mut chunk[..n], at) else {
                break;
            };
            if chunk[..read].windows(needle.len()).any(|w| w == needle) {
                return true;
            }
            if read < needle.len() {
                break;
            }
            at += (read - needle.len() + 1) as u64;
        }
    }
    false
}

/// The key of the compilation cache's MACs never reaches the sandbox,
/// a copy of the supervisor made after it read the cache: scanned from
/// outside in the whole memory of a sandbox whose run read the key (a
/// hit), with a control (a value the guest was given) found there.
#[test]
fn the_caches_key_is_not_in_the_sandboxs_memory() {
    if !am_root() {
        println!("skipped: only root can read a sandbox's memory from outside");
        return;
    }
    for caller in callers() {
        let cache = crate::cache::own_cache(caller);
        let dir = cache.path().join("wsandbox");
        let dir = dir.to_str().unwrap();
        let guest = guest_for(caller, "sleep");
        let mut fill = wsandbox_as(caller);
        fill.args(["run", "--cache-dir", dir, &guest, "0"]);
        output(&mut fill).assert_code(0);
        let key = std::fs::read(cache.path().join("wsandbox/key")).unwrap();
        assert_eq!(key.len(), 32);
        let token = format!(
            "TOKEN{}X{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        );
        let mut cmd = wsandbox_as(caller);
        cmd.args([
            "run",
            "--cache-dir",
            dir,
            "--env",
            &format!("T={token}"),
            &guest,
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let sandbox = Sandbox::spawn(cmd);
        assert!(
            memory_holds(sandbox.pid, token.as_bytes()),
            "{caller:?}: the control was not found: the scan does not work"
        );
        assert!(
            !memory_holds(sandbox.pid, &key),
            "{caller:?}: the cache's key is in the sandbox's memory"
        );
    }
}

/// Root's run: the supervisor runs as nobody but is not dumpable, so no
/// process of nobody's can read its environment or memory; and neither it
/// nor the sandbox keeps a saved uid of 0.
#[test]
fn roots_supervisor_cannot_be_read_by_nobody() {
    if !am_root() {
        println!("skipped: only root's run gives up its uid for nobody's");
        return;
    }
    let sandbox = Sandbox::start(Caller::Me, &[]);
    let supervisor = sandbox.wsandbox.id();
    for pid in [supervisor as i32, sandbox.pid] {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uid.split_whitespace()
                .skip(1)
                .map(String::from)
                .collect::<Vec<_>>(),
            vec![NOBODY.to_string(); 4],
            "{pid}"
        );
        for file in ["environ", "mem"] {
            let path = format!("/proc/{pid}/{file}");
            let out = output(Command::new("setpriv").args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "head",
                "-c",
                "64",
                &path,
            ]));
            assert_ne!(out.code, Some(0), "nobody read {path}: {:?}", out.stdout);
        }
    }
}
