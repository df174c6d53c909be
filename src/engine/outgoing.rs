//! The guest's outgoing `wasi:http` requests: refused unless the policy's
//! `allow_http` names the destination, and then sent over a connection
//! the broker outside the walls made ([`Reach`]) — the sandbox opens no
//! socket of its own. HTTPS is done here, inside: rustls, with the CA
//! certificates read before the walls went up, SNI and the certificate
//! checked against the name the guest asked for; the broker sees only
//! ciphertext.
//!
//! A refusal is said on stderr, naming the rule that is missing
//! (`wsandbox: [req 3] GET http://evil.example/: not allowed: no
//! --allow-http rule for evil.example:80`), and the guest gets
//! `HTTP-request-denied` — or `destination-IP-prohibited` when the name is
//! allowed but leads to a special address no rule names.

use crate::policy::Setting;
use crate::policy::net::{self, Failure, Host, Kind, Outcome, Reach, Refusal, Rule, Scheme};
use http_body_util::BodyExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks};

/// How long a connection may take when the guest does not say (the
/// broker's own bound, [`crate::wall::CONNECT_TIMEOUT`], applies too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a response's body may go without a byte when the guest does
/// not say.
const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(600);
/// The most of a URL that a line of the log shows.
const URL_IN_LOG: usize = 256;
/// How much longer than the connect timeout the broker's answer may take
/// (it enforces the timeout itself; this is for a name slow to resolve).
const ANSWER_GRACE: Duration = Duration::from_secs(1);
/// How long the first byte of an answer may take when the guest does not
/// say.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a guest's requests may go, and the way there.
pub struct Outgoing {
    broker: Option<Arc<dyn Reach>>,
    /// The rules of this guest's own, checked before the broker is asked
    /// (whose rules may be wider: a server's functions share its broker);
    /// `None` leaves the decision to the broker.
    rules: Option<Vec<Rule>>,
    /// PEM text of the certificate authorities HTTPS trusts.
    roots: Vec<u8>,
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("broker", &self.broker.is_some())
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl Default for Outgoing {
    /// Nothing allowed: every request refused, at once.
    fn default() -> Outgoing {
        Outgoing {
            broker: None,
            rules: None,
            roots: Vec::new(),
            tls: OnceLock::new(),
        }
    }
}

impl Outgoing {
    /// Requests to what the broker allows (the policy's rules, which it
    /// holds), through `broker`; HTTPS trusts the certificate authorities
    /// of `roots`, PEM text (read before the walls went up; parsed on the
    /// first HTTPS request).
    pub fn new(broker: Arc<dyn Reach>, roots: Vec<u8>) -> Outgoing {
        Outgoing {
            broker: Some(broker),
            rules: None,
            roots,
            tls: OnceLock::new(),
        }
    }

    /// The same way out, for a guest that may reach only what `rules`
    /// allow (one function of a server, whose broker holds the rules of
    /// all): a request they do not allow is refused before the broker is
    /// asked.
    pub fn only(&self, rules: Vec<Rule>) -> Outgoing {
        Outgoing {
            broker: self.broker.clone(),
            rules: Some(rules),
            roots: self.roots.clone(),
            tls: OnceLock::new(),
        }
    }

    /// The TLS client, made on the first HTTPS request.
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let config = self.tls.get_or_init(|| {
            let mut store = rustls::RootCertStore::empty();
            store.add_parsable_certificates(CertificateDer::pem_slice_iter(&self.roots).filter_map(Result::ok));
            if store.is_empty() {
                return Err(format!(
                    "no certificate authority to check the server against: the host has no CA bundle, and no {} was given",
                    Setting::TlsCa
                ));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(store)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        });
        config.clone().map_err(|why| {
            crate::say_log!(WARN, "wsandbox: HTTPS: {why}");
            Error::TlsCertificateError
        })
    }

