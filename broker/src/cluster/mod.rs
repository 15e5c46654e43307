//! Clustering: a full mesh of routes between servers, in nats-server's pre-pooling route
//! dialect, so nats-mini nodes cluster with each other and with nats-server.
//!
//! - [`Cluster`] (this file) is the shared state: the registered routes by peer server id, the
//!   local interest announced to them (`RS+`/`RS-` on every 0↔1 change of a plain subject and
//!   every member-count change of a queue group), the cluster name, and the peers' client URLs.
//! - [`route`] runs one route connection: handshake, interest from the peer, routed messages,
//!   keepalive, gossip about other peers.
//! - [`dial`] solicits routes: seeds from the configuration (retried forever) and peers learnt
//!   by gossip (implicit, retried `connect_retries` times), with capped, jittered backoff.
//! - [`url`] parses route URLs (`nats-route://user:pass@host:port`).
//!
//! Loop prevention is the full mesh itself: a message that arrived over a route goes to local
//! subscribers only (see [`crate::conn::deliver`]). See `shared/reference/nats-server-behaviour.md` §2.

pub mod dial;
pub mod route;
pub mod url;

use crate::conn::outbound::{Enqueued, Outbound};
use crate::proto::wire;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub use route::RouteEntry;

/// The account name every route protocol line carries.
pub const ACCOUNT: &[u8] = crate::conn::deliver::GLOBAL_ACCOUNT;

/// Shared cluster state; present (and inert) on a server without clustering.
#[derive(Debug, Default)]
pub struct Cluster {
    enabled: AtomicBool,
    table: Mutex<RouteTable>,
    /// Registered routes, for the publish path's one-atomic check.
    count: AtomicUsize,
    name: RwLock<String>,
    /// The name was generated, not configured: a configured (or larger) peer name wins.
    dynamic: AtomicBool,
    /// The bound route listener.
    listen: OnceLock<SocketAddr>,
    /// This machine's addresses, to recognise seeds that point at ourselves.
    local_ips: OnceLock<Vec<IpAddr>>,
    next_rid: AtomicU64,
    /// Signalled whenever a route is registered or removed (dialers waiting on a duplicate).
    pub(crate) changed: tokio::sync::Notify,
    /// Route TLS in force (`cluster.tls`), rebuilt on reload so renewed certificates apply to
    /// new routes.
    tls: RwLock<Option<Arc<RouteTls>>>,
}

/// TLS for routes: both sides handshake first, verifying each other.
pub(crate) struct RouteTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub connector: tokio_rustls::TlsConnector,
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for RouteTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTls")
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Default)]
struct RouteTable {
    /// Local interest: `subject` or `subject queue` → local subscription count.
    interest: FxHashMap<Vec<u8>, u32>,
    /// Registered routes by the peer's server id (one per peer).
    routes: FxHashMap<String, Arc<RouteEntry>>,
    /// Peers an implicit (gossip) dial is under way to, so gossip from several peers about one
    /// newcomer starts one dial.
    dialing: rustc_hash::FxHashSet<String>,
}

fn interest_key(subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let mut k = Vec::with_capacity(subject.len() + queue.map_or(0, |q| q.len() + 1));
    k.extend_from_slice(subject);
    if let Some(q) = queue {
        k.push(b' ');
        k.extend_from_slice(q);
    }
    k
}

fn split_key(key: &[u8]) -> (&[u8], Option<&[u8]>) {
    match key.iter().position(|b| *b == b' ') {
        Some(i) => (&key[..i], Some(&key[i + 1..])),
        None => (key, None),
    }
}

