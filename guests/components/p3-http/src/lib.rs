//! `p3-http`, the test service of WASI 0.3: a component exporting
//! `wasi:http/handler@0.3.0`, the 0.3 twin of `probe-http`. Each route does
//! one thing a function might do, or one thing a hostile function might
//! try, through the 0.3 interfaces (bodies as streams, async functions):
//!
//! - `GET /`: `hello`, the smallest answer (the benchmark's).
//! - `POST /echo`: the request's body streamed back as it arrives.
//! - `GET /stream?n=N&ms=M`: N lines, `chunk I`, M ms apart: the answer
//!   goes out before its body is over.
//! - `GET /trap`: traps before answering; `GET /trap-body`: answers, sends
//!   a line of its body, then traps.
//! - `GET /spin`: loops forever in wasm before answering.
//! - `GET /sleep?ms=N`: waits N ms (`wait-for`), then answers `slept`.
//! - `GET /grow?mb=N`: allocates and touches N MiB, then answers.
//! - `GET /env?name=X`: the value of the variable X, or 404.
//! - `GET /file?path=P`: the file at P, or 404 with the error code;
//!   `GET /write?path=P&text=T`: writes T to it, or 403 with the code.
//! - `GET /print`: a line on stdout and one on stderr.
//! - `GET /after`: answers `answered`, and once the answer's body is over
//!   waits 50 ms and prints `after the answer` on stdout.
//! - `GET /fetch?url=U`: an outgoing request (`wasi:http/client`) to U;
//!   answers `fetched: STATUS` and the body that came back, or 502.
//! - `GET /connect?addr=IP:PORT`: a TCP connection through `wasi:sockets`;
//!   answers `connected`, or 502 with the refusal.
//! - `GET /whoami`: the request's scheme, authority and path, a line each.
//! - `GET /count`: how many requests this instance has answered, this one
//!   included (a fresh instance says 1).
//!
//! Served under a prefix (a route of a server of several), it is told the
//! prefix in `PROBE_PREFIX` and takes its paths under it (`/v3/count`).
//!
//! Paths of files are taken in the first preopened directory whose guest
//! path is a prefix of them (`/data/a.txt` in `/data`).

mod bindings {
    wit_bindgen::generate!({
        world: "service",
        path: "../p3-wit",
        // As wasi-testsuite's own 0.3 tests (wasm-tools issue 2285).
        features: ["clocks-timezone"],
        generate_all,
    });
}

use bindings::exports::wasi::http::handler::Guest;
use bindings::wasi::cli::{environment, stderr};
use bindings::wasi::clocks::monotonic_clock;
use bindings::wasi::filesystem::preopens;
use bindings::wasi::filesystem::types::{self as fs, Descriptor, DescriptorFlags, OpenFlags, PathFlags};
use bindings::wasi::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme};
use bindings::{wit_future, wit_stream};
use wit_bindgen::StreamResult;

struct Service;

/// Requests this instance has taken.
static TAKEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

bindings::export!(Service with_types_in bindings);

