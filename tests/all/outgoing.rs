//! Outgoing requests through the broker (`--allow-http`): a `run`
//! command, a `serve` function and a plugin fetch from local servers the
//! rules name, and nothing else; HTTPS with a test CA; the sandbox keeps
//! no network meanwhile; a flood of questions leaves the supervisor in
//! charge. Every server here listens on 127.0.0.1 and counts what reaches
//! it.

use crate::serve::Server;
use crate::{output, wsandbox};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wsandbox::Policy;
use wsandbox::plugin::Plugin;
use wsandbox_guests::{FETCH, FETCH_PLUGIN, PROBE_HTTP};

/// What every local server answers.
const HELLO: &str = "hello from the host";

/// A local HTTP (or HTTPS) server on 127.0.0.1 that counts the
/// connections it accepts and the requests it reads in plaintext; a
/// request for `/slow` is answered after a second and a half, one for
/// `/stall` with a head and 5 bytes of 100, then nothing for 5 s.
struct Local {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Local {
    fn http() -> Local {
        Local::start(None)
    }

    /// An HTTPS server presenting `tests/data/tls/NAME.pem`.
    fn https(name: &str) -> Local {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(tls_file(&format!("{name}.pem")))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls_file(&format!("{name}.key"))).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Local::start(Some(Arc::new(config)))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Local {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (r, tls) = (r.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        None => answer(stream, &r),
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            answer(rustls::StreamOwned::new(conn, stream), &r)
                        }
                    }
                });
            }
        });
        Local {
            port,
            connections,
            requests,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// `127.0.0.1:PORT`, as a rule names it.
    fn rule(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}/", self.port)
    }
}

/// Reads one request's head (TLS: after the handshake) and answers it.
fn answer(stream: impl Read + Write, requests: &AtomicUsize) {
    let mut stream = BufReader::new(stream);
    let mut first = String::new();
    if stream.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    requests.fetch_add(1, Ordering::SeqCst);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    if first.starts_with("GET /slow") {
        std::thread::sleep(Duration::from_millis(1500));
    }
    if first.starts_with("GET /stall") {
        // A head and a few bytes of a longer body, then silence.
        let _ = stream
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello");
        let _ = stream.get_mut().flush();
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{HELLO}",
        HELLO.len()
    );
    let _ = stream.get_mut().write_all(reply.as_bytes());
    let _ = stream.get_mut().flush();
}

fn tls_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// `wsandbox run OPTIONS fetch URLS...`.
fn fetch(options: &[&str], urls: &[&str]) -> crate::Output {
    output(wsandbox().arg("run").args(options).arg(FETCH).args(urls))
}

#[test]
fn a_run_fetches_from_the_server_its_rule_names_and_reports_it() {
    let local = Local::http();
    let report = tempfile::NamedTempFile::new().unwrap();
    let url = local.url("http", "127.0.0.1");
    let out = fetch(
        &[
            "-v",
            "--allow-http",
            &local.rule(),
            "--report",
            report.path().to_str().unwrap(),
        ],
        &[&url],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("200 {HELLO}"));
    assert_eq!(local.requests(), 1);
    // At -v, the broker says what it connected, and how fast.
    let logged = format!("net: {} -> 127.0.0.1: ", local.rule());
    let line = out.stderr.lines().find(|l| l.contains(&logged));
    assert!(line.is_some_and(|l| l.ends_with(" ms")), "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    let network = report["network"].as_array().expect("a network list");
    assert_eq!(network.len(), 1, "{report}");
    assert_eq!(network[0]["host"], "127.0.0.1");
    assert_eq!(network[0]["port"], local.port);
    assert_eq!(network[0]["address"], local.rule());
    assert_eq!(network[0]["outcome"], "connected");
    assert!(network[0]["connect_ms"].as_f64().is_some(), "{report}");
}

#[test]
fn every_caller_reaches_out_the_same_way() {
    let plain = Local::http();
    let tls = Local::https("server");
    for caller in crate::callers() {
        let ca = crate::for_nobody(tls_file("ca.pem").to_str().unwrap());
        let out = output(
            crate::wsandbox_as(caller)
                .args([
                    "run",
                    "--allow-http",
                    &plain.rule(),
                    "--allow-http",
                    &tls.rule(),
                    "--tls-ca",
                    &ca,
                ])
                .arg(crate::for_nobody(FETCH))
                .args([plain.url("http", "127.0.0.1"), tls.url("https", "127.0.0.1")]),
        );
        assert_eq!(out.code, Some(0), "{caller:?}: {out:?}");
        assert_eq!(
            out.stdout.matches(&format!("200 {HELLO}")).count(),
            2,
            "{caller:?}: {out:?}"
        );
    }
    assert_eq!(
        (plain.requests(), tls.requests()),
        (crate::callers().len(), crate::callers().len())
    );
}

#[test]
fn an_ipv6_literal_is_reached_by_its_own_rule() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        answer(stream, &AtomicUsize::new(0));
    });
    let url = format!("http://[::1]:{port}/");
    let out = fetch(&["--allow-http", "127.0.0.1:*"], &[&url]);
    assert!(
        out.stdout.contains("HttpRequestDenied"),
        "an IPv4 rule allowed ::1: {out:?}"
    );
    let out = fetch(&["--allow-http", &format!("[::1]:{port}")], &[&url]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("200 {HELLO}"));
    served.join().unwrap();
}

