//! Delivery of one message to what matches it: a copy into each local subscriber's queue, one
//! member per queue group, and at most one `RMSG` per cluster route.
//!
//! Client connections (messages published here) and route connections (messages a peer
//! forwarded, which go to local subscribers only) share this code, so the two paths cannot drift
//! apart. Nothing here allocates in steady state: the route scratch lists keep their capacity,
//! and receivers are woken once per read buffer through `flush`.

use crate::conn::outbound::{Enqueued, Outbound};
use crate::proto::Msg;
use crate::proto::route::queues as queue_names;
use crate::proto::wire;
use crate::server::ServerShared;
use crate::stats::BatchStats;
use crate::subject;
use crate::sublist::{MatchResult, QueueGroup};
use crate::subscription::Subscription;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The account every route message names: nats-mini has only the global one.
pub const GLOBAL_ACCOUNT: &[u8] = b"$G";

/// Per-connection delivery state, owned by one read loop.
pub(crate) struct Deliverer {
    /// Receivers that got messages during this read buffer and must be woken after it.
    pub flush: Vec<Arc<Outbound>>,
    pub batch: BatchStats,
    rng: u64,
    /// Routes the current message goes to, each once.
    routes: Vec<Arc<Outbound>>,
    /// Queue groups whose member was picked on a route: (index into `routes`, group name).
    route_queues: Vec<(usize, Bytes)>,
    /// Receivers this batch pushed past their stall gate (see [`crate::conn::outbound::stall`]).
    pub stalled: Vec<Arc<Outbound>>,
}

impl Deliverer {
    pub fn new(seed: u64) -> Self {
        Deliverer {
            flush: Vec::new(),
            batch: BatchStats::default(),
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            routes: Vec::new(),
            route_queues: Vec::new(),
            stalled: Vec::new(),
        }
    }

    /// xorshift64*: a fast per-connection generator for picking queue members.
    #[inline]
    pub fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Queues protocol bytes for a connection itself (PONG, +OK, -ERR, INFO).
    pub fn send(&mut self, out: &Arc<Outbound>, bytes: &[u8]) {
        if let Enqueued::Ok(true) = out.enqueue(None, |b| b.extend_from_slice(bytes)) {
            self.flush.push(out.clone());
        }
    }

    /// Wakes every receiver that got data during this batch.
    pub fn flush_receivers(&mut self) {
        for o in self.flush.drain(..) {
            o.wake();
        }
    }

    /// Appends one message to a local subscription's connection. Returns whether it was
    /// delivered.
    #[inline]
    pub fn deliver(&mut self, srv: &ServerShared, sub: &Arc<Subscription>, m: &Msg<'_>) -> bool {
        if sub.is_removed() {
            return false;
        }
        if let Some(denied) = &sub.deliver_deny
            && denied.iter().any(|p| subject::matches(p, m.subject))
        {
            return false;
        }
        if let Some(r) = &sub.responses
            && !m.reply.is_empty()
        {
            r.record(m.reply);
        }
        let n = sub.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        let max = sub.max.load(Ordering::Relaxed);
        if max > 0 && n > max {
            return false;
        }
        let receiver = &sub.client;
        let with_headers = receiver.headers.load(Ordering::Relaxed);
        let size = if m.hdr_len > 0 && !with_headers {
            m.data.len() - m.hdr_len
        } else {
            m.data.len()
        };
        let res = receiver.enqueue(Some(size), |b| wire::msg(b, m, &sub.sid, with_headers));
        if max > 0 && n == max && sub.claim_removal() {
            srv.remove_subscription(sub);
        }
        match res {
            Enqueued::Ok(wake) => {
                if wake {
                    self.flush.push(receiver.clone());
                }
                if receiver.stalling() {
                    self.note_stalling(receiver);
                }
                self.batch.out_msgs += 1;
                self.batch.out_bytes += size as u64;
                true
            }
            Enqueued::Closed | Enqueued::SlowConsumer => false,
        }
    }

