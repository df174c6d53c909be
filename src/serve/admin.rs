//! The admin listener (`--admin-addr`): bound outside the walls like the
//! public one and handed in, never served on the public listener. It
//! answers an orchestrator's probes:
//!
//! - `GET /healthz`: 200 while the server runs (draining included);
//! - `GET /readyz`: 200 while it accepts requests, 503 once a
//!   termination signal started the drain;
//! - `GET /metrics`: the server's metrics ([`Metrics`]), in the text
//!   format of OpenMetrics to a client that accepts it (Prometheus does),
//!   else in Prometheus's older text format;
//! - anything else: 404.
//!
//! At most [`CONNECTIONS`] connections at once, each closed when a
//! request's head takes longer than [`HEAD_TIMEOUT`]; nothing here
//! reaches an instance.

use super::Stop;
use super::metrics::{Format, Metrics};
use crate::Error;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// Admin connections open at once; past them, new ones wait in the
/// kernel's backlog.
const CONNECTIONS: usize = 16;
/// How long an admin connection may take to send a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts answering on `listener` (non-blocking), in the current runtime,
/// until the runtime ends; `stop` tells whether the server still accepts.
pub(super) fn start(
    listener: std::net::TcpListener,
    stop: watch::Receiver<Stop>,
    metrics: Arc<Metrics>,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| Error::Engine(format!("serve: the admin socket: {e}")))?;
    let connections = Arc::new(Semaphore::new(CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
    tokio::spawn(async move {
        loop {
            let Ok(held) = connections.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of descriptors, or the like: try again a little later.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (stop, metrics) = (stop.clone(), metrics.clone());
            let connection = http.serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper::service::service_fn(move |request| {
                    let answer = answer(&request, *stop.borrow(), &metrics);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                }),
            );
            tokio::spawn(async move {
                let _ = connection.await;
                drop(held);
            });
        }
    });
    Ok(())
}

/// The answer to an admin request, the server being in state `stop`.
fn answer<B>(request: &hyper::Request<B>, stop: Stop, metrics: &Metrics) -> crate::engine::proxy::Response {
    let get = request.method() == hyper::Method::GET;
    let plain = "text/plain; charset=utf-8";
    let (status, text, media) = match request.uri().path() {
        "/healthz" if get => (200, "ok\n".to_string(), plain),
        "/readyz" if get && stop == Stop::Serving => (200, "ready\n".into(), plain),
        "/readyz" if get => (503, "draining\n".into(), plain),
        "/metrics" if get => {
            let accept = request.headers().get(hyper::header::ACCEPT);
            let format = Format::accepted(accept.and_then(|value| value.to_str().ok()));
            (200, metrics.encode(format), format.media_type())
        }
        _ => (
            404,
            "no such admin endpoint: /healthz, /readyz, /metrics\n".into(),
            plain,
        ),
    };
    let body = http_body_util::Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::NOT_FOUND);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(media),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: &str, path: &str, stop: Stop) -> u16 {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        answer(&request, stop, &Metrics::new(&["/"])).status().as_u16()
    }

    #[test]
    fn health_and_readiness_follow_the_servers_state() {
        assert_eq!(status("GET", "/healthz", Stop::Serving), 200);
        assert_eq!(status("GET", "/healthz", Stop::Drain), 200);
        assert_eq!(status("GET", "/readyz", Stop::Serving), 200);
        assert_eq!(status("GET", "/readyz", Stop::Drain), 503);
        assert_eq!(status("GET", "/readyz", Stop::Now(15)), 503);
        assert_eq!(status("POST", "/healthz", Stop::Serving), 404);
        assert_eq!(status("GET", "/", Stop::Serving), 404);
        assert_eq!(status("GET", "/healthz/x", Stop::Serving), 404);
    }
}
