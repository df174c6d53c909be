//! The server's metrics, for `GET /metrics` of the admin listener: kept
//! only when there is one, encoded by `prometheus-client` in the text
//! format of OpenMetrics (which Prometheus asks for), or in Prometheus's
//! older text format for a client that does not ask ([`Format`]).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `wsandbox_http_requests_total` | counter | `route`, `status` |
//! | `wsandbox_http_request_duration_seconds` | histogram | `route` |
//! | `wsandbox_http_requests_in_flight` | gauge | |
//! | `wsandbox_http_queue_depth` | gauge | |
//! | `wsandbox_instance_traps_total` | counter | `route` |
//! | `wsandbox_instance_timeouts_total` | counter | `route` |
//! | `wsandbox_instance_memory_bytes` | histogram | |
//! | `wsandbox_build_info` | gauge, 1 | `version`, `wasmtime` |
//! | `process_cpu_seconds_total` | counter | |
//! | `process_resident_memory_bytes` | gauge | |
//!
//! A request counts once it ends: with the status its client got, for as
//! long as it took from its head to the end of its answer's body. One
//! whose client left before an answer counts with status 499 (nginx's
//! "client closed request"); one with no route, with route `none`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The route of a request that matched none.
pub(super) const NO_ROUTE: &str = "none";

/// The status counted for a request whose client left before it was
/// answered.
pub(super) const CLIENT_LEFT: u16 = 499;

/// The bounds of the request durations' buckets, in seconds.
const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The bounds of the instances' memory buckets: 64 KiB (one wasm page)
/// times powers of 4, up to 4 GiB.
fn memory_buckets() -> impl Iterator<Item = f64> {
    (0..9).map(|i| f64::from(1u32 << 16) * 4f64.powi(i))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
}

/// The server's metrics: cheap to update from any thread.
#[derive(Debug)]
pub(super) struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    durations: Family<Route, Histogram>,
    in_flight: Gauge,
    /// The requests waiting for an instance (kept by the admission).
    pub(super) queued: Gauge,
    traps: Family<Route, Counter>,
    timeouts: Family<Route, Counter>,
    memory: Histogram,
}

impl Metrics {
    /// The metrics of a server whose routes are `routes` (each counted
    /// from zero from the start).
    pub(super) fn new(routes: &[&'static str]) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RouteStatus, Counter>::default();
        let durations = Family::<Route, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        let traps = Family::<Route, Counter>::default();
        let timeouts = Family::<Route, Counter>::default();
        for &route in routes {
            let route = Route { route };
            drop(durations.get_or_create(&route));
            drop(traps.get_or_create(&route));
            drop(timeouts.get_or_create(&route));
        }
        let in_flight = Gauge::default();
        let queued = Gauge::default();
        let memory = Histogram::new(memory_buckets());
        registry.register(
            "wsandbox_http_requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "wsandbox_http_request_duration",
            "Time from a request's head to the end of its answer, by route",
            prometheus_client::registry::Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "wsandbox_http_requests_in_flight",
            "Requests under way: waiting for an instance, or being answered",
            in_flight.clone(),
        );
        registry.register(
            "wsandbox_http_queue_depth",
            "Requests waiting for an instance",
            queued.clone(),
        );
        registry.register(
            "wsandbox_instance_traps",
            "Instances that trapped (a limit of memory or fuel included), by route",
            traps.clone(),
        );
        registry.register(
            "wsandbox_instance_timeouts",
            "Instances stopped at the timeout, by route",
            timeouts.clone(),
        );
        registry.register_with_unit(
            "wsandbox_instance_memory",
            "Each instance's peak linear memory",
            prometheus_client::registry::Unit::Bytes,
            memory.clone(),
        );
        registry.register_collector(Box::new(Process));
        Metrics {
            registry,
            requests,
            durations,
            in_flight,
            queued,
            traps,
            timeouts,
            memory,
        }
    }

    /// A request begins: it is in flight until it [`Metrics::ended`].
    pub(super) fn began(&self) {
        self.in_flight.inc();
    }

    /// A request on `route` ended, its client having got `status`, `took`
    /// after its head came.
    pub(super) fn ended(&self, route: &'static str, status: u16, took: Duration) {
        self.requests.get_or_create(&RouteStatus { route, status }).inc();
        self.durations
            .get_or_create(&Route { route })
            .observe(took.as_secs_f64());
        self.in_flight.dec();
    }

    /// An instance of `route` trapped.
    pub(super) fn trapped(&self, route: &'static str) {
        self.traps.get_or_create(&Route { route }).inc();
    }

    /// An instance of `route` was stopped at its timeout.
    pub(super) fn timed_out(&self, route: &'static str) {
        self.timeouts.get_or_create(&Route { route }).inc();
    }

    /// An instance ended, its linear memory having grown to `bytes`.
    pub(super) fn instance_memory(&self, bytes: u64) {
        self.memory.observe(bytes as f64);
    }

    /// Everything, in the text format of OpenMetrics, or in Prometheus's
    /// older one (`text/plain; version=0.0.4`: its counters' families are
    /// named with their `_total`, and it has no units nor `# EOF`).
    pub(super) fn encode(&self, format: Format) -> String {
        let mut text = String::with_capacity(8 << 10);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        match format {
            Format::OpenMetrics => text,
            Format::Prometheus => prometheus_text(&text),
        }
    }
}

/// The text formats of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
    /// Prometheus's own (`text/plain; version=0.0.4`).
    Prometheus,
}

