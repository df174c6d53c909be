//! A second reading of how each request on a connection is framed, for
//! the requests hyper reads one way and another parser could read
//! another (RFC 9112 §6.1, §6.3; RFC 9110 §8.6):
//!
//! - both `Content-Length` and `Transfer-Encoding`: hyper goes by the
//!   coding and closes the connection after the answer, as the RFC
//!   allows; a front that went by the length would take the rest for a
//!   second request. Such a request gets 400.
//! - `Content-Length` more than once, even with the same value (hyper
//!   refuses different ones itself), and `chunked` named more than once.
//!
//! [`Watched`] wraps the accepted stream and reads every byte hyper reads,
//! as it passes, without changing any: it parses each head with the same
//! parser hyper uses (`httparse`, same settings), then follows the body
//! by the framing hyper will use — so many bytes for a length, hyper's
//! chunked grammar step by step — so that a body's bytes (a multipart
//! part's own `Content-Length:` line) are never taken for a head. Where
//! it cannot follow (a head or a chunk hyper will refuse too, which ends
//! the connection), it stops reading and lets hyper answer. The first
//! head it finds ambiguous is noted in [`Verdict`], by its number on the
//! connection, which the request handler checks before anything else;
//! nothing is followed after it, since that connection ends with its
//! answer.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// hyper's limit on a request's fields (`DEFAULT_MAX_HEADERS`): a head
/// with more is refused by hyper, and not followed here.
const MAX_FIELDS: usize = 100;

/// The longest head followed (hyper's own read buffer stops at about
/// 400 KiB, and hyper refuses the head): past it, the connection is not
/// followed any more.
const MAX_HEAD: usize = 512 * 1024;

/// The room for a head kept between requests; more is given back.
const KEPT_HEAD: usize = 8 * 1024;

/// The first request on a connection whose framing is ambiguous.
#[derive(Debug, Default)]
pub(super) struct Verdict(OnceLock<Ambiguous>);

/// A request on a connection whose framing two parsers could read two
/// ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ambiguous {
    /// Its number on the connection, from 0.
    pub(super) request: u64,
    /// What makes it ambiguous, for the log.
    pub(super) why: &'static str,
}

impl Verdict {
    /// Why request number `request` (from 0) of the connection is
    /// ambiguous, if it is.
    pub(super) fn of(&self, request: u64) -> Option<&'static str> {
        self.0
            .get()
            .filter(|ambiguous| ambiguous.request == request)
            .map(|ambiguous| ambiguous.why)
    }
}

/// A connection whose request framing is read a second time as hyper
/// reads it; its verdict is in [`Watched::verdict`].
pub(super) struct Watched<S> {
    inner: S,
    framing: Framing,
}

impl<S> Watched<S> {
    /// `inner`, watched from its first byte.
    pub(super) fn new(inner: S) -> Watched<S> {
        Watched {
            inner,
            framing: Framing::default(),
        }
    }

    /// Where the first ambiguous request of the connection is noted.
    pub(super) fn verdict(&self) -> Arc<Verdict> {
        self.framing.verdict.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            this.framing.feed(&buf.filled()[before..]);
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where the reading of a connection's bytes stands.
#[derive(Debug, Default)]
struct Framing {
    at: At,
    /// A head's bytes so far, when it came in more than one read.
    head: Vec<u8>,
    /// Heads read so far.
    heads: u64,
    verdict: Arc<Verdict>,
}

/// What the next byte belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum At {
    /// A request's head (or the empty lines before it).
    #[default]
    Head,
    /// A body of so many more bytes.
    Length(u64),
    /// A chunked body, at this step of hyper's grammar.
    Chunked(Chunk),
    /// Nothing more is followed: an ambiguous request was found (its
    /// answer ends the connection), or hyper refuses what came.
    Off,
}

/// The steps of a chunked body, as hyper's decoder takes them
/// (`proto/h1/decode.rs`): one byte at a time but for a chunk's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The first hex digit of a chunk's size.
    Start,
    /// More of the size, so far.
    Size(u64),
    /// Blanks after the size.
    SizeBlank(u64),
    /// An extension, up to the CR.
    Extension(u64),
    /// The LF after the size line's CR.
    SizeLf(u64),
    /// So many more bytes of a chunk's data.
    Data(u64),
    /// The CR after the data.
    DataCr,
    /// The LF after it.
    DataLf,
    /// A trailer field, up to its CR.
    Trailer,
    /// The LF after it.
    TrailerLf,
    /// The CR of the empty line that ends the body, or a trailer's first
    /// byte.
    EndCr,
    /// The LF that ends it.
    EndLf,
}

