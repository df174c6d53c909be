//! The admin listener of `wsandbox serve` (`--admin-addr`), driven from
//! outside: the probes, readiness through a drain, and `/metrics` read by
//! Prometheus's own parsers (Python's `prometheus_client`, in both of its
//! text formats), each counter moving as requests succeed, trap and time
//! out.

use crate::run;
use crate::serve::{Reply, Server, listening_sockets, request, request_with};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use wsandbox_guests::PROBE_HTTP;

/// The admin address a server printed.
fn admin_of(server: &Server) -> String {
    let log = server.logged("admin: http://");
    log.lines()
        .find_map(|line| line.strip_prefix("admin: http://"))
        .unwrap()
        .to_owned()
}

#[test]
fn the_admin_listener_answers_probes_and_only_there() {
    let server = Server::start(&["--admin-addr", "127.0.0.1:0"], PROBE_HTTP);
    let admin = admin_of(&server);
    let log = server.logged("admin: http://");
    assert_ne!(admin, server.addr());
    // It comes after the public address, the first line.
    assert!(log.lines().next().unwrap().starts_with("http://"), "{log}");
    assert_eq!(request(&admin, "GET", "/healthz", &[]).assert(200).text(), "ok\n");
    assert_eq!(
        request(&admin, "GET", "/readyz", &[]).assert(200).text(),
        "ready\n"
    );
    request(&admin, "GET", "/", &[]).assert(404);
    request(&admin, "POST", "/healthz", b"x").assert(404);
    // The public listener has no such endpoints: the function answers.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            server.get(path).assert(404).text().contains("no such route"),
            "{path}"
        );
    }
    // The sandbox listens on the two sockets it was handed, no more.
    assert_eq!(listening_sockets(server.sandboxed_pid()), 2);
    // Draining: not ready, still healthy, the request in flight answered.
    let addr = server.addr().to_owned();
    let slow = std::thread::spawn(move || request(&addr, "GET", "/sleep?ms=2000", &[]));
    std::thread::sleep(Duration::from_millis(500));
    server.terminate();
    let start = Instant::now();
    loop {
        let ready = request(&admin, "GET", "/readyz", &[]);
        if ready.status == 503 {
            assert_eq!(ready.text(), "draining\n");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "/readyz still {}",
            ready.status
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    request(&admin, "GET", "/healthz", &[]).assert(200);
    assert_eq!(slow.join().unwrap().assert(200).text(), "slept\n");
    assert_eq!(server.wait(Duration::from_secs(10)), Some(0));
}

#[test]
fn an_admin_address_in_use_is_one_line_and_125() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--admin-addr",
        &addr,
        PROBE_HTTP,
    ]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(
        out.stderr
            .starts_with(&format!("wsandbox: --admin-addr {addr}: cannot listen: ")),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// One sample of a scrape: its name and labels, and its value.
type Samples = BTreeMap<String, f64>;

/// The samples of `/metrics` in `format` (`openmetrics` or `prometheus`),
/// as Python's `prometheus_client` parses them, keyed `name{k="v",...}`
/// (labels sorted); the media type checked.
fn scrape(admin: &str, format: &str) -> Samples {
    let reply: Reply = match format {
        "openmetrics" => request_with(
            admin,
            "GET",
            "/metrics",
            &[(
                "Accept",
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            )],
            &[],
        ),
        _ => request(admin, "GET", "/metrics", &[]),
    };
    reply.assert(200);
    let media = match format {
        "openmetrics" => "content-type: application/openmetrics-text; version=1.0.0",
        _ => "content-type: text/plain; version=0.0.4",
    };
    assert!(reply.head.contains(media), "{format}: {}", reply.head);
    parsed(&reply.text(), format)
}

/// `text` parsed by `prometheus_client`'s parser of `format`.
fn parsed(text: &str, format: &str) -> Samples {
    use std::io::Write;
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as prometheus
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
parse = openmetrics if sys.argv[1] == "openmetrics" else prometheus
samples = {}
for family in parse(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(samples))
"#;
    let mut python = std::process::Command::new("python3")
        .args(["-c", PARSE, format])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (with prometheus_client: .ci/run installs it)");
    python.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{format}: the parser refused it: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of `key` in `samples`, 0 when absent.
fn value(samples: &Samples, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[test]
fn metrics_count_what_requests_did_in_both_text_formats() {
    let server = Server::start(&["--admin-addr", "127.0.0.1:0", "--timeout", "1s"], PROBE_HTTP);
    let admin = admin_of(&server);
    let before = scrape(&admin, "openmetrics");
    assert_eq!(value(&before, r#"wsandbox_instance_traps_total{route="/"}"#), 0.0);
    assert_eq!(
        value(&before, r#"wsandbox_instance_timeouts_total{route="/"}"#),
        0.0
    );
    let build = format!(
        r#"wsandbox_build_info{{version="{}",wasmtime="#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(before.keys().any(|k| k.starts_with(&build)), "{before:?}");
    server.get("/").assert(200);
    server.get("/").assert(200);
    server.get("/trap").assert(500);
    server.get("/sleep?ms=5000").assert(504);
    // A request counts once its answer is over, a moment after the client
    // read it.
    let start = Instant::now();
    let after = loop {
        let after = scrape(&admin, "openmetrics");
        if value(
            &after,
            r#"wsandbox_http_request_duration_seconds_count{route="/"}"#,
        ) >= 4.0
            && value(&after, "wsandbox_instance_memory_bytes_count{}") >= 4.0
        {
            break after;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{after:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let count = |status: u16| {
        value(
            &after,
            &format!(r#"wsandbox_http_requests_total{{route="/",status="{status}"}}"#),
        )
    };
    assert_eq!((count(200), count(500), count(504)), (2.0, 1.0, 1.0), "{after:?}");
    assert_eq!(value(&after, r#"wsandbox_instance_traps_total{route="/"}"#), 1.0);
    assert_eq!(
        value(&after, r#"wsandbox_instance_timeouts_total{route="/"}"#),
        1.0
    );
    assert_eq!(value(&after, "wsandbox_http_requests_in_flight{}"), 0.0);
    assert_eq!(value(&after, "wsandbox_http_queue_depth{}"), 0.0);
    // The timed-out request took its second; the others far less.
    let took = value(&after, r#"wsandbox_http_request_duration_seconds_sum{route="/"}"#);
    assert!((1.0..5.0).contains(&took), "{took}");
    let slow = value(
        &after,
        r#"wsandbox_http_request_duration_seconds_bucket{le="0.5",route="/"}"#,
    );
    assert_eq!(slow, 3.0, "{after:?}");
    // Every instance has at least a page of linear memory.
    assert_eq!(
        value(&after, r#"wsandbox_instance_memory_bytes_bucket{le="65536.0"}"#),
        0.0
    );
    assert!(value(&after, "process_cpu_seconds_total{}") > 0.0, "{after:?}");
    assert!(
        value(&after, "process_resident_memory_bytes{}") > f64::from(1 << 20),
        "{after:?}"
    );
    // A scraper that does not ask for OpenMetrics reads Prometheus's own
    // text format, with the same counts.
    let older = scrape(&admin, "prometheus");
    for key in [
        r#"wsandbox_http_requests_total{route="/",status="200"}"#,
        r#"wsandbox_instance_traps_total{route="/"}"#,
        r#"wsandbox_instance_timeouts_total{route="/"}"#,
        r#"wsandbox_http_request_duration_seconds_count{route="/"}"#,
    ] {
        assert_eq!(value(&older, key), value(&after, key), "{key}: {older:?}");
    }
}

#[test]
fn a_client_that_leaves_before_its_answer_counts_as_499() {
    let server = Server::start(&["--admin-addr", "127.0.0.1:0"], PROBE_HTTP);
    let admin = admin_of(&server);
    {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        write!(stream, "GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = Instant::now();
    loop {
        let samples = scrape(&admin, "openmetrics");
        let left = value(
            &samples,
            r#"wsandbox_http_requests_total{route="/",status="499"}"#,
        );
        if left == 1.0 {
            assert_eq!(value(&samples, "wsandbox_http_requests_in_flight{}"), 0.0);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{samples:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
