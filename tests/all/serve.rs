//! `wsandbox serve`, driven over HTTP: answers, bodies streamed both ways,
//! traps, timeouts, memory, concurrency, the queue, shutdown, the walls
//! around the server, what the guest cannot reach, and a load held for a
//! while without failures or growth.

use crate::{Caller, am_root, callers, for_nobody, run, s, wsandbox_as};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use wsandbox_guests::{API, PROBE_HTTP};

/// A running `wsandbox serve`; killed when dropped.
pub struct Server {
    process: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// Everything it wrote on stderr so far.
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `wsandbox serve --addr 127.0.0.1:0 OPTIONS COMPONENT`.
    pub fn start(options: &[&str], component: &str) -> Server {
        Server::start_as(Caller::Me, options, component)
    }

    /// Starts `wsandbox serve --addr 127.0.0.1:0 OPTIONS COMPONENT` as
    /// `caller` and waits for its first line, the address.
    pub(crate) fn start_as(caller: Caller, options: &[&str], component: &str) -> Server {
        let mut cmd = wsandbox_as(caller);
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(options);
        cmd.arg(match caller {
            Caller::Me => component.to_owned(),
            Caller::Nobody => for_nobody(component),
        });
        Server::spawn(cmd)
    }

    pub(crate) fn spawn(mut cmd: Command) -> Server {
        let cmd_is_verbose = cmd
            .get_args()
            .any(|arg| arg.to_str().is_some_and(|a| a.starts_with("-v")));
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut process = cmd.spawn().expect("spawn wsandbox serve");
        let stderr = BufReader::new(process.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let (first_tx, first_rx) = mpsc::channel();
        let collected = log.clone();
        std::thread::spawn(move || {
            // The address is the first line, or (with -v) the first after
            // the steps of the outer wall.
            let mut first = Some(first_tx);
            let verbose = cmd_is_verbose;
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                collected.lock().unwrap().push_str(&format!("{line}\n"));
                // With --log-format json, the line's message.
                let line = match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(record) if line.starts_with('{') => {
                        record["message"].as_str().unwrap_or_default().to_owned()
                    }
                    _ => line,
                };
                if verbose && !line.starts_with("http://") {
                    continue;
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(line);
                }
            }
        });
        let first = first_rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("serve printed no address; status {:?}", process.try_wait()));
        let addr = first
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the first line is not the address: {first:?}"))
            .to_owned();
        Server { process, addr, log }
    }

    /// `127.0.0.1:PORT`, where it listens.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        request(&self.addr, "GET", path, &[])
    }

    pub(crate) fn post(&self, path: &str, body: &[u8]) -> Reply {
        request(&self.addr, "POST", path, body)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (a little) until the log holds `needle`, since it is read by
    /// another thread; then the log.
    #[track_caller]
    pub(crate) fn logged(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the log lacks {needle:?}: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The host pid of the sandboxed server (PID 1 of its pid namespace).
    pub(crate) fn sandboxed_pid(&self) -> i32 {
        let me = self.process.id();
        let children = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap();
        let pid_ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let pids: Vec<i32> = children
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .filter(|&p: &i32| pid_ns(p as u32) != pid_ns(me))
            .collect();
        assert_eq!(pids.len(), 1, "one sandboxed child: {pids:?}");
        pids[0]
    }

    /// A line `Name:\tvalue` of the sandboxed server's `/proc/PID/status`.
    fn status(&self, name: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.sandboxed_pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap();
        line.split_once(':').unwrap().1.trim().to_owned()
    }

    /// Sends SIGTERM to wsandbox.
    pub(crate) fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(self.process.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// Waits up to `limit` for wsandbox's exit code.
    pub(crate) fn wait(mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.process.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub(crate) status: u16,
    /// The head's lines after the status line, lowercased.
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status.
    #[track_caller]
    pub fn assert(&self, status: u16) -> &Reply {
        assert_eq!(self.status, status, "body: {}", self.text());
        self
    }
}

/// One HTTP/1.1 request on a connection of its own; the body is written
/// by another thread while the answer is read, so both stream at once.
pub(crate) fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> Reply {
    request_with(addr, method, path, &[], body)
}

/// [`request`] with these header fields too.
pub(crate) fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    fields: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let fields: String = fields
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{fields}Content-Length: {}\r\n\r\n",
        body.len()
    );
    let body = body.to_vec();
    let sending = std::thread::spawn(move || {
        writer.write_all(head.as_bytes())?;
        writer.write_all(&body)
    });
    let mut raw = Vec::new();
    (&stream).read_to_end(&mut raw).unwrap();
    let _ = sending.join();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    let head = head
        .split_once("\r\n")
        .map(|(_, fields)| fields.to_owned())
        .unwrap_or_default();
    Reply { status, head, body }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[test]
fn get_and_post_answer_and_megabytes_stream_both_ways() {
    let server = Server::start(&[], PROBE_HTTP);
    assert_eq!(server.get("/").assert(200).text(), "hello\n");
    assert_eq!(server.get("/nowhere").assert(404).text(), "no such route\n");
    // 6 MiB of every byte value, sent and echoed at once.
    let big: Vec<u8> = (0..6 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let echoed = server.post("/echo", &big);
    echoed.assert(200);
    assert_eq!(echoed.body.len(), big.len());
    assert!(echoed.body == big, "the echo differs");
    assert!(server.post("/echo", b"").assert(200).body.is_empty());
    // A request without a Host header is the server's to refuse.
    let mut bare = TcpStream::connect(&server.addr).unwrap();
    bare.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    bare.read_to_end(&mut raw).unwrap();
    parse(&raw).assert(400);
}

#[test]
fn the_example_function_answers_json() {
    let server = Server::start(&[], API);
    let index = server.get("/").assert(200).text();
    assert!(index.contains("\"routes\""), "{index}");
    assert_eq!(
        server.get("/hello/world").assert(200).text(),
        "{\"greeting\": \"Hello, world!\"}\n"
    );
    assert_eq!(
        server.post("/sum", b"[1, 2.5, 3]").assert(200).text(),
        "{\"count\": 3, \"sum\": 6.5}\n"
    );
    assert!(
        server
            .post("/sum", b"[1, x]")
            .assert(400)
            .text()
            .contains("not a number: x")
    );
    server.get("/sum").assert(405);
    server.get("/nope").assert(404);
    // Each request's log line, prefixed with its id.
    server.logged("stdout] POST /sum");
}

#[test]
fn a_trap_is_a_500_and_the_next_request_is_served() {
    let server = Server::start(&[], PROBE_HTTP);
    let trapped = server.get("/trap");
    trapped.assert(500);
    // The client learns nothing of the guest's insides; the log does.
    assert!(!trapped.text().contains("panicked"), "{}", trapped.text());
    server.get("/").assert(200);
    server.logged("GET /trap: 500: guest trapped");
    server.logged("stderr] the probe traps on purpose");
}

#[test]
fn a_request_past_the_timeout_gets_504_in_about_the_timeout() {
    let server = Server::start(&["--timeout", "1s"], PROBE_HTTP);
    for path in ["/spin", "/sleep?ms=30000"] {
        let start = Instant::now();
        server.get(path).assert(504);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{path}: 504 after {took:?}"
        );
    }
    // Within the timeout, a slow answer is an answer.
    assert_eq!(server.get("/sleep?ms=100").assert(200).text(), "slept\n");
    server.logged("GET /spin: 504");
}

#[test]
fn a_request_over_the_memory_limit_gets_500() {
    let server = Server::start(&["--memory", "16M"], PROBE_HTTP);
    server.get("/grow?mb=64").assert(500);
    server.logged("--memory 16M");
    server.get("/grow?mb=1").assert(200);
}

#[test]
fn fuel_is_per_request() {
    let server = Server::start(&["--fuel", "2000000"], PROBE_HTTP);
    server.get("/spin").assert(500);
    server.logged("ran out of fuel");
    server.get("/").assert(200);
    server.get("/").assert(200);
}

#[test]
fn sixty_four_concurrent_requests_all_succeed() {
    let server = Arc::new(Server::start(&[], PROBE_HTTP));
    let start = Instant::now();
    let requests: Vec<_> = (0..64)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || server.get("/sleep?ms=500").status)
        })
        .collect();
    let statuses: Vec<u16> = requests.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    // They ran at once, not one after another (64 × 0.5 s).
    assert!(
        start.elapsed() < Duration::from_secs(16),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn past_max_concurrent_and_the_queue_the_answer_is_503() {
    let server = Arc::new(Server::start(
        &["--max-concurrent", "1", "--max-queued", "1"],
        PROBE_HTTP,
    ));
    let busy = {
        let server = server.clone();
        std::thread::spawn(move || server.get("/sleep?ms=2000").status)
    };
    std::thread::sleep(Duration::from_millis(400));
    let queued = {
        let server = server.clone();
        std::thread::spawn(move || server.get("/").status)
    };
    std::thread::sleep(Duration::from_millis(400));
    let start = Instant::now();
    server.get("/").assert(503);
    assert!(start.elapsed() < Duration::from_secs(1), "503 should be at once");
    assert_eq!(busy.join().unwrap(), 200);
    assert_eq!(
        queued.join().unwrap(),
        200,
        "a queued request is served when a slot frees"
    );
    server.get("/").assert(200);
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let server = Server::start(&[], PROBE_HTTP);
    let addr = server.addr.clone();
    let in_flight = std::thread::spawn(move || request(&addr, "GET", "/sleep?ms=1500", &[]));
    std::thread::sleep(Duration::from_millis(500));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    // No new connection while the one in flight finishes.
    let refused = TcpStream::connect(&server.addr).map(drop);
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "still listening after SIGTERM: {refused:?}"
    );
    let code = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "serve should exit 0 after SIGTERM");
    let reply = in_flight.join().unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept\n"));
}