impl Cluster {
    /// Turns clustering on with the configured name (or a generated, dynamic one).
    pub(crate) fn enable(&self, name: Option<&str>) {
        let (n, dynamic) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), false),
            None => (crate::server::new_server_id()[..22].to_string(), true),
        };
        *self.name.write() = n;
        self.dynamic.store(dynamic, Ordering::Release);
        self.next_rid.store(1, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Release);
    }

    /// Builds (or rebuilds) route TLS from `cluster.tls`.
    pub(crate) fn configure_tls(
        &self,
        settings: Option<&crate::tls::TlsSettings>,
    ) -> Result<(), String> {
        let tls = match settings {
            Some(s) => {
                let (acceptor, connector) = crate::tls::route_tls(s)?;
                Some(Arc::new(RouteTls {
                    acceptor,
                    connector,
                    timeout: s.timeout,
                }))
            }
            None => None,
        };
        *self.tls.write() = tls;
        Ok(())
    }

    pub(crate) fn tls(&self) -> Option<Arc<RouteTls>> {
        self.tls.read().clone()
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The number of registered routes (one atomic load: the publish path asks per message).
    #[inline]
    pub fn route_count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn name(&self) -> String {
        self.name.read().clone()
    }

    pub fn is_dynamic(&self) -> bool {
        self.dynamic.load(Ordering::Acquire)
    }

    /// Adopts a peer's cluster name (we had a generated one), as nats-server does.
    pub(crate) fn adopt_name(&self, name: &str, dynamic: bool) {
        *self.name.write() = name.to_string();
        self.dynamic.store(dynamic, Ordering::Release);
        tracing::info!("Cluster name updated to {name}");
    }

    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.get().copied()
    }

    pub(crate) fn set_listen(&self, addr: SocketAddr) {
        let _ = self.listen.set(addr);
        let mut ips = crate::netif::interface_addrs();
        ips.push(IpAddr::from([127, 0, 0, 1]));
        ips.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        let _ = self.local_ips.set(ips);
    }

    /// Whether `addr` is our own route listener (a seed naming this node).
    pub(crate) fn is_own_addr(&self, addr: &SocketAddr) -> bool {
        let Some(listen) = self.listen_addr() else {
            return false;
        };
        if addr.port() != listen.port() {
            return false;
        }
        if !listen.ip().is_unspecified() {
            return addr.ip() == listen.ip();
        }
        self.local_ips
            .get()
            .is_some_and(|ips| ips.contains(&addr.ip()))
    }

    pub(crate) fn next_rid(&self) -> u64 {
        self.next_rid.fetch_add(1, Ordering::Relaxed)
    }

    /// A local subscription was added: announce it to every route if it changes what peers
    /// must know (the first plain subscription on a subject; any queue member count).
    pub(crate) fn local_sub_added(&self, subject: &[u8], queue: Option<&[u8]>) {
        if !self.is_enabled() {
            return;
        }
        let mut t = self.table.lock();
        let n = {
            let c = t.interest.entry(interest_key(subject, queue)).or_insert(0);
            *c += 1;
            *c
        };
        if queue.is_none() && n > 1 {
            return;
        }
        let mut line = Vec::with_capacity(subject.len() + 32);
        wire::route_sub(&mut line, ACCOUNT, subject, queue.map(|q| (q, n)));
        broadcast(&t.routes, &line);
    }

    /// A local subscription went away: withdraw the interest when the count reaches zero, or
    /// announce a queue group's new member count.
    pub(crate) fn local_sub_removed(&self, subject: &[u8], queue: Option<&[u8]>) {
        if !self.is_enabled() {
            return;
        }
        let mut t = self.table.lock();
        let key = interest_key(subject, queue);
        let Some(c) = t.interest.get_mut(&key) else {
            return;
        };
        *c -= 1;
        let n = *c;
        if n == 0 {
            t.interest.remove(&key);
        }
        let mut line = Vec::with_capacity(subject.len() + 32);
        match (n, queue) {
            (0, _) => wire::route_unsub(&mut line, ACCOUNT, subject, queue),
            (_, Some(q)) => wire::route_sub(&mut line, ACCOUNT, subject, Some((q, n))),
            (_, None) => return,
        }
        broadcast(&t.routes, &line);
    }

    /// Registers a route whose handshake completed and sends it all local interest in one
    /// batch. Refused (false) when a route to that server is already registered: the first
    /// one stays, as in nats-server.
    pub(crate) fn register(&self, entry: &Arc<RouteEntry>) -> bool {
        let mut t = self.table.lock();
        if t.routes.contains_key(&entry.remote_id) {
            return false;
        }
        let mut batch = Vec::with_capacity(64 * t.interest.len());
        for (key, n) in &t.interest {
            let (subject, queue) = split_key(key);
            wire::route_sub(&mut batch, ACCOUNT, subject, queue.map(|q| (q, *n)));
        }
        if !batch.is_empty()
            && let Enqueued::Ok(_) = entry.out.enqueue(None, |b| b.extend_from_slice(&batch))
        {
            entry.out.wake();
        }
        t.dialing.remove(&entry.remote_id);
        t.routes.insert(entry.remote_id.clone(), entry.clone());
        self.count.store(t.routes.len(), Ordering::Release);
        drop(t);
        self.changed.notify_waiters();
        true
    }

    /// Forgets a route (only if `entry` is the registered one for its peer).
    pub(crate) fn unregister(&self, entry: &Arc<RouteEntry>) -> bool {
        let mut t = self.table.lock();
        let removed = match t.routes.get(&entry.remote_id) {
            Some(e) if Arc::ptr_eq(e, entry) => {
                t.routes.remove(&entry.remote_id);
                true
            }
            _ => false,
        };
        self.count.store(t.routes.len(), Ordering::Release);
        drop(t);
        if removed {
            self.changed.notify_waiters();
        }
        removed
    }

    /// Whether a route to `server_id` is registered.
    pub fn has_route(&self, server_id: &str) -> bool {
        self.table.lock().routes.contains_key(server_id)
    }

    /// Claims the right to dial `server_id` after gossip (false: connected or being dialed).
    pub(crate) fn claim_implicit_dial(&self, server_id: &str) -> bool {
        let mut t = self.table.lock();
        if t.routes.contains_key(server_id) || t.dialing.contains(server_id) {
            return false;
        }
        t.dialing.insert(server_id.to_string());
        true
    }

    pub(crate) fn release_implicit_dial(&self, server_id: &str) {
        self.table.lock().dialing.remove(server_id);
    }

    /// The registered routes, in no particular order.
    pub fn routes(&self) -> Vec<Arc<RouteEntry>> {
        self.table.lock().routes.values().cloned().collect()
    }

    /// Sends `line` to every registered route except the one to `except`.
    pub(crate) fn send_to_routes_except(&self, except: &str, line: &[u8]) {
        let t = self.table.lock();
        for (id, r) in &t.routes {
            if id != except
                && let Enqueued::Ok(_) = r.out.enqueue(None, |b| b.extend_from_slice(line))
            {
                r.out.wake();
            }
        }
    }

    /// Sends `line` to every registered route.
    pub(crate) fn send_to_all(&self, line: &[u8]) {
        broadcast(&self.table.lock().routes, line);
    }

    /// The client URLs of every peer not in lame duck, sorted and deduplicated.
    pub fn peer_client_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = self
            .routes()
            .iter()
            .filter(|r| !r.lame_duck.load(Ordering::Acquire))
            .flat_map(|r| r.client_urls.lock().clone())
            .collect();
        urls.sort();
        urls.dedup();
        urls
    }
}

fn broadcast(routes: &FxHashMap<String, Arc<RouteEntry>>, line: &[u8]) {
    for r in routes.values() {
        if let Enqueued::Ok(_) = r.out.enqueue(None, |b| b.extend_from_slice(line)) {
            r.out.wake();
        }
    }
}

/// Routes' outbound queues, for shutdown.
pub(crate) fn route_outbounds(c: &Cluster) -> Vec<Arc<Outbound>> {
    c.routes().iter().map(|r| r.out.clone()).collect()
}
