//! The server's log for machines (`--log-format json`): every line on
//! stderr is one JSON object with its time and level; a request's lines
//! carry its id, route, method, path, status and duration; a guest's
//! output is escaped; at `-v`, an access line per request, in both
//! formats.

use crate::serve::Server;
use crate::{run, wsandbox};
use std::time::{Duration, Instant};
use wsandbox_guests::PROBE_HTTP;

/// The log's lines, parsed, once `count` of them satisfy `wanted` (they
/// are read by another thread).
fn records(
    server: &Server,
    wanted: impl Fn(&serde_json::Value) -> bool,
    count: usize,
) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let log = server.log();
        let records: Vec<serde_json::Value> = log
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}")))
            .collect();
        if records.iter().filter(|r| wanted(r)).count() >= count {
            return records;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wsandbox --log-format json -v serve --addr 127.0.0.1:0 OPTIONS PROBE`.
fn json_server(options: &[&str]) -> Server {
    let mut cmd = wsandbox();
    cmd.args(["--log-format", "json", "-v", "serve", "--addr", "127.0.0.1:0"])
        .args(options)
        .arg(PROBE_HTTP);
    Server::spawn(cmd)
}

#[test]
fn json_lines_carry_the_requests_fields_and_the_guests_output_escaped() {
    let server = json_server(&["--timeout", "1s", "--max-body-size", "16"]);
    crate::serve::request(server.addr(), "POST", "/echo", &[b'x'; 100]).assert(413);
    server.get("/").assert(200);
    server.get("/trap").assert(500);
    server.get("/print").assert(200);
    let access = |r: &serde_json::Value| r["message"].as_str().is_some_and(|m| m.contains(" ms (route "));
    records(&server, access, 4);
    // The guest's lines are passed on as it writes them, which may be after
    // its request's access line: the last request's line on stdout, then.
    let records = records(&server, |r| r["stream"] == "stdout", 1);
    for record in &records {
        let time = record["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.len() == 24, "{record}");
        assert!(
            ["error", "warn", "info", "debug", "trace"].contains(&record["level"].as_str().unwrap()),
            "{record}"
        );
        assert!(record["message"].is_string(), "{record}");
    }
    // The first line says where it listens.
    assert!(records.iter().any(|r| {
        r["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("http://127.0.0.1:"))
    }));
    // An access line per request, with every field.
    let lines: Vec<&serde_json::Value> = records.iter().filter(|r| access(r)).collect();
    let of = |path: &str| {
        lines
            .iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("{path}: {records:?}"))
    };
    let hello = of("/");
    assert_eq!(hello["status"], 200);
    assert_eq!(hello["method"], "GET");
    assert_eq!(hello["route"], "/");
    assert_eq!(hello["level"], "info");
    assert!(
        hello["request"].is_u64() && hello["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{hello}"
    );
    assert_eq!(of("/trap")["status"], 500);
    // The failure's own line: an error, with the status and why.
    let failed = records
        .iter()
        .find(|r| r["level"] == "error" && r["path"] == "/trap")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(failed["status"], 500);
    assert!(
        failed["message"].as_str().unwrap().contains("guest trapped"),
        "{failed}"
    );
    // The guest's lines: its stream, its request and route.
    let printed = records
        .iter()
        .find(|r| r["stream"] == "stdout")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(printed["message"], "a line on stdout");
    assert_eq!(printed["route"], "/");
    assert!(printed["request"].is_u64());
    assert!(
        records
            .iter()
            .any(|r| r["stream"] == "stderr" && r["message"] == "a line on stderr")
    );
}

#[test]
fn bytes_of_a_client_are_escaped_in_json_too() {
    use std::io::{Read, Write};
    let server = json_server(&[]);
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    // A path with a C1 control and a bidirectional override, raw UTF-8.
    stream
        .write_all("GET /trap/\u{9b}2J\u{202e}x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".as_bytes())
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let records = records(&server, |r| r["status"].is_u64(), 1);
    let line = records.iter().find(|r| r["status"].is_u64()).unwrap();
    assert_eq!(line["status"], 404, "{line}");
    let path = line["path"].as_str().unwrap();
    assert!(path.contains("\\u{9b}") && path.contains("\\u{202e}"), "{line}");
    assert!(!path.contains('\u{9b}') && !path.contains('\u{202e}'), "{line}");
}

#[test]
fn at_v_each_request_has_an_access_line_in_text() {
    let mut cmd = wsandbox();
    cmd.args(["-v", "serve", "--addr", "127.0.0.1:0", PROBE_HTTP]);
    let server = Server::spawn(cmd);
    server.get("/").assert(200);
    server.get("/nowhere").assert(404);
    // A request's line is written once its answer's body is over, which
    // may be after the next request's.
    server.logged("GET /nowhere: 404 in ");
    let log = server.logged("] GET /: 200 in ");
    let line = log
        .lines()
        .find(|l| l.contains("] GET /: 200 in "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.starts_with("wsandbox: [req ") && line.ends_with(" ms (route /)"),
        "{line}"
    );
    // Without -v, no access line.
    let quiet = Server::start(&[], PROBE_HTTP);
    quiet.get("/").assert(200);
    quiet.get("/trap").assert(500);
    let log = quiet.logged("/trap: 500:");
    assert!(!log.contains(" ms (route "), "{log}");
}

#[test]
fn a_command_that_fails_says_so_in_one_json_line() {
    let out = run(&["--log-format", "json", "run", "/nonexistent/guest.wasm"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let record: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(record["level"], "error");
    assert!(
        record["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/guest.wasm"),
        "{record}"
    );
}

/// wsandbox's own log lines — here a plugin's, through the host's `log` —
/// go through `tracing` once logging is set up: `WSANDBOX_LOG` filters
/// them, `--log-format` writes them, and they read the same at `-v`.
#[test]
fn wsandboxs_own_log_lines_follow_the_filter_and_the_format() {
    let words = wsandbox_guests::WORDS;
    let logged = |env: Option<&str>, options: &[&str]| {
        let mut cmd = wsandbox();
        if let Some(filter) = env {
            cmd.env("WSANDBOX_LOG", filter);
        }
        let out = crate::output(
            cmd.args(options)
                .args(["call", words, "guest.handle([104, 105])"]),
        );
        out.assert_code(0);
        let lines: Vec<String> = out
            .stderr
            .lines()
            .filter(|line| line.contains("plugin: info: 2 bytes, 1 words"))
            .map(str::to_owned)
            .collect();
        lines
    };
    let line = "plugin: info: 2 bytes, 1 words";
    assert_eq!(logged(None, &[]), [line], "info is written unless filtered");
    assert_eq!(logged(None, &["-v"]), [line], "the same line at -v");
    assert_eq!(
        logged(Some("wasmtime=info"), &[]),
        [line],
        "a filter of others keeps ours"
    );
    assert!(
        logged(Some("wsandbox=warn"), &[]).is_empty(),
        "below the filter's level"
    );
    assert!(
        logged(Some("wsandbox::engine::plugin_host=off"), &[]).is_empty(),
        "its module off"
    );
    for env in [None, Some("wsandbox=info")] {
        let json = logged(env, &["--log-format", "json"]);
        assert_eq!(json.len(), 1, "{env:?}: {json:?}");
        let record: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(record["level"], "info", "{record}");
        assert_eq!(record["message"], line, "{record}");
    }
}
