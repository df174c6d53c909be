//! The request's body as the guest reads it, watched: no larger than
//! [`Bounds::max_body_size`], and no later than
//! [`Bounds::request_timeout`] from the moment the request has an
//! instance ([`RequestBody`]); past either, the instance is told why
//! ([`Unread`]) and stopped.

use super::Bounds;
use crate::policy::Setting;
use hyper::body::{Body as _, Bytes};
use std::time::Duration;
use tokio::sync::oneshot;

/// Why a request's body could not be read to its end.
#[derive(Debug, Clone, Copy)]
pub(super) enum Unread {
    /// It grew past this many bytes, [`Bounds::max_body_size`].
    TooLarge(u64),
    /// The client had not sent it when the function waited for it past
    /// [`Bounds::request_timeout`].
    Late(Duration),
}

impl Unread {
    /// The status for the client, when nothing was answered yet.
    pub(super) fn status(self) -> u16 {
        match self {
            Unread::TooLarge(_) => 413,
            Unread::Late(_) => 408,
        }
    }
}

impl std::fmt::Display for Unread {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::TooLarge(max) => write!(
                out,
                "the request's body grew past {} {}; the function was stopped",
                Setting::MaxBodySize,
                crate::policy::size_text(*max)
            ),
            Unread::Late(limit) => write!(
                out,
                "the client did not send the request's body within {} {}; the function was stopped",
                Setting::RequestTimeout,
                crate::policy::duration_text(*limit)
            ),
        }
    }
}

/// A request's body as the guest reads it, watched: past
/// [`Bounds::max_body_size`] bytes, or when the guest waits for the
/// client past the deadline, the instance is told (and stops it), and the
/// guest gets nothing more — it is about to be dropped. An empty body is
/// not watched: it costs nothing.
pub(super) struct RequestBody {
    inner: hyper::body::Incoming,
    /// The bytes it may still have.
    left: u64,
    max: u64,
    timeout: Duration,
    /// Set the first time the guest waits for the client.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    watch: Watch,
}

/// What a [`RequestBody`] still has to watch for.
enum Watch {
    /// Nothing: the body is empty, or has arrived whole, or failed.
    Off,
    /// Its size, and the guest's waiting for the client until `deadline`;
    /// the instance is told through `tell`.
    On {
        tell: oneshot::Sender<Unread>,
        deadline: tokio::time::Instant,
    },
    /// The instance was told; the guest waits until it is stopped.
    Told,
}

impl RequestBody {
    /// `request` with its body watched from now, by `bounds`;
    /// and where the instance learns that the body cannot be read (none
    /// for an empty body).
    pub(super) fn watch(
        request: hyper::Request<hyper::body::Incoming>,
        bounds: &Bounds,
    ) -> (hyper::Request<RequestBody>, Option<oneshot::Receiver<Unread>>) {
        let (parts, inner) = request.into_parts();
        let (watch, unread) = if inner.is_end_stream() {
            (Watch::Off, None)
        } else {
            let (tell, told) = oneshot::channel();
            let deadline = tokio::time::Instant::now() + bounds.request_timeout;
            (Watch::On { tell, deadline }, Some(told))
        };
        let body = RequestBody {
            inner,
            left: bounds.max_body_size,
            max: bounds.max_body_size,
            timeout: bounds.request_timeout,
            timer: None,
            watch,
        };
        (hyper::Request::from_parts(parts, body), unread)
    }

    /// Tells the instance why the body cannot be read, and holds the guest.
    fn tell(
        &mut self,
        why: Unread,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, WasiHttpError>>> {
        if let Watch::On { tell, .. } = std::mem::replace(&mut self.watch, Watch::Told) {
            let _ = tell.send(why);
        }
        std::task::Poll::Pending
    }
}

type WasiHttpError = wasmtime_wasi_http::Error;

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = WasiHttpError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, WasiHttpError>>> {
        use std::task::Poll;
        let this = self.get_mut();
        let deadline = match this.watch {
            Watch::Told => return Poll::Pending,
            Watch::Off => {
                return std::pin::Pin::new(&mut this.inner)
                    .poll_frame(cx)
                    .map_err(WasiHttpError::Hyper);
            }
            Watch::On { deadline, .. } => deadline,
        };
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                // The guest waits for the client: not past the deadline.
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    return this.tell(Unread::Late(this.timeout));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    match this.left.checked_sub(data.len() as u64) {
                        Some(left) => this.left = left,
                        None => return this.tell(Unread::TooLarge(this.max)),
                    }
                }
                if this.inner.is_end_stream() {
                    this.watch = Watch::Off;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(ended) => {
                // Whole, or cut by the client: nothing more to watch.
                this.watch = Watch::Off;
                Poll::Ready(ended.map(|frame| frame.map_err(WasiHttpError::Hyper)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !matches!(self.watch, Watch::Told) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
