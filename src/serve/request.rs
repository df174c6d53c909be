//! One request, from its head to its answer: the checks before any
//! instance (ambiguous framing and no `Host`: 400; a body announced too
//! large: 413), admission (503), the instance with its body watched, and
//! the status the client gets when it failed (500, 504, 408, 413), with
//! one line on the server's log that says why.

use super::Shared;
use super::body::{RequestBody, Unread};
use super::log::{Asked, LogStream};
use super::metrics::{CLIENT_LEFT, Metrics, NO_ROUTE};
use crate::engine::proxy::{self, Answer, Response};
use crate::policy::Setting;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Bytes};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

/// Answers one request with a fresh instance, or with the error that
/// stopped it; a request whose framing is `ambiguous` gets 400 and ends
/// its connection. It counts in the metrics, and in the access log at
/// `-v`, once its answer is over.
pub(super) async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<hyper::body::Incoming>,
    ambiguous: Option<&'static str>,
) -> Result<Response, std::convert::Infallible> {
    let route = shared.route(request.uri().path());
    let asked = Arc::new(Asked {
        id: shared.next_id.fetch_add(1, Ordering::Relaxed),
        route: route.map_or(NO_ROUTE, |route| shared.routes[route].label),
        method: request.method().clone(),
        uri: request.uri().clone(),
        started: Instant::now(),
    });
    // Counted as it ends: when this is dropped (after the answer's body,
    // for an instance's answer), with the status set by then.
    let mut tracked = Tracked::begin(&shared, &asked);
    let response = respond(shared, route, request, ambiguous, asked, &mut tracked).await;
    if let Some(tracked) = tracked.as_mut() {
        tracked.status = Some(response.status().as_u16());
    }
    Ok(response)
}

/// A request under way, for the metrics and the access log: it ends when
/// this is dropped, with the status its client got by then (or
/// [`CLIENT_LEFT`]).
struct Tracked {
    metrics: Option<Arc<Metrics>>,
    /// The access log is on: the request has its line.
    access: bool,
    asked: Arc<Asked>,
    status: Option<u16>,
}

impl Tracked {
    /// The request `asked` begins, if it is to be counted or logged.
    fn begin(shared: &Shared, asked: &Arc<Asked>) -> Option<Tracked> {
        if shared.metrics.is_none() && !shared.access_log {
            return None;
        }
        if let Some(metrics) = &shared.metrics {
            metrics.began();
        }
        Some(Tracked {
            metrics: shared.metrics.clone(),
            access: shared.access_log,
            asked: asked.clone(),
            status: None,
        })
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let status = self.status.unwrap_or(CLIENT_LEFT);
        if let Some(metrics) = &self.metrics {
            metrics.ended(self.asked.route, status, self.asked.started.elapsed());
        }
        if self.access {
            self.asked.access(status);
        }
    }
}

