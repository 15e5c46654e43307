//! `/connz`: connections with nats-server's sorting, paging, state filter and detail levels.

use super::query::Query;
use crate::conn::entry::{ConnSnapshot, SubSnapshot};
use crate::server::ServerShared;
use crate::timefmt;
use serde::Serialize;
use std::time::SystemTime;

const DEFAULT_LIMIT: i64 = 1024;

#[derive(Serialize)]
pub struct Connz {
    pub server_id: String,
    pub now: String,
    pub num_connections: usize,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub connections: Vec<ConnInfo>,
}

#[derive(Serialize)]
pub struct SubDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_tag: Option<&'static str>,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qgroup: Option<String>,
    pub sid: String,
    pub msgs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub cid: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&SubSnapshot> for SubDetail {
    fn from(s: &SubSnapshot) -> Self {
        SubDetail {
            account: Some("$G"),
            account_tag: Some("$G"),
            subject: s.subject.clone(),
            qgroup: s.queue.clone(),
            sid: s.sid.clone(),
            msgs: s.msgs,
            max: s.max,
            cid: s.cid,
        }
    }
}

#[derive(Serialize)]
pub struct ConnInfo {
    pub cid: u64,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub kind_type: &'static str,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt: Option<String>,
    pub uptime: String,
    pub idle: String,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    /// Fast-producer stalls (nats-server omits it while zero).
    #[serde(skip_serializing_if = "is_zero")]
    pub stalls: u64,
    pub subscriptions: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list_detail: Option<Vec<SubDetail>>,
    /// With `auth=1`: the account's name tag (`$G`); nats-server omits `account` for the
    /// global account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_tag: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    Any,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
    Rtt,
}

impl Sort {
    fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "" | "cid" => Sort::Cid,
            "start" => Sort::Start,
            "subs" => Sort::Subs,
            "pending" => Sort::Pending,
            "msgs_to" => Sort::MsgsTo,
            "msgs_from" => Sort::MsgsFrom,
            "bytes_to" => Sort::BytesTo,
            "bytes_from" => Sort::BytesFrom,
            "last" => Sort::Last,
            "idle" => Sort::Idle,
            "uptime" => Sort::Uptime,
            "stop" => Sort::Stop,
            "reason" => Sort::Reason,
            "rtt" => Sort::Rtt,
            _ => return None,
        })
    }
}

/// nats-server truncates an RTT between 1 µs and 1 ms to whole microseconds.
fn rtt_for_display(rtt: std::time::Duration) -> std::time::Duration {
    let us = std::time::Duration::from_micros(1);
    if rtt > us && rtt < std::time::Duration::from_millis(1) {
        std::time::Duration::from_micros(rtt.as_micros() as u64)
    } else {
        rtt
    }
}

