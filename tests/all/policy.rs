//! Policy files (`--config`), `wsandbox policy`, and what a command-line
//! tool explains about itself: `--version`, `--help`, completions, man
//! pages, logs.

use crate::serve::Server;
use crate::{output, run, s, wsandbox};
use std::path::Path;
use std::time::{Duration, Instant};
use wsandbox_guests::{API, WORDS, p1};

/// Writes `text` to `dir/name` and returns the path as a string.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    s(&path).to_owned()
}

#[test]
fn a_policy_file_alone_reproduces_a_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("note"), "granted\n").unwrap();
    let flags = [
        "--ro-dir",
        &format!("{}::/data", s(&data)),
        "--env",
        "LANG=C",
        "--env",
        "PASSED",
        "--hostname",
        "box",
    ]
    .map(String::from);
    // The file names its directory relative to itself.
    let config = file(
        dir.path(),
        "policy.toml",
        r#"
hostname = "box"

[[dirs]]
host = "data"
guest = "/data"
access = "read-only"

[[env]]
name = "LANG"
value = "C"

[[env]]
name = "PASSED"
"#,
    );
    let by_flags = |args: &[&str]| {
        output(
            wsandbox()
                .env("PASSED", "from the host")
                .arg("run")
                .args(&flags)
                .arg(p1("fs"))
                .args(args),
        )
    };
    let by_file = |args: &[&str]| {
        output(
            wsandbox()
                .env("PASSED", "from the host")
                .args(["run", "--config", &config])
                .arg(p1("fs"))
                .args(args),
        )
    };
    for args in [
        &["read", "/data/note"][..],
        &["write", "/data/new", "x"],
        &["ls", "/data"],
    ] {
        let (a, b) = (by_flags(args), by_file(args));
        assert_eq!(
            (a.code, &a.stdout, &a.stderr),
            (b.code, &b.stdout, &b.stderr),
            "{args:?}"
        );
    }
    assert_eq!(by_file(&["read", "/data/note"]).stdout, "granted\n");
    let hello = |extra: &[&str]| {
        output(
            wsandbox()
                .env("PASSED", "from the host")
                .arg("run")
                .args(extra)
                .arg(p1("hello")),
        )
    };
    let (a, b) = (
        hello(&flags.iter().map(String::as_str).collect::<Vec<_>>()),
        hello(&["--config", &config]),
    );
    a.assert_code(0);
    assert_eq!(a.stdout, b.stdout);
    assert!(b.stdout.contains("env PASSED=from the host\n"), "{}", b.stdout);
    // Limits from a file act as the flags do.
    let limits = file(dir.path(), "limits.toml", "timeout = \"1s\"\n");
    let start = Instant::now();
    run(&["run", "--config", &limits, p1("sleep")]).assert_code(124);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_flag_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = file(
        dir.path(),
        "policy.toml",
        "hostname = \"from-file\"\ntimeout = \"1h\"\n\n[[env]]\nname = \"A\"\nvalue = \"file\"\n",
    );
    let printed = run(&[
        "policy",
        "--config",
        &config,
        "--hostname",
        "from-flag",
        "--timeout",
        "2s",
    ]);
    printed.assert_code(0);
    assert!(
        printed.stdout.contains("hostname = \"from-flag\""),
        "{}",
        printed.stdout
    );
    assert!(printed.stdout.contains("timeout = \"2s\""), "{}", printed.stdout);
    // A variable named again on the command line takes the later value.
    let hello = run(&["run", "--config", &config, "--env", "A=flag", p1("hello")]);
    assert!(hello.stdout.contains("env A=flag\n"), "{}", hello.stdout);
    assert!(!hello.stdout.contains("env A=file"), "{}", hello.stdout);
    // The file's hour-long timeout gives way to the flag's second.
    let start = Instant::now();
    run(&["run", "--config", &config, "--timeout", "1s", p1("sleep")]).assert_code(124);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_bad_policy_file_gets_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown.toml",
            "hostname = \"x\"\nbogus = 1\n",
            &["line 2", "unknown field `bogus`"][..],
        ),
        (
            "type.toml",
            "memory = \"64M\"\nfuel = \"lots\"\n",
            &["line 2", "invalid type"][..],
        ),
        (
            "nested.toml",
            "[serve]\nmax_concurrent = 4\nport = 80\n",
            &["line 3", "unknown field `port`"][..],
        ),
        (
            "duration.toml",
            "timeout = \"5 parsecs\"\n",
            &["line 1", "unknown unit"][..],
        ),
        ("syntax.toml", "hostname = \n", &["line 1"][..]),
        (
            "dir.toml",
            "[[dirs]]\nhost = \"x\"\n",
            &["missing field `guest`"][..],
        ),
    ];
    for (name, text, words) in cases {
        let path = file(dir.path(), name, text);
        let mut words = words.to_vec();
        words.push(&path);
        for command in [&["run"][..], &["policy"]] {
            let mut args = command.to_vec();
            args.extend(["--config", &path, p1("hello")]);
            if command == ["policy"] {
                args.pop();
            }
            run(&args).assert_one_line_error(125, &words);
        }
    }
    // A value the file may hold but a sandbox cannot apply.
    let zero = file(dir.path(), "zero.toml", "[serve]\nmax_concurrent = 0\n");
    run(&["policy", "--config", &zero]).assert_one_line_error(125, &["max_concurrent must be at least 1"]);
    let zero = file(dir.path(), "zero.toml", "[serve]\nmax_connections = 0\n");
    run(&["policy", "--config", &zero]).assert_one_line_error(125, &["max_connections must be at least 1"]);
    let missing = dir.path().join("missing.toml");
    run(&["run", "--config", s(&missing), p1("hello")])
        .assert_one_line_error(125, &["--config", "no such file or directory"]);
    // A report is written for it too.
    let report = dir.path().join("report.json");
    run(&[
        "run",
        "--config",
        s(&missing),
        "--report",
        s(&report),
        p1("hello"),
    ])
    .assert_code(125);
    let report = std::fs::read_to_string(report).unwrap();
    assert!(report.contains("\"outcome\":\"error\""), "{report}");
}