/// What a head says of the body that follows.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    /// This many bytes (none: no body).
    Length(u64),
    Chunked,
    /// Framed two ways: the request gets 400.
    Ambiguous(&'static str),
    /// hyper refuses the head.
    Refused,
}

impl Framing {
    /// Follows `bytes`, the next ones read from the connection.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.at {
                At::Off => return,
                At::Head => bytes = self.head(bytes),
                At::Length(left) => {
                    let taken = left.min(bytes.len() as u64);
                    self.at = match left - taken {
                        0 => At::Head,
                        left => At::Length(left),
                    };
                    bytes = &bytes[taken as usize..];
                }
                At::Chunked(Chunk::Data(left)) => {
                    let taken = left.min(bytes.len() as u64);
                    self.at = At::Chunked(match left - taken {
                        0 => Chunk::DataCr,
                        left => Chunk::Data(left),
                    });
                    bytes = &bytes[taken as usize..];
                }
                At::Chunked(chunk) => {
                    self.at = match chunk.next(bytes[0]) {
                        Some(Some(chunk)) => At::Chunked(chunk),
                        Some(None) => At::Head,
                        None => At::Off,
                    };
                    bytes = &bytes[1..];
                }
            }
        }
    }

    /// Takes what of `bytes` belongs to the head being read, and returns
    /// the rest.
    fn head<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let before = self.head.len();
        let parsed = if before == 0 {
            // The usual case: the whole head in one read, parsed in place.
            parse(bytes)
        } else {
            self.head.extend_from_slice(bytes);
            if ends_a_head(&self.head, before) {
                parse(&self.head)
            } else {
                Parsed::Partial
            }
        };
        match parsed {
            Parsed::Partial => {
                if before == 0 {
                    self.head.extend_from_slice(bytes);
                }
                self.over_long();
                &[]
            }
            Parsed::Refused => {
                self.at = At::Off;
                &[]
            }
            Parsed::Head { length, body } => {
                let request = self.heads;
                self.heads += 1;
                self.head.clear();
                if self.head.capacity() > KEPT_HEAD {
                    // A long head's room is not held for the
                    // connection's life.
                    self.head = Vec::new();
                }
                self.at = match body {
                    Body::Length(0) => At::Head,
                    Body::Length(n) => At::Length(n),
                    Body::Chunked => At::Chunked(Chunk::Start),
                    Body::Refused => At::Off,
                    Body::Ambiguous(why) => {
                        let _ = self.verdict.0.set(Ambiguous { request, why });
                        At::Off
                    }
                };
                // A head is never whole before the read that completes
                // it: it ends in `bytes`.
                &bytes[length.saturating_sub(before).min(bytes.len())..]
            }
        }
    }

    /// Stops following a head grown past what hyper reads.
    fn over_long(&mut self) {
        if self.head.len() > MAX_HEAD {
            self.head = Vec::new();
            self.at = At::Off;
        }
    }
}