#[test]
fn without_a_rule_nothing_reaches_the_server_and_the_refusal_names_the_rule() {
    let local = Local::http();
    let url = local.url("http", "127.0.0.1");
    let other_port = format!("127.0.0.1:{}", local.port.wrapping_add(1).max(1));
    for options in [
        &[][..],
        &["--allow-http", &other_port][..],
        &["--allow-http", "localhost"][..],
    ] {
        let out = fetch(options, &[&url]);
        assert_eq!(out.code, Some(1), "{options:?}: {out:?}");
        assert!(out.stdout.contains("HttpRequestDenied"), "{options:?}: {out:?}");
        let line = format!(
            "wsandbox: GET {url}: not allowed: no --allow-http rule for 127.0.0.1:{}",
            local.port
        );
        assert!(out.stderr.contains(&line), "{options:?}: {}", out.stderr);
    }
    assert_eq!(local.connections(), 0, "the server was reached");
}

#[test]
fn an_allowed_port_nobody_listens_on_is_connection_refused_and_reported() {
    // A port bound and closed again: nobody listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = tempfile::NamedTempFile::new().unwrap();
    let rule = format!("127.0.0.1:{port}");
    let out = fetch(
        &["--allow-http", &rule, "--report", report.path().to_str().unwrap()],
        &[&format!("http://{rule}/")],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("ConnectionRefused"), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    let network = report["network"].as_array().expect("a network list");
    assert_eq!(network.len(), 1, "{report}");
    assert_eq!(network[0]["outcome"], "failed", "{report}");
    let message = network[0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("refused"), "{report}");
}

#[test]
fn a_name_that_leads_to_loopback_needs_the_address_named_too() {
    let local = Local::http();
    let url = local.url("http", "localhost");
    let name = format!("localhost:{}", local.port);
    // The name alone: it resolves to a loopback address no rule names.
    let out = fetch(&["--allow-http", &name], &[&url]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("DestinationIpProhibited"), "{out:?}");
    assert!(
        out.stderr.contains("resolves to") && out.stderr.contains("a loopback address"),
        "{}",
        out.stderr
    );
    // The address alone does not allow the name.
    let out = fetch(&["--allow-http", &local.rule()], &[&url]);
    assert!(out.stdout.contains("HttpRequestDenied"), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("no --allow-http rule for localhost:{}", local.port)),
        "{}",
        out.stderr
    );
    assert_eq!(local.connections(), 0, "the server was reached");
    // Both: the name, at the address the rules name.
    let out = fetch(&["--allow-http", &name, "--allow-http", &local.rule()], &[&url]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("200 {HELLO}"));
}