    /// Sends `request` (from request `id` of a server, if it is one), if
    /// the rules allow its destination; its answer, and the future that
    /// drives the connection until the body is read.
    async fn send(
        self: Arc<Self>,
        id: Option<u64>,
        mut request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let uri = request.uri().clone();
        // The guest's method and URL, escaped as every guest byte on the log.
        let asked = format!(
            "{} {}",
            crate::say::escaped(request.method().as_str()),
            crate::say::escaped(&uri.to_string()).at_most(URL_IN_LOG)
        );
        let what = match id {
            Some(id) => format!("[req {id}] {asked}"),
            None => asked,
        };
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(Error::HttpProtocolError),
        };
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        let host = Host::parse(authority.host()).map_err(|_| Error::HttpRequestUriInvalid)?;
        let kind = Kind::Http(scheme);
        // The guest's own rules first, if it has; then the broker decides
        // (and its report lists every question); with no rule there is no
        // broker, and nothing is allowed.
        let own = match &self.rules {
            Some(rules) => net::allowed(rules, kind, &host, port),
            None => Ok(()),
        };
        let refuse = |refusal: Refusal| {
            let why = refusal.explained(Setting::AllowHttp, &host, port);
            crate::say_log!(WARN, "wsandbox: {what}: not allowed: {why}");
            Err(refused(&refusal))
        };
        let broker = match (own, &self.broker) {
            (Ok(()), Some(broker)) => broker,
            (Err(refusal), _) => return refuse(refusal),
            (Ok(()), None) => return refuse(Refusal::NoRule),
        };
        let options = options.unwrap_or_default();
        let connect_timeout = options.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
        let (tx, rx) = tokio::sync::oneshot::channel();
        broker.ask(
            kind,
            host.clone(),
            port,
            connect_timeout,
            Box::new(move |reached| {
                let _ = tx.send(reached);
            }),
        );
        // The broker bounds its own work, but a name may take long to
        // resolve: the guest waits no longer than its connect timeout.
        let reached = match tokio::time::timeout(connect_timeout + ANSWER_GRACE, rx).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(answer) => answer
                .map_err(|_| "the network broker is gone".to_string())
                .and_then(|reached| reached)
                .map_err(|why| {
                    crate::say_log!(WARN, "wsandbox: {what}: {why}");
                    Error::InternalError(Some(why))
                })?,
        };
        let socket = match reached.outcome {
            Outcome::Connected { .. } => reached.socket.ok_or(Error::ConnectionTerminated)?,
            Outcome::Refused { refusal, message } => {
                crate::say_log!(WARN, "wsandbox: {what}: not allowed: {message}");
                return Err(refused(&refusal));
            }
            Outcome::Failed { failure, message } => {
                tracing::debug!("{what}: {message}");
                return Err(failed(failure, message));
            }
        };
        let stream =
            tokio::net::TcpStream::from_std(std::net::TcpStream::from(socket)).map_err(Error::Connect)?;
        let stream: Box<dyn Stream> = match scheme {
            Scheme::Http => Box::new(stream),
            Scheme::Https => {
                let name = match &host {
                    Host::Name(name) => ServerName::try_from(name.clone()),
                    Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
                }
                .map_err(|_| Error::HttpRequestUriInvalid)?;
                let connector = tokio_rustls::TlsConnector::from(self.tls()?);
                let tls = tokio::time::timeout(connect_timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| Error::ConnectionTimeout)?
                    .map_err(|err| {
                        tracing::debug!("{what}: TLS: {err}");
                        tls_error(err)
                    })?;
                Box::new(tls)
            }
        };
        let (mut sender, mut connection) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        // The request line names the path only (the authority went into
        // `host`, by wasmtime-wasi-http).
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = hyper::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
        let first_byte = options.first_byte_timeout.unwrap_or(FIRST_BYTE_TIMEOUT);
        let mut response = Box::pin(sender.send_request(request));
        let mut ended: Option<Result<(), hyper::Error>> = None;
        // The answer, while the connection is driven.
        let answered = std::future::poll_fn(|cx| {
            if let Poll::Ready(answer) = response.as_mut().poll(cx) {
                return Poll::Ready(answer.map_err(Error::from));
            }
            if ended.is_none()
                && let Poll::Ready(end) = Pin::new(&mut connection).poll(cx)
            {
                if let Err(err) = end {
                    return Poll::Ready(Err(Error::from(err)));
                }
                ended = Some(Ok(()));
            }
            Poll::Pending
        });
        let response = tokio::time::timeout(first_byte, answered)
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let driven: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> = match ended {
            Some(_) => Box::pin(async { Ok(()) }),
            None => Box::pin(async move { connection.await.map_err(Error::from) }),
        };
        let between = options.between_bytes_timeout.unwrap_or(BETWEEN_BYTES_TIMEOUT);
        Ok((
            response.map(|body| Paced::new(body, between).boxed_unsync()),
            driven,
        ))
    }
}

