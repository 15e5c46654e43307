//! `/metrics` in the Prometheus text format, through the `prometheus` crate.
//!
//! Counters are read from the same atomics `/varz` reports, at scrape time, so the two always
//! agree. The one per-event metric, the flush-latency histogram, is observed once per write
//! batch by each connection's writer (atomic adds, no lock), never per message.

use super::Resp;
use crate::server::ServerShared;
use bytes::Bytes;
use http_body_util::Full;
use parking_lot::Mutex;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: IntGauge,
    subscriptions: IntGauge,
    routes: IntGauge,
    lame_duck: IntGauge,
    memory: IntGauge,
    info: IntGaugeVec,
    /// Per-route traffic, labelled by peer; reset at every scrape so gone routes disappear.
    route_stats: Vec<(&'static str, IntGaugeVec)>,
    counters: Vec<(&'static str, IntCounter)>,
    cpu_seconds: prometheus::Counter,
    /// Time spent busy polling (see `crate::conn::busy_poll`): its CPU cost.
    busy_poll_seconds: prometheus::Counter,
    /// Last values pushed into the counters (the registry's counters only move forward).
    last: Mutex<HashMap<&'static str, u64>>,
    last_cpu: Mutex<f64>,
    /// Time one connection's writer spends on one batched write to its socket.
    pub flush_seconds: Histogram,
}

/// Metric names and help texts here are constants known to be valid, so construction cannot
/// fail; a failure would be a programming error, caught by the monitoring tests.
fn valid<T>(r: prometheus::Result<T>) -> T {
    r.expect("metric definitions are valid constants")
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = valid(IntGauge::new(name, help));
    let _ = r.register(Box::new(g.clone()));
    g
}

const COUNTERS: &[(&str, &str)] = &[
    (
        "nats_mini_accepted_connections_total",
        "Client connections accepted since start.",
    ),
    ("nats_mini_in_msgs_total", "Messages received from clients."),
    (
        "nats_mini_in_bytes_total",
        "Payload bytes received from clients.",
    ),
    ("nats_mini_out_msgs_total", "Messages delivered to clients."),
    (
        "nats_mini_out_bytes_total",
        "Payload bytes delivered to clients.",
    ),
    (
        "nats_mini_slow_consumers_total",
        "Clients closed as slow consumers.",
    ),
    (
        "nats_mini_stale_connections_total",
        "Clients closed as stale connections.",
    ),
    (
        "nats_mini_busy_poll_windows_total",
        "Busy-poll windows spun after interactive traffic.",
    ),
];

/// Per-route gauges (a route's counters restart when it reconnects, so they are gauges).
const ROUTE_GAUGES: &[(&str, &str)] = &[
    (
        "nats_mini_route_in_msgs",
        "Messages received over this route.",
    ),
    (
        "nats_mini_route_in_bytes",
        "Payload bytes received over this route.",
    ),
    (
        "nats_mini_route_out_msgs",
        "Messages forwarded over this route.",
    ),
    (
        "nats_mini_route_out_bytes",
        "Payload bytes forwarded over this route.",
    ),
    (
        "nats_mini_route_pending_bytes",
        "Bytes queued for this route.",
    ),
    (
        "nats_mini_route_subscriptions",
        "Interest the peer announced over this route.",
    ),
    (
        "nats_mini_route_rtt_nanoseconds",
        "Round-trip time of this route's keepalive.",
    ),
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counters = COUNTERS
            .iter()
            .filter_map(|(name, help)| {
                let c = IntCounter::new(*name, *help).ok()?;
                registry.register(Box::new(c.clone())).ok()?;
                Some((*name, c))
            })
            .collect();
        let info = valid(IntGaugeVec::new(
            Opts::new("nats_mini_info", "Server identity (value is always 1)."),
            &["server_id", "server_name", "version", "compat_version"],
        ));
        let _ = registry.register(Box::new(info.clone()));
        let route_stats = ROUTE_GAUGES
            .iter()
            .map(|(name, help)| {
                let g = valid(IntGaugeVec::new(
                    Opts::new(*name, *help),
                    &["remote_id", "remote_name"],
                ));
                let _ = registry.register(Box::new(g.clone()));
                (*name, g)
            })
            .collect();
        let cpu_seconds = valid(prometheus::Counter::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ));
        let _ = registry.register(Box::new(cpu_seconds.clone()));
        let busy_poll_seconds = valid(prometheus::Counter::new(
            "nats_mini_busy_poll_seconds_total",
            "Time a worker spent busy polling after interactive traffic.",
        ));
        let _ = registry.register(Box::new(busy_poll_seconds.clone()));
        let flush_seconds = valid(Histogram::with_opts(
            HistogramOpts::new(
                "nats_mini_flush_duration_seconds",
                "Time a connection's writer takes to write one batch of queued messages.",
            )
            .buckets(vec![
                0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0,
            ]),
        ));
        let _ = registry.register(Box::new(flush_seconds.clone()));
        Metrics {
            connections: gauge(
                &registry,
                "nats_mini_connections",
                "Open client connections.",
            ),
            subscriptions: gauge(
                &registry,
                "nats_mini_subscriptions",
                "Active subscriptions.",
            ),
            routes: gauge(&registry, "nats_mini_routes", "Open route connections."),
            lame_duck: gauge(
                &registry,
                "nats_mini_lame_duck",
                "1 while in lame-duck mode.",
            ),
            memory: gauge(
                &registry,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            registry,
            info,
            route_stats,
            counters,
            cpu_seconds,
            busy_poll_seconds,
            last: Mutex::new(HashMap::new()),
            last_cpu: Mutex::new(0.0),
            flush_seconds,
        }
    }

    /// Refreshes every value from the server's counters and encodes the text format.
    pub fn render(&self, srv: &ServerShared) -> Resp {
        let st = srv.stats.snapshot();
        self.connections.set(srv.num_connections() as i64);
        self.subscriptions.set(srv.sublist.count() as i64);
        let routes = srv.cluster.routes();
        self.routes.set(routes.len() as i64);
        for (name, g) in &self.route_stats {
            g.reset();
            for r in &routes {
                let (pending, out_msgs, out_bytes) = {
                    let q = r.out.queue.lock();
                    (q.pending as u64, q.msgs, q.bytes)
                };
                let v = match *name {
                    "nats_mini_route_in_msgs" => r.in_msgs.load(Ordering::Relaxed),
                    "nats_mini_route_in_bytes" => r.in_bytes.load(Ordering::Relaxed),
                    "nats_mini_route_out_msgs" => out_msgs,
                    "nats_mini_route_out_bytes" => out_bytes,
                    "nats_mini_route_pending_bytes" => pending,
                    "nats_mini_route_subscriptions" => r.num_subs.load(Ordering::Relaxed),
                    "nats_mini_route_rtt_nanoseconds" => r.rtt_ns.load(Ordering::Relaxed),
                    _ => 0,
                };
                g.with_label_values(&[r.remote_id.as_str(), r.remote_name.as_str()])
                    .set(v as i64);
            }
        }
        self.lame_duck.set(i64::from(srv.in_lame_duck()));
        self.memory.set(super::process::rss_bytes() as i64);
        self.info
            .with_label_values(&[
                srv.server_id.as_str(),
                srv.server_name.as_str(),
                env!("CARGO_PKG_VERSION"),
                crate::options::COMPAT_VERSION,
            ])
            .set(1);
        {
            let mut last = self.last.lock();
            for (name, c) in &self.counters {
                let now = match *name {
                    "nats_mini_accepted_connections_total" => st.total_connections,
                    "nats_mini_in_msgs_total" => st.in_msgs,
                    "nats_mini_in_bytes_total" => st.in_bytes,
                    "nats_mini_out_msgs_total" => st.out_msgs,
                    "nats_mini_out_bytes_total" => st.out_bytes,
                    "nats_mini_slow_consumers_total" => st.slow_consumers,
                    "nats_mini_stale_connections_total" => st.stale_connections,
                    "nats_mini_busy_poll_windows_total" => {
                        srv.busy_poll.windows.load(Ordering::Relaxed)
                    }
                    _ => 0,
                };
                let prev = last.entry(name).or_insert(0);
                if now > *prev {
                    c.inc_by(now - *prev);
                    *prev = now;
                }
            }
        }
        {
            let spun = srv.busy_poll.spin_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let done = self.busy_poll_seconds.get();
            if spun > done {
                self.busy_poll_seconds.inc_by(spun - done);
            }
        }
        {
            let cpu = super::process::cpu_seconds();
            let mut last = self.last_cpu.lock();
            if cpu > *last {
                self.cpu_seconds.inc_by(cpu - *last);
                *last = cpu;
            }
        }
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.registry.gather(), &mut buf) {
            return super::text(hyper::StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        let mut r = hyper::Response::new(Full::new(Bytes::from(buf)));
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    }
}