#[test]
fn a_second_signal_ends_the_server_at_once() {
    let server = Server::start(&[], PROBE_HTTP);
    let addr = server.addr.clone();
    let in_flight = std::thread::spawn(move || {
        let stream = TcpStream::connect(&addr).unwrap();
        (&stream)
            .write_all(format!("GET /sleep?ms=30000 HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
        let mut rest = Vec::new();
        let _ = (&stream).read_to_end(&mut rest);
    });
    std::thread::sleep(Duration::from_millis(500));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    let start = Instant::now();
    assert_eq!(server.wait(Duration::from_secs(5)), Some(143));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the second SIGTERM should not wait for the request"
    );
    in_flight.join().unwrap();
}

#[test]
fn the_server_is_inside_the_walls() {
    for caller in callers() {
        let server = Server::start_as(caller, &[], PROBE_HTTP);
        server.get("/").assert(200);
        let pid = server.sandboxed_pid();
        for ns in ["net", "mnt", "pid", "user", "uts", "ipc"] {
            let inside = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
            let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
            assert_ne!(
                inside, host,
                "{caller:?}: the server shares the host's {ns} namespace"
            );
        }
        for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(server.status(caps), "0000000000000000", "{caller:?}: {caps}");
        }
        assert_eq!(server.status("Seccomp"), "2", "{caller:?}");
        assert_eq!(server.status("NoNewPrivs"), "1", "{caller:?}");
        let uid = server.status("Uid");
        assert!(
            !uid.split_whitespace().any(|id| id == "0"),
            "{caller:?}: host uid 0 kept: {uid}"
        );
        // Its descriptors: stdio, the listening socket, the supervisor's
        // pipe, and what the runtime made itself (epoll, eventfd, the
        // connection just served, wasmtime's memory images): no file of
        // the host's.
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
        for fd in fds {
            // A descriptor closed between the listing and its reading (a
            // connection ending) is one the server no longer holds.
            let target = match std::fs::read_link(fd.unwrap().path()) {
                Ok(target) => target,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{caller:?}: {e}"),
            };
            let target = target.to_string_lossy();
            assert!(
                target.starts_with("socket:")
                    || target.starts_with("pipe:")
                    || target.starts_with("anon_inode:")
                    || target.starts_with("/memfd:")
                    || target == "/dev/null",
                "{caller:?}: the server holds {target}"
            );
        }
    }
}