impl Format {
    /// The format a client that sends `accept` (its `Accept` header)
    /// reads: OpenMetrics if it says it does, else Prometheus's.
    pub(super) fn accepted(accept: Option<&str>) -> Format {
        match accept.is_some_and(|accept| accept.contains("application/openmetrics-text")) {
            true => Format::OpenMetrics,
            false => Format::Prometheus,
        }
    }

    /// Its media type.
    pub(super) fn media_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// `openmetrics`, in Prometheus's text format: the `# HELP` and `# TYPE`
/// of a counter name its samples' name (with `_total`); no `# UNIT`, no
/// `# EOF`.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|tag| Some((tag, line.strip_prefix(tag)?.split_once(' ')?)));
        match described {
            Some((tag, (name, rest))) if counters.contains(name) => {
                text.push_str(&format!("{tag}{name}_total {rest}\n"));
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// What is read at each scrape: the build's versions, and the process's
/// own CPU time and resident memory (from `/proc/self/statm`, the one
/// file of procfs the sandbox of a server may read).
#[derive(Debug)]
struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let build = ConstGauge::new(1i64);
        let labels = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("wasmtime", env!("WSANDBOX_WASMTIME_VERSION")),
        ];
        let mut metric = encoder.encode_descriptor(
            "wsandbox_build_info",
            "The versions of wsandbox and of its wasmtime.",
            None,
            build.metric_type(),
        )?;
        build.encode(metric.encode_family(&labels)?)?;
        if let Some(cpu) = crate::sys::process_cpu_time() {
            let counter = ConstCounter::new(cpu.as_secs_f64());
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "CPU time of the server's process, user and system.",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        if let Some(bytes) = crate::sys::resident_bytes() {
            let gauge = ConstGauge::new(i64::try_from(bytes).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory of the server's process.",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_request_counts_once_with_its_status_and_route() {
        let metrics = Arc::new(Metrics::new(&["/api", "/"]));
        metrics.began();
        metrics.began();
        assert_eq!(metrics.in_flight.get(), 2);
        metrics.ended("/api", 200, Duration::from_millis(3));
        metrics.ended("/", CLIENT_LEFT, Duration::from_millis(1));
        metrics.trapped("/api");
        metrics.instance_memory(3 << 16);
        let text = metrics.encode(Format::OpenMetrics);
        assert_eq!(metrics.in_flight.get(), 0);
        for line in [
            "wsandbox_http_requests_total{route=\"/api\",status=\"200\"} 1",
            "wsandbox_http_requests_total{route=\"/\",status=\"499\"} 1",
            "wsandbox_http_request_duration_seconds_count{route=\"/api\"} 1",
            "wsandbox_instance_traps_total{route=\"/api\"} 1",
            "wsandbox_instance_traps_total{route=\"/\"} 0",
            "wsandbox_instance_timeouts_total{route=\"/api\"} 0",
            "wsandbox_instance_memory_bytes_bucket{le=\"262144.0\"} 1",
            "wsandbox_http_queue_depth 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(text.contains("wsandbox_build_info{version=\""), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let old = metrics.encode(Format::Prometheus);
        assert!(
            old.contains("\n# TYPE wsandbox_http_requests_total counter\n"),
            "{old}"
        );
        assert!(old.contains("\n# HELP process_cpu_seconds_total "), "{old}");
        assert!(!old.contains("# EOF") && !old.contains("# UNIT"), "{old}");
        // The same samples (but the process's, which move between reads).
        let samples = |text: &str| -> Vec<String> {
            let ours = |l: &&str| !l.starts_with('#') && !l.starts_with("process_");
            text.lines().filter(ours).map(String::from).collect()
        };
        assert_eq!(samples(&old), samples(&text));
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4";
        assert_eq!(Format::accepted(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::accepted(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::accepted(None), Format::Prometheus);
    }
}