impl Guest for Service {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path_with_query = request.get_path_with_query().unwrap_or_default();
        let (full, query) = path_with_query.split_once('?').unwrap_or((&path_with_query, ""));
        let prefix = environment::get_environment()
            .into_iter()
            .find(|(k, _)| k == "PROBE_PREFIX")
            .map(|(_, v)| v)
            .unwrap_or_default();
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
        let number = |name: &str, default: u64| param(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        let taken = TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let method = request.get_method();
        let answer = match (method, path) {
            (Method::Get, "/") => text(200, "hello\n"),
            (Method::Post, "/echo") => {
                let (_, result_rx) = wit_future::new(|| Ok(()));
                let (body, _trailers) = Request::consume_body(request, result_rx);
                streaming(200, move |mut tx| async move {
                    let mut body = body;
                    loop {
                        let (result, chunk) = body.read(Vec::with_capacity(64 * 1024)).await;
                        if !chunk.is_empty() && !tx.write_all(chunk).await.is_empty() {
                            break;
                        }
                        if !matches!(result, StreamResult::Complete(_)) {
                            break;
                        }
                    }
                })
            }
            (Method::Get, "/stream") => {
                let (n, ms) = (number("n", 3), number("ms", 100));
                streaming(200, move |mut tx| async move {
                    for i in 0..n {
                        if i > 0 {
                            monotonic_clock::wait_for(ms * 1_000_000).await;
                        }
                        if !tx.write_all(format!("chunk {i}\n").into_bytes()).await.is_empty() {
                            break;
                        }
                    }
                })
            }
            (Method::Get, "/trap") => core::arch::wasm32::unreachable(),
            (Method::Get, "/trap-body") => streaming(200, |mut tx| async move {
                let _ = tx.write_all(b"partial\n".to_vec()).await;
                core::arch::wasm32::unreachable()
            }),
            (Method::Get, "/spin") => spin(),
            (Method::Get, "/sleep") => {
                monotonic_clock::wait_for(number("ms", 1000) * 1_000_000).await;
                text(200, "slept\n")
            }
            (Method::Get, "/grow") => {
                let mut block = vec![0u8; (number("mb", 1) as usize) << 20];
                for page in block.chunks_mut(4096) {
                    page[0] = 1;
                }
                let touched: usize = block.iter().step_by(4096).map(|&b| b as usize).sum();
                text(200, &format!("grew {touched} pages\n"))
            }
            (Method::Get, "/env") => {
                let name = param("name").unwrap_or_default();
                match environment::get_environment().into_iter().find(|(k, _)| *k == name) {
                    Some((_, value)) => text(200, &value),
                    None => text(404, "no such variable\n"),
                }
            }
            (Method::Get, "/file") => {
                match open(&param("path").unwrap_or_default(), DescriptorFlags::READ, OpenFlags::empty()).await {
                    Ok(file) => {
                        let (rx, done) = file.read_via_stream(0);
                        let bytes = rx.collect().await;
                        match done.await {
                            Ok(()) => bytes_answer(200, bytes),
                            Err(code) => text(404, &format!("{code:?}\n")),
                        }
                    }
                    Err(code) => text(404, &format!("{code:?}\n")),
                }
            }
            (Method::Get, "/write") => {
                let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE;
                match open(&param("path").unwrap_or_default(), DescriptorFlags::WRITE, flags).await {
                    Ok(file) => match write_all(&file, param("text").unwrap_or_default().into_bytes()).await {
                        Ok(()) => text(200, "written\n"),
                        Err(code) => text(403, &format!("{code:?}\n")),
                    },
                    Err(code) => text(403, &format!("{code:?}\n")),
                }
            }
            (Method::Get, "/print") => {
                println!("a line on stdout");
                let (mut tx, rx) = wit_stream::new();
                let line = b"a line on stderr\n".to_vec();
                let _ = futures::join!(async { stderr::write_via_stream(rx).await }, async move {
                    let _ = tx.write_all(line).await;
                    drop(tx);
                });
                text(200, "printed\n")
            }
            (Method::Get, "/after") => {
                let (body_tx, body_rx) = wit_stream::new();
                let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
                wit_bindgen::spawn_local(async move {
                    let mut body_tx = body_tx;
                    let _ = body_tx.write_all(b"answered\n".to_vec()).await;
                    drop(body_tx);
                    let _ = trailers_tx.write(Ok(None)).await;
                    monotonic_clock::wait_for(50_000_000).await;
                    println!("after the answer");
                });
                let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
                Ok(response)
            }
            (Method::Get, "/fetch") => match fetch(&param("url").unwrap_or_default()).await {
                Ok((status, body)) => {
                    let mut text = format!("fetched: {status}\n").into_bytes();
                    text.extend_from_slice(&body);
                    bytes_answer(200, text)
                }
                Err(code) => text(502, &format!("refused: {code:?}\n")),
            },
            (Method::Get, "/whoami") => {
                let scheme = match request.get_scheme() {
                    Some(Scheme::Http) => "http".to_string(),
                    Some(Scheme::Https) => "https".to_string(),
                    Some(Scheme::Other(other)) => other,
                    None => "none".to_string(),
                };
                let authority = request.get_authority().unwrap_or_else(|| "none".into());
                text(200, &format!("{scheme}\n{authority}\n{path_with_query}\n"))
            }
            (Method::Get, "/connect") => match connect(&param("addr").unwrap_or_default()).await {
                Ok(()) => text(200, "connected\n"),
                Err(why) => text(502, &format!("refused: {why}\n")),
            },
            (Method::Get, "/count") => text(200, &format!("{taken}\n")),
            _ => text(404, "no such route\n"),
        };
        answer
    }
}

/// An answer of `status` whose body is `body`, written by a task of its
/// own as the client reads it.
fn bytes_answer(status: u16, body: Vec<u8>) -> Result<Response, ErrorCode> {
    streaming(status, move |mut tx| async move {
        let _ = tx.write_all(body).await;
    })
}

/// A plain-text answer.
fn text(status: u16, body: &str) -> Result<Response, ErrorCode> {
    bytes_answer(status, body.as_bytes().to_vec())
}

/// An answer of `status` whose body `write` writes (in a task that goes on
/// after the answer is returned), with no trailers.
fn streaming<F, Fut>(status: u16, write: F) -> Result<Response, ErrorCode>
where
    F: FnOnce(wit_bindgen::StreamWriter<u8>) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let headers = Fields::new();
    headers
        .append("content-type", b"text/plain")
        .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
    let (body_tx, body_rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    wit_bindgen::spawn_local(async move {
        write(body_tx).await;
        let _ = trailers_tx.write(Ok(None)).await;
    });
    let (response, _sent) = Response::new(headers, Some(body_rx), trailers_rx);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some("bad status".into())))?;
    Ok(response)
}

#[inline(never)]
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

// `fetch`, shared with `p3-probe`.
include!("../../p3-wit/fetch.rs");


/// A TCP connection to `addr` (`IPv4:PORT`) through `wasi:sockets`.
async fn connect(addr: &str) -> Result<(), String> {
    use bindings::wasi::sockets::types::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket};
    let parsed: std::net::SocketAddrV4 = addr.parse().map_err(|_| "addr must be IPv4:PORT".to_string())?;
    let o = parsed.ip().octets();
    let target = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: parsed.port(),
        address: (o[0], o[1], o[2], o[3]),
    });
    let socket = TcpSocket::create(IpAddressFamily::Ipv4).map_err(|e| format!("{e:?}"))?;
    socket.connect(target).await.map_err(|e| format!("{e:?}"))
}

/// Opens `path` in the preopened directory that holds it.
async fn open(path: &str, flags: DescriptorFlags, open: OpenFlags) -> Result<Descriptor, fs::ErrorCode> {
    for (dir, guest) in preopens::get_directories() {
        let prefix = guest.trim_end_matches('/');
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        let rest = rest.trim_start_matches('/');
        let rest = if rest.is_empty() { "." } else { rest };
        return dir.open_at(PathFlags::empty(), rest.to_string(), open, flags).await;
    }
    Err(fs::ErrorCode::NoEntry)
}

async fn write_all(file: &Descriptor, bytes: Vec<u8>) -> Result<(), fs::ErrorCode> {
    let (mut tx, rx) = wit_stream::new();
    let written = file.write_via_stream(rx, 0);
    let (written, ()) = futures::join!(async { written.await }, async move {
        let _ = tx.write_all(bytes).await;
        drop(tx);
    });
    written
}
