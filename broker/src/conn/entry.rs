//! What the server knows about each connection, for monitoring: a registry entry shared between
//! the connection's read loop (which updates it once per read buffer) and `/connz`, and the
//! snapshot kept for closed connections.
//!
//! Counters are atomics or live in the outbound queue, so gathering `/connz` never blocks the
//! message path; the descriptive fields (name, lang, version) change only on CONNECT.

use crate::conn::outbound::Outbound;
use crate::error::ClosedReason;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Fields a client announces in CONNECT.
#[derive(Debug, Clone, Default)]
pub struct ClientDesc {
    pub name: String,
    pub lang: String,
    pub version: String,
    /// The user it authenticated as (never a secret).
    pub user: String,
}

/// The credentials a client authenticated with, kept so a reload can re-check them (never
/// logged or shown by monitoring).
#[derive(Clone, Default)]
pub struct SavedCreds {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
}

impl std::fmt::Debug for SavedCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedCreds([REDACTED])")
    }
}

impl SavedCreds {
    pub fn as_credentials(&self) -> crate::auth::Credentials<'_> {
        crate::auth::Credentials {
            user: self.user.as_deref(),
            pass: self.pass.as_deref(),
            token: self.token.as_deref(),
        }
    }
}

/// A live connection as monitoring sees it.
#[derive(Debug)]
pub struct ClientEntry {
    pub cid: u64,
    pub peer: SocketAddr,
    pub start: SystemTime,
    pub out: Arc<Outbound>,
    pub desc: Mutex<ClientDesc>,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    /// Last measured round-trip time in nanoseconds (0 until measured).
    pub rtt_ns: AtomicU64,
    pub num_subs: AtomicU64,
    /// Times this client, publishing, waited for a receiver to drain (fast-producer stall).
    pub stalls: AtomicU64,
    /// The client said `protocol: 1` in CONNECT: it understands async INFO (lame duck,
    /// cluster membership changes).
    pub async_info: std::sync::atomic::AtomicBool,
    /// Set once the client authenticated (None for the self-check and before CONNECT).
    pub creds: Mutex<Option<SavedCreds>>,
}

pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn from_unix_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

impl ClientEntry {
    pub fn new(cid: u64, peer: SocketAddr, out: Arc<Outbound>) -> Self {
        let start = SystemTime::now();
        ClientEntry {
            cid,
            peer,
            start,
            out,
            desc: Mutex::new(ClientDesc::default()),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            rtt_ns: AtomicU64::new(0),
            num_subs: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            async_info: std::sync::atomic::AtomicBool::new(false),
            creds: Mutex::new(None),
        }
    }

    /// A consistent-enough copy of the counters, taken without stopping the connection.
    /// `num_subs` comes from the caller when it counted the index (subscriptions removed by
    /// another connection's delivery, `UNSUB max`, are only visible there).
    pub fn snapshot(&self, subs: Vec<SubSnapshot>, num_subs: Option<u64>) -> ConnSnapshot {
        let (pending, out_msgs, out_bytes) = {
            let q = self.out.queue.lock();
            (q.pending, q.msgs, q.bytes)
        };
        ConnSnapshot {
            cid: self.cid,
            peer: self.peer,
            start: self.start,
            last_activity: from_unix_nanos(self.out.last_activity.load(Ordering::Relaxed)),
            stop: None,
            reason: None,
            rtt: Duration::from_nanos(self.rtt_ns.load(Ordering::Relaxed)),
            pending_bytes: pending as u64,
            in_msgs: self.in_msgs.load(Ordering::Relaxed),
            in_bytes: self.in_bytes.load(Ordering::Relaxed),
            out_msgs,
            out_bytes,
            num_subs: num_subs.unwrap_or_else(|| self.num_subs.load(Ordering::Relaxed)),
            stalls: self.stalls.load(Ordering::Relaxed),
            desc: self.desc.lock().clone(),
            subs,
        }
    }
}

/// One subscription as monitoring lists it.
#[derive(Debug, Clone)]
pub struct SubSnapshot {
    pub subject: String,
    pub queue: Option<String>,
    pub sid: String,
    pub msgs: u64,
    pub max: u64,
    pub cid: u64,
}

/// A connection's state at one moment (live) or at its close.
#[derive(Debug, Clone)]
pub struct ConnSnapshot {
    pub cid: u64,
    pub peer: SocketAddr,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    pub stop: Option<SystemTime>,
    pub reason: Option<ClosedReason>,
    pub rtt: Duration,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub num_subs: u64,
    pub stalls: u64,
    pub desc: ClientDesc,
    pub subs: Vec<SubSnapshot>,
}
