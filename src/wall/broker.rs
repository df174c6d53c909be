//! The broker: the supervisor's answer to the sandbox's wish to reach out.
//! The sandbox has no network of its own (its namespace holds `lo`, and
//! `socket`, `connect` and `bind` are refused); when the policy allows a
//! destination, the supervisor — outside every namespace — takes its
//! questions ([`Ask`]) over a socket pair, checks each against the rules
//! ([`net::allowed`]), resolves the name itself, refuses any address of a
//! special class that no rule names ([`net::check_address`]), connects
//! with a timeout, and hands the connected socket in (`SCM_RIGHTS`), or
//! says why not ([`Answer`]). The broker never reads or writes what goes
//! over a connection: TLS is the sandbox's.
//!
//! The questions are hostile: each is bounded ([`net::MAX_ASK`]), and read
//! by one thread that answers refusals at once and hands the rest to at
//! most [`WORKERS`] threads that connect; when all are busy, the reader
//! waits, and so does the sandbox. None of it is the supervisor's main
//! thread, which keeps its signals, its deadline and its report. What was
//! asked is kept for the report, the first [`LISTED`] in full.

use crate::policy::Setting;
use crate::policy::net::{
    self, Answer, Ask, Failure, Host, Kind, Outcome, Reach, Reached, Refusal, Reply, Rule,
};
use nix::sys::socket::{ControlMessage, MsgFlags, recv, sendmsg};
use serde::Serialize;
use std::collections::HashMap;
use std::io::IoSlice;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The rules the broker answers by.
#[derive(Debug, Clone, Default)]
pub(super) struct Rules {
    /// `allow_http`.
    pub http: Vec<Rule>,
    /// `allow_tcp`.
    pub tcp: Vec<Rule>,
}

impl Rules {
    /// The policy's, if it allows anything: no rule, no broker.
    pub(super) fn of(policy: &crate::Policy) -> Option<Rules> {
        let rules = Rules {
            http: policy.allow_http.clone(),
            tcp: policy.allow_tcp.clone(),
        };
        (!rules.http.is_empty() || !rules.tcp.is_empty()).then_some(rules)
    }

    fn of_kind(&self, kind: Kind) -> (&[Rule], Setting) {
        match kind {
            Kind::Http(_) => (&self.http, Setting::AllowHttp),
            Kind::Tcp => (&self.tcp, Setting::AllowTcp),
        }
    }
}

/// Connections being made at once, at most.
pub const WORKERS: usize = 8;
/// Questions allowed and waiting for a worker, at most.
const QUEUED: usize = 64;
/// The longest a connection may take, whatever the asker says.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many questions the report lists one by one.
pub const LISTED: usize = 1000;

/// One question and what came of it, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    /// `http`, `https` or `tcp`.
    pub kind: &'static str,
    /// The host as the guest named it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address connected to (or refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `connected`, `refused` or `failed`.
    pub outcome: &'static str,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How long resolving and connecting took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
}

/// What the sandbox asked of the broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Network {
    /// The first [`LISTED`] questions, in the order answered.
    pub connections: Vec<Connection>,
    /// How many more were answered.
    pub unlisted: u64,
}

impl Network {
    fn add(&mut self, connection: Connection) {
        match self.connections.len() < LISTED {
            true => self.connections.push(connection),
            false => self.unlisted += 1,
        }
    }
}

/// A running broker.
#[derive(Debug)]
pub(super) struct Broker {
    network: Arc<Mutex<Network>>,
}

/// What the threads share.
struct Shared {
    channel: OwnedFd,
    rules: Rules,
    network: Arc<Mutex<Network>>,
}

impl Broker {
    /// Starts answering the sandbox's questions on `channel` by `rules`.
    /// The threads end when the sandbox's end of the channel is closed.
    pub(super) fn start(channel: OwnedFd, rules: Rules) -> std::io::Result<Broker> {
        let network = Arc::new(Mutex::new(Network::default()));
        let shared = Arc::new(Shared {
            channel,
            rules,
            network: network.clone(),
        });
        std::thread::Builder::new()
            .name("broker".into())
            .spawn(move || read_questions(&shared))?;
        Ok(Broker { network })
    }

