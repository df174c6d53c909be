//! WASI 0.3 services: a component exporting `wasi:http/handler@0.3.0`
//! (`guests/components/p3-http`, whose bodies are streams) is served as a
//! 0.2 proxy is — a fresh instance per request, behind both walls, with
//! the same grants and per-request limits — and beside 0.2 proxies on one
//! server.

use crate::serve::{Server, request};
use crate::{callers, s, wsandbox};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};
use wsandbox_guests::{P3_HTTP, PROBE_HTTP};

#[test]
fn a_wasi_0_3_service_answers_and_streams_both_ways() {
    let server = Server::start(&[], P3_HTTP);
    assert_eq!(server.get("/").assert(200).text(), "hello\n");
    // 3 MiB each way, streamed through the instance.
    let body: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    let echoed = server.post("/echo", &body);
    echoed.assert(200);
    assert!(echoed.body == body, "{} bytes came back", echoed.body.len());
    // The request's URI is whole: the scheme, the Host as its authority.
    assert_eq!(
        server.get("/whoami?x=1").assert(200).text(),
        format!("http\n{}\n/whoami?x=1\n", server.addr())
    );
    // The answer goes out, its first chunk too, while its body is written:
    // 4 chunks 300 ms apart.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "GET /stream?n=4&ms=300 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut first = None;
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buffer[..n]);
        if first.is_none() && String::from_utf8_lossy(&seen).contains("chunk 0") {
            assert!(
                !String::from_utf8_lossy(&seen).contains("chunk 3"),
                "the body came whole"
            );
            first = Some(Instant::now());
        }
    }
    let first = first.expect("a first chunk");
    let seen = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        seen.contains("chunk 3\n") && seen.ends_with("0\r\n\r\n"),
        "{seen}"
    );
    assert!(
        first.elapsed() >= Duration::from_millis(600),
        "the first chunk came {:?} before the end",
        first.elapsed()
    );
}

/// The raw answer to `GET path`, read until the server closes.
fn raw_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

#[test]
fn a_wasi_0_3_service_is_bounded_per_request_as_a_0_2_one() {
    let server = Server::start(&["--timeout", "1s", "--memory", "32M"], P3_HTTP);
    // A trap before the answer: 500, and the next request is served.
    server.get("/trap").assert(500);
    assert_eq!(server.get("/").assert(200).text(), "hello\n");
    server.logged("GET /trap: 500: guest trapped");
    // A trap in the middle of the body: the client sees it cut short,
    // never a body that looks whole.
    let cut = raw_get(server.addr(), "/trap-body");
    assert!(cut.contains("partial\n"), "{cut}");
    assert!(!cut.ends_with("0\r\n\r\n"), "a cut body ended as if whole: {cut}");
    server.logged("GET /trap-body: failed while answering: guest trapped");
    // The timeout: 504, in about the timeout.
    let start = Instant::now();
    server.get("/spin").assert(504);
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    // The memory limit is each instance's.
    server.get("/grow?mb=64").assert(500);
    assert!(server.get("/grow?mb=8").assert(200).text().starts_with("grew "));
    // Each request has a fresh instance: none sees another's state.
    for _ in 0..3 {
        assert_eq!(server.get("/count").assert(200).text(), "1\n");
    }
    // Fuel, per request.
    let fueled = Server::start(&["--fuel", "20000000"], P3_HTTP);
    fueled.get("/spin").assert(500);
    fueled.logged("ran out of fuel (--fuel 20000000)");
    fueled.get("/").assert(200);
    fueled.get("/").assert(200);
}

