//! Reaching out: the destinations a guest may reach (`--allow-http`,
//! `--allow-tcp`), the addresses that are special, and the one decision
//! made from them, by the broker outside the walls (and, for a clear
//! message without a round trip, by the engine inside).
//!
//! A rule is `HOST[:PORT]`: `HOST` a DNS name (`api.example.com`), every
//! name below a domain (`*.example.com`, not the domain itself), any name
//! (`*`), an IP literal (`203.0.113.7`, `[2001:db8::1]`) or a CIDR range
//! (`198.51.100.0/24`); `PORT` a number or `*` (any). Without a port, an
//! HTTP rule allows the scheme's own (80 for `http://`, 443 for
//! `https://`); a TCP rule needs one.
//!
//! A destination is allowed when a rule of its kind matches its host as
//! the guest named it (a name rule a name, an IP or CIDR rule an IP
//! literal) and its port. Then each address it is reached at is checked
//! too: a [`Special`] address (loopback, link-local — cloud metadata —,
//! private, multicast, unspecified, …) is reached only when an IP or CIDR
//! rule of the same kind and port names it. So an allowed name that
//! resolves to `127.0.0.1` or `169.254.169.254` (DNS rebinding) reaches
//! nothing, while `--allow-http 127.0.0.1:8080` reaches the local server
//! it names, and `--allow-http db.internal --allow-http 10.1.0.0/16` a
//! private service by its name.
//!
//! The broker's questions and answers ([`Ask`], [`Answer`]) are here too:
//! the two sides of the wall speak them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a rule allows: `wasi:http` requests, or `wasi:sockets` TCP
/// connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An HTTP request, by this scheme.
    Http(Scheme),
    /// A TCP connection.
    Tcp,
}

/// The scheme of an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `http://`, port 80 by default.
    Http,
    /// `https://`, port 443 by default.
    Https,
}

impl Scheme {
    /// Its port when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `http` or `https`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The host part of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Any name (`*`); never an IP literal, never a special address.
    AnyName,
    /// This DNS name (lowercase, without a final dot).
    Name(String),
    /// Every name below this domain (`*.example.com` keeps `example.com`).
    Below(String),
    /// This address.
    Ip(IpAddr),
    /// The addresses of this range (its network address, prefix length).
    Cidr(IpAddr, u8),
}

/// The port part of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// The scheme's own (HTTP rules only).
    Scheme,
    /// Any port (`:*`).
    Any,
    /// This one.
    Is(u16),
}

/// One `--allow-http` or `--allow-tcp` rule. In a policy file, the same
/// text (`allow_http = ["api.example.com", "127.0.0.1:8080"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Which hosts.
    pub host: HostPattern,
    /// Which ports.
    pub port: PortPattern,
}

/// The longest DNS name.
const MAX_NAME: usize = 253;