#[test]
fn the_guest_cannot_connect_anywhere() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let server = Server::start(&[], PROBE_HTTP);
    let start = Instant::now();
    let fetched = server.get(&format!("/fetch?url=http://127.0.0.1:{port}/"));
    fetched.assert(502);
    assert!(fetched.text().contains("HttpRequestDenied"), "{}", fetched.text());
    let connected = server.get(&format!("/connect?addr=127.0.0.1:{port}"));
    connected.assert(502);
    assert!(connected.text().contains("access-denied"), "{}", connected.text());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "refusals should be quick, not hangs"
    );
    assert!(
        matches!(host.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's server was reached"
    );
}

#[test]
fn dirs_and_env_apply_to_every_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note"), "granted\n").unwrap();
    let grant = format!("{}::/data", s(dir.path()));
    let server = Server::start(&["--ro-dir", &grant, "--env", "GREETING=hi"], PROBE_HTTP);
    for _ in 0..2 {
        assert_eq!(server.get("/env?name=GREETING").assert(200).text(), "hi");
        assert_eq!(
            server.get("/file?path=/data/note").assert(200).text(),
            "granted\n"
        );
    }
    server.get("/env?name=HOME").assert(404);
    server.get("/file?path=/etc/passwd").assert(404);
}

#[test]
fn guest_output_reaches_the_log_line_by_line_with_the_request_id() {
    let server = Server::start(&[], PROBE_HTTP);
    server.get("/").assert(200);
    server.get("/print").assert(200);
    server.logged("[req 2 stdout] a line on stdout\n");
    server.logged("[req 2 stderr] a line on stderr\n");
}

