//! `/varz`: general server information and counters, in nats-server's field order and types
//! (durations in nanoseconds, times RFC 3339, uptime as `3m2s`).

use crate::options::COMPAT_VERSION;
use crate::server::{PRODUCT, ServerShared};
use crate::timefmt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

#[derive(Serialize, Default)]
pub struct ClusterVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub cluster_port: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

/// Go's encoding/json writes a whole float64 without a fraction (`1`, not `1.0`).
fn go_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

#[derive(Serialize, Default)]
pub struct Empty {}

#[derive(Serialize)]
pub struct KindStats {
    pub clients: u64,
    pub routes: u64,
    pub gateways: u64,
    pub leafs: u64,
}

#[derive(Serialize)]
pub struct Varz {
    pub server_id: String,
    pub server_name: String,
    pub version: &'static str,
    pub proto: u8,
    pub go: &'static str,
    pub host: String,
    pub port: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    pub max_connections: usize,
    pub ping_interval: u128,
    pub ping_max: u32,
    pub http_host: String,
    pub http_port: u16,
    pub http_base_path: String,
    pub https_port: u16,
    #[serde(serialize_with = "go_float")]
    pub auth_timeout: f64,
    pub max_control_line: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub cluster: ClusterVarz,
    pub gateway: Empty,
    pub leaf: Empty,
    pub mqtt: Empty,
    pub websocket: Empty,
    pub jetstream: Empty,
    #[serde(serialize_with = "go_float")]
    pub tls_timeout: f64,
    pub write_deadline: u128,
    pub start: String,
    pub now: String,
    pub uptime: String,
    pub mem: u64,
    pub cores: usize,
    pub gomaxprocs: usize,
    #[serde(serialize_with = "go_float")]
    pub cpu: f64,
    pub connections: usize,
    pub total_connections: u64,
    pub routes: usize,
    pub remotes: usize,
    pub leafnodes: usize,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub in_client_msgs: u64,
    pub in_client_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub out_client_msgs: u64,
    pub out_client_bytes: u64,
    pub slow_consumers: u64,
    pub stale_connections: u64,
    pub stalled_clients: u64,
    pub subscriptions: usize,
    pub http_req_stats: BTreeMap<&'static str, u64>,
    pub config_load_time: String,
    pub config_digest: String,
    pub system_account: String,
    pub slow_consumer_stats: KindStats,
    pub stale_connection_stats: KindStats,
    /// nats-mini: the open-file limit in force (connections need one descriptor each).
    pub max_open_files: u64,
    /// nats-mini: whether the server is in lame-duck mode.
    pub lame_duck_mode: bool,
}

/// `cluster`: name, route listener and the configured seed URLs (empty without clustering).
fn cluster_varz(srv: &ServerShared) -> ClusterVarz {
    let Some(addr) = srv.cluster.listen_addr() else {
        return ClusterVarz::default();
    };
    ClusterVarz {
        name: srv.cluster.name(),
        addr: addr.ip().to_string(),
        cluster_port: addr.port(),
        urls: srv
            .opts()
            .routes
            .iter()
            .filter_map(|r| crate::cluster::url::RouteUrl::parse(r).ok())
            .map(|u| u.host_port())
            .collect(),
    }
}

pub fn varz(srv: &ServerShared) -> Varz {
    let st = srv.stats.snapshot();
    let opts = srv.opts();
    let now = SystemTime::now();
    let (mut http_host, http_port) = srv
        .http_addr()
        .map(|a| (a.ip().to_string(), a.port()))
        .unwrap_or_default();
    // HTTP and HTTPS share the host, as in nats-server (which serves one or the other).
    let https_port = match srv.https_addr() {
        Some(a) => {
            if http_host.is_empty() {
                http_host = a.ip().to_string();
            }
            a.port()
        }
        None => 0,
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Varz {
        server_id: srv.server_id.clone(),
        server_name: srv.server_name.clone(),
        version: COMPAT_VERSION,
        proto: 1,
        go: PRODUCT,
        host: opts.host.clone(),
        port: srv.client_port(),
        auth_required: srv.auth().required(),
        connect_urls: srv.client_info().connect_urls,
        max_connections: opts.max_conns,
        ping_interval: opts.ping_interval.as_nanos(),
        ping_max: opts.ping_max,
        http_host,
        http_port,
        http_base_path: opts.http_base_path.clone(),
        https_port,
        auth_timeout: opts.auth_timeout.as_secs_f64(),
        max_control_line: opts.max_control_line,
        max_payload: opts.max_payload,
        max_pending: opts.max_pending,
        cluster: cluster_varz(srv),
        gateway: Empty {},
        leaf: Empty {},
        mqtt: Empty {},
        websocket: Empty {},
        jetstream: Empty {},
        tls_timeout: opts.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64()),
        write_deadline: opts.write_deadline.as_nanos(),
        start: timefmt::rfc3339(srv.start),
        now: timefmt::rfc3339(now),
        uptime: timefmt::uptime(now.duration_since(srv.start).unwrap_or_default()),
        mem: super::process::rss_bytes(),
        cores,
        gomaxprocs: cores,
        cpu: srv.monitor.cpu.percent(),
        connections: srv.num_connections(),
        total_connections: st.total_connections,
        routes: srv.cluster.route_count(),
        remotes: srv.cluster.route_count(),
        leafnodes: 0,
        in_msgs: st.in_msgs,
        in_bytes: st.in_bytes,
        in_client_msgs: st.in_msgs,
        in_client_bytes: st.in_bytes,
        out_msgs: st.out_msgs,
        out_bytes: st.out_bytes,
        out_client_msgs: st.out_msgs,
        out_client_bytes: st.out_bytes,
        slow_consumers: st.slow_consumers,
        stale_connections: st.stale_connections,
        stalled_clients: st.stalls,
        subscriptions: srv.sublist.count(),
        http_req_stats: srv
            .monitor
            .req_stats
            .lock()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
        config_load_time: timefmt::rfc3339(srv.config_load_time()),
        config_digest: String::new(),
        system_account: String::new(),
        slow_consumer_stats: KindStats {
            clients: st.slow_consumers,
            routes: 0,
            gateways: 0,
            leafs: 0,
        },
        stale_connection_stats: KindStats {
            clients: st.stale_connections,
            routes: 0,
            gateways: 0,
            leafs: 0,
        },
        max_open_files: srv.max_open_files(),
        lame_duck_mode: srv.in_lame_duck(),
    }
}