impl Rule {
    /// Parses `HOST[:PORT]`; `tcp` rules need a port.
    pub fn parse(text: &str, tcp: bool) -> Result<Rule, String> {
        let text = text.trim();
        let bad = |why: &str| format!("{text:?}: {why}");
        let (host, port) = split_host_port(text).map_err(|why| bad(&why))?;
        let port = match port {
            None if tcp => return Err(bad("a TCP rule needs a port (HOST:PORT)")),
            None => PortPattern::Scheme,
            Some("*") => PortPattern::Any,
            Some(port) => match port.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port must be 1 to 65535, or *")),
                Ok(port) => PortPattern::Is(port),
            },
        };
        let host = parse_host_pattern(host).map_err(|why| bad(&why))?;
        Ok(Rule { host, port })
    }

    /// Whether the rule matches `host` (as the guest named it) at `port`.
    fn matches(&self, kind: Kind, host: &Host, port: u16) -> bool {
        self.port_matches(kind, port)
            && match (&self.host, host) {
                (HostPattern::AnyName, Host::Name(_)) => true,
                (HostPattern::Name(rule), Host::Name(name)) => rule == name,
                (HostPattern::Below(domain), Host::Name(name)) => name
                    .strip_suffix(domain.as_str())
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                (HostPattern::Ip(_) | HostPattern::Cidr(..), Host::Ip(ip)) => self.names(*ip),
                _ => false,
            }
    }

    fn port_matches(&self, kind: Kind, port: u16) -> bool {
        match (self.port, kind) {
            (PortPattern::Any, _) => true,
            (PortPattern::Is(p), _) => p == port,
            (PortPattern::Scheme, Kind::Http(scheme)) => scheme.default_port() == port,
            (PortPattern::Scheme, Kind::Tcp) => false,
        }
    }

    /// Whether the rule names address `ip` itself (an IP or CIDR rule).
    fn names(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match self.host {
            HostPattern::Ip(rule) => canonical(rule) == ip,
            HostPattern::Cidr(net, len) => in_range(ip, canonical(net), len),
            _ => false,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracket = matches!(
            self.host,
            HostPattern::Ip(IpAddr::V6(_)) | HostPattern::Cidr(IpAddr::V6(_), _)
        ) && self.port != PortPattern::Scheme;
        let host = match &self.host {
            HostPattern::AnyName => "*".to_string(),
            HostPattern::Name(name) => name.clone(),
            HostPattern::Below(domain) => format!("*.{domain}"),
            HostPattern::Ip(ip) => ip.to_string(),
            HostPattern::Cidr(net, len) => format!("{net}/{len}"),
        };
        match bracket {
            true => write!(f, "[{host}]")?,
            false => f.write_str(&host)?,
        }
        match self.port {
            PortPattern::Scheme => Ok(()),
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Is(port) => write!(f, ":{port}"),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        out.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(input: D) -> Result<Rule, D::Error> {
        let text = String::deserialize(input)?;
        Rule::parse(&text, false).map_err(serde::de::Error::custom)
    }
}

/// Splits `HOST[:PORT]`: `[v6]:port`, `[v6]`, a bare IPv6 address or
/// range (no port), `host:port`, `host`.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an unclosed [")?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("text after ]".into()),
            },
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            Ok((host, Some(port)))
        }
        // An IPv6 address or range without brackets takes no port.
        _ => Ok((text, None)),
    }
}

fn parse_host_pattern(host: &str) -> Result<HostPattern, String> {
    if host.is_empty() {
        return Err("no host".into());
    }
    if let Some((net, len)) = host.split_once('/') {
        let net: IpAddr = net.parse().map_err(|_| "a range must be ADDRESS/LENGTH")?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("the prefix length must be 0 to {max}"))?;
        return Ok(HostPattern::Cidr(network(net, len), len));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    if host == "*" {
        return Ok(HostPattern::AnyName);
    }
    if let Some(domain) = host.strip_prefix("*.") {
        return Ok(HostPattern::Below(dns_name(domain)?));
    }
    if host.contains('*') {
        return Err("a wildcard only as `*` or `*.DOMAIN`".into());
    }
    Ok(HostPattern::Name(dns_name(host)?))
}

/// `name` as a rule or a request holds it: lowercase, no final dot; letters,
/// digits, `-` (not first or last in a label) and `_`, labels of 1 to 63,
/// at most 253 in all.
fn dns_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > MAX_NAME || !name.split('.').all(label_ok) {
        return Err(format!("{name:?} is not a host name"));
    }
    Ok(name)
}