impl Chunk {
    /// The step after `byte`: `Some(None)` when the body ended with it,
    /// `None` when hyper refuses it.
    fn next(self, byte: u8) -> Option<Option<Chunk>> {
        let hex = |size: u64| {
            let digit = (byte as char).to_digit(16)?;
            size.checked_mul(16)?.checked_add(u64::from(digit))
        };
        let next = match (self, byte) {
            (Chunk::Start, _) => Chunk::Size(hex(0)?),
            (Chunk::Size(size), b'\t' | b' ') | (Chunk::SizeBlank(size), b'\t' | b' ') => {
                Chunk::SizeBlank(size)
            }
            (Chunk::Size(size) | Chunk::SizeBlank(size), b';') => Chunk::Extension(size),
            (Chunk::Size(size) | Chunk::SizeBlank(size) | Chunk::Extension(size), b'\r') => {
                Chunk::SizeLf(size)
            }
            (Chunk::Size(size), _) => Chunk::Size(hex(size)?),
            (Chunk::SizeBlank(_), _) | (Chunk::Extension(_), b'\n') => return None,
            (Chunk::Extension(size), _) => Chunk::Extension(size),
            (Chunk::SizeLf(0), b'\n') => Chunk::EndCr,
            (Chunk::SizeLf(size), b'\n') => Chunk::Data(size),
            (Chunk::DataCr, b'\r') => Chunk::DataLf,
            (Chunk::DataLf, b'\n') => Chunk::Start,
            (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
            (Chunk::Trailer, _) => Chunk::Trailer,
            (Chunk::TrailerLf, b'\n') => Chunk::EndCr,
            (Chunk::EndCr, b'\r') => Chunk::EndLf,
            (Chunk::EndCr, _) => Chunk::Trailer,
            (Chunk::EndLf, b'\n') => return Some(None),
            (Chunk::SizeLf(_) | Chunk::DataCr | Chunk::DataLf | Chunk::TrailerLf | Chunk::EndLf, _) => {
                return None;
            }
            // Taken whole by `Framing::feed`.
            (Chunk::Data(_), _) => unreachable!("a chunk's data is not read byte by byte"),
        };
        Some(Some(next))
    }
}

/// A head, parsed as hyper parses it.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// Not whole yet.
    Partial,
    /// hyper refuses it.
    Refused,
    /// Whole, `length` bytes (with the empty lines before it).
    Head { length: usize, body: Body },
}

/// `bytes` read as a request's head.
fn parse(bytes: &[u8]) -> Parsed {
    let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut []);
    match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        bytes,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(length)) => Parsed::Head {
            length,
            body: body(request.version == Some(1), request.headers),
        },
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Refused,
    }
}

/// How the body of a request with `fields` is framed (hyper's rules in
/// `proto/h1/role.rs`, plus the ones hyper lets through).
fn body(http_11: bool, fields: &[httparse::Header<'_>]) -> Body {
    let mut lengths = 0;
    let mut length = None;
    let mut codings = false;
    let mut chunked_last = false;
    let mut chunked = 0;
    for field in fields {
        if field.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            length = digits(field.value);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            codings = true;
            let Ok(value) = std::str::from_utf8(field.value) else {
                return Body::Refused;
            };
            let mut last = false;
            for coding in value.split(',') {
                last = coding.trim().eq_ignore_ascii_case("chunked");
                chunked += usize::from(last);
            }
            chunked_last = last;
        }
    }
    if codings && lengths > 0 {
        return Body::Ambiguous("both Content-Length and Transfer-Encoding");
    }
    if lengths > 1 {
        return Body::Ambiguous("Content-Length more than once");
    }
    if codings {
        return match (http_11, chunked_last, chunked) {
            (true, true, 1) => Body::Chunked,
            (true, true, _) => Body::Ambiguous("chunked more than once in Transfer-Encoding"),
            _ => Body::Refused,
        };
    }
    match (lengths, length) {
        (0, _) => Body::Length(0),
        (_, Some(length)) => Body::Length(length),
        (_, None) => Body::Refused,
    }
}