    /// What was asked so far (the sandbox has ended: nothing more comes).
    pub(super) fn network(&self) -> Network {
        self.network.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

/// The reader: each question refused at once, or handed to a worker.
fn read_questions(shared: &Arc<Shared>) {
    let (jobs, queue) = mpsc::sync_channel::<Ask>(QUEUED);
    let queue = Arc::new(Mutex::new(queue));
    let idle = Arc::new(AtomicUsize::new(0));
    let mut workers = 0;
    let mut buf = vec![0u8; net::MAX_ASK + 1];
    loop {
        let n = match recv(shared.channel.as_raw_fd(), &mut buf, MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(0) => return,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        };
        let ask = match (n <= net::MAX_ASK).then(|| serde_json::from_slice::<Ask>(&buf[..n])) {
            Some(Ok(ask)) => ask,
            _ => {
                tracing::debug!("net: a malformed question from the sandbox ({n} bytes): ignored");
                continue;
            }
        };
        let (rules, setting) = shared.rules.of_kind(ask.kind);
        if let Err(refusal) = net::allowed(rules, ask.kind, &ask.host, ask.port) {
            let message = refusal.explained(setting, &ask.host, ask.port);
            shared.refuse(&ask, refusal, message, None);
            continue;
        }
        if idle.load(Ordering::Acquire) == 0 && workers < WORKERS {
            let (shared, queue, idle) = (shared.clone(), queue.clone(), idle.clone());
            let spawned = std::thread::Builder::new()
                .name("broker-connect".into())
                .spawn(move || connect_asked(&shared, &queue, &idle));
            workers += usize::from(spawned.is_ok());
        }
        if workers == 0 || jobs.send(ask).is_err() {
            return;
        }
    }
}

/// A worker: connects what it is handed, until the reader is gone.
fn connect_asked(shared: &Shared, queue: &Mutex<mpsc::Receiver<Ask>>, idle: &AtomicUsize) {
    loop {
        idle.fetch_add(1, Ordering::AcqRel);
        let ask = queue.lock().ok().and_then(|queue| queue.recv().ok());
        idle.fetch_sub(1, Ordering::AcqRel);
        let Some(ask) = ask else {
            return;
        };
        if !shared.connect(&ask) {
            return;
        }
    }
}

impl Shared {
    /// Resolves and connects `ask` (allowed by name), and answers; false
    /// when the sandbox is gone.
    fn connect(&self, ask: &Ask) -> bool {
        let started = Instant::now();
        let timeout = Duration::from_millis(ask.timeout_ms).clamp(Duration::from_millis(1), CONNECT_TIMEOUT);
        let deadline = started + timeout;
        let addresses: Vec<SocketAddr> = match &ask.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, ask.port)],
            Host::Name(name) => match (name.as_str(), ask.port).to_socket_addrs() {
                Ok(addresses) => addresses.collect(),
                Err(err) => return self.fail(ask, Failure::Dns, format!("{}: {err}", ask.host), started),
            },
        };
        let (rules, setting) = self.rules.of_kind(ask.kind);
        let mut refused: Option<(Refusal, SocketAddr)> = None;
        let mut failed: Option<std::io::Error> = None;
        for address in addresses {
            if let Err(refusal) = net::check_address(rules, ask.kind, address.ip(), ask.port) {
                refused.get_or_insert((refusal, address));
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failed = Some(std::io::ErrorKind::TimedOut.into());
                break;
            }
            match TcpStream::connect_timeout(&address, left) {
                Ok(stream) => return self.hand_in(ask, stream, address, started),
                Err(err) => failed = Some(err),
            }
        }
        match (failed, refused) {
            (Some(err), _) => {
                let failure = match err.kind() {
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Failure::Timeout,
                    std::io::ErrorKind::ConnectionRefused => Failure::Refused,
                    _ => Failure::Unreachable,
                };
                self.fail(ask, failure, format!("{}:{}: {err}", ask.host, ask.port), started)
            }
            (None, Some((refusal, address))) => {
                let message = refusal.explained(setting, &ask.host, ask.port);
                self.refuse(ask, refusal, message, Some(address))
            }
            (None, None) => self.fail(
                ask,
                Failure::Dns,
                format!("{}: the name has no address", ask.host),
                started,
            ),
        }
    }

    /// Hands the connected `stream` in, non-blocking and without Nagle's
    /// delay (the sandbox may not set either).
    fn hand_in(&self, ask: &Ask, stream: TcpStream, address: SocketAddr, started: Instant) -> bool {
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_nonblocking(true);
        tracing::debug!("net: {}:{} -> {}: {ms:.1} ms", ask.host, ask.port, address.ip());
        self.record(Connection {
            kind: kind_name(ask.kind),
            host: ask.host.to_string(),
            port: ask.port,
            address: Some(address.to_string()),
            outcome: "connected",
            message: None,
            connect_ms: Some(ms),
        });
        let fd = OwnedFd::from(stream);
        self.answer(ask.id, Outcome::Connected { address }, Some(fd.as_fd()))
    }

    fn refuse(&self, ask: &Ask, refusal: Refusal, message: String, address: Option<SocketAddr>) -> bool {
        tracing::debug!("net: {}:{}: refused: {message}", ask.host, ask.port);
        self.record(Connection {
            kind: kind_name(ask.kind),
            host: ask.host.to_string(),
            port: ask.port,
            address: address.map(|a| a.to_string()),
            outcome: "refused",
            message: Some(message.clone()),
            connect_ms: None,
        });
        self.answer(ask.id, Outcome::Refused { refusal, message }, None)
    }

    fn fail(&self, ask: &Ask, failure: Failure, message: String, started: Instant) -> bool {
        tracing::debug!("net: {message}");
        self.record(Connection {
            kind: kind_name(ask.kind),
            host: ask.host.to_string(),
            port: ask.port,
            address: None,
            outcome: "failed",
            message: Some(message.clone()),
            connect_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        });
        self.answer(ask.id, Outcome::Failed { failure, message }, None)
    }

    fn record(&self, connection: Connection) {
        if let Ok(mut network) = self.network.lock() {
            network.add(connection);
        }
    }

    /// Sends one answer (with the socket, if any); false when the sandbox
    /// is gone.
    fn answer(&self, id: u64, outcome: Outcome, socket: Option<std::os::fd::BorrowedFd<'_>>) -> bool {
        let Ok(bytes) = serde_json::to_vec(&Answer { id, outcome }) else {
            return true;
        };
        let fds = socket.map(|fd| [fd.as_raw_fd()]);
        let control: Vec<ControlMessage<'_>> = fds.iter().map(|fds| ControlMessage::ScmRights(fds)).collect();
        loop {
            match sendmsg::<()>(
                self.channel.as_raw_fd(),
                &[IoSlice::new(&bytes)],
                &control,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return true,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Http(net::Scheme::Http) => "http",
        Kind::Http(net::Scheme::Https) => "https",
        Kind::Tcp => "tcp",
    }
}

/// The sandbox's side of the broker: sends each question with a number of
/// its own, and a thread of its own reads the answers, with their sockets,
/// and hands each to the reply waiting for its number. An answer nobody
/// waits for any more is dropped, its socket closed.
#[derive(Debug)]
pub struct BrokerClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    channel: OwnedFd,
    next: AtomicU64,
    waiting: Mutex<Waiting>,
}