pub fn connz(srv: &ServerShared, q: &Query) -> Result<Connz, String> {
    let sort_text = q.get("sort");
    let sort =
        Sort::parse(sort_text).ok_or_else(|| format!("invalid sorting option: {sort_text}"))?;
    let auth = q.bool("auth")?;
    let detail = q.get("subs").eq_ignore_ascii_case("detail");
    let subs = !detail && q.bool("subs")?;
    let offset = q.int("offset")?.max(0) as usize;
    let mut limit = q.int("limit")?;
    if limit <= 0 {
        limit = DEFAULT_LIMIT;
    }
    let cid = q.uint("cid")?;
    let state = match q.get("state").to_ascii_lowercase().as_str() {
        "" | "open" => State::Open,
        "closed" => State::Closed,
        "any" | "all" => State::Any,
        other => return Err(format!("Error decoding state for {other}")),
    };
    if sort == Sort::Stop && state != State::Closed {
        return Err("sort by stop only valid on closed connections".into());
    }
    if sort == Sort::Reason && state != State::Closed {
        return Err("sort by reason only valid on closed connections".into());
    }
    let mut limit = limit as usize;
    if cid > 0 {
        limit = 1;
    }

    let want_subs = subs || detail;
    let mut conns: Vec<ConnSnapshot> = Vec::new();
    if state != State::Closed {
        conns.extend(srv.open_connections(want_subs));
    }
    if state != State::Open {
        conns.extend(srv.closed_connections());
    }
    // nats-server reports the number of connections in the requested state, even for `cid=`.
    let total = conns.len();
    if cid > 0 {
        conns.retain(|c| c.cid == cid);
    }
    let now = SystemTime::now();
    let end = |c: &ConnSnapshot| c.stop.unwrap_or(now);
    let dur = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default();
    match sort {
        Sort::Cid | Sort::Start => conns.sort_by_key(|c| c.cid),
        Sort::Subs => conns.sort_by_key(|c| std::cmp::Reverse(c.num_subs)),
        Sort::Pending => conns.sort_by_key(|c| std::cmp::Reverse(c.pending_bytes)),
        Sort::MsgsTo => conns.sort_by_key(|c| std::cmp::Reverse(c.out_msgs)),
        Sort::MsgsFrom => conns.sort_by_key(|c| std::cmp::Reverse(c.in_msgs)),
        Sort::BytesTo => conns.sort_by_key(|c| std::cmp::Reverse(c.out_bytes)),
        Sort::BytesFrom => conns.sort_by_key(|c| std::cmp::Reverse(c.in_bytes)),
        Sort::Last => conns.sort_by_key(|c| std::cmp::Reverse(c.last_activity)),
        Sort::Idle => conns.sort_by_key(|c| std::cmp::Reverse(dur(c.last_activity, end(c)))),
        // nats-server 2.15 lists the newest connection (shortest uptime) first.
        Sort::Uptime => conns.sort_by_key(|c| dur(c.start, end(c))),
        Sort::Stop => conns.sort_by_key(|c| std::cmp::Reverse(c.stop)),
        Sort::Reason => conns.sort_by_key(|c| c.reason.map(|r| r.to_string())),
        Sort::Rtt => conns.sort_by_key(|c| std::cmp::Reverse(c.rtt)),
    }
    let page: Vec<ConnInfo> = conns
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| {
            let mut sorted_subs = c.subs.clone();
            sorted_subs.sort_by(|a, b| a.subject.cmp(&b.subject));
            ConnInfo {
                cid: c.cid,
                kind: "Client",
                kind_type: "nats",
                ip: c.peer.ip().to_string(),
                port: c.peer.port(),
                start: timefmt::rfc3339(c.start),
                last_activity: timefmt::rfc3339(c.last_activity),
                stop: c.stop.map(timefmt::rfc3339),
                reason: c.reason.map(|r| r.to_string()),
                rtt: Some(timefmt::go_duration(rtt_for_display(c.rtt))),
                uptime: timefmt::uptime(dur(c.start, end(c))),
                idle: timefmt::uptime(dur(c.last_activity, end(c))),
                pending_bytes: c.pending_bytes,
                in_msgs: c.in_msgs,
                out_msgs: c.out_msgs,
                in_bytes: c.in_bytes,
                out_bytes: c.out_bytes,
                stalls: c.stalls,
                subscriptions: c.num_subs,
                name: c.desc.name.clone(),
                lang: c.desc.lang.clone(),
                version: c.desc.version.clone(),
                authorized_user: (auth && !c.desc.user.is_empty()).then(|| c.desc.user.clone()),
                name_tag: auth.then_some("$G"),
                subscriptions_list: (subs && !sorted_subs.is_empty())
                    .then(|| sorted_subs.iter().map(|s| s.subject.clone()).collect()),
                // nats-server names the account in details of closed connections only.
                subscriptions_list_detail: (detail && !sorted_subs.is_empty()).then(|| {
                    sorted_subs
                        .iter()
                        .map(|s| {
                            let mut d = SubDetail::from(s);
                            if c.stop.is_none() {
                                d.account = None;
                                d.account_tag = None;
                            }
                            d
                        })
                        .collect()
                }),
            }
        })
        .collect();
    Ok(Connz {
        server_id: srv.server_id.clone(),
        now: timefmt::rfc3339(now),
        num_connections: page.len(),
        total,
        offset,
        limit,
        connections: page,
    })
}
