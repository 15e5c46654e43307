//! `/routez`: the cluster routes, with nats-server's field names (prometheus-nats-exporter
//! turns every numeric field into a gauge; `nats server report` reads the rest).

use super::connz::SubDetail;
use super::query::Query;
use crate::server::ServerShared;
use crate::timefmt;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Serialize)]
pub struct Routez {
    pub server_id: String,
    pub server_name: String,
    pub now: String,
    pub num_routes: usize,
    pub routes: Vec<RouteInfo>,
}

#[derive(Serialize)]
pub struct RouteInfo {
    pub rid: u64,
    pub remote_id: String,
    pub remote_name: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    pub pending_size: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list_detail: Option<Vec<SubDetail>>,
    pub compression: &'static str,
}

pub fn routez(srv: &ServerShared, q: &Query) -> Result<Routez, String> {
    let detail = q.get("subs").eq_ignore_ascii_case("detail");
    let subs = detail || q.bool("subs")?;
    let now = SystemTime::now();
    let mut entries = srv.cluster.routes();
    entries.sort_by_key(|r| r.rid);
    let all_subs = if subs { srv.sublist.all() } else { Vec::new() };
    let routes = entries
        .iter()
        .map(|r| {
            let (pending, out_msgs, out_bytes) = {
                let q = r.out.queue.lock();
                (q.pending, q.msgs, q.bytes)
            };
            let last =
                UNIX_EPOCH + Duration::from_nanos(r.out.last_activity.load(Ordering::Relaxed));
            let mine: Vec<_> = all_subs
                .iter()
                .filter(|s| s.is_route && s.cid == r.rid)
                .collect();
            RouteInfo {
                rid: r.rid,
                remote_id: r.remote_id.clone(),
                remote_name: r.remote_name.clone(),
                did_solicit: r.solicited,
                is_configured: r.configured,
                ip: r.peer.ip().to_string(),
                port: r.peer.port(),
                start: timefmt::rfc3339(r.start),
                last_activity: timefmt::rfc3339(last),
                rtt: timefmt::go_duration(Duration::from_nanos(r.rtt_ns.load(Ordering::Relaxed))),
                uptime: timefmt::uptime(now.duration_since(r.start).unwrap_or_default()),
                idle: timefmt::uptime(now.duration_since(last).unwrap_or_default()),
                pending_size: pending,
                in_msgs: r.in_msgs.load(Ordering::Relaxed),
                out_msgs,
                in_bytes: r.in_bytes.load(Ordering::Relaxed),
                out_bytes,
                subscriptions: r.num_subs.load(Ordering::Relaxed),
                subscriptions_list: (subs && !detail).then(|| {
                    mine.iter()
                        .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
                        .collect()
                }),
                subscriptions_list_detail: detail.then(|| {
                    mine.iter()
                        .map(|s| SubDetail::from(&s.snapshot()))
                        .collect()
                }),
                compression: "not supported",
            }
        })
        .collect::<Vec<_>>();
    Ok(Routez {
        server_id: srv.server_id.clone(),
        server_name: srv.server_name.clone(),
        now: timefmt::rfc3339(now),
        num_routes: routes.len(),
        routes,
    })
}