/// A destination's host, as the guest named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Host {
    /// A DNS name (normalized: lowercase, no final dot).
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl Host {
    /// Parses the host of a URL's authority or of a socket address: an IP
    /// literal (IPv6 in brackets or not), or a DNS name.
    pub fn parse(text: &str) -> Result<Host, String> {
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Ok(Host::Ip(ip)),
            Err(_) => dns_name(text).map(Host::Name),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// An address class that no name may lead to unless a rule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Special {
    /// `0.0.0.0/8`, `::` (which reach the host itself).
    Unspecified,
    /// `127.0.0.0/8`, `::1`: the host's own services.
    Loopback,
    /// `169.254.0.0/16` (cloud metadata), `fe80::/10`.
    LinkLocal,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`.
    Private,
    /// `100.64.0.0/10`: carrier-grade NAT, a provider's own network.
    Shared,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `240.0.0.0/4` and `255.255.255.255`.
    Reserved,
}

impl Special {
    /// As messages name it: "a loopback address".
    pub fn described(self) -> &'static str {
        match self {
            Special::Unspecified => "an unspecified address",
            Special::Loopback => "a loopback address",
            Special::LinkLocal => "a link-local address (cloud metadata lives there)",
            Special::Private => "a private address",
            Special::Shared => "a shared (carrier-grade NAT) address",
            Special::Multicast => "a multicast address",
            Special::Reserved => "a reserved address",
        }
    }
}

/// The special class of `ip`, if it has one. An IPv6 address that carries
/// an IPv4 one (`::ffff:a.b.c.d`, `64:ff9b::a.b.c.d`) is classified as
/// that IPv4 address.
pub fn classify(ip: IpAddr) -> Option<Special> {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Special> {
    let [a, b, ..] = ip.octets();
    match (a, b) {
        (0, _) => Some(Special::Unspecified),
        (127, _) => Some(Special::Loopback),
        (169, 254) => Some(Special::LinkLocal),
        (10, _) | (192, 168) => Some(Special::Private),
        (172, b) if (16..32).contains(&b) => Some(Special::Private),
        (100, b) if (64..128).contains(&b) => Some(Special::Shared),
        (224..=239, _) => Some(Special::Multicast),
        (240..=255, _) => Some(Special::Reserved),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Special> {
    let first = ip.segments()[0];
    match () {
        _ if ip.is_unspecified() => Some(Special::Unspecified),
        _ if ip.is_loopback() => Some(Special::Loopback),
        _ if first & 0xffc0 == 0xfe80 => Some(Special::LinkLocal),
        _ if first & 0xfe00 == 0xfc00 => Some(Special::Private),
        _ if first & 0xff00 == 0xff00 => Some(Special::Multicast),
        // Site-local (deprecated, fec0::/10): private in practice.
        _ if first & 0xffc0 == 0xfec0 => Some(Special::Private),
        _ => None,
    }
}

/// `ip` with an embedded IPv4 address taken out: IPv4-mapped
/// (`::ffff:0:0/96`) and NAT64 (`64:ff9b::/96`) addresses are that IPv4
/// address's way.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            match s {
                [0, 0, 0, 0, 0, 0xffff, ..] | [0x64, 0xff9b, 0, 0, 0, 0, ..] => IpAddr::V4(embedded),
                _ => ip,
            }
        }
        ip => ip,
    }
}

/// The network address of `ip`/`len`.
fn network(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

fn in_range(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    ip.is_ipv4() == net.is_ipv4() && network(ip, len) == net
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No rule of the kind matches the host and port.
    NoRule,
    /// It is reached at a special address that no rule names.
    Special {
        /// The address.
        address: IpAddr,
        /// Its class.
        class: Special,
    },
}

impl Refusal {
    /// The refusal in one line, naming the setting that would allow it
    /// (`setting` is `--allow-http` or `allow_http`).
    pub fn explained(&self, setting: impl fmt::Display, host: &Host, port: u16) -> String {
        match self {
            Refusal::NoRule => format!("no {setting} rule for {host}:{port}"),
            Refusal::Special { address, class } => {
                let named = match address {
                    IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                    v4 => format!("{v4}:{port}"),
                };
                let at = match host {
                    Host::Ip(_) => String::new(),
                    Host::Name(_) => format!(" resolves to {address}, which is"),
                };
                format!(
                    "{host}:{port}{at} {}: allowed only by a rule that names it ({setting} {named})",
                    class.described()
                )
            }
        }
    }
}

/// Whether a guest may reach `host` at `port` for `kind`, under `rules` (of
/// that kind): the host as named, before any address is known. An IP
/// literal is checked as an address too ([`check_address`]).
pub fn allowed(rules: &[Rule], kind: Kind, host: &Host, port: u16) -> Result<(), Refusal> {
    if !rules.iter().any(|rule| rule.matches(kind, host, port)) {
        return Err(Refusal::NoRule);
    }
    match host {
        Host::Ip(ip) => check_address(rules, kind, *ip, port),
        Host::Name(_) => Ok(()),
    }
}

/// Whether an allowed destination may be reached at address `ip`: any
/// address that is not [`Special`]; a special one only when an IP or CIDR
/// rule of `rules` with a matching port names it.
pub fn check_address(rules: &[Rule], kind: Kind, ip: IpAddr, port: u16) -> Result<(), Refusal> {
    match classify(ip) {
        None => Ok(()),
        Some(_) if rules.iter().any(|r| r.port_matches(kind, port) && r.names(ip)) => Ok(()),
        Some(class) => Err(Refusal::Special {
            address: canonical(ip),
            class,
        }),
    }
}

/// A question to the broker: a connection to `host`:`port` for `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// The asker's number for it, echoed in the answer.
    pub id: u64,
    /// What for.
    pub kind: Kind,
    /// Where to.
    pub host: Host,
    /// Which port.
    pub port: u16,
    /// How long the asker waits for the connection, in milliseconds (the
    /// broker's own bound applies too).
    pub timeout_ms: u64,
}

/// The broker's answer to an [`Ask`]; a connected socket comes with
/// [`Outcome::Connected`] (`SCM_RIGHTS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The question's number.
    pub id: u64,
    /// What came of it.
    pub outcome: Outcome,
}