#[test]
fn a_wasi_0_3_service_reads_and_writes_only_what_is_granted() {
    let dir = tempfile::tempdir().unwrap();
    let (data, rw) = (dir.path().join("data"), dir.path().join("rw"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(data.join("a.txt"), "granted\n").unwrap();
    std::fs::write(dir.path().join("beside.txt"), "not granted\n").unwrap();
    symlink("/etc/passwd", data.join("out")).unwrap();
    symlink("../beside.txt", data.join("up")).unwrap();
    let server = Server::start(
        &[
            "--ro-dir",
            &format!("{}::/data", s(&data)),
            "--dir",
            &format!("{}::/rw", s(&rw)),
            "--env",
            "GRANTED=yes",
        ],
        P3_HTTP,
    );
    assert_eq!(
        server.get("/file?path=/data/a.txt").assert(200).text(),
        "granted\n"
    );
    // A read-only grant cannot be written.
    let refused = server.get("/write?path=/data/new.txt&text=x");
    assert!(
        refused.assert(403).text().contains("NotPermitted"),
        "{}",
        refused.text()
    );
    assert!(!data.join("new.txt").exists());
    assert_eq!(
        server
            .get("/write?path=/rw/new.txt&text=hello")
            .assert(200)
            .text(),
        "written\n"
    );
    assert_eq!(std::fs::read_to_string(rw.join("new.txt")).unwrap(), "hello");
    // No way out: `..`, links out (absolute or up), what is not granted.
    for path in [
        "/data/../beside.txt",
        "/data/out",
        "/data/up",
        "/etc/passwd",
        "/rw/../data/a.txt",
    ] {
        let answer = server.get(&format!("/file?path={path}"));
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(!answer.text().contains("root:") && !answer.text().contains("not granted"));
    }
    // Only the granted variables.
    assert_eq!(server.get("/env?name=GRANTED").assert(200).text(), "yes");
    server.get("/env?name=PATH").assert(404);
    server.get("/env?name=HOME").assert(404);
}

#[test]
fn a_wasi_0_3_service_reaches_out_by_the_rules_alone() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let closed = Server::start(&[], P3_HTTP);
    let start = Instant::now();
    let fetched = closed.get(&format!("/fetch?url=http://127.0.0.1:{port}/"));
    assert!(
        fetched.assert(502).text().contains("HttpRequestDenied"),
        "{}",
        fetched.text()
    );
    let connected = closed.get(&format!("/connect?addr=127.0.0.1:{port}"));
    assert!(
        connected.assert(502).text().contains("AccessDenied"),
        "{}",
        connected.text()
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "refusals should be quick"
    );
    assert!(
        matches!(host.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's server was reached"
    );
    // With a rule, through the broker.
    drop(host);
    let (port, answering) = crate::p3::one_answer();
    let allowed = Server::start(&["--allow-http", &format!("127.0.0.1:{port}")], P3_HTTP);
    let fetched = allowed.get(&format!("/fetch?url=http://127.0.0.1:{port}/asked"));
    assert_eq!(fetched.assert(200).text(), "fetched: 200\nhosts");
    assert!(answering.join().unwrap().starts_with("GET /asked HTTP/1.1\r\n"));
}

#[test]
fn a_wasi_0_3_instance_lives_until_its_tasks_end() {
    let server = Server::start(&[], P3_HTTP);
    assert_eq!(server.get("/print").assert(200).text(), "printed\n");
    server.logged("stdout] a line on stdout");
    server.logged("stderr] a line on stderr");
    // Its body over, the service still prints: the instance waits for it.
    assert_eq!(server.get("/after").assert(200).text(), "answered\n");
    server.logged("stdout] after the answer");
}

#[test]
fn concurrent_requests_to_a_wasi_0_3_service_each_get_an_instance() {
    let server = Server::start(&["--max-concurrent", "32"], P3_HTTP);
    let addr = server.addr().to_owned();
    let start = Instant::now();
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let slept = request(&addr, "GET", "/sleep?ms=500", &[]);
                let counted = request(&addr, "GET", "/count", &[]);
                (slept.status, slept.text(), counted.text())
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), (200, "slept\n".into(), "1\n".into()));
    }
    // Side by side, not one after the other (32 × 500 ms).
    assert!(start.elapsed() < Duration::from_secs(8), "{:?}", start.elapsed());
}

#[test]
fn a_wasi_0_3_service_is_inside_the_walls_for_every_caller() {
    for caller in callers() {
        let server = Server::start_as(caller, &["--timeout", "5s"], P3_HTTP);
        assert_eq!(server.get("/").assert(200).text(), "hello\n", "{caller:?}");
        server.get("/trap").assert(500);
        server.get("/").assert(200);
        let pid = server.sandboxed_pid();
        for ns in ["net", "mnt", "pid", "user", "uts", "ipc"] {
            let inside = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
            let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
            assert_ne!(inside, host, "{caller:?}: the server shares the host's {ns}");
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        for line in ["Seccomp:\t2", "NoNewPrivs:\t1", "CapEff:\t0000000000000000"] {
            assert!(status.contains(line), "{caller:?}: {line} missing");
        }
    }
}

/// A policy file in `dir` with a 0.2 proxy at `/v2` and a 0.3 service at
/// `/v3`.
fn both_versions(dir: &std::path::Path) -> String {
    let file = dir.join("both.toml");
    let text = format!(
        r#"
[[serve.routes]]
prefix = "/v2"
component = "{PROBE_HTTP}"
env = [{{ name = "PROBE_PREFIX", value = "/v2" }}]

[[serve.routes]]
prefix = "/v3"
component = "{P3_HTTP}"
timeout = "1s"
env = [{{ name = "PROBE_PREFIX", value = "/v3" }}]
"#
    );
    std::fs::write(&file, text).unwrap();
    s(&file).to_owned()
}

#[test]
fn a_server_serves_wasi_0_2_and_0_3_side_by_side_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let file = both_versions(dir.path());
    let serve = || {
        let mut cmd = wsandbox();
        cmd.args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "-v",
            "--cache-dir",
            s(cache.path()),
        ])
        .args(["--config", &file]);
        Server::spawn(cmd)
    };
    let first = serve();
    assert_eq!(first.get("/v2/path").assert(200).text(), "/v2/path\n");
    assert_eq!(first.get("/v3").assert(200).text(), "hello\n");
    assert_eq!(first.get("/v3/count").assert(200).text(), "1\n");
    // Each its own limits: the 0.3 route's timeout.
    first.get("/v3/spin").assert(504);
    first.get("/v2/").assert(200);
    let compiled = |server: &Server, how: &str| server.log().lines().filter(|l| l.contains(how)).count();
    assert_eq!(compiled(&first, ") compiled: "), 2, "{}", first.log());
    // A second server beside it compiles nothing.
    let second = serve();
    second.get("/v3").assert(200);
    assert_eq!(
        compiled(&second, ") loaded from the cache: "),
        2,
        "{}",
        second.log()
    );
    assert_eq!(compiled(&second, ") compiled: "), 0, "{}", second.log());
}