    /// A message published by a client of this server: every local plain subscriber (except
    /// `skip_cid`, the publisher when it asked for no echo), one member per queue group picked
    /// uniformly over the group's members cluster-wide, and each route with interest once.
    /// Returns whether anyone (local or remote) gets it.
    pub fn publish(
        &mut self,
        srv: &ServerShared,
        result: &MatchResult<Subscription>,
        m: &Msg<'_>,
        skip_cid: Option<u64>,
    ) -> bool {
        let mut delivered = false;
        for sub in &result.plain {
            if sub.is_route {
                if !sub.client.is_closed() {
                    self.route_index(&sub.client);
                    delivered = true;
                }
                continue;
            }
            if skip_cid == Some(sub.cid) {
                continue;
            }
            delivered |= self.deliver(srv, sub, m);
        }
        let weighted = srv.cluster.route_count() > 0;
        for group in &result.queues {
            let n = group.members.len();
            if n == 0 {
                continue;
            }
            let start = if weighted {
                self.weighted_start(group)
            } else {
                (self.next_random() % n as u64) as usize
            };
            for k in 0..n {
                let sub = &group.members[(start + k) % n];
                if sub.is_route {
                    if sub.client.is_closed() {
                        continue;
                    }
                    let i = self.route_index(&sub.client);
                    self.route_queues.push((i, group.name.clone()));
                    delivered = true;
                    break;
                }
                if skip_cid == Some(sub.cid) {
                    continue;
                }
                if self.deliver(srv, sub, m) {
                    delivered = true;
                    break;
                }
            }
        }
        if !self.routes.is_empty() {
            self.send_to_routes(m);
        }
        delivered
    }

    /// A message a cluster peer forwarded: local plain subscribers, and one local member of
    /// each queue group the peer named. Never forwarded again (full mesh: no loops).
    pub fn publish_routed(
        &mut self,
        srv: &ServerShared,
        result: &MatchResult<Subscription>,
        m: &Msg<'_>,
        queues: &[u8],
    ) {
        for sub in &result.plain {
            if !sub.is_route {
                self.deliver(srv, sub, m);
            }
        }
        if queues.is_empty() {
            return;
        }
        for group in &result.queues {
            if !queue_names(queues).any(|q| q == group.name) {
                continue;
            }
            // Uniform over the local members only (the peer already chose this node).
            let n = group.members.len();
            let locals = group.members.iter().filter(|s| !s.is_route).count();
            if locals == 0 {
                continue;
            }
            let mut skip = (self.next_random() % locals as u64) as usize;
            let start = group
                .members
                .iter()
                .position(|s| {
                    if s.is_route {
                        return false;
                    }
                    if skip == 0 {
                        return true;
                    }
                    skip -= 1;
                    false
                })
                .unwrap_or(0);
            for k in 0..n {
                let sub = &group.members[(start + k) % n];
                if !sub.is_route && self.deliver(srv, sub, m) {
                    break;
                }
            }
        }
    }

    /// The member index a weighted pick starts at: each route member counts as many times as
    /// the peer has members, so every member cluster-wide is equally likely.
    fn weighted_start(&mut self, group: &QueueGroup<Subscription>) -> usize {
        let total: u64 = group.members.iter().map(|s| s.weight()).sum();
        let mut r = self.next_random() % total.max(1);
        for (i, s) in group.members.iter().enumerate() {
            let w = s.weight();
            if r < w {
                return i;
            }
            r -= w;
        }
        0
    }

    #[cold]
    fn note_stalling(&mut self, receiver: &Arc<Outbound>) {
        if !self.stalled.iter().any(|r| Arc::ptr_eq(r, receiver)) {
            self.stalled.push(receiver.clone());
        }
    }

    fn route_index(&mut self, out: &Arc<Outbound>) -> usize {
        match self.routes.iter().position(|r| Arc::ptr_eq(r, out)) {
            Some(i) => i,
            None => {
                self.routes.push(out.clone());
                self.routes.len() - 1
            }
        }
    }

    /// One `RMSG`/`HMSG` per route collected for this message, naming the queue groups picked
    /// on each; then the scratch lists are cleared (keeping their capacity).
    fn send_to_routes(&mut self, m: &Msg<'_>) {
        for (i, route) in self.routes.iter().enumerate() {
            let headers = route.headers.load(Ordering::Relaxed);
            let queues = self
                .route_queues
                .iter()
                .filter(|(r, _)| *r == i)
                .map(|(_, q)| q.as_ref());
            let size = m.data.len();
            match route.enqueue(Some(size), |b| {
                wire::route_msg(b, GLOBAL_ACCOUNT, m, queues, headers)
            }) {
                Enqueued::Ok(wake) => {
                    if wake {
                        self.flush.push(route.clone());
                    }
                    if route.stalling() && !self.stalled.iter().any(|r| Arc::ptr_eq(r, route)) {
                        self.stalled.push(route.clone());
                    }
                    self.batch.out_msgs += 1;
                    self.batch.out_bytes += size as u64;
                }
                Enqueued::Closed | Enqueued::SlowConsumer => {}
            }
        }
        self.routes.clear();
        self.route_queues.clear();
    }
}