/// The answer to `asked` (`request`) for `route` (none: 404); `tracked`
/// is taken when the answer's body streams on from an instance, to end
/// once it is over.
async fn respond(
    shared: Arc<Shared>,
    route: Option<usize>,
    request: hyper::Request<hyper::body::Incoming>,
    ambiguous: Option<&'static str>,
    asked: Arc<Asked>,
    tracked: &mut Option<Tracked>,
) -> Response {
    let id = asked.id;
    // The server's log has the whole story; the client gets the status
    // and a line that gives nothing of the guest's away.
    let failed = |status: u16, why: String| {
        asked.log(Some(status), format_args!("{status}"), &why);
        let told = match status {
            400 if ambiguous.is_some() => "the request's length is ambiguous",
            400 => "a request needs a Host header",
            404 => "no function answers this path",
            408 => "the request did not arrive in time",
            413 => "the request's body is too large",
            503 => "too many requests, try again later",
            504 => "the function did not answer in time",
            _ => "the function failed",
        };
        let mut response = plain(status, &format!("{told} (request {id})"));
        if matches!(status, 408 | 413) || ambiguous.is_some() {
            // What is left of the request is not read (or could be read
            // two ways): the connection cannot carry another.
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        response
    };
    if let Some(why) = ambiguous {
        return failed(400, format!("its framing is ambiguous: {why}"));
    }
    let has_authority =
        request.uri().authority().is_some() || request.headers().contains_key(hyper::header::HOST);
    if !has_authority {
        return failed(400, "no Host header".into());
    }
    let Some(route) = route else {
        let prefixes: Vec<&str> = shared.routes.iter().map(|route| route.label).collect();
        return failed(
            404,
            format!("no route covers this path (routes: {})", prefixes.join(", ")),
        );
    };
    let announced = request.body().size_hint().lower();
    if announced > shared.bounds.max_body_size {
        let max = crate::policy::size_text(shared.bounds.max_body_size);
        return failed(
            413,
            format!(
                "a body of {announced} bytes announced, over {} {max}",
                Setting::MaxBodySize
            ),
        );
    }
    let Some(permit) = shared.admission.admit().await else {
        return failed(
            503,
            format!(
                "too many requests: {} in flight and {} waiting",
                shared.max_concurrent, shared.bounds.max_queued
            ),
        );
    };
    let (answer_tx, answer_rx) = oneshot::channel();
    let task = tokio::spawn(instance(shared.clone(), route, id, request, answer_tx, permit));
    match answer_rx.await {
        Ok(Ok(response)) => {
            let mut tracked = tracked.take();
            if let Some(tracked) = tracked.as_mut() {
                tracked.status = Some(response.status().as_u16());
            }
            // The body streams on from the instance: how that ends is
            // logged, since the client can only see it cut short.
            tokio::spawn(async move {
                let ended = task.await;
                drop(tracked);
                match ended {
                    Ok(Err(Stopped::Timeout(limit))) => asked.log(
                        None,
                        format_args!("stopped while answering"),
                        &format!(
                            "past {} {}",
                            Setting::Timeout,
                            crate::policy::duration_text(limit)
                        ),
                    ),
                    Ok(Err(Stopped::Unread(unread))) => {
                        asked.log(None, format_args!("stopped while answering"), &unread.to_string())
                    }
                    Ok(Err(Stopped::Failed(why) | Stopped::Trapped(why))) => {
                        asked.log(None, format_args!("failed while answering"), &why)
                    }
                    _ => {}
                }
            });
            response
        }
        Ok(Err(code)) => failed(500, format!("the function answered with an error: {code:?}")),
        // The guest ended without answering: why?
        Err(_) => match task.await {
            Ok(Ok(())) => failed(500, "the function returned without answering".into()),
            Ok(Err(Stopped::Timeout(limit))) => failed(
                504,
                format!(
                    "the function did not answer within {} {} and was stopped",
                    Setting::Timeout,
                    crate::policy::duration_text(limit)
                ),
            ),
            Ok(Err(Stopped::Unread(unread))) => failed(unread.status(), unread.to_string()),
            Ok(Err(Stopped::Failed(why) | Stopped::Trapped(why))) => failed(500, why),
            Err(err) => failed(500, format!("the request's task failed: {err}")),
        },
    }
}

/// Why an instance stopped before it finished.
enum Stopped {
    Timeout(Duration),
    Trapped(String),
    Failed(String),
    Unread(Unread),
}

impl From<proxy::Stopped> for Stopped {
    fn from(stopped: proxy::Stopped) -> Stopped {
        match stopped {
            proxy::Stopped::Timeout(limit) => Stopped::Timeout(limit),
            proxy::Stopped::Trapped(why) => Stopped::Trapped(why),
            proxy::Stopped::Failed(why) => Stopped::Failed(why),
        }
    }
}

/// One request's instance of `route`, from instantiation to the end of
/// its body, within the timeout, and no longer than its request's body
/// can be read ([`RequestBody`]); the guest's stdout and stderr go to the
/// log; a trap or the timeout counts in the metrics. The slot is given
/// back when it ends.
async fn instance(
    shared: Arc<Shared>,
    route: usize,
    id: u64,
    request: hyper::Request<hyper::body::Incoming>,
    answer: oneshot::Sender<Answer>,
    permit: OwnedSemaphorePermit,
) -> Result<(), Stopped> {
    let _permit = permit;
    let (request, unread) = RequestBody::watch(request, &shared.bounds);
    let handled = shared.routes[route].proxy.handle(
        id,
        request,
        answer,
        LogStream::new(id, shared.routes[route].label, "stdout"),
        LogStream::new(id, shared.routes[route].label, "stderr"),
    );
    let ended = match unread {
        None => handled.await.map_err(Stopped::from),
        // Told that the body cannot be read, the instance is stopped; once
        // the body is whole (the sender dropped), only the instance is left.
        Some(mut unread) => tokio::select! {
            biased;
            Ok(why) = &mut unread => Err(Stopped::Unread(why)),
            ended = handled => ended.map_err(Stopped::from),
        },
    };
    if let Some(metrics) = &shared.metrics {
        match &ended {
            Err(Stopped::Trapped(_)) => metrics.trapped(shared.routes[route].label),
            Err(Stopped::Timeout(_)) => metrics.timed_out(shared.routes[route].label),
            _ => {}
        }
    }
    ended
}

/// A short plain-text answer of the server's own.
fn plain(status: u16, text: &str) -> Response {
    let body = http_body_util::Full::new(Bytes::from(format!("{text}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