/// What came of a question to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Connected to this address: the socket comes with the answer.
    Connected {
        /// The address connected to.
        address: std::net::SocketAddr,
    },
    /// Refused by the rules: why, in one line.
    Refused {
        /// Why.
        refusal: Refusal,
        /// The refusal explained.
        message: String,
    },
    /// Allowed, but the connection failed.
    Failed {
        /// How.
        failure: Failure,
        /// The system's words.
        message: String,
    },
}

/// How an allowed connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The name did not resolve.
    Dns,
    /// No answer within the timeout.
    Timeout,
    /// The host refused the connection.
    Refused,
    /// The host or its network cannot be reached.
    Unreachable,
    /// The broker has too much to do (or the question was malformed).
    Busy,
}

/// What the broker made of a question: its answer, and with a
/// [`Outcome::Connected`], the connected socket (non-blocking).
#[derive(Debug)]
pub struct Reached {
    /// The answer.
    pub outcome: Outcome,
    /// The socket, if one came.
    pub socket: Option<std::os::fd::OwnedFd>,
}

/// Called once with the broker's answer, or with why there is none (the
/// broker is gone).
pub type Reply = Box<dyn FnOnce(Result<Reached, String>) + Send>;

/// A way to the broker outside the walls: what the engine asks for its
/// guest's connections through (the wall's client,
/// [`crate::wall::BrokerClient`]).
pub trait Reach: Send + Sync {
    /// Asks for a connection to `host`:`port` for `kind`, made within
    /// `timeout`; `reply` is called once, from any thread, with the answer.
    fn ask(&self, kind: Kind, host: Host, port: u16, timeout: std::time::Duration, reply: Reply);
}