/// A response's body that fails with `connection-read-timeout` when no
/// frame came for `limit` (the guest's `between-bytes-timeout`).
struct Paced {
    body: hyper::body::Incoming,
    limit: Duration,
    quiet: Pin<Box<tokio::time::Sleep>>,
}

impl Paced {
    fn new(body: hyper::body::Incoming, limit: Duration) -> Paced {
        Paced {
            body,
            limit,
            quiet: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl hyper::body::Body for Paced {
    type Data = hyper::body::Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + this.limit;
                this.quiet.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Error::from(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.quiet.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A response, and the future that drives its connection.
type Sent = (
    hyper::Response<WasiBody>,
    Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
);

/// A connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The WASI error of a refusal.
fn refused(refusal: &Refusal) -> Error {
    match refusal {
        Refusal::NoRule => Error::HttpRequestDenied,
        Refusal::Special { .. } => Error::DestinationIpProhibited,
    }
}

/// The WASI error of a failed connection.
fn failed(failure: Failure, message: String) -> Error {
    match failure {
        Failure::Dns => Error::DnsError {
            rcode: Some(message),
            info_code: None,
        },
        Failure::Timeout => Error::ConnectionTimeout,
        Failure::Refused => Error::ConnectionRefused,
        Failure::Unreachable => Error::DestinationUnavailable,
        Failure::Busy => Error::ConnectionLimitReached,
    }
}

/// The WASI error of a failed TLS handshake: a certificate the name or
/// the authorities do not vouch for is `TLS-certificate-error`.
fn tls_error(err: std::io::Error) -> Error {
    let certificate = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
    match certificate {
        true => Error::TlsCertificateError,
        false => Error::Tls(err),
    }
}

/// A store's `wasi:http` state: its context, and its hooks, which send
/// its outgoing requests by [`Outgoing`].
pub(super) struct Http {
    ctx: WasiHttpCtx,
    hooks: Hooks,
}

impl Http {
    /// For a store whose requests go by `outgoing`; `request` is the
    /// server's number for the request it answers, if it is one.
    pub(super) fn new(outgoing: Arc<Outgoing>, request: Option<u64>) -> Http {
        Http {
            ctx: WasiHttpCtx::new(),
            hooks: Hooks { outgoing, request },
        }
    }

    /// The view `wasi:http` takes, with the store's resource `table`.
    pub(super) fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            ctx: &mut self.ctx,
            table,
            hooks: &mut self.hooks,
        }
    }
}

/// The hooks of one store.
struct Hooks {
    outgoing: Arc<Outgoing>,
    request: Option<u64>,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        hyper::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), Error>> + Send>,
                    ),
                    Error,
                >,
            > + Send,
    > {
        let outgoing = self.outgoing.clone();
        let id = self.request;
        Box::new(async move {
            let (response, driven) = outgoing.send(id, request, options).await?;
            Ok((response, Box::new(driven) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