#[test]
fn a_body_that_stalls_fails_at_the_guests_between_bytes_timeout() {
    let local = Local::http();
    let start = Instant::now();
    let url = format!("{}stall", local.url("http", "127.0.0.1"));
    let out = fetch(
        &[
            "--allow-http",
            &local.rule(),
            "--env",
            "FETCH_BETWEEN_BYTES_MS=300",
        ],
        &[&url],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("connection read timeout"), "{out:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn https_checks_the_certificate_against_the_name_and_the_given_ca() {
    let ca = tls_file("ca.pem");
    let ca = ca.to_str().unwrap();
    let good = Local::https("server");
    let rules = [
        "--allow-http",
        &format!("localhost:{}", good.port),
        "--allow-http",
        &good.rule(),
    ];
    let by_name = good.url("https", "localhost");
    let by_address = good.url("https", "127.0.0.1");
    let out = fetch(
        &[&rules[..], &["--tls-ca", ca]].concat(),
        &[&by_name, &by_address],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.matches(&format!("200 {HELLO}")).count(), 2, "{out:?}");
    assert_eq!(good.requests(), 2);
    // Without the test CA: the host's authorities do not vouch for it.
    let out = fetch(&rules, &[&by_name]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("TlsCertificateError"), "{out:?}");
    assert_eq!(
        good.requests(),
        2,
        "a request went out over an unchecked connection"
    );
    // A certificate for another name, from the right CA.
    let wrong = Local::https("wrong");
    let rules = [
        "--allow-http",
        &format!("localhost:{}", wrong.port),
        "--allow-http",
        &wrong.rule(),
    ];
    let out = fetch(
        &[&rules[..], &["--tls-ca", ca]].concat(),
        &[&wrong.url("https", "localhost")],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("TlsCertificateError"), "{out:?}");
    assert!(wrong.connections() >= 1, "the handshake was not even tried");
    assert_eq!(
        wrong.requests(),
        0,
        "plaintext reached the server of the wrong name"
    );
}

#[test]
fn a_tls_ca_that_is_not_certificates_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    for (ca, why) in [
        (empty.to_str().unwrap(), "no PEM certificate in it"),
        ("/nonexistent/ca.pem", "no such file"),
    ] {
        let out = fetch(
            &["--allow-http", "127.0.0.1:9", "--tls-ca", ca],
            &["http://127.0.0.1:9/"],
        );
        assert_eq!(out.code, Some(125), "{out:?}");
        assert!(out.stderr.contains(&format!("--tls-ca {ca}: ")), "{}", out.stderr);
        assert!(out.stderr.contains(why), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn bad_rules_get_one_clear_line() {
    for (flag, rule, code) in [
        ("--allow-http", "exa mple.com", 2),
        ("--allow-http", "example.com:0", 2),
        ("--allow-http", "10.0.0.0/33", 2),
        ("--allow-tcp", "db.example.com", 2),
        // Parsed, but not enforceable: wasi:sockets cannot take a brokered socket.
        ("--allow-tcp", "db.example.com:5432", 125),
    ] {
        let out = fetch(&[flag, rule], &["http://127.0.0.1:9/"]);
        assert_eq!(out.code, Some(code), "{flag} {rule}: {out:?}");
        assert!(out.stderr.contains(rule), "{flag} {rule}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn the_policy_file_holds_the_rules_and_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(tls_file("ca.pem"), dir.path().join("ca.pem")).unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "allow_http = [\"api.example.com\", \"127.0.0.1:8080\"]\ntls_ca = \"ca.pem\"\n",
    )
    .unwrap();
    let out = output(wsandbox().args([
        "policy",
        "--config",
        file.to_str().unwrap(),
        "--allow-http",
        "*.example.org:*",
    ]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains(r#"allow_http = ["api.example.com", "127.0.0.1:8080", "*.example.org:*"]"#),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("tls_ca = {:?}", dir.path().join("ca.pem"))),
        "{}",
        out.stdout
    );
    let policy = Policy::from_file(&file).unwrap();
    assert_eq!(policy.allow_http.len(), 2);
    std::fs::write(&file, "allow_http = [\"api.example.com:http\"]\n").unwrap();
    let out = output(wsandbox().args(["policy", "--config", file.to_str().unwrap()]));
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(
        out.stderr.contains("line 1") && out.stderr.contains("port"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_served_function_fetches_from_the_server_its_rule_names() {
    let local = Local::http();
    let allowed = Server::start(&["--allow-http", &local.rule()], PROBE_HTTP);
    let url = local.url("http", "127.0.0.1");
    let fetched = allowed.get(&format!("/fetch?url={url}"));
    assert_eq!(fetched.assert(200).text(), format!("fetched: 200\n{HELLO}"));
    assert_eq!(local.requests(), 1);
    let other = format!("http://127.0.0.1:{}/", local.port.wrapping_add(1).max(1));
    let refused = allowed.get(&format!("/fetch?url={other}"));
    assert!(
        refused.assert(502).text().contains("HttpRequestDenied"),
        "{}",
        refused.text()
    );
    allowed.logged(&format!(
        "] GET {other}: not allowed: no --allow-http rule for 127.0.0.1:"
    ));
    let closed = Server::start(&[], PROBE_HTTP);
    let refused = closed.get(&format!("/fetch?url={url}"));
    assert!(
        refused.assert(502).text().contains("HttpRequestDenied"),
        "{}",
        refused.text()
    );
    closed.logged(&format!(
        "GET {url}: not allowed: no --allow-http rule for {}",
        local.rule()
    ));
    assert_eq!(local.connections(), 1, "a refused request reached the server");
}

#[test]
fn each_route_of_a_server_reaches_only_what_its_own_rules_allow() {
    let local = Local::http();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    let policy = format!(
        r#"
[[serve.routes]]
prefix = "/a"
component = "{PROBE_HTTP}"
env = [{{ name = "PROBE_PREFIX", value = "/a" }}]
allow_http = ["{rule}"]

[[serve.routes]]
prefix = "/b"
component = "{PROBE_HTTP}"
env = [{{ name = "PROBE_PREFIX", value = "/b" }}]
"#,
        rule = local.rule()
    );
    std::fs::write(&file, policy).unwrap();
    let mut cmd = crate::wsandbox();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&file);
    let server = Server::spawn(cmd);
    let url = local.url("http", "127.0.0.1");
    let fetched = server.get(&format!("/a/fetch?url={url}"));
    assert_eq!(fetched.assert(200).text(), format!("fetched: 200\n{HELLO}"));
    // The broker holds the rules of both routes; /b is refused inside,
    // by its own (none), before the broker is asked.
    let refused = server.get(&format!("/b/fetch?url={url}"));
    assert!(
        refused.assert(502).text().contains("HttpRequestDenied"),
        "{}",
        refused.text()
    );
    server.logged(&format!(
        "GET {url}: not allowed: no --allow-http rule for {}",
        local.rule()
    ));
    assert_eq!((local.connections(), local.requests()), (1, 1));
}

#[test]
fn the_sandbox_holds_no_network_while_its_guest_fetches() {
    let local = Local::http();
    let server = Server::start(&["--allow-http", &local.rule()], PROBE_HTTP);
    let pid = server.sandboxed_pid();
    let url = format!("{}slow", local.url("http", "127.0.0.1"));
    let addr = server.addr().to_owned();
    let fetching =
        std::thread::spawn(move || crate::serve::request(&addr, "GET", &format!("/fetch?url={url}"), &[]));
    let start = Instant::now();
    while local.requests() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the fetch never arrived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Mid-fetch: the sandbox's namespace has `lo` alone, and is not the host's.
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{dev}");
    let netns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(netns(&pid.to_string()), netns("self"));
    // Its one TCP connection is the host's, in the host's namespace.
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    assert!(
        !tcp.contains(&format!(":{:04X}", local.port)),
        "the sandbox's own namespace has the connection: {tcp}"
    );
    let fetched = fetching.join().unwrap();
    assert_eq!(fetched.assert(200).text(), format!("fetched: 200\n{HELLO}"));
}

#[test]
fn a_flood_of_questions_is_bounded_and_the_supervisor_stays_in_charge() {
    let local = Local::http();
    // Every question reaches the broker (the name is allowed), which
    // resolves it and refuses its loopback address.
    let name = format!("localhost:{}", local.port);
    let url = local.url("http", "localhost");
    let report = tempfile::NamedTempFile::new().unwrap();
    let out = fetch(
        &["--allow-http", &name, "--report", report.path().to_str().unwrap()],
        &["--times", "10000", &url],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr.lines().last().unwrap_or(""));
    assert!(
        out.stdout.starts_with("0 answered, 10000 errors"),
        "{}",
        out.stdout
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    assert_eq!(report["network"].as_array().unwrap().len(), 1000);
    assert_eq!(report["network_unlisted"], 9000);
    assert_eq!(local.connections(), 0);
    // Without end: the timeout still ends it, and the broker's threads stay few.
    let mut child = wsandbox()
        .args([
            "run",
            "--timeout",
            "3s",
            "--allow-http",
            &name,
            FETCH,
            "--times",
            "forever",
            &url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let threads: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(threads <= 2 + 8, "the supervisor has {threads} threads");
    let start = Instant::now();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(124));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the timeout fired late"
    );
    // And SIGTERM still ends it.
    let mut child = wsandbox()
        .args(["run", "--allow-http", &name, FETCH, "--times", "forever", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = Instant::now();
    let code = child.wait().unwrap().code();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "SIGTERM took {:?}",
        start.elapsed()
    );
    assert_eq!(code, Some(128 + 15));
}

#[test]
fn a_called_export_fetches_through_its_policy() {
    let local = Local::http();
    let bytes = |text: &str| text.bytes().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
    let call = format!("guest.handle([{}])", bytes(&local.url("http", "127.0.0.1")));
    let out = output(wsandbox().args(["call", "--allow-http", &local.rule(), FETCH_PLUGIN, &call]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("ok([{}])", bytes(HELLO)));
    let out = output(wsandbox().args(["call", FETCH_PLUGIN, &call]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("HttpRequestDenied"), "{out:?}");
    assert_eq!(local.requests(), 1);
}

#[test]
fn a_plugin_fetches_through_its_policy() {
    let local = Local::http();
    let url = local.url("http", "127.0.0.1");
    let plugin = |policy: Policy| {
        Plugin::new(FETCH_PLUGIN, policy)
            .binary(env!("CARGO_BIN_EXE_wsandbox"))
            .cache(false)
    };
    let mut closed = plugin(Policy::default());
    let refused = closed.handle(url.as_bytes()).unwrap().unwrap_err();
    assert!(refused.contains("HttpRequestDenied"), "{refused}");
    assert_eq!(local.connections(), 0);
    let mut policy = Policy::default();
    policy.allow_http = vec![wsandbox::policy::net::Rule::parse(&local.rule(), false).unwrap()];
    let mut open = plugin(policy);
    for _ in 0..3 {
        assert_eq!(open.handle(url.as_bytes()).unwrap().unwrap(), HELLO.as_bytes());
    }
    assert_eq!(local.requests(), 3);
}
