//! A `wasi:http/proxy` component for wsandbox's `serve` tests and
//! benchmarks: each route does one thing a function might do, or one thing
//! a hostile function might try.
//!
//! - `GET /`: `hello`, the smallest answer (the benchmark's).
//! - `POST /echo`: the request's body streamed back, chunk by chunk.
//! - `GET /trap`: traps before answering.
//! - `GET /spin`: loops forever in wasm before answering.
//! - `GET /sleep?ms=N`: waits N ms in a host call, then answers `slept`.
//! - `GET /grow?mb=N`: allocates and touches N MiB, then answers.
//! - `GET /env?name=X`: the value of the variable X, or 404.
//! - `GET /file?path=P`: the file at P, or 404 with the error.
//! - `GET /print`: writes a line to stdout and one to stderr.
//! - `GET /fetch?url=U`: an outgoing HTTP request to U; answers
//!   `fetched: STATUS` and the body that came back, or 502 with the
//!   host's refusal.
//! - `GET /connect?addr=IP:PORT`: a TCP connection through `wasi:sockets`;
//!   answers 502 with the refusal (or `connected`).
//! - `GET /path`: the whole path it was asked for.
//!
//! Served under a prefix (a route of a server of several), it is told the
//! prefix in `PROBE_PREFIX` and takes its paths under it (`/api/grow`).

use std::io::Write as _;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasi::http::proxy::export!(Probe);

struct Probe;

impl wasi::exports::http::incoming_handler::Guest for Probe {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (full, query) = path_with_query.split_once('?').unwrap_or((&path_with_query, ""));
        let prefix = std::env::var("PROBE_PREFIX").unwrap_or_default();
        let path = match full.strip_prefix(prefix.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => full,
        };
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        match (request.method(), path) {
            (Method::Get, "/") => answer(out, 200, b"hello\n"),
            (Method::Post, "/echo") => echo(request, out),
            (Method::Get, "/trap") => panic!("the probe traps on purpose"),
            (Method::Get, "/spin") => spin(),
            (Method::Get, "/sleep") => {
                let ms: u64 = param("ms").and_then(|v| v.parse().ok()).unwrap_or(1000);
                wasi::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                answer(out, 200, b"slept\n")
            }
            (Method::Get, "/grow") => {
                let mb: usize = param("mb").and_then(|v| v.parse().ok()).unwrap_or(1);
                let mut block = vec![0u8; mb << 20];
                for page in block.chunks_mut(4096) {
                    page[0] = 1;
                }
                let touched: usize = block.iter().step_by(4096).map(|&b| b as usize).sum();
                answer(out, 200, format!("grew {touched} pages\n").as_bytes())
            }
            (Method::Get, "/env") => match param("name").and_then(|name| std::env::var(name).ok()) {
                Some(value) => answer(out, 200, value.as_bytes()),
                None => answer(out, 404, b"no such variable\n"),
            },
            (Method::Get, "/file") => match std::fs::read(param("path").unwrap_or_default()) {
                Ok(bytes) => answer(out, 200, &bytes),
                Err(err) => answer(out, 404, format!("{err}\n").as_bytes()),
            },
            (Method::Get, "/print") => {
                println!("a line on stdout");
                eprintln!("a line on stderr");
                answer(out, 200, b"printed\n")
            }
            (Method::Get, "/fetch") => fetch(out, &param("url").unwrap_or_default()),
            (Method::Get, "/connect") => connect(out, &param("addr").unwrap_or_default()),
            (Method::Get, "/path") => answer(out, 200, format!("{full}\n").as_bytes()),
            _ => answer(out, 404, b"no such route\n"),
        }
    }
}

/// Answers with `status` and `body`.
fn answer(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())]).unwrap();
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let outgoing = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let mut stream = outgoing.write().unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    drop(stream);
    OutgoingBody::finish(outgoing, None).unwrap();
}

/// Streams the request's body back as it arrives.
fn echo(request: IncomingRequest, out: ResponseOutparam) {
    let incoming = request.consume().unwrap();
    let input = incoming.stream().unwrap();
    let response = OutgoingResponse::new(Fields::new());
    let outgoing = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let output = outgoing.write().unwrap();
    loop {
        match input.blocking_read(64 * 1024) {
            Ok(chunk) => {
                for piece in chunk.chunks(4096) {
                    output.blocking_write_and_flush(piece).unwrap();
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(err) => panic!("reading the request body: {err:?}"),
        }
    }
    drop(output);
    OutgoingBody::finish(outgoing, None).unwrap();
}

#[inline(never)]
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn fetch(out: ResponseOutparam, url: &str) {
    match get::get(url) {
        Ok((status, body)) => {
            let mut text = format!("fetched: {status}\n").into_bytes();
            text.extend_from_slice(&body);
            answer(out, 200, &text)
        }
        Err(err) => answer(out, 502, format!("refused: {err}\n").as_bytes()),
    }
}

fn connect(out: ResponseOutparam, addr: &str) {
    use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    let parsed: Option<std::net::SocketAddrV4> = addr.parse().ok();
    let Some(parsed) = parsed else {
        return answer(out, 400, b"addr must be IPv4:PORT\n");
    };
    let o = parsed.ip().octets();
    let target = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: parsed.port(),
        address: (o[0], o[1], o[2], o[3]),
    });
    let result = (|| {
        let socket = wasi::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)?;
        let network = wasi::sockets::instance_network::instance_network();
        socket.start_connect(&network, target)?;
        socket.subscribe().block();
        socket.finish_connect().map(drop)
    })();
    match result {
        Ok(()) => answer(out, 200, b"connected\n"),
        Err(err) => answer(out, 502, format!("refused: {err:?}\n").as_bytes()),
    }
}