#[test]
fn the_printed_policy_reads_back_as_the_same_policy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let printed = run(&[
        "policy",
        "--ro-dir",
        &format!("{}::/data", s(&data)),
        "--dir",
        s(dir.path()),
        "--env",
        "LANG=C",
        "--env",
        "TERM",
        "--hostname",
        "h",
        "--uid",
        "1000",
        "--timeout",
        "1.5s",
        "--memory",
        "1536K",
        "--fuel",
        "12345",
        "--allow-degraded",
        "--addr",
        "127.0.0.1:9000",
        "--max-concurrent",
        "3",
        "--max-connections",
        "7",
        "--idle-timeout",
        "2s",
        "--request-timeout",
        "1m",
        "--max-body-size",
        "64K",
    ]);
    printed.assert_code(0);
    let path = file(dir.path(), "printed.toml", &printed.stdout);
    let again = run(&["policy", "--config", &path]);
    again.assert_code(0);
    assert_eq!(printed.stdout, again.stdout);
    for line in [
        "timeout = \"1500ms\"",
        "memory = \"1536K\"",
        "fuel = 12345",
        "max_concurrent = 3",
        "max_connections = 7",
        "idle_timeout = \"2s\"",
        "request_timeout = \"1m\"",
        "max_body_size = \"64K\"",
    ] {
        assert!(printed.stdout.contains(line), "{line}: {}", printed.stdout);
    }
    // Every path is resolved: what is printed is what is granted.
    let canonical = data.canonicalize().unwrap();
    assert!(
        printed.stdout.contains(&format!("host = \"{}\"", s(&canonical))),
        "{}",
        printed.stdout
    );
    // The defaults, printed, are a policy too.
    let defaults = run(&["policy"]);
    defaults.assert_code(0);
    assert!(defaults.stdout.contains("hostname = \"wsandbox\""));
}

