//! A command line written for wasmtime: every row of the README's table
//! ("Coming from wasmtime") run through `wsandbox`, each wasmtime option
//! accepted with the meaning of its wsandbox spelling (the same policy,
//! the same run) or refused with one line naming what to write instead;
//! the units sizes and durations take; and the papercuts a new user hits.

use crate::{Output, run, wsandbox};

/// The README's table: (wasmtime's options, one per code span of the
/// first column; the second column).
fn table() -> Vec<(Vec<String>, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Coming from wasmtime")
        .nth(1)
        .expect("the README has a section for wasmtime's users");
    let rows: Vec<_> = section
        .lines()
        .skip_while(|line| !line.starts_with("| wasmtime |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let options = spans(cells[0].trim_start_matches("| "));
            (options, cells[1].to_owned())
        })
        .collect();
    assert!(rows.len() > 30, "the table is read whole: {} rows", rows.len());
    rows
}

/// The text of each `code span` in `cell`.
fn spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn words(options: &str) -> Vec<&str> {
    options.split_whitespace().collect()
}

/// `wsandbox policy OPTIONS`.
fn policy(options: &[&str]) -> Output {
    let mut args = vec!["policy"];
    args.extend_from_slice(options);
    run(&args)
}

/// `wsandbox run OPTIONS hello.wat`.
fn hello(options: &[&str]) -> Output {
    let hello = wsandbox_guests::wat("hello");
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.push(&hello);
    run(&args)
}