impl std::fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInner")
            .field("channel", &self.channel)
            .finish()
    }
}

#[derive(Default)]
struct Waiting {
    replies: HashMap<u64, Reply>,
    /// The broker closed its end: every question fails at once.
    gone: bool,
}

impl BrokerClient {
    /// The client on the sandbox's end of the channel
    /// ([`super::Sandbox::take_broker`]); starts its reading thread.
    pub fn new(channel: OwnedFd) -> std::io::Result<BrokerClient> {
        let inner = Arc::new(ClientInner {
            channel,
            next: AtomicU64::new(1),
            waiting: Mutex::new(Waiting::default()),
        });
        let reader = inner.clone();
        std::thread::Builder::new()
            .name("broker-answers".into())
            .spawn(move || reader.read_answers())?;
        Ok(BrokerClient { inner })
    }
}

impl ClientInner {
    fn read_answers(&self) {
        let mut buf = vec![0u8; net::MAX_ANSWER];
        loop {
            match crate::sys::recv_with_fds(self.channel.as_fd(), &mut buf) {
                Ok((0, _)) => break,
                Ok((n, mut sockets)) => {
                    let Ok(answer) = serde_json::from_slice::<Answer>(&buf[..n]) else {
                        continue;
                    };
                    let reply = self
                        .waiting
                        .lock()
                        .ok()
                        .and_then(|mut w| w.replies.remove(&answer.id));
                    if let Some(reply) = reply {
                        let socket = (!sockets.is_empty()).then(|| sockets.swap_remove(0));
                        reply(Ok(Reached {
                            outcome: answer.outcome,
                            socket,
                        }));
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        let replies = match self.waiting.lock() {
            Ok(mut waiting) => {
                waiting.gone = true;
                std::mem::take(&mut waiting.replies)
            }
            Err(_) => return,
        };
        for reply in replies.into_values() {
            reply(Err(GONE.into()));
        }
    }
}

const GONE: &str = "the network broker is gone";

impl Reach for BrokerClient {
    fn ask(&self, kind: Kind, host: Host, port: u16, timeout: Duration, reply: Reply) {
        let inner = &self.inner;
        let id = inner.next.fetch_add(1, Ordering::Relaxed);
        let ask = Ask {
            id,
            kind,
            host,
            port,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let Ok(bytes) = serde_json::to_vec(&ask) else {
            return reply(Err("the question does not serialize".into()));
        };
        match inner.waiting.lock() {
            Ok(mut waiting) if !waiting.gone => {
                waiting.replies.insert(id, reply);
            }
            _ => return reply(Err(GONE.into())),
        }
        let sent = loop {
            match nix::unistd::write(&inner.channel, &bytes) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        if sent.is_err() {
            let reply = inner.waiting.lock().ok().and_then(|mut w| w.replies.remove(&id));
            if let Some(reply) = reply {
                reply(Err(GONE.into()));
            }
        }
    }
}