/// The largest question, in bytes (a name is at most 253).
pub const MAX_ASK: usize = 1024;
/// The largest answer, in bytes.
pub const MAX_ANSWER: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        Rule::parse(text, false).unwrap()
    }
    fn name(text: &str) -> Host {
        Host::parse(text).unwrap()
    }
    const HTTP: Kind = Kind::Http(Scheme::Http);
    const HTTPS: Kind = Kind::Http(Scheme::Https);

    #[test]
    fn rules_parse_and_print_as_written() {
        for text in [
            "api.example.com",
            "api.example.com:8080",
            "*.example.com",
            "*",
            "*:*",
            "203.0.113.7:443",
            "198.51.100.0/24",
            "[2001:db8::1]:443",
            "2001:db8::1",
            "[2001:db8::/32]:*",
            "127.0.0.1:8080",
        ] {
            assert_eq!(rule(text).to_string(), text, "{text}");
        }
        assert_eq!(rule("API.Example.COM.").to_string(), "api.example.com");
        assert_eq!(rule("10.1.2.3/8").to_string(), "10.0.0.0/8");
        for bad in [
            "",
            ":80",
            "a:0",
            "a:65536",
            "a:x",
            "a b",
            "*a.com",
            "a.*.com",
            "1.2.3.4/33",
            "[::1",
            "[::1]x",
            "-",
            "a..b",
        ] {
            assert!(Rule::parse(bad, false).is_err(), "{bad:?} parsed");
        }
        assert!(
            Rule::parse("db.example.com", true).is_err(),
            "a TCP rule without a port"
        );
        assert!(Rule::parse("db.example.com:5432", true).is_ok());
    }

    #[test]
    fn a_rule_without_a_port_allows_the_schemes_own() {
        let rules = [rule("api.example.com")];
        assert_eq!(allowed(&rules, HTTP, &name("api.example.com"), 80), Ok(()));
        assert_eq!(allowed(&rules, HTTPS, &name("api.example.com"), 443), Ok(()));
        assert_eq!(
            allowed(&rules, HTTPS, &name("api.example.com"), 80),
            Err(Refusal::NoRule)
        );
        assert_eq!(
            allowed(&rules, HTTP, &name("api.example.com"), 8080),
            Err(Refusal::NoRule)
        );
        let any = [rule("api.example.com:*")];
        assert_eq!(allowed(&any, HTTP, &name("API.example.com."), 8080), Ok(()));
    }

    #[test]
    fn names_match_exactly_or_below_a_domain() {
        let rules = [rule("*.example.com")];
        assert_eq!(allowed(&rules, HTTP, &name("a.example.com"), 80), Ok(()));
        assert_eq!(allowed(&rules, HTTP, &name("a.b.example.com"), 80), Ok(()));
        for refused in [
            "example.com",
            "badexample.com",
            "example.com.evil.net",
            "a.example.co",
        ] {
            assert_eq!(
                allowed(&rules, HTTP, &name(refused), 80),
                Err(Refusal::NoRule),
                "{refused}"
            );
        }
        let exact = [rule("example.com")];
        assert_eq!(
            allowed(&exact, HTTP, &name("www.example.com"), 80),
            Err(Refusal::NoRule)
        );
        // A name rule never allows an IP literal, nor `*`.
        let any = [rule("*")];
        assert_eq!(
            allowed(&any, HTTP, &name("203.0.113.7"), 80),
            Err(Refusal::NoRule)
        );
        assert_eq!(allowed(&any, HTTP, &name("anything.example"), 80), Ok(()));
    }

    #[test]
    fn ip_and_cidr_rules_allow_literals_in_them() {
        let rules = [rule("198.51.100.0/24:*"), rule("[2001:db8::1]:443")];
        assert_eq!(allowed(&rules, HTTP, &name("198.51.100.200"), 9000), Ok(()));
        assert_eq!(
            allowed(&rules, HTTP, &name("198.51.101.1"), 9000),
            Err(Refusal::NoRule)
        );
        assert_eq!(allowed(&rules, HTTPS, &name("[2001:db8::1]"), 443), Ok(()));
        assert_eq!(
            allowed(&rules, HTTPS, &name("[2001:db8::2]"), 443),
            Err(Refusal::NoRule)
        );
    }

    #[test]
    fn special_addresses_are_classified() {
        let class = |text: &str| classify(text.parse().unwrap());
        for (ip, expected) in [
            ("0.0.0.0", Some(Special::Unspecified)),
            ("127.0.0.1", Some(Special::Loopback)),
            ("127.255.0.9", Some(Special::Loopback)),
            ("169.254.169.254", Some(Special::LinkLocal)),
            ("10.0.0.1", Some(Special::Private)),
            ("172.16.0.1", Some(Special::Private)),
            ("172.31.255.255", Some(Special::Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Special::Private)),
            ("100.64.0.1", Some(Special::Shared)),
            ("100.128.0.1", None),
            ("224.0.0.1", Some(Special::Multicast)),
            ("255.255.255.255", Some(Special::Reserved)),
            ("240.0.0.1", Some(Special::Reserved)),
            ("8.8.8.8", None),
            ("203.0.113.7", None),
            ("::", Some(Special::Unspecified)),
            ("::1", Some(Special::Loopback)),
            ("fe80::1", Some(Special::LinkLocal)),
            ("fd00::1", Some(Special::Private)),
            ("fc00::1", Some(Special::Private)),
            ("ff02::1", Some(Special::Multicast)),
            ("::ffff:127.0.0.1", Some(Special::Loopback)),
            ("::ffff:169.254.169.254", Some(Special::LinkLocal)),
            ("64:ff9b::10.0.0.1", Some(Special::Private)),
            ("::ffff:8.8.8.8", None),
            ("2001:db8::1", None),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn a_name_that_resolves_to_a_special_address_needs_a_rule_naming_it() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        // `localhost` alone: the name is allowed, its loopback address not.
        let name_only = [rule("localhost:8080")];
        assert_eq!(allowed(&name_only, HTTP, &name("localhost"), 8080), Ok(()));
        assert_eq!(
            check_address(&name_only, HTTP, ip("127.0.0.1"), 8080),
            Err(Refusal::Special {
                address: ip("127.0.0.1"),
                class: Special::Loopback
            })
        );
        // A rebinding to metadata, even through a mapped IPv6 address.
        assert_eq!(
            check_address(&name_only, HTTP, ip("::ffff:169.254.169.254"), 8080),
            Err(Refusal::Special {
                address: ip("169.254.169.254"),
                class: Special::LinkLocal
            })
        );
        // The name and the address, each named: allowed.
        let both = [rule("localhost:8080"), rule("127.0.0.1:8080")];
        assert_eq!(check_address(&both, HTTP, ip("127.0.0.1"), 8080), Ok(()));
        // ... at the rule's port only.
        assert!(check_address(&both, HTTP, ip("127.0.0.1"), 8081).is_err());
        // The address alone does not allow the name.
        let address_only = [rule("127.0.0.1:8080")];
        assert_eq!(
            allowed(&address_only, HTTP, &name("localhost"), 8080),
            Err(Refusal::NoRule)
        );
        assert_eq!(allowed(&address_only, HTTP, &name("127.0.0.1"), 8080), Ok(()));
        // A public address needs no naming; `*` never reaches a special one.
        assert_eq!(check_address(&[rule("*")], HTTP, ip("203.0.113.7"), 80), Ok(()));
        assert!(check_address(&[rule("*:*")], HTTP, ip("10.1.2.3"), 80).is_err());
        // A private range named for a private name.
        let private = [rule("db.internal:5432"), rule("10.1.0.0/16:5432")];
        assert_eq!(check_address(&private, Kind::Tcp, ip("10.1.2.3"), 5432), Ok(()));
        assert!(check_address(&private, Kind::Tcp, ip("10.2.0.1"), 5432).is_err());
    }

    #[test]
    fn refusals_name_the_missing_rule() {
        let host = name("evil.example");
        assert_eq!(
            Refusal::NoRule.explained("--allow-http", &host, 80),
            "no --allow-http rule for evil.example:80"
        );
        let special = Refusal::Special {
            address: "127.0.0.1".parse().unwrap(),
            class: Special::Loopback,
        };
        assert_eq!(
            special.explained("--allow-http", &name("localhost"), 8080),
            "localhost:8080 resolves to 127.0.0.1, which is a loopback address: \
             allowed only by a rule that names it (--allow-http 127.0.0.1:8080)"
        );
    }

    #[test]
    fn questions_and_answers_fit_their_bounds() {
        let ask = Ask {
            id: u64::MAX,
            kind: Kind::Http(Scheme::Https),
            host: Host::Name(
                "a".repeat(63) + "." + &"b".repeat(63) + "." + &"c".repeat(63) + "." + &"d".repeat(61),
            ),
            port: 65535,
            timeout_ms: u64::MAX,
        };
        assert!(serde_json::to_vec(&ask).unwrap().len() <= MAX_ASK);
        let refused = Answer {
            id: u64::MAX,
            outcome: Outcome::Refused {
                refusal: Refusal::NoRule,
                message: Refusal::NoRule.explained("--allow-http", &ask.host, 65535),
            },
        };
        assert!(serde_json::to_vec(&refused).unwrap().len() <= MAX_ANSWER);
    }
}
