//! The example function of wsandbox's README: a small JSON API, a
//! `wasi:http/proxy` component served by `wsandbox serve`, a fresh
//! instance per request.
//!
//! - `GET /`: what the API offers.
//! - `GET /hello/NAME`: `{"greeting": "Hello, NAME!"}`.
//! - `POST /sum` with a JSON array of numbers: `{"count": N, "sum": S}`.
//!
//! Anything else is a 404 (or 405) with `{"error": ...}`. Each request is
//! logged on stdout, which `serve` prefixes with the request's id.

use std::io::Write as _;
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasi::http::proxy::export!(Api);

struct Api;

impl wasi::exports::http::incoming_handler::Guest for Api {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default().to_string();
        let method = request.method();
        println!("{} {path}", method_name(&method));
        let (status, json) = match (&method, path.as_str()) {
            (Method::Get, "/") => (
                200,
                r#"{"service": "wsandbox example api", "routes": ["GET /hello/{name}", "POST /sum"]}"#.to_string(),
            ),
            (Method::Get, hello) if hello.starts_with("/hello/") => {
                let name = &hello["/hello/".len()..];
                (200, format!(r#"{{"greeting": {}}}"#, quote(&format!("Hello, {name}!"))))
            }
            (Method::Post, "/sum") => match read_body(request).and_then(|body| sum(&body)) {
                Ok((count, total)) => (200, format!(r#"{{"count": {count}, "sum": {total}}}"#)),
                Err(why) => (400, format!(r#"{{"error": {}}}"#, quote(&why))),
            },
            (_, "/" | "/sum") => (405, r#"{"error": "method not allowed"}"#.to_string()),
            (_, other) => (404, format!(r#"{{"error": {}}}"#, quote(&format!("no route {other}")))),
        };
        respond(out, status, &json);
    }
}

fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
        Method::Patch => "PATCH",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Other(other) => other,
    }
}

/// The whole request body, at most 1 MiB, as text.
fn read_body(request: IncomingRequest) -> Result<String, String> {
    const LIMIT: usize = 1 << 20;
    let body = request.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no body".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) if bytes.len() + chunk.len() > LIMIT => return Err("body over 1 MiB".into()),
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(err) => return Err(format!("reading the body: {err:?}")),
        }
    }
    String::from_utf8(bytes).map_err(|_| "the body is not UTF-8".to_string())
}

/// Parses a JSON array of numbers and adds them up.
fn sum(body: &str) -> Result<(usize, f64), String> {
    let inner = body
        .trim()
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or("expected a JSON array of numbers, like [1, 2.5, 3]")?;
    if inner.trim().is_empty() {
        return Ok((0, 0.0));
    }
    let numbers = inner
        .split(',')
        .map(|item| {
            let item = item.trim();
            item.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or(format!("not a number: {item}"))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok((numbers.len(), numbers.iter().sum()))
}

/// `text` as a JSON string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn respond(out: ResponseOutparam, status: u16, json: &str) {
    let headers = Fields::from_list(&[("content-type".into(), b"application/json".to_vec())]).unwrap();
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let body = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let mut stream = body.write().unwrap();
    stream.write_all(json.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    stream.flush().unwrap();
    drop(stream);
    OutgoingBody::finish(body, None).unwrap();
}
