//! The server: listeners, the registry of connections, connection limits, the startup
//! self-check and graceful shutdown. [`Server`] is the embeddable handle; the binary is a thin
//! shell around it.

use crate::auth::Authenticator;
use crate::conn::Close;
use crate::conn::busy_poll::BusyPoll;
use crate::conn::client::{self, SELF_CHECK_NAME};
use crate::conn::entry::{ClientEntry, ConnSnapshot};
use crate::conn::outbound::Outbound;
use crate::error::ClosedReason;
use crate::monitor::{Metrics, MonitorState};
use crate::options::{COMPAT_VERSION, Options};
use crate::proto::wire::{self, Info};
use crate::stats::{ServerStats, StatsSnapshot};
use crate::sublist::Sublist;
use crate::subscription::Subscription;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long the startup self-check may take before the server gives up.
const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The name and version nats-mini reports for itself (INFO `go`, logs, `--version`).
pub const PRODUCT: &str = concat!("nats-mini ", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;

    /// A client accepted before the startup self-check passed is served only once the server
    /// is ready: it must not be able to subscribe to `>` and see the check's own message.
    #[tokio::test]
    async fn clients_accepted_before_ready_wait_for_it() {
        let srv = Arc::new(ServerShared::new(Options::ephemeral()));
        let listener = bind("127.0.0.1", 0).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(accept_loop(srv.clone(), listener));
        let mut early = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 512];
        let quiet = tokio::time::timeout(Duration::from_millis(300), early.read(&mut buf)).await;
        assert!(quiet.is_err(), "served before ready: {quiet:?}");
        srv.ready.store(true, Ordering::Release);
        srv.ready_notify.notify_waiters();
        let n = tokio::time::timeout(Duration::from_secs(5), early.read(&mut buf))
            .await
            .expect("INFO once ready")
            .unwrap();
        assert!(buf[..n].starts_with(b"INFO {"), "{:?}", &buf[..n]);
        srv.shutdown.cancel();
        let _ = accept.await;
    }

    #[test]
    fn client_advertise_sets_info_host_and_port() {
        let mut info = Info::default();
        let mut o = Options::ephemeral();
        apply_client_advertise(&mut info, &o, 4321);
        assert_eq!((info.host.as_str(), info.port), ("", 4321));
        o.client_advertise = Some("nats.example.com:443".into());
        apply_client_advertise(&mut info, &o, 4321);
        assert_eq!((info.host.as_str(), info.port), ("nats.example.com", 443));
        o.client_advertise = Some("edge.example.com".into());
        apply_client_advertise(&mut info, &o, 4321);
        assert_eq!((info.host.as_str(), info.port), ("edge.example.com", 4321));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("cannot resolve listen address {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("cannot listen for client connections on {addr} (port {port}): {source}")]
    Bind {
        addr: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot listen for monitoring on {addr} (port {port}): {source}")]
    HttpBind {
        addr: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot listen for https monitoring (https_port) on {addr} (port {port}): {source}")]
    HttpsBind {
        addr: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot listen for route connections on {addr} (port {port}): {source}")]
    RouteBind {
        addr: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("startup self-check failed: {0}")]
    SelfCheck(String),
}

/// Client TLS as the connections use it.
pub(crate) struct TlsState {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub handshake_first: bool,
    pub timeout: Duration,
    /// The same certificate without client-certificate verification, for HTTPS monitoring
    /// (present when `https` is configured).
    pub monitor: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState")
            .field("handshake_first", &self.handshake_first)
            .finish()
    }
}

/// State shared by every connection of one server.
#[derive(Debug)]
pub struct ServerShared {
    /// The options in force; replaced as a whole on reload (see [`ServerShared::reload`]).
    live: parking_lot::RwLock<Arc<Options>>,
    /// Bumped on every reload, so read loops refresh their limits with one atomic load.
    config_gen: AtomicU64,
    pub server_id: String,
    pub server_name: String,
    auth: parking_lot::RwLock<Arc<Authenticator>>,
    pub sublist: Sublist<Subscription>,
    pub stats: ServerStats,
    /// Keeps a worker polling after interactive traffic (see [`crate::conn::busy_poll`]).
    pub busy_poll: BusyPoll,
    clients: Mutex<FxHashMap<u64, Arc<ClientEntry>>>,
    /// The most recently closed connections, newest last, for `/connz?state=closed`.
    closed: Mutex<std::collections::VecDeque<ConnSnapshot>>,
    num_clients: AtomicUsize,
    next_cid: AtomicU64,
    info: Mutex<Info>,
    shutdown: CancellationToken,
    /// Cancelled to stop accepting clients (lame duck or shutdown).
    stop_accepting: CancellationToken,
    ready: AtomicBool,
    /// Signalled when the server becomes ready (clients accepted before that wait for it).
    ready_notify: tokio::sync::Notify,
    /// The address the TCP self-check connects from: the one connection served before ready.
    self_check_peer: Mutex<Option<SocketAddr>>,
    /// Signalled when the self-check's own connection has been unregistered, so `start`
    /// returns only once it no longer counts against `max_conns`.
    self_check_closed: tokio::sync::Notify,
    /// A random one-time secret the self-check authenticates with, whatever the configured
    /// authentication (passwords may be bcrypt hashes we cannot present). Cleared once the
    /// check is done, so it can never be used afterwards.
    self_check_secret: Mutex<Option<String>>,
    pub start: SystemTime,
    config_load_time: Mutex<SystemTime>,
    client_port: AtomicU16,
    http_addr: OnceLock<SocketAddr>,
    https_addr: OnceLock<SocketAddr>,
    lame_duck: AtomicBool,
    max_open_files: AtomicU64,
    tls: parking_lot::RwLock<Option<Arc<TlsState>>>,
    pub monitor: MonitorState,
    pub metrics: Metrics,
    /// Routes to cluster peers and the interest announced to them (inert without `cluster`).
    pub cluster: crate::cluster::Cluster,
}

impl ServerShared {
    pub(crate) fn new(opts: Options) -> Self {
        let server_id = new_server_id();
        let server_name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        let auth = Authenticator::from_options(&opts);
        let cluster = crate::cluster::Cluster::default();
        if opts.cluster.is_some() {
            cluster.enable(opts.cluster_name.as_deref());
        }
        let info = Info {
            server_id: server_id.clone(),
            server_name: server_name.clone(),
            version: COMPAT_VERSION.into(),
            proto: 1,
            go: PRODUCT.into(),
            host: opts.host.clone(),
            port: opts.port,
            headers: true,
            auth_required: auth.required(),
            max_payload: opts.max_payload,
            cluster: if cluster.is_enabled() {
                cluster.name()
            } else {
                String::new()
            },
            ..Info::default()
        };
        ServerShared {
            server_id,
            server_name,
            auth: parking_lot::RwLock::new(Arc::new(auth)),
            sublist: Sublist::new(),
            stats: ServerStats::default(),
            busy_poll: BusyPoll::new(opts.busy_poll),
            clients: Mutex::new(FxHashMap::default()),
            closed: Mutex::new(std::collections::VecDeque::new()),
            num_clients: AtomicUsize::new(0),
            next_cid: AtomicU64::new(1),
            info: Mutex::new(info),
            stop_accepting: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            ready: AtomicBool::new(false),
            ready_notify: tokio::sync::Notify::new(),
            self_check_peer: Mutex::new(None),
            self_check_closed: tokio::sync::Notify::new(),
            self_check_secret: Mutex::new(Some(new_server_id())),
            start: SystemTime::now(),
            config_load_time: Mutex::new(SystemTime::now()),
            client_port: AtomicU16::new(opts.port),
            http_addr: OnceLock::new(),
            https_addr: OnceLock::new(),
            lame_duck: AtomicBool::new(false),
            max_open_files: AtomicU64::new(0),
            tls: parking_lot::RwLock::new(None),
            monitor: MonitorState::default(),
            metrics: Metrics::new(),
            live: parking_lot::RwLock::new(Arc::new(opts)),
            config_gen: AtomicU64::new(0),
            cluster,
        }
    }

    /// The options in force.
    pub fn opts(&self) -> Arc<Options> {
        self.live.read().clone()
    }

    /// The authenticator in force.
    pub fn auth(&self) -> Arc<Authenticator> {
        self.auth.read().clone()
    }

    /// Increases on every successful reload.
    pub fn config_generation(&self) -> u64 {
        self.config_gen.load(Ordering::Acquire)
    }

    /// Applies reloaded options, as nats-server's reload does: limits, authentication, log
    /// level and routes change in place without dropping connections; a change to anything
    /// that cannot change at run time refuses the whole reload, and the running config stays.
    pub fn reload(&self, new: Options) -> Result<(), String> {
        let old = self.opts();
        let fixed: [(&str, String, String); 7] = [
            ("Host", old.host.clone(), new.host.clone()),
            ("Port", old.port.to_string(), new.port.to_string()),
            ("HTTP", format!("{:?}", old.http), format!("{:?}", new.http)),
            (
                "HTTPS",
                format!("{:?}", old.https),
                format!("{:?}", new.https),
            ),
            (
                "Cluster",
                format!("{:?}", old.cluster),
                format!("{:?}", new.cluster),
            ),
            (
                "MaxPending",
                old.max_pending.to_string(),
                new.max_pending.to_string(),
            ),
            (
                "HTTPBasePath",
                old.http_base_path.clone(),
                new.http_base_path.clone(),
            ),
        ];
        for (field, a, b) in fixed {
            if a != b {
                return Err(format!(
                    "config reload not supported for {field}: old={a}, new={b}"
                ));
            }
        }
        new.validate()?;
        // Certificates and keys are re-read on every reload (renewed certificates).
        self.configure_tls(&new).map_err(|e| format!("tls: {e}"))?;
        self.cluster
            .configure_tls(new.cluster_tls.as_ref())
            .map_err(|e| format!("cluster.tls: {e}"))?;
        let auth = Authenticator::from_options(&new);
        {
            let mut info = self.info.lock();
            info.max_payload = new.max_payload;
            info.auth_required = auth.required();
        }
        crate::logging::set_level(new.log_level);
        // Clients that no longer authenticate are told and closed, as nats-server does.
        let entries: Vec<Arc<ClientEntry>> = self.clients.lock().values().cloned().collect();
        for e in entries {
            let creds = e.creds.lock().clone();
            if let Some(c) = creds
                && auth.authorize(&c.as_credentials()).is_none()
            {
                tracing::error!(
                    "{} - cid:{} - authentication error on reload",
                    e.peer,
                    e.cid
                );
                e.out.close(Close::with_err(
                    ClosedReason::AuthenticationViolation,
                    "Authorization Violation",
                ));
            }
        }
        *self.auth.write() = Arc::new(auth);
        self.busy_poll.set_window(new.busy_poll);
        *self.live.write() = Arc::new(new);
        *self.config_load_time.lock() = SystemTime::now();
        self.config_gen.fetch_add(1, Ordering::AcqRel);
        tracing::info!("Reloaded server configuration");
        Ok(())
    }

    /// The INFO template for a new client (the connection fills in its own id and address).
    pub fn client_info(&self) -> Info {
        self.info.lock().clone()
    }

    /// A client's INFO line (`INFO {…} \r\n`).
    pub(crate) fn client_info_line(
        &self,
        cid: u64,
        peer: &SocketAddr,
        connect_info: bool,
    ) -> Vec<u8> {
        let mut info = self.client_info();
        info.client_id = cid;
        info.client_ip = peer.ip().to_string();
        if connect_info {
            info.connect_info = true;
            info.remote_account = "$G".into();
        }
        let mut buf = Vec::with_capacity(512);
        info.encode(&mut buf);
        buf
    }

    /// The TLS acceptor in force, if client TLS is on.
    pub(crate) fn tls(&self) -> Option<Arc<TlsState>> {
        self.tls.read().clone()
    }

    /// Builds (or rebuilds, on reload) the TLS acceptor from the options' files.
    fn configure_tls(&self, opts: &Options) -> Result<(), String> {
        let state = match &opts.tls {
            Some(t) => Some(Arc::new(TlsState {
                acceptor: crate::tls::acceptor(t)?,
                handshake_first: t.handshake_first,
                timeout: t.timeout,
                monitor: match opts.https {
                    Some(_) => Some(crate::tls::monitor_acceptor(t)?),
                    None => None,
                },
            })),
            None => None,
        };
        let mut info = self.info.lock();
        info.tls_required = state.is_some();
        info.tls_verify = opts.tls.as_ref().is_some_and(|t| t.verify);
        drop(info);
        *self.tls.write() = state;
        Ok(())
    }

    /// Starts a client connection over an in-memory pipe and returns the client's end.
    fn in_process_client(self: &Arc<Self>) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let cid = self.next_cid.fetch_add(1, Ordering::Relaxed);
        self.num_clients.fetch_add(1, Ordering::AcqRel);
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        let (rd, wr) = tokio::io::split(server);
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        tokio::spawn(client::run_conn(self.clone(), rd, wr, peer, cid, true));
        client
    }

    /// A connection that ended before it was registered (TLS handshake failure).
    pub(crate) fn abandon_client(&self, _cid: u64) {
        self.num_clients.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn register_client(&self, entry: Arc<ClientEntry>) {
        self.clients.lock().insert(entry.cid, entry);
    }

    pub(crate) fn unregister_client(&self, closed: ConnSnapshot, self_check: bool) {
        let (cid, peer) = (closed.cid, closed.peer);
        self.clients.lock().remove(&cid);
        self.num_clients.fetch_sub(1, Ordering::AcqRel);
        if self_check {
            self.stats.total_connections.fetch_sub(1, Ordering::Relaxed);
            self.self_check_closed.notify_one();
            return;
        }
        let reason = closed.reason.unwrap_or(ClosedReason::ClientClosed);
        match reason {
            ClosedReason::SlowConsumerPendingBytes => {
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "{peer} - cid:{cid} - Slow Consumer Detected: MaxPending of {} Exceeded",
                    self.opts().max_pending
                );
            }
            ClosedReason::SlowConsumerWriteDeadline => {
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "{peer} - cid:{cid} - Slow Consumer Detected: WriteDeadline of {:?} exceeded",
                    self.opts().write_deadline
                );
            }
            ClosedReason::StaleConnection => {
                self.stats.stale_connections.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        tracing::debug!("{peer} - cid:{cid} - Client connection closed: {reason}");
        let keep = self.opts().max_closed_clients;
        if keep > 0 {
            let mut ring = self.closed.lock();
            if ring.len() >= keep {
                ring.pop_front();
            }
            ring.push_back(closed);
        }
    }

    /// Snapshots of the live connections (with their subscriptions when `subs`). Counts come
    /// from the index, which is the truth after `UNSUB max` removals.
    pub fn open_connections(&self, subs: bool) -> Vec<ConnSnapshot> {
        let entries: Vec<Arc<ClientEntry>> = self.clients.lock().values().cloned().collect();
        let mut by_cid: FxHashMap<u64, Vec<crate::conn::entry::SubSnapshot>> = FxHashMap::default();
        let mut counts: FxHashMap<u64, u64> = FxHashMap::default();
        for s in self.sublist.all() {
            *counts.entry(s.cid).or_default() += 1;
            if subs {
                by_cid.entry(s.cid).or_default().push(s.snapshot());
            }
        }
        entries
            .iter()
            .map(|e| {
                let n = counts.get(&e.cid).copied().unwrap_or(0);
                e.snapshot(by_cid.remove(&e.cid).unwrap_or_default(), Some(n))
            })
            .collect()
    }

    /// Snapshots of recently closed connections, oldest first.
    pub fn closed_connections(&self) -> Vec<ConnSnapshot> {
        self.closed.lock().iter().cloned().collect()
    }

    /// Adds a local client's subscription to the index and announces it to cluster peers.
    pub(crate) fn add_subscription(
        &self,
        sub: Arc<Subscription>,
    ) -> Result<(), crate::sublist::SublistError> {
        let (subject, queue) = (sub.subject.clone(), sub.queue.clone());
        self.sublist.insert(sub)?;
        self.cluster.local_sub_added(&subject, queue.as_deref());
        Ok(())
    }

    pub(crate) fn remove_subscription(&self, sub: &Arc<Subscription>) {
        if self.sublist.remove(sub).is_ok() && !sub.is_route {
            self.cluster
                .local_sub_removed(&sub.subject, sub.queue.as_deref());
        }
    }

    pub(crate) fn remove_subscriptions(&self, subs: &[Arc<Subscription>]) {
        if !subs.is_empty() {
            self.sublist.remove_batch(subs);
            for s in subs.iter().filter(|s| !s.is_route) {
                self.cluster
                    .local_sub_removed(&s.subject, s.queue.as_deref());
            }
        }
    }

    /// This server's client URLs as `host:port` (what peers put in their clients' INFO
    /// `connect_urls`): the advertised address, the bind address, or every non-loopback
    /// interface address when bound to all of them.
    pub fn own_client_urls(&self) -> Vec<String> {
        let opts = self.opts();
        let port = self.client_port();
        if let Some(adv) = opts.client_advertise.as_deref().filter(|a| !a.is_empty())
            && let Ok((h, p)) = crate::options::parse_host_port(adv, port)
        {
            return vec![match h.parse::<IpAddr>() {
                Ok(ip) => host_port(&ip, p),
                Err(_) => format!("{h}:{p}"),
            }];
        }
        match opts.host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => {
                let addrs: Vec<IpAddr> = crate::netif::interface_addrs()
                    .into_iter()
                    .filter(|a| a.is_ipv4() == ip.is_ipv4() || ip.is_ipv6())
                    .filter(|a| match a {
                        IpAddr::V6(v6) => !v6.is_unicast_link_local(),
                        IpAddr::V4(_) => true,
                    })
                    .collect();
                let public: Vec<&IpAddr> = addrs.iter().filter(|a| !a.is_loopback()).collect();
                let pick: Vec<&IpAddr> = if public.is_empty() {
                    addrs.iter().collect()
                } else {
                    public
                };
                pick.into_iter().map(|a| host_port(a, port)).collect()
            }
            Ok(ip) => vec![host_port(&ip, port)],
            Err(_) => vec![format!("{}:{port}", opts.host)],
        }
    }

    /// Recomputes the client INFO's `connect_urls` (ours and every peer's, unless
    /// `no_advertise`) and, when they changed, tells every client that understands async INFO,
    /// so clients learn the cluster's members and fail over on their own.
    pub(crate) fn client_urls_changed(&self) {
        let opts = self.opts();
        let peers = self.cluster.peer_client_urls();
        let urls = if opts.no_advertise || self.cluster.route_count() == 0 {
            Vec::new()
        } else {
            let mut u = self.own_client_urls();
            u.extend(peers);
            u.sort();
            u.dedup();
            u
        };
        {
            let mut info = self.info.lock();
            if info.connect_urls == urls {
                return;
            }
            info.connect_urls = urls;
        }
        self.send_async_info(false);
    }

    /// The cluster name changed (adopted from a peer): clients' INFO follows.
    pub(crate) fn cluster_name_changed(&self) {
        self.info.lock().cluster = self.cluster.name();
    }

    pub fn num_connections(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn in_lame_duck(&self) -> bool {
        self.lame_duck.load(Ordering::Acquire)
    }

    /// Waits until the server is ready; false if it shut down first.
    async fn wait_ready(&self) -> bool {
        loop {
            let notified = self.ready_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_ready() {
                return true;
            }
            if self.shutdown.is_cancelled() {
                return false;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = self.shutdown.cancelled() => return false,
            }
        }
    }

    /// Whether `token` is the startup self-check's one-time secret (while the check runs).
    pub(crate) fn is_self_check_secret(&self, token: Option<&str>) -> bool {
        match (token, self.self_check_secret.lock().as_deref()) {
            (Some(t), Some(s)) => crate::auth::constant_time_eq(t.as_bytes(), s.as_bytes()),
            _ => false,
        }
    }

    /// The real client port (after binding port 0).
    pub fn client_port(&self) -> u16 {
        self.client_port.load(Ordering::Relaxed)
    }

    /// The bound monitoring address, when monitoring is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr.get().copied()
    }

    /// The HTTPS monitoring address actually bound, if any.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr.get().copied()
    }

    pub fn config_load_time(&self) -> SystemTime {
        *self.config_load_time.lock()
    }

    pub fn max_open_files(&self) -> u64 {
        self.max_open_files.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max_open_files(&self, n: u64) {
        self.max_open_files.store(n, Ordering::Relaxed);
    }

    fn client_outbounds(&self) -> Vec<Arc<Outbound>> {
        self.clients
            .lock()
            .values()
            .map(|e| e.out.clone())
            .collect()
    }

    /// Sends every client that understands async INFO (protocol 1) the current INFO, with
    /// `ldm: true` in lame-duck mode.
    fn send_async_info(&self, ldm: bool) {
        let entries: Vec<Arc<ClientEntry>> = self.clients.lock().values().cloned().collect();
        for e in entries {
            if !e.async_info.load(Ordering::Acquire) {
                continue;
            }
            let mut info = self.client_info();
            info.ldm = ldm;
            if ldm {
                // Where to go instead: the other members only (nats-server's LDM INFO).
                info.connect_urls = self.cluster.peer_client_urls();
            }
            info.client_id = e.cid;
            info.client_ip = e.peer.ip().to_string();
            let mut buf = Vec::with_capacity(512);
            info.encode(&mut buf);
            if let crate::conn::outbound::Enqueued::Ok(_) =
                e.out.enqueue(None, |b| b.extend_from_slice(&buf))
            {
                e.out.wake();
            }
        }
    }

    /// Cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }
}

/// A server id in nats-server's shape: 56 characters of base32 starting with `N`.
pub(crate) fn new_server_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::with_capacity(56);
    id.push('N');
    for _ in 0..55 {
        id.push(ALPHABET[rand::random_range(0..ALPHABET.len())] as char);
    }
    id
}

/// INFO `host`/`port`: the bind address and real port, or `client_advertise` (`host[:port]`,
/// the port defaulting to the real one) when set, as nats-server does.
fn apply_client_advertise(info: &mut Info, opts: &Options, real_port: u16) {
    info.port = real_port;
    if let Some(adv) = opts.client_advertise.as_deref().filter(|a| !a.is_empty())
        && let Ok((host, port)) = crate::options::parse_host_port(adv, real_port)
    {
        info.host = host;
        info.port = port;
    }
}

/// Formats `host:port` with brackets around IPv6 hosts.
pub fn host_port(host: &IpAddr, port: u16) -> String {
    SocketAddr::new(*host, port).to_string()
}

/// Builds [`Options`] fluently and starts a [`Server`].
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    opts: Options,
}

