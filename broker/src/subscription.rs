//! A client's subscription, as stored in the subject index and in its connection's sid map.

use crate::conn::outbound::Outbound;
use crate::sublist::Subscriber;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

#[derive(Debug)]
pub struct Subscription {
    /// The subscribing connection's outbound queue: where deliveries go.
    pub client: Arc<Outbound>,
    pub cid: u64,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    pub sid: Box<[u8]>,
    /// `UNSUB sid max`: deliver this many messages in total, then unsubscribe (0 = no limit).
    pub max: AtomicU64,
    /// Messages delivered so far (`UNSUB max` compares against it, monitoring shows it).
    pub delivered: AtomicU64,
    /// Set exactly once by whoever removes the subscription (its owner or the producer that
    /// delivered the last allowed message), so only one party touches the index.
    pub removed: AtomicBool,
    /// Subscribe-deny patterns this wildcard or queue subscription overlaps: messages on these
    /// subjects are not delivered to it. `None` for almost every subscription (no cost).
    pub deliver_deny: Option<Arc<[Box<[u8]>]>>,
    /// The subscriber's `allow_responses` tracker: delivering a request records its reply.
    pub responses: Option<Arc<crate::permissions::ResponseTracker>>,
    /// Interest a cluster peer announced (`RS+`): `client` is the route's queue, and a message
    /// goes there once per publish however many of the peer's subscriptions match.
    pub is_route: bool,
    /// For a peer's queue interest: how many members the peer has (its `RS+` weight), so
    /// queue picks are uniform over members cluster-wide. 1 for everything else.
    pub weight: AtomicU32,
}

impl Subscription {
    pub fn new(
        client: Arc<Outbound>,
        cid: u64,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Self {
        Subscription {
            client,
            cid,
            subject: subject.into(),
            queue: queue.map(Into::into),
            sid: sid.into(),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            deliver_deny: None,
            responses: None,
            is_route: false,
            weight: AtomicU32::new(1),
        }
    }

    /// A cluster peer's interest, delivered over the route whose queue is `route`.
    pub fn remote(
        route: Arc<Outbound>,
        rid: u64,
        subject: &[u8],
        queue: Option<&[u8]>,
        weight: u32,
    ) -> Self {
        let mut s = Subscription::new(route, rid, subject, queue, b"");
        s.is_route = true;
        s.weight = AtomicU32::new(weight.max(1));
        s
    }

    /// The member count this entry stands for in a queue pick.
    #[inline]
    pub fn weight(&self) -> u64 {
        if self.is_route {
            self.weight.load(Ordering::Relaxed) as u64
        } else {
            1
        }
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Claims the removal; true for exactly one caller.
    pub fn claim_removal(&self) -> bool {
        !self.removed.swap(true, Ordering::AcqRel)
    }
}

impl Subscription {
    /// How monitoring lists this subscription.
    pub fn snapshot(&self) -> crate::conn::entry::SubSnapshot {
        crate::conn::entry::SubSnapshot {
            subject: String::from_utf8_lossy(&self.subject).into_owned(),
            queue: self
                .queue
                .as_deref()
                .map(|q| String::from_utf8_lossy(q).into_owned()),
            sid: String::from_utf8_lossy(&self.sid).into_owned(),
            msgs: self.delivered.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
            cid: self.cid,
        }
    }
}

impl Subscriber for Subscription {
    fn subject(&self) -> &[u8] {
        &self.subject
    }
    fn queue(&self) -> Option<&[u8]> {
        self.queue.as_deref()
    }
}