#[test]
fn what_cannot_be_served_is_refused_with_one_line() {
    let core = format!("{}/hello.wat", wsandbox_guests::WAT_DIR);
    run(&["serve", "--addr", "127.0.0.1:0", &core]).assert_one_line_error(126, &["wasi:http component"]);
    run(&["serve", "--addr", "127.0.0.1:0", wsandbox_guests::SHAPES])
        .assert_one_line_error(126, &["not a wasi:http proxy"]);
    run(&["serve", "--addr", "127.0.0.1:0", "/no/such/component.wasm"]).assert_one_line_error(127, &[]);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    run(&["serve", "--addr", &addr, PROBE_HTTP]).assert_one_line_error(125, &["cannot listen", &addr]);
    run(&["serve", "--addr", "nowhere", PROBE_HTTP]).assert_code(2);
    run(&["serve", "--max-concurrent", "0", PROBE_HTTP]).assert_code(2);
    run(&["serve", "--max-connections", "0", PROBE_HTTP]).assert_code(2);
    run(&["serve", "--idle-timeout", "0s", PROBE_HTTP]).assert_code(2);
    run(&["serve", "--request-timeout", "0s", PROBE_HTTP]).assert_code(2);
    run(&["serve", "--max-body-size", "0", PROBE_HTTP]).assert_code(2);
    run(&["serve", "--max-body-size", "lots", PROBE_HTTP]).assert_code(2);
}

#[test]
fn a_component_compiled_for_serve_is_served_when_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (for_serve, for_run) = (dir.path().join("serve.cwasm"), dir.path().join("run.cwasm"));
    run(&["compile", "--serve", PROBE_HTTP, "-o", s(&for_serve)]).assert_code(0);
    run(&["compile", PROBE_HTTP, "-o", s(&for_run)]).assert_code(0);
    let server = Server::start(&["--allow-precompiled"], s(&for_serve));
    assert_eq!(server.get("/").assert(200).text(), "hello\n");
    run(&["serve", "--addr", "127.0.0.1:0", s(&for_serve)])
        .assert_one_line_error(126, &["--allow-precompiled"]);
    run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--allow-precompiled",
        s(&for_run),
    ])
    .assert_one_line_error(126, &["incompatible artifact", "compile it again", "for serve"]);
}

#[test]
fn an_unprivileged_user_can_serve() {
    if !am_root() {
        eprintln!("not root: the other tests already serve as an unprivileged user");
        return;
    }
    let server = Server::start_as(Caller::Nobody, &["--timeout", "5s"], PROBE_HTTP);
    assert_eq!(server.get("/").assert(200).text(), "hello\n");
    server.get("/trap").assert(500);
    server.get("/").assert(200);
}

/// The resident memory of the sandboxed server, in KiB.
fn rss_kib(server: &Server) -> u64 {
    server
        .status("VmRSS")
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

/// A keep-alive HTTP/1.1 connection for the load test.
struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Vec<u8>,
}

impl KeepAlive {
    fn open(addr: &str) -> std::io::Result<KeepAlive> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(KeepAlive {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            request: format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
        })
    }

    /// One `GET /` and its whole answer; the status.
    fn get(&mut self) -> std::io::Result<u16> {
        self.writer.write_all(&self.request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            chunked |= header == "transfer-encoding: chunked";
        }
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
        }
        status.ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))
    }
}