impl ServerBuilder {
    pub fn options(opts: Options) -> Self {
        ServerBuilder { opts }
    }
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.opts.host = host.into();
        self
    }
    pub fn port(mut self, port: u16) -> Self {
        self.opts.port = port;
        self
    }
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.opts.auth_token = Some(token.into());
        self
    }
    pub fn max_conns(mut self, n: usize) -> Self {
        self.opts.max_conns = n;
        self
    }
    pub fn max_payload(mut self, n: usize) -> Self {
        self.opts.max_payload = n;
        self
    }
    pub fn max_pending(mut self, n: usize) -> Self {
        self.opts.max_pending = n;
        self
    }
    pub fn write_deadline(mut self, d: Duration) -> Self {
        self.opts.write_deadline = d;
        self
    }
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.opts.ping_interval = d;
        self
    }
    pub fn ping_max(mut self, n: u32) -> Self {
        self.opts.ping_max = n;
        self
    }
    pub fn self_check(mut self, on: bool) -> Self {
        self.opts.self_check = on;
        self
    }
    pub async fn start(self) -> Result<Server, StartError> {
        Server::start(self.opts).await
    }
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    shared: Arc<ServerShared>,
    addr: SocketAddr,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Server {
    /// A builder starting from options for embedding and tests: loopback, a free port, no
    /// monitoring, everything else at nats-mini's defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::options(Options::ephemeral())
    }

    /// Binds the client listener, starts accepting, runs the self-check (unless disabled) and
    /// returns once the server is ready.
    pub async fn start(opts: Options) -> Result<Server, StartError> {
        opts.validate().map_err(StartError::Options)?;
        let listener = bind(&opts.host, opts.port).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Resolve(opts.host.clone(), e))?;
        let http_listener = match opts.http_listener() {
            Some((host, port)) => match bind(host, *port).await {
                Ok(l) => Some(l),
                Err(StartError::Bind { addr, port, source }) => {
                    if opts.http_explicit {
                        return Err(StartError::HttpBind { addr, port, source });
                    }
                    tracing::warn!(
                        "default monitoring address {addr} is not available ({source}); starting without monitoring"
                    );
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let https_listener = match &opts.https {
            Some((host, port)) => Some(bind(host, *port).await.map_err(|e| match e {
                StartError::Bind { addr, port, source } => {
                    StartError::HttpsBind { addr, port, source }
                }
                other => other,
            })?),
            None => None,
        };
        let route_listener = match &opts.cluster {
            Some((host, port)) => Some(bind(host, *port).await.map_err(|e| match e {
                StartError::Bind { addr, port, source } => {
                    StartError::RouteBind { addr, port, source }
                }
                other => other,
            })?),
            None => None,
        };
        let shared = Arc::new(ServerShared::new(opts));
        let start_opts = shared.opts();
        shared
            .configure_tls(&start_opts)
            .map_err(|e| StartError::Options(format!("tls: {e}")))?;
        shared
            .cluster
            .configure_tls(start_opts.cluster_tls.as_ref())
            .map_err(|e| StartError::Options(format!("cluster.tls: {e}")))?;
        apply_client_advertise(&mut shared.info.lock(), &start_opts, addr.port());
        shared.client_port.store(addr.port(), Ordering::Relaxed);
        shared.set_max_open_files(crate::limits::raise_nofile_limit());
        tracing::info!("Starting {PRODUCT} (nats-server {COMPAT_VERSION} compatible)");
        tracing::info!("  ID: {}", shared.server_id);
        tracing::info!("  Name: {}", shared.server_name);
        tracing::info!(
            "Listening for client connections on {}",
            host_port(&addr.ip(), addr.port())
        );
        if let Some(l) = http_listener {
            if let Ok(a) = l.local_addr() {
                let _ = shared.http_addr.set(a);
                tracing::info!("Starting http monitor on {}", host_port(&a.ip(), a.port()));
            }
            tokio::spawn(crate::monitor::serve(shared.clone(), l));
        }
        if let Some(l) = https_listener {
            if let Ok(a) = l.local_addr() {
                let _ = shared.https_addr.set(a);
                tracing::info!("Starting https monitor on {}", host_port(&a.ip(), a.port()));
            }
            tokio::spawn(crate::monitor::serve_tls(shared.clone(), l));
        }
        let open_files = shared.max_open_files();
        if open_files > 0 && (shared.opts().max_conns as u64) > open_files {
            tracing::warn!(
                "max_connections ({}) exceeds the open-file limit ({open_files}): connections beyond it will be refused by the OS",
                shared.opts().max_conns
            );
        }
        tokio::spawn({
            let s = shared.clone();
            async move { s.busy_poll.run(s.shutdown.clone()).await }
        });
        let accept = tokio::spawn(accept_loop(shared.clone(), listener));
        let server = Server {
            shared,
            addr,
            accept: Mutex::new(Some(accept)),
        };
        if server.shared.opts().self_check {
            if let Err(e) = server.self_check().await {
                server.shutdown().await;
                return Err(StartError::SelfCheck(e));
            }
        }
        *server.shared.self_check_secret.lock() = None;
        // Routes start once the server works on its own: peers only ever see a checked node.
        if let Some(l) = route_listener {
            let s = &server.shared;
            if let Ok(a) = l.local_addr() {
                s.cluster.set_listen(a);
                tracing::info!("Cluster name is {}", s.cluster.name());
                tracing::info!(
                    "Listening for route connections on {}",
                    host_port(&a.ip(), a.port())
                );
            }
            crate::cluster::dial::start(s, l);
        }
        server.shared.ready.store(true, Ordering::Release);
        server.shared.ready_notify.notify_waiters();
        let urls: Vec<String> = server.client_urls();
        let monitor = server
            .monitor_url()
            .map(|u| format!("; monitoring on {u}"))
            .unwrap_or_default();
        tracing::info!(
            "Server is ready: accepting clients on {}{monitor}",
            urls.join(", ")
        );
        Ok(server)
    }

    /// The bound client address (with the real port).
    pub fn client_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A URL a local client can connect to.
    pub fn client_url(&self) -> String {
        let ip = reachable_ip(self.addr.ip());
        format!("nats://{}", host_port(&ip, self.addr.port()))
    }

    /// Every client URL: one per interface address when listening on all interfaces.
    pub fn client_urls(&self) -> Vec<String> {
        let ip = self.addr.ip();
        if !ip.is_unspecified() {
            return vec![format!("nats://{}", host_port(&ip, self.addr.port()))];
        }
        crate::netif::interface_addrs()
            .into_iter()
            .filter(|a| a.is_ipv4() == ip.is_ipv4() || ip.is_ipv6())
            .filter(|a| match a {
                IpAddr::V6(v6) => !v6.is_unicast_link_local(),
                IpAddr::V4(_) => true,
            })
            .map(|a| format!("nats://{}", host_port(&a, self.addr.port())))
            .collect()
    }

    /// The monitoring base URL, when monitoring is on (`https://…` for HTTPS monitoring).
    pub fn monitor_url(&self) -> Option<String> {
        let (scheme, a) = match self.shared.http_addr() {
            Some(a) => ("http", a),
            None => ("https", self.shared.https_addr()?),
        };
        let ip = reachable_ip(a.ip());
        let opts = self.shared.opts();
        let base = opts.http_base_path.trim_end_matches('/');
        Some(format!("{scheme}://{}{base}", host_port(&ip, a.port())))
    }

    /// The monitoring address actually bound, when monitoring is on: the plain-HTTP one, else
    /// the HTTPS one ([`Server::monitor_url`] has the scheme).
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.shared.http_addr().or_else(|| self.shared.https_addr())
    }

    /// The HTTPS monitoring address actually bound, when `https` is configured.
    pub fn https_monitor_addr(&self) -> Option<SocketAddr> {
        self.shared.https_addr()
    }

    pub fn server_id(&self) -> &str {
        &self.shared.server_id
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    pub fn num_connections(&self) -> usize {
        self.shared.num_connections()
    }

    pub fn num_subscriptions(&self) -> usize {
        self.shared.sublist.count()
    }

    pub fn is_ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// The bound route listener, when clustering is on.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.shared.cluster.listen_addr()
    }

    /// The route URL peers on this host can dial (`nats://host:port`), when clustering is on.
    pub fn cluster_url(&self) -> Option<String> {
        let a = self.cluster_addr()?;
        Some(format!(
            "nats://{}",
            host_port(&reachable_ip(a.ip()), a.port())
        ))
    }

    /// Server ids of the peers this server has a route with.
    pub fn route_peers(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .shared
            .cluster
            .routes()
            .iter()
            .map(|r| r.remote_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Connects to ourselves as a client, subscribes, publishes and waits for our own message.
    async fn self_check(&self) -> Result<(), String> {
        let target = SocketAddr::new(reachable_ip(self.addr.ip()), self.addr.port());
        let subject = format!("_NATS_MINI.self_check.{}", self.shared.server_id);
        let token = self
            .shared
            .self_check_secret
            .lock()
            .clone()
            .unwrap_or_default();
        let run = async {
            // With TLS the check runs over an in-process connection into the same connection
            // code (parser, index, queues, writer), since it cannot present a client
            // certificate; otherwise over TCP to the real listener.
            let mut s: Box<dyn SelfCheckIo> = if self.shared.tls().is_some() {
                Box::new(self.shared.in_process_client())
            } else {
                // Bound first, so the accept loop knows this connection is the check (the only
                // one served before the server is ready).
                let socket = if target.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
                .map_err(|e| format!("cannot create a socket: {e}"))?;
                socket
                    .bind(SocketAddr::new(target.ip(), 0))
                    .map_err(|e| format!("cannot bind the self-check socket: {e}"))?;
                *self.shared.self_check_peer.lock() = socket.local_addr().ok();
                Box::new(
                    socket
                        .connect(target)
                        .await
                        .map_err(|e| format!("cannot connect to {target}: {e}"))?,
                )
            };
            // The whole exchange goes out at once, without waiting for INFO first: the server
            // sends INFO on accept and reads CONNECT whenever it comes, so one round trip
            // checks accept, INFO, auth, SUB, PUB, delivery and PING.
            let connect = serde_json::json!({
                "verbose": false, "pedantic": false, "name": SELF_CHECK_NAME,
                "lang": "rust", "protocol": 1, "auth_token": token,
            });
            let req = format!(
                "CONNECT {connect}\r\nSUB {subject} 1\r\nPUB {subject} 2\r\nok\r\nPING\r\n"
            );
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| format!("write failed: {e}"))?;
            let want = format!("MSG {subject} 1 2\r\nok\r\n");
            let mut got = Vec::new();
            read_until(&mut s, &mut got, |b| {
                contains(b, want.as_bytes()) && contains(b, wire::PONG)
            })
            .await?;
            if !got.starts_with(b"INFO ") {
                return Err("no INFO from the server".to_string());
            }
            // Close our side and wait until the server has forgotten the connection.
            drop(s);
            self.shared.self_check_closed.notified().await;
            Ok(())
        };
        tokio::time::timeout(SELF_CHECK_TIMEOUT, run)
            .await
            .map_err(|_| format!("no reply within {SELF_CHECK_TIMEOUT:?}"))?
    }

    /// Graceful shutdown: stop accepting, flush what every client is owed (bounded by the
    /// write deadline), close them, and return when all are gone. Idempotent.
    pub async fn shutdown(&self) {
        let s = &self.shared;
        s.shutdown.cancel();
        let accept = self.accept.lock().take();
        if let Some(accept) = accept {
            let _ = accept.await;
        }
        for c in s.client_outbounds() {
            c.close(Close::silent(ClosedReason::ServerShutdown));
        }
        for r in crate::cluster::route_outbounds(&s.cluster) {
            r.close(Close::silent(ClosedReason::ServerShutdown));
        }
        let deadline =
            tokio::time::Instant::now() + s.opts().write_deadline + Duration::from_secs(1);
        while s.num_clients.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn in_lame_duck(&self) -> bool {
        self.shared.in_lame_duck()
    }

    /// Applies reloaded options (see [`ServerShared::reload`]).
    ///
    /// Seeds added to `routes` are dialed at once; dialers of removed seeds stop (their
    /// established routes stay until they end, as in nats-server).
    pub fn reload(&self, opts: Options) -> Result<(), String> {
        let before = self.shared.opts().routes.clone();
        self.shared.reload(opts)?;
        if self.shared.cluster.listen_addr().is_some() {
            let added: Vec<String> = self
                .shared
                .opts()
                .routes
                .iter()
                .filter(|r| !before.contains(r))
                .cloned()
                .collect();
            crate::cluster::dial::solicit_seeds(&self.shared, &added);
        }
        Ok(())
    }

    /// The options in force.
    pub fn options(&self) -> Arc<Options> {
        self.shared.opts()
    }

    /// Lame-duck mode, as nats-server does it: stop accepting (so `/healthz` fails and load
    /// balancers move on), tell clients with an async INFO carrying `"ldm":true` so they
    /// reconnect elsewhere on their own, wait the grace period, then close the remaining
    /// clients spread over the rest of `lame_duck_duration`, and shut down.
    pub async fn lame_duck(&self) {
        let s = &self.shared;
        if s.lame_duck.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!("Entering lame duck mode, stop accepting new clients");
        s.stop_accepting.cancel();
        let accept = self.accept.lock().take();
        if let Some(accept) = accept {
            let _ = accept.await;
        }
        s.send_async_info(true);
        // Peers withdraw our client URLs and tell their clients.
        s.cluster.send_to_all(&crate::cluster::route::info_line(s));
        let grace = s.opts().lame_duck_grace_period;
        let spread = s.opts().lame_duck_duration.saturating_sub(grace);
        // Nobody to drain: exit at once, as nats-server does.
        if s.num_connections() > 0 {
            tokio::time::sleep(grace).await;
        }
        let clients = s.client_outbounds();
        if !clients.is_empty() {
            tracing::info!("Closing existing clients");
            // One client per step, each step at most a second (nats-server's pacing).
            let step = (spread / clients.len() as u32).min(Duration::from_secs(1));
            for c in clients {
                c.close(Close::silent(ClosedReason::ServerShutdown));
                if !step.is_zero() {
                    let half = step / 2;
                    let jitter = half.mul_f64(rand::random::<f64>());
                    tokio::time::sleep(half + jitter).await;
                }
            }
        }
        self.shutdown().await;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What the self-check talks through: a TCP stream or an in-process duplex.
trait SelfCheckIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> SelfCheckIo for T {}

async fn read_until<S: tokio::io::AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> bool,
) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    while !done(buf) {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read failed: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed by the server after {:?}",
                String::from_utf8_lossy(buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// The loopback address of the same family when bound to every interface.
fn reachable_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, StartError> {
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| StartError::Resolve(host.to_string(), e))?
        .next()
        .ok_or_else(|| {
            StartError::Resolve(
                host.to_string(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            )
        })?;
    let bind_err = |source| StartError::Bind {
        addr: host_port(&addr.ip(), addr.port()),
        port,
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    // Restarting on the same port right after a stop must work (TIME_WAIT sockets).
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(addr).map_err(bind_err)?;
    socket.listen(4096).map_err(bind_err)
}

async fn accept_loop(srv: Arc<ServerShared>, listener: TcpListener) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = srv.shutdown.cancelled() => break,
            _ = srv.stop_accepting.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let cid = srv.next_cid.fetch_add(1, Ordering::Relaxed);
                if srv.num_clients.load(Ordering::Acquire) >= srv.opts().max_conns {
                    tokio::spawn(reject_max_conns(srv.clone(), stream, peer, cid));
                    continue;
                }
                srv.num_clients.fetch_add(1, Ordering::AcqRel);
                srv.stats.total_connections.fetch_add(1, Ordering::Relaxed);
                let is_check = *srv.self_check_peer.lock() == Some(peer);
                if srv.is_ready() || is_check {
                    tokio::spawn(client::serve(srv.clone(), stream, peer, cid));
                } else {
                    // Accepted before the self-check passed: served once the server is ready,
                    // so no client can see (or disturb) the check's own message.
                    let srv = srv.clone();
                    tokio::spawn(async move {
                        if srv.wait_ready().await {
                            client::serve(srv, stream, peer, cid).await;
                        } else {
                            srv.abandon_client(cid);
                        }
                    });
                }
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning (nats-server does the same).
                tracing::error!(
                    "Temporary Client Accept Error({e}), sleeping {}ms",
                    backoff.as_millis()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Over `max_conns`: the client still gets INFO (so it can parse the error), then the error.
async fn reject_max_conns(
    srv: Arc<ServerShared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    cid: u64,
) {
    let mut info = srv.client_info();
    info.client_id = cid;
    info.client_ip = peer.ip().to_string();
    let mut buf = Vec::new();
    info.encode(&mut buf);
    wire::err(&mut buf, "maximum connections exceeded");
    tracing::error!("{peer} - cid:{cid} - maximum connections exceeded");
    let _ = tokio::time::timeout(srv.opts().write_deadline, async {
        stream.write_all(&buf).await?;
        stream.shutdown().await
    })
    .await;
}
