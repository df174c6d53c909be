//! One outgoing `wasi:http` GET, as the test guests make it: the status
//! and the body, or the error the host answered with (its WASI name, as
//! `{:?}` prints it: `HttpRequestDenied`, `TlsCertificateError`, ...).
//! The variable `FETCH_BETWEEN_BYTES_MS` sets the request's
//! `between-bytes-timeout`.

use wasi::http::types::{Fields, OutgoingRequest, RequestOptions, Scheme};

/// The most of a body read.
const MAX_BODY: usize = 1 << 20;

/// GETs `url` (`http://` or `https://`; no scheme: `http://`).
pub fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((_, rest)) => (Scheme::Http, rest),
        None => (Scheme::Http, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&scheme)).map_err(|()| "bad scheme".to_string())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("bad authority {authority:?}"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| format!("bad path {path:?}"))?;
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(5_000_000_000));
    // The tests' way to ask for a short wait between a body's bytes.
    if let Some(ms) = std::env::var("FETCH_BETWEEN_BYTES_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        let _ = options.set_between_bytes_timeout(Some(ms * 1_000_000));
    }
    let future = wasi::http::outgoing_handler::handle(request, Some(options)).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(err))) => return Err(format!("{err:?}")),
        other => return Err(format!("{other:?}")),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no body stream".to_string())?;
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(wasi::io::streams::StreamError::LastOperationFailed(err)) => {
                return Err(match wasi::http::types::http_error_code(&err) {
                    Some(code) => format!("reading the body: {code:?}"),
                    None => format!("reading the body: {}", err.to_debug_string()),
                });
            }
        }
    }
    Ok((status, bytes))
}