/// Holds `connections` keep-alive connections busy with `GET /` for
/// `duration`; returns (requests answered 200, failures with a sample).
fn load(addr: &str, connections: usize, duration: Duration) -> (u64, Vec<String>) {
    let end = Instant::now() + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let addr = addr.to_owned();
            std::thread::spawn(move || {
                let (mut served, mut failures) = (0u64, Vec::new());
                let mut connection = KeepAlive::open(&addr);
                while Instant::now() < end {
                    match connection
                        .as_mut()
                        .map_err(|e| e.to_string())
                        .and_then(|c| c.get().map_err(|e| e.to_string()))
                    {
                        Ok(200) => served += 1,
                        Ok(status) => failures.push(format!("status {status}")),
                        Err(err) => {
                            failures.push(err);
                            connection = KeepAlive::open(&addr);
                        }
                    }
                }
                (served, failures)
            })
        })
        .collect();
    workers
        .into_iter()
        .map(|w| w.join().unwrap())
        .fold((0, Vec::new()), |(n, mut f), (m, g)| {
            f.extend(g);
            (n + m, f)
        })
}

#[test]
fn a_held_load_has_no_failures_and_the_server_does_not_grow() {
    let server = Server::start(&[], PROBE_HTTP);
    let mut rss = Vec::new();
    for _ in 0..2 {
        // 10 s at 32 connections, each sending its next request as soon as
        // the last one is answered.
        let (served, failures) = load(&server.addr, 32, Duration::from_secs(10));
        assert!(
            failures.is_empty(),
            "{} failed requests, such as {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(served > 1000, "too few requests served: {served}");
        rss.push(rss_kib(&server));
        eprintln!("served {served} requests; server RSS {} KiB", rss.last().unwrap());
    }
    // The second run reuses what the first one made resident.
    assert!(
        rss[1] <= rss[0] + rss[0] / 10,
        "the server grew from {} KiB to {} KiB across two equal loads",
        rss[0],
        rss[1]
    );
}

/// Sends `bytes` on a connection of their own and reads until the server
/// closes it (or 30 s pass): all it answered.
fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server neither answered nor closed within 30 s: {e}; so far {answer:?}"),
    }
    answer
}

/// The status lines in `answer`, in order.
fn status_lines(answer: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(answer)
        .lines()
        .filter(|line| line.starts_with("HTTP/1."))
        .map(str::to_owned)
        .collect()
}

/// A `wasi:http/proxy` component whose core module has a start function
/// that traps, named (in the name section) with a terminal escape, a C1
/// control sequence, a line separator and a newline: every request's
/// instantiation fails, with that name in wasmtime's message.
const TRAPPING_WITH_HOSTILE_NAMES: &str = r#"(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $outparam))
  (core module $m
    (func $boom (@name "boom\u{1b}[2J\u{9b}31m\u{2028}\nwsandbox: forged") unreachable)
    (start $boom)
    (func (export "handle") (param i32 i32)))
  (core instance $i (instantiate $m))
  (func $handle (param "request" (own $request)) (param "response-out" (own $outparam))
    (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))
"#;

#[test]
fn client_and_guest_bytes_reach_the_log_escaped() {
    let raw = ["\u{1b}", "\u{85}", "\u{9b}", "\u{2028}", "\u{202e}"];
    // A path with C1 controls (NEL, CSI), a line separator and a
    // right-to-left override, in a request the server refuses itself.
    let server = Server::start(&[], PROBE_HTTP);
    let path = "/a\u{85}b\u{9b}31m\u{2028}c\u{202e}d";
    let answer = exchange(&server.addr, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
    assert_eq!(status_lines(&answer), ["HTTP/1.0 400 Bad Request"]);
    let log = server.logged(": 400: no Host header");
    assert!(
        log.contains(r"GET /a\u{85}b\u{9b}31m\u{2028}c\u{202e}d: 400"),
        "{log:?}"
    );
    for c in raw {
        assert!(!log.contains(c), "{c:?} reached the log raw: {log:?}");
    }
    // A module's function names, in the reason a request failed.
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("hostile-names.wat");
    std::fs::write(&component, TRAPPING_WITH_HOSTILE_NAMES).unwrap();
    let server = Server::start(&[], s(&component));
    server.get("/").assert(500);
    let log = server.logged("cannot instantiate");
    assert!(log.contains(r"boom\u{1b}[2J\u{9b}31m"), "{log:?}");
    for c in raw {
        assert!(!log.contains(c), "{c:?} reached the log raw: {log:?}");
    }
    assert!(
        !log.lines().any(|line| line.starts_with("wsandbox: forged")),
        "{log:?}"
    );
}

/// Reads the status line of the answer on `stream` within `limit`: `None`
/// when nothing came by then.
fn status_within(stream: &TcpStream, limit: Duration) -> Option<String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut line = String::new();
    match BufReader::new(stream).read_line(&mut line) {
        Ok(_) if line.starts_with("HTTP/1.") => Some(line.trim_end().to_owned()),
        Ok(_) => panic!("not a status line: {line:?}"),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("reading the answer: {e}"),
    }
}