#[test]
fn every_row_of_the_readme_table_means_what_it_says() {
    let default = policy(&[]);
    default.assert_code(0);
    let mut checked = 0;
    for (wasmtime, said) in table() {
        for (i, option) in wasmtime.iter().enumerate() {
            let given = words(option);
            if let Some(instead) = said.strip_prefix("refused: ") {
                let instead = &spans(instead)[0];
                // The line names the option: `-S tcp`, `--target`.
                let named = match given[0] {
                    "-W" | "-S" | "-C" | "-O" | "-D" | "-R" => {
                        format!("{} {}", given[0], given[1].split('=').next().unwrap())
                    }
                    flag => flag.to_owned(),
                };
                policy(&given).assert_one_line_error(2, &[&named, instead]);
                hello(&given).assert_one_line_error(2, &[instead]);
            } else if said == "the default" {
                let out = policy(&given);
                out.assert_code(0);
                assert_eq!(out.stdout, default.stdout, "{option} changes nothing: {out:#?}");
                let out = hello(&given);
                out.assert_code(0);
                assert_eq!(out.stdout, "hello from WebAssembly\n", "{option}");
            } else if let Some(special) = said.strip_prefix("run: ") {
                special_row(option, special);
            } else {
                // wsandbox's spelling: the same policy, the same run.
                let equivalents = spans(&said);
                let equivalent = words(equivalents.get(i).unwrap_or(&equivalents[0]));
                let (ours, theirs) = (policy(&equivalent), policy(&given));
                assert_eq!(
                    (theirs.code, &theirs.stdout, &theirs.stderr),
                    (ours.code, &ours.stdout, &ours.stderr),
                    "{option} is {equivalent:?}"
                );
                let (ours, theirs) = (hello(&equivalent), hello(&given));
                assert_eq!(
                    (theirs.code, &theirs.stdout),
                    (ours.code, &ours.stdout),
                    "{option}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked} options checked");
}

/// The rows about what a run does, beyond its policy.
fn special_row(option: &str, said: &str) {
    match option {
        "--argv0 tool" => {
            for hello in [wsandbox_guests::p1("hello"), wsandbox_guests::p2("hello")] {
                let out = run(&["run", "--argv0", "tool", hello, "one"]);
                out.assert_code(0);
                assert!(out.stdout.contains("arg[0]=tool\narg[1]=one\n"), "{out:#?}");
            }
        }
        "--invoke add" => {
            let math = wsandbox_guests::wat("math");
            let called = run(&["call", &math, "add(1, 2)"]);
            called.assert_code(0);
            let invoked = run(&["run", "--invoke", "add", &math, "1", "2"]);
            assert_eq!(
                (invoked.code, &invoked.stdout),
                (Some(0), &called.stdout),
                "{invoked:#?}"
            );
            let whole = run(&["run", "--invoke", "add(1, 2)", &math]);
            assert_eq!(whole.stdout, called.stdout, "{whole:#?}");
            run(&["run", "--invoke", "add(1, 2)", &math, "3"]).assert_one_line_error(2, &["--invoke"]);
            let shapes = wsandbox_guests::SHAPES;
            let invoked = run(&["run", "--invoke", "greet(\"world\")", shapes]);
            let called = run(&["call", shapes, "greet(\"world\")"]);
            assert_eq!(
                (invoked.code, &invoked.stdout),
                (Some(0), &called.stdout),
                "{invoked:#?}"
            );
        }
        "app.wasm" => {
            let hello = wsandbox_guests::p1("hello");
            let explicit = run(&["run", "--env", "A=1", hello, "x"]);
            explicit.assert_code(0);
            for implicit in [
                &["--env", "A=1", hello, "x"][..],
                &[hello, "--env", "A=1", "x"][..],
                &["-v", "--log-format", "text", "--env", "A=1", hello, "x"][..],
            ] {
                let out = run(implicit);
                out.assert_code(0);
                let guest = |out: &str| out.replace("arg[1]=--env\narg[2]=A=1\narg[3]=x", "arg[1]=x");
                match implicit[0] {
                    // After MODULE, everything is the guest's.
                    first if first == hello => assert!(out.stdout.contains("arg[1]=--env\n"), "{out:#?}"),
                    _ => assert_eq!(guest(&out.stdout), explicit.stdout, "{implicit:?}"),
                }
            }
            // What clap answers by itself is not a module.
            run(&["--version"]).assert_code(0);
            run(&["help"]).assert_code(0);
            run(&[]).assert_code(2);
        }
        "--config wasmtime.toml" => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("wasmtime.toml");
            std::fs::write(&file, "[wasm]\ntimeout = 5\n\n[wasi]\ninherit-env = true\n").unwrap();
            let path = file.to_str().unwrap();
            policy(&["--config", path]).assert_one_line_error(125, &[path, "wasmtime's configuration"]);
            hello(&["--config", path]).assert_one_line_error(125, &["wasmtime's configuration"]);
        }
        "-S inherit-env" => {
            let inherited = |options: &[&str]| {
                let mut cmd = wsandbox();
                cmd.env_clear()
                    .envs([("XDG_CACHE_HOME", crate::TEST_CACHE), ("A", "1"), ("B", "2")]);
                crate::output(cmd.arg("policy").args(options))
            };
            let ours = inherited(&["--env", "A", "--env", "B", "--env", "XDG_CACHE_HOME"]);
            ours.assert_code(0);
            assert_eq!(inherited(&["-S", "inherit-env"]).stdout, ours.stdout);
            assert_eq!(inherited(&["-S", "inherit-env=n"]).stdout, policy(&[]).stdout);
            // A later --env wins over the host's value.
            let mut cmd = wsandbox();
            cmd.env("A", "1").args([
                "run",
                "-S",
                "inherit-env",
                "--env",
                "A=2",
                wsandbox_guests::p1("hello"),
            ]);
            let out = crate::output(&mut cmd);
            out.assert_code(0);
            assert!(
                out.stdout.contains("env A=2\n") && !out.stdout.contains("env A=1\n"),
                "{out:#?}"
            );
        }
        other => panic!("the README's row {other:?} ({said}) is not checked"),
    }
}

/// Each spelling of a size or a duration, in an option and in a policy
/// file, means the same, and wsandbox writes it back one way.
#[test]
fn every_unit_spelling_means_what_it_says() {
    let memory = |given: &str| policy(&["--memory", given]);
    let one_mib = memory("1M");
    one_mib.assert_code(0);
    assert!(one_mib.stdout.contains("memory = \"1M\"\n"), "{one_mib:#?}");
    for spelling in [
        "1048576",
        "0x100000",
        "1_048_576",
        "1024K",
        "1024k",
        "1024KiB",
        "1024KB",
        "1024kb",
        "1m",
        "1MiB",
        "1MB",
        "1 M",
        "1Mb",
    ] {
        assert_eq!(memory(spelling).stdout, one_mib.stdout, "{spelling}");
    }
    let size = policy(&["--memory", "1536KiB", "--max-body-size", "2GB"]);
    assert!(size.stdout.contains("memory = \"1536K\"\n"), "{size:#?}");
    assert!(size.stdout.contains("max_body_size = \"2G\"\n"), "{size:#?}");
    for bad in ["1.5M", "1X", "M", "0", "0K", "-1", "1KK", "99999999999T"] {
        memory(bad).assert_code(2);
    }

    let timeout = |given: &str| policy(&["--timeout", given]);
    let ninety = timeout("90s");
    assert!(ninety.stdout.contains("timeout = \"90s\"\n"), "{ninety:#?}");
    for spelling in ["90", "1.5m", "90000ms", "90000000us", "90000000000ns", "90 s"] {
        assert_eq!(timeout(spelling).stdout, ninety.stdout, "{spelling}");
    }
    assert!(timeout("120").stdout.contains("timeout = \"2m\"\n"));
    assert!(timeout("0.25").stdout.contains("timeout = \"250ms\"\n"));
    for bad in ["0", "0s", "5x", "s", "-1", ""] {
        timeout(bad).assert_code(2);
    }

    // A policy file takes the same spellings, and numbers.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "timeout = 90\nmemory = \"1024KB\"\n[serve]\nidle_timeout = \"1.5m\"\nmax_body_size = 65536\n",
    )
    .unwrap();
    let out = policy(&["--config", file.to_str().unwrap()]);
    out.assert_code(0);
    for line in [
        "timeout = \"90s\"",
        "memory = \"1M\"",
        "idle_timeout = \"90s\"",
        "max_body_size = \"64K\"",
    ] {
        assert!(out.stdout.contains(line), "{line}: {out:#?}");
    }
    // Messages write sizes as policy files do.
    let out = run(&["run", "--memory", "1024KiB", wsandbox_guests::p1("hello")]);
    assert!(out.stderr.contains("--memory 1M"), "{out:#?}");
}

#[test]
fn policy_takes_every_option_it_prints_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let out = policy(&["--no-cache", "--cache-dir", dir.path().to_str().unwrap()]);
    out.assert_code(0);
    assert!(out.stdout.contains("no_cache = true\n"), "{out:#?}");
    assert!(out.stdout.contains("cache_dir = "), "{out:#?}");
    // What it prints is a policy file that means the same.
    let file = dir.path().join("p.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let again = policy(&["--config", file.to_str().unwrap()]);
    assert_eq!(again.stdout, out.stdout);
    policy(&["--report", "-"]).assert_one_line_error(2, &["--report", "runs nothing"]);

    // `no_cache` and `cache_dir` of a policy file are obeyed: the cache
    // named (relative to the file) is used unless `no_cache` says not to.
    let hello = wsandbox_guests::wat("hello");
    std::fs::write(&file, "cache_dir = \"cache\"\n").unwrap();
    run(&["run", "--config", file.to_str().unwrap(), &hello]).assert_code(0);
    assert!(
        dir.path().join("cache").read_dir().unwrap().count() > 0,
        "the file's cache is used"
    );
    let other = dir.path().join("other");
    std::fs::write(&file, format!("no_cache = true\ncache_dir = {other:?}\n")).unwrap();
    run(&["run", "--config", file.to_str().unwrap(), &hello]).assert_code(0);
    assert!(!other.exists(), "no_cache: no cache is made");
}

#[test]
fn serve_says_what_its_options_mean_for_it() {
    let help = run(&["serve", "--help"]);
    help.assert_code(0);
    assert!(help.stdout.contains("its client gets 504"), "{}", help.stdout);
    assert!(
        !help.stdout.contains("--keep-terminal"),
        "a run's option: {}",
        help.stdout
    );
    assert!(!help.stdout.contains("exit 124"), "{}", help.stdout);
    let help = run(&["run", "--help"]);
    assert!(help.stdout.contains("--keep-terminal") && help.stdout.contains("exit 124"));
}

#[test]
fn serve_listens_on_a_name() {
    use std::io::{BufRead, BufReader};
    let mut server = wsandbox()
        .args(["serve", "--addr", "localhost:0", wsandbox_guests::PROBE_HTTP])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(first.starts_with("http://127.0.0.1:"), "{first:?}");
    // Resolved when read: `wsandbox policy` shows the address bound.
    let out = policy(&["--addr", "localhost:8080"]);
    assert!(out.stdout.contains("addr = \"127.0.0.1:8080\""), "{out:#?}");
    for bad in ["localhost", ":8080", "localhost:http", "127.0.0.1:99999"] {
        let out = run(&["serve", "--addr", bad, wsandbox_guests::PROBE_HTTP]);
        out.assert_code(2);
        assert!(out.stderr.contains("HOST:PORT"), "{bad}: {out:#?}");
    }
}

#[test]
fn a_malformed_log_filter_is_an_error_naming_it() {
    let hello = wsandbox_guests::wat("hello");
    let out = crate::output(
        wsandbox()
            .env("WSANDBOX_LOG", "wsandbox=loud")
            .args(["run", &hello]),
    );
    out.assert_one_line_error(2, &["WSANDBOX_LOG=wsandbox=loud", "not a filter"]);
    let out = crate::output(
        wsandbox()
            .env("WSANDBOX_LOG", "wsandbox=debug")
            .args(["run", &hello]),
    );
    out.assert_code(0);
    assert!(out.stderr.contains("engine: instantiated"), "{out:#?}");
}