#[test]
fn each_example_policy_runs() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let policy = |name: &str| s(&policies.join(name)).to_owned();
    // The CI job reads the checkout, cannot change it, and writes where
    // it is given a directory.
    let out = tempfile::tempdir().unwrap();
    let ci = policy("ci-job.toml");
    let work = format!("{}::/out", s(out.path()));
    let job = |args: &[&str]| {
        output(
            wsandbox()
                .args(["run", "--config", &ci, "--dir", &work, p1("fs")])
                .args(args),
        )
    };
    let manifest = job(&["read", "/src/Cargo.toml"]);
    manifest.assert_code(0);
    assert!(manifest.stdout.contains("name = \"wsandbox\""));
    job(&["write", "/src/escaped", "x"]).assert_code(1);
    job(&["write", "/out/result", "done"]).assert_code(0);
    assert_eq!(
        std::fs::read_to_string(out.path().join("result")).unwrap(),
        "done"
    );
    let env = output(wsandbox().args(["run", "--config", &ci, p1("hello")]));
    assert!(env.stdout.contains("env CI=true\n"), "{}", env.stdout);
    // The plugin host's policy: a call with a fuel budget.
    let called = run(&[
        "call",
        "--config",
        &policy("plugin-host.toml"),
        WORDS,
        "guest.metadata()",
    ]);
    called.assert_code(0);
    assert!(called.stdout.contains("name: \"words\""), "{}", called.stdout);
    // The function's policy: served (on a free port instead of its own).
    let server = Server::start(&["--config", &policy("function.toml")], API);
    assert!(
        server
            .get("/hello/policy")
            .assert(200)
            .text()
            .contains("Hello, policy!")
    );
}

#[test]
fn version_names_wasmtime_and_its_features() {
    let version = run(&["--version"]);
    version.assert_code(0);
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let entry = &manifest[manifest.find("\nwasmtime = {").unwrap()..];
    let features = &entry[entry.find("features = [").unwrap() + 12..entry.find(']').unwrap()];
    assert!(version.stdout.contains("wasmtime 48."), "{}", version.stdout);
    for feature in features
        .split(',')
        .map(|f| f.trim().trim_matches('"'))
        .filter(|f| !f.is_empty())
    {
        assert!(
            version.stdout.contains(feature),
            "{feature} missing: {}",
            version.stdout
        );
    }
}

#[test]
fn every_command_explains_itself_with_examples() {
    for command in [
        "run",
        "call",
        "serve",
        "compile",
        "check",
        "policy",
        "completions",
        "man",
    ] {
        let help = run(&[command, "--help"]);
        help.assert_code(0);
        assert!(
            help.stdout.contains("Examples:"),
            "{command} --help: {}",
            help.stdout
        );
    }
    assert!(run(&["--help"]).stdout.contains("Examples:"));
}

#[test]
fn completions_and_man_pages_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = run(&["completions", shell]);
        script.assert_code(0);
        assert!(
            script.stdout.contains("serve") && script.stdout.contains("config"),
            "{shell}"
        );
    }
    run(&["completions", "tcsh"]).assert_code(2);
    let page = run(&["man"]);
    page.assert_code(0);
    assert!(page.stdout.contains(".TH wsandbox "), "{}", &page.stdout[..200]);
    for command in ["run", "call", "serve", "compile", "check", "policy"] {
        let page = run(&["man", command]);
        page.assert_code(0);
        assert!(
            page.stdout.contains(&format!(".TH wsandbox-{command} ")),
            "{command}"
        );
        assert!(page.stdout.contains("\\-\\-config") || command == "compile" || command == "check");
    }
    run(&["man", "worker"]).assert_code(2);
}

/// `wsandbox man | head` and the like: a reader that has left ends the
/// command quietly, exit code 0, not with an error or a panic.
#[test]
fn a_reader_that_has_left_ends_every_command_quietly() {
    use std::process::Stdio;
    let math = wsandbox_guests::wat("math");
    for args in [
        &["man"][..],
        &["man", "serve"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["policy", "--timeout", "1s"],
        &["check"],
        &["call", "--list", &math],
        &["call", &math, "add(1, 2)"],
        &["--help"],
    ] {
        // Its stdout is a pipe whose reading end is closed before it runs:
        // its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = crate::wsandbox()
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn logs_are_quiet_unless_asked_and_then_show_each_step() {
    let hello = format!("{}/hello.wat", wsandbox_guests::WAT_DIR);
    let quiet = run(&["run", &hello]);
    quiet.assert_code(0);
    assert_eq!(quiet.stderr, "");
    let verbose = run(&["-v", "run", &hello]);
    verbose.assert_code(0);
    for step in [
        "outer wall: id maps",
        "outer wall: mounts",
        "outer wall: seccomp",
        "engine: code of",
        "engine: instantiated",
    ] {
        assert!(verbose.stderr.contains(step), "{step}: {}", verbose.stderr);
    }
    assert!(verbose.stderr.contains(" ms"));
    let filtered = output(
        wsandbox()
            .env("WSANDBOX_LOG", "wsandbox=debug")
            .args(["run", &hello]),
    );
    assert!(
        filtered.stderr.contains("outer wall: seccomp"),
        "{}",
        filtered.stderr
    );
}