/// Whether the server closed `stream` (end of file, or a reset) within
/// `limit`, reading and dropping whatever came first.
fn closed_within(mut stream: &TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn past_max_connections_a_client_waits_until_one_closes() {
    let server = Server::start(&["--max-connections", "2", "--idle-timeout", "60s"], PROBE_HTTP);
    let mut open: Vec<KeepAlive> = (0..2).map(|_| KeepAlive::open(&server.addr).unwrap()).collect();
    for connection in &mut open {
        assert_eq!(connection.get().unwrap(), 200);
    }
    // A third connection is not accepted (the kernel holds it): its
    // request is not answered while the two stay open.
    let third = TcpStream::connect(&server.addr).unwrap();
    (&third)
        .write_all(format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
        .unwrap();
    assert_eq!(
        status_within(&third, Duration::from_secs(1)),
        None,
        "served past the cap"
    );
    // One closes: the third is served.
    drop(open.pop());
    assert_eq!(
        status_within(&third, Duration::from_secs(30)).as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    // The one left open was never disturbed.
    assert_eq!(open[0].get().unwrap(), 200);
}

#[test]
fn idle_connections_are_closed_so_others_are_served() {
    let server = Server::start(&["--max-connections", "8", "--idle-timeout", "300ms"], PROBE_HTTP);
    // Eight connections take every place: four send nothing, four the
    // start of a head that never ends.
    let idle: Vec<TcpStream> = (0..8)
        .map(|i| {
            let stream = TcpStream::connect(&server.addr).unwrap();
            if i % 2 == 1 {
                (&stream).write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            }
            stream
        })
        .collect();
    // A request still gets its answer, once they are closed — well before
    // the 30 s a connection could wait for a head before.
    let asking = TcpStream::connect(&server.addr).unwrap();
    (&asking)
        .write_all(
            format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.addr
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(
        status_within(&asking, Duration::from_secs(10)).as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    for (i, stream) in idle.iter().enumerate() {
        assert!(
            closed_within(stream, Duration::from_secs(10)),
            "idle connection {i} is still open"
        );
    }
    // A kept-alive connection is idle once answered, and closed too ...
    let mut kept = KeepAlive::open(&server.addr).unwrap();
    assert_eq!(kept.get().unwrap(), 200);
    assert!(closed_within(kept.reader.get_ref(), Duration::from_secs(10)));
    // ... but a request under way is not idle, however long it takes.
    server.get("/sleep?ms=1000").assert(200);
}

/// The CPU time (user and system, all threads) the process `pid` has
/// used, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name,
    // in USER_HZ (100 a second on Linux).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_descriptors_the_server_says_so_once_and_recovers() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // More connections than the sandbox has descriptors (1024): this
    // process needs as many of its own.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard < 4096 {
        eprintln!(
            "skipped: this process may open only {hard} descriptors, fewer than the test's connections"
        );
        return;
    }
    if soft < 4096 {
        setrlimit(Resource::RLIMIT_NOFILE, hard.min(1 << 16), hard).unwrap();
    }
    // No cap below the descriptor limit, and nothing closed for idling.
    let server = Server::start(
        &["--max-connections", "100000", "--idle-timeout", "10m"],
        PROBE_HTTP,
    );
    let mut held = Vec::new();
    while !server.log().contains("cannot accept") && held.len() < 1500 {
        match TcpStream::connect_timeout(&server.addr.parse().unwrap(), Duration::from_secs(2)) {
            Ok(stream) => held.push(stream),
            // The kernel's backlog is full: the server is starved already.
            Err(_) => break,
        }
    }
    let log = server.logged("cannot accept connections");
    assert!(log.contains("Too many open files"), "{log}");
    // While it lasts: quiet, and no busy loop (a spinning accept would
    // burn about all of one CPU).
    let pid = server.sandboxed_pid();
    let (before, started) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let burnt = cpu_ticks(pid) - before;
    let ticks = started.elapsed().as_secs_f64() * 100.0;
    assert!((burnt as f64) < ticks / 4.0, "{burnt} ticks of CPU in {ticks:.0}");
    let log = server.log();
    assert_eq!(log.matches("cannot accept").count(), 1, "{log}");
    // Descriptors back: served again, and said so.
    drop(held);
    server.get("/").assert(200);
    server.logged("accepting connections again");
}

/// The status code of a status line.
fn code_of(status_line: &str) -> u16 {
    status_line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn slow_bodies_are_cut_at_the_request_timeout_and_free_their_slots() {
    // Two instances, no --timeout: only the request timeout frees them.
    let server = Server::start(
        &["-vv", "--max-concurrent", "2", "--request-timeout", "1s"],
        wsandbox_guests::API,
    );
    // Two clients announce a megabyte and send two bytes of it; the
    // function reads the whole body before it answers.
    let slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let stream = TcpStream::connect(&server.addr).unwrap();
            let head = b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n[1";
            (&stream).write_all(head).unwrap();
            stream
        })
        .collect();
    server.logged("[req 1] instantiated");
    server.logged("[req 2] instantiated");
    // Both slots are theirs; a request that comes now is served when the
    // slow ones are cut.
    let reply = server.post("/sum", b"[1, 2]");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "{\"count\": 2, \"sum\": 3}\n")
    );
    for stream in &slow {
        let status = status_within(stream, Duration::from_secs(30)).expect("no answer to a slow body");
        assert_eq!(code_of(&status), 408, "{status}");
        assert!(closed_within(stream, Duration::from_secs(30)));
    }
    server.logged("POST /sum: 408: the client did not send the request's body within --request-timeout 1s");
    // A head that never ends is closed within the request timeout too,
    // however long the idle timeout.
    let server = Server::start(
        &["--idle-timeout", "10m", "--request-timeout", "500ms"],
        PROBE_HTTP,
    );
    let slow_head = TcpStream::connect(&server.addr).unwrap();
    (&slow_head).write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(closed_within(&slow_head, Duration::from_secs(10)));
}

#[test]
fn bodies_past_max_body_size_get_413_and_the_connection_closes() {
    let server = Server::start(&["-vv", "--max-body-size", "1K"], PROBE_HTTP);
    // Announced too large: 413 at once, before any instance (and without
    // a 100 Continue the client would send the body on).
    let answer = exchange(
        &server.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n",
    );
    let statuses = status_lines(&answer);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(code_of(&statuses[0]), 413, "{statuses:?}");
    let log = server.logged("POST /echo: 413: a body of 1025 bytes announced, over --max-body-size 1K");
    assert!(!log.contains("instantiated"), "the function was called: {log}");
    // At the limit, served.
    let body = vec![b'x'; 1024];
    assert!(server.post("/echo", &body).assert(200).body == body);
    // Chunked, growing past the limit while the function reads it: 413,
    // since nothing was answered yet, and the connection closes.
    let server = Server::start(&["--max-body-size", "1K"], wsandbox_guests::API);
    let chunk = format!("[{}1]", "1, ".repeat(199));
    assert_eq!(chunk.len(), 600);
    let mut request = b"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..2 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    let answer = exchange(&server.addr, &request);
    let statuses = status_lines(&answer);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(code_of(&statuses[0]), 413, "{statuses:?}");
    server.logged("POST /sum: 413: the request's body grew past --max-body-size 1K");
    // The same within the limit is summed.
    let mut request =
        b"POST /sum HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len()).as_bytes());
    let reply = parse(&exchange(&server.addr, &request));
    assert_eq!(reply.assert(200).text(), "{\"count\": 200, \"sum\": 200}\n");
}

#[test]
fn ambiguous_requests_get_400_and_never_reach_the_function() {
    let server = Server::start(&[], PROBE_HTTP);
    // Each a head whose framing or fields two parsers could read two ways
    // (no body follows, so the answer is never lost to a reset).
    let cases = [
        (
            "two different lengths",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        ),
        (
            "a list of lengths",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
        ),
        (
            "a signed length",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
        ),
        (
            "a folded field (obs-fold, space)",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        ),
        (
            "a folded field (obs-fold, tab)",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
        ),
        (
            "a folded length",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n 6\r\n\r\n",
        ),
        (
            "a space before the first field",
            "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        ),
        (
            "a space before a colon",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n",
        ),
        (
            "chunked in HTTP/1.0",
            "POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "chunked, not last",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        ),
        (
            "a coding that is not chunked",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
    ];
    for (what, head) in cases {
        let answer = exchange(&server.addr, head.as_bytes());
        assert_eq!(status_lines(&answer), ["HTTP/1.1 400 Bad Request"], "{what}");
    }
    // None reached the server's own handler, so no instance: the first
    // request it numbers is the next one.
    server.get("/trap").assert(500);
    let log = server.logged("GET /trap: 500");
    assert!(log.contains("[req 1] GET /trap: 500"), "{log}");
}

#[test]
fn a_request_with_both_length_and_chunked_gets_400_and_ends_its_connection() {
    // RFC 9112 §6.1: a front that went by the length would take what
    // follows the empty chunked body for a second request, hyper goes by
    // the coding. Neither reading is served: the request gets 400 (the
    // function never sees it), the connection closes, and what follows
    // is never read. A request before it on the same connection is
    // answered as usual.
    let server = Server::start(&[], PROBE_HTTP);
    let smuggled = "GET /trap HTTP/1.1\r\nHost: x\r\n\r\n";
    let first = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none";
    for (fields, why) in [
        (
            "Content-Length: 40\r\nTransfer-Encoding: chunked",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 40",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "content-length: 5\r\ntransfer-encoding: gzip, chunked",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "Content-Length: 5\r\nContent-Length: 5",
            "Content-Length more than once",
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "chunked more than once in Transfer-Encoding",
        ),
    ] {
        let request = format!("{first}POST /echo HTTP/1.1\r\nHost: x\r\n{fields}\r\n\r\n0\r\n\r\n{smuggled}");
        let answer = exchange(&server.addr, request.as_bytes());
        assert_eq!(
            status_lines(&answer),
            ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"],
            "{fields:?}: {}",
            String::from_utf8_lossy(&answer)
        );
        let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        let second = &text[text.rfind("http/1.1 400").unwrap()..];
        assert!(
            second.contains("\r\nconnection: close\r\n"),
            "{fields:?}: {second}"
        );
        assert!(
            second.contains("the request's length is ambiguous"),
            "{fields:?}: {second}"
        );
        let log = server.logged(why);
        assert!(
            log.contains(&format!("POST /echo: 400: its framing is ambiguous: {why}")),
            "{log}"
        );
    }
    server.get("/trap").assert(500);
    let log = server.logged("GET /trap: 500");
    assert_eq!(
        log.matches("GET /trap").count(),
        1,
        "a smuggled request was served: {log}"
    );
}

#[test]
fn bodies_that_look_like_heads_are_bodies() {
    // A body's own lines (a multipart part's `Content-Length:`, a whole
    // ambiguous request as text) are never taken for a request's head,
    // framed by a length or chunked, sent whole or a few bytes at a time,
    // on one kept-alive connection.
    let server = Server::start(&[], PROBE_HTTP);
    let lookalike =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
    let part = format!(
        "--b\r\nContent-Disposition: form-data; name=\"f\"\r\nContent-Length: 9\r\n\r\n{lookalike}\r\n--b--\r\n"
    );
    let sized = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{part}",
        part.len()
    );
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{lookalike}\r\n{:x}\r\n{part}\r\n0\r\nX-Trailer: Content-Length: 1\r\n\r\n",
        lookalike.len(),
        part.len()
    );
    let last = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nlast";
    let all = format!("{sized}{chunked}{last}");
    for step in [all.len(), 7] {
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.set_nodelay(true).unwrap();
        for piece in all.as_bytes().chunks(step) {
            stream.write_all(piece).unwrap();
        }
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(
            status_lines(&answer),
            ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"],
            "in pieces of {step}: {text}"
        );
        // Each body came back whole, the lookalikes inside included.
        let bodies: Vec<String> = text
            .split("HTTP/1.1 200 OK\r\n")
            .skip(1)
            .map(|reply| parse(format!("HTTP/1.1 200 OK\r\n{reply}").as_bytes()).text())
            .collect();
        assert_eq!(
            bodies,
            [part.clone(), format!("{lookalike}{part}"), "last".into()],
            "in pieces of {step}"
        );
    }
}

/// The sockets `pid` holds, by inode, and how many of them listen.
pub(crate) fn listening_sockets(pid: i32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    // Listening sockets are in state 0A of the host's table (the sockets
    // were made in the host's namespace).
    let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(3) == Some(&"0A")
                && fields
                    .get(9)
                    .is_some_and(|inode| inodes.iter().any(|i| i == inode))
        })
        .count()
}
