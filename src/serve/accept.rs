//! The accept loop: connections taken from the listening socket up to
//! [`Bounds::max_connections`](super::Bounds::max_connections),
//! each served by hyper (HTTP/1, keep-alive, the head's timeout) behind
//! the [`framing`](super::framing) check; a failure to accept that lasts
//! is said once and waited out; on a first termination signal the
//! listener closes and the connections drain, on a second the loop ends
//! at once.

use super::framing;
use super::{Served, Shared, Stop};
use crate::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// The first pause of the accept loop when accepting fails for a reason
/// that lasts (out of descriptors or memory), doubled at each failure up
/// to [`ACCEPT_PAUSE_MAX`]: the listening socket stays readable, so
/// without a pause the loop would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_millis(250);

/// Serves connections accepted on `listener` until `stop` says to stop
/// accepting; then lets them drain, within the instances' timeout (and a
/// second), unless `stop` says to stop now. `ready` is called with
/// `address` once connections are accepted.
pub(super) async fn serve_connections(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    mut stop: watch::Receiver<Stop>,
    ready: impl FnOnce(SocketAddr),
    address: SocketAddr,
) -> Result<Served, Error> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| Error::Engine(format!("serve: the listening socket: {e}")))?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(shared.bounds.max_connections.max(1) as usize));
    let mut http = hyper::server::conn::http1::Builder::new();
    // The timer starts whenever the connection waits for a request's head:
    // once accepted, and after each answer.
    let head_timeout = shared.bounds.idle_timeout.min(shared.bounds.request_timeout);
    http.keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(head_timeout);
    let mut starved = Starved::default();
    ready(address);
    loop {
        // Past the cap, connections wait in the kernel's backlog.
        let (held, stream) = tokio::select! {
            Ok(_) = stop.wait_for(|stop| *stop != Stop::Serving) => break,
            accepted = async {
                let held = connections.clone().acquire_owned().await.ok()?;
                Some((held, starved.accept(&listener).await))
            } => match accepted {
                Some(accepted) => accepted,
                None => break,
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stream = framing::Watched::new(stream);
        let verdict = stream.verdict();
        let requests = AtomicU64::new(0);
        let connection = http.serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper::service::service_fn(move |request| {
                let ambiguous = verdict.of(requests.fetch_add(1, Ordering::Relaxed));
                super::request::handle(shared.clone(), request, ambiguous)
            }),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(held);
        });
    }
    drop(listener);
    // Idle connections close now; the ones with a request in flight once
    // it is answered, within the timeout (and a little for the answer to
    // leave) — or at once, on a second signal.
    let grace = shared.longest.map(|t| t + Duration::from_secs(1));
    let drained = async {
        match grace {
            Some(grace) => {
                let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
            }
            None => graceful.shutdown().await,
        }
    };
    tokio::select! {
        () = drained => Ok(Served::Drained),
        Some(signal) = now(&mut stop) => Ok(Served::Cut(signal)),
    }
}

/// The signal that says to stop now, once it came; none if the signal
/// thread is gone.
async fn now(stop: &mut watch::Receiver<Stop>) -> Option<i32> {
    let seen = match stop.wait_for(|stop| matches!(stop, Stop::Now(_))).await {
        Ok(seen) => *seen,
        Err(_) => return None,
    };
    match seen {
        Stop::Now(signal) => Some(signal),
        _ => None,
    }
}

/// The accept loop's account of a failure that lasts — out of
/// descriptors (`EMFILE`, `ENFILE`) or of memory: one line when it
/// starts, one when it ends, quiet in between, and a pause before each
/// new try that doubles up to [`ACCEPT_PAUSE_MAX`].
#[derive(Default)]
struct Starved {
    /// The pause before the next try, while accepting fails.
    pause: Option<Duration>,
}

impl Starved {
    /// The next connection, however many failures it takes.
    async fn accept(&mut self, listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    if self.pause.take().is_some() {
                        crate::say_log!(INFO, "wsandbox: serve: accepting connections again");
                    }
                    return stream;
                }
                // A connection reset before it was accepted, or with a
                // network error pending, is the client's and over: the
                // next one is tried at once.
                Err(err) if is_the_connections(&err) => {}
                Err(err) => {
                    let pause = match self.pause {
                        None => {
                            crate::say_log!(
                                WARN,
                                "wsandbox: serve: cannot accept connections: {err}; trying again until it can"
                            );
                            ACCEPT_PAUSE
                        }
                        Some(pause) => (pause * 2).min(ACCEPT_PAUSE_MAX),
                    };
                    self.pause = Some(pause);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// Whether `accept` failed for the connection it was about to return
/// (reset, or a network error pending on it: accept(2) says to try again
/// at once), not for the server.
fn is_the_connections(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}