/// A length written in decimal digits and nothing else (no sign, no
/// blank, no list), as hyper reads it.
fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let digit = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Whether `head`, of which the first `before` bytes held no empty line,
/// has one now: only then can it be whole.
fn ends_a_head(head: &[u8], before: usize) -> bool {
    let tail = &head[before.saturating_sub(3)..];
    tail.windows(2).any(|pair| pair == b"\n\n") || tail.windows(3).any(|three| three == b"\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` fed in pieces of `step` bytes; the verdict and how many
    /// heads were read.
    fn read(bytes: &[u8], step: usize) -> (Option<Ambiguous>, u64, At) {
        let mut framing = Framing::default();
        for piece in bytes.chunks(step) {
            framing.feed(piece);
        }
        (framing.verdict.0.get().copied(), framing.heads, framing.at)
    }

    /// The same, in every piece size from one byte to the whole.
    fn read_every_way(bytes: &[u8]) -> (Option<Ambiguous>, u64, At) {
        let whole = read(bytes, bytes.len().max(1));
        for step in 1..bytes.len() {
            assert_eq!(read(bytes, step), whole, "in pieces of {step}");
        }
        whole
    }

    const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn heads_and_bodies_are_told_apart_however_they_arrive() {
        // A length-framed body that looks like a request, then a chunked
        // one with an extension and a trailer, then a plain GET.
        let fake = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        let sized = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{fake}",
            fake.len()
        );
        let chunk = "Content-Length: 9\r\n\r\n";
        let chunked = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{:x};a=b\r\n{chunk}\r\n0\r\nX-T: 1\r\n\r\n",
            chunk.len()
        );
        let all = format!("{sized}{chunked}\r\n{GET}");
        assert_eq!(read_every_way(all.as_bytes()), (None, 3, At::Head));
    }

    #[test]
    fn the_first_ambiguous_head_is_noted_by_its_number() {
        for (fields, why) in [
            (
                "Content-Length: 4\r\nTransfer-Encoding: chunked",
                "both Content-Length and Transfer-Encoding",
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 4",
                "both Content-Length and Transfer-Encoding",
            ),
            (
                "Content-length: 4\r\nTransfer-encoding: identity",
                "both Content-Length and Transfer-Encoding",
            ),
            (
                "Content-Length: 4\r\nContent-Length: 4",
                "Content-Length more than once",
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
                "chunked more than once in Transfer-Encoding",
            ),
            (
                "Transfer-Encoding: chunked, chunked",
                "chunked more than once in Transfer-Encoding",
            ),
        ] {
            let bytes = format!("{GET}POST / HTTP/1.1\r\nHost: x\r\n{fields}\r\n\r\n0\r\n\r\n{GET}");
            let ambiguous = Ambiguous { request: 1, why };
            assert_eq!(
                read_every_way(bytes.as_bytes()),
                (Some(ambiguous), 2, At::Off),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn what_hyper_refuses_is_not_followed() {
        for bytes in [
            "GET / HTTP/1.1\r\n Host: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 1\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\nb\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
        ] {
            let (verdict, _, at) = read_every_way(bytes.as_bytes());
            assert_eq!((verdict, at), (None, At::Off), "{bytes:?}");
        }
    }

    #[test]
    fn a_head_longer_than_hyper_reads_is_not_followed() {
        let mut framing = Framing::default();
        framing.feed(b"GET / HTTP/1.1\r\nX: ");
        for _ in 0..MAX_HEAD / 1024 + 1 {
            framing.feed(&[b'a'; 1024]);
        }
        assert_eq!(framing.at, At::Off);
        assert!(framing.head.capacity() == 0);
    }

    #[test]
    fn a_long_heads_room_is_given_back() {
        let mut framing = Framing::default();
        framing.feed(b"GET / HTTP/1.1\r\nX: ");
        framing.feed(&[b'a'; 64 * 1024]);
        framing.feed(b"\r\n\r\n");
        assert_eq!((framing.heads, framing.at), (1, At::Head));
        assert!(framing.head.capacity() <= KEPT_HEAD);
    }

    #[test]
    fn a_head_is_parsed_only_once_its_empty_line_came() {
        assert!(!ends_a_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
        assert!(ends_a_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 26));
        assert!(ends_a_head(b"GET / HTTP/1.1\nHost: x\n\n", 23));
        assert!(ends_a_head(b"GET / HTTP/1.1\r\nHost: x\n\r\n", 25));
    }
}
