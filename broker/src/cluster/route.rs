//! One route connection: the handshake, the peer's interest, routed messages, keepalive and
//! gossip.
//!
//! Handshake (pre-pooling dialect, which current nats-server releases fall back to): the
//! accepting side sends its INFO at once and requires CONNECT as the peer's first op; the
//! dialing side sends CONNECT then INFO. The route is registered when the peer's INFO arrives:
//! unless it is ourselves, a second route to a peer we have (the first stays), a peer of another
//! cluster, or a dedicated per-account connection (which a 2.10+ peer opens and drops when it
//! sees we announce no pool). Once registered, the peer's `RS+`/`RS-` become remote entries in
//! the subject index, its `RMSG`s are delivered to local subscribers only, and an INFO naming
//! another server is gossip: we dial that server unless already connected.

use crate::cluster::url::RouteUrl;
use crate::cluster::{ACCOUNT, interest_key};
use crate::conn::Close;
use crate::conn::busy_poll::ARMING_READ_MAX;
use crate::conn::deliver::Deliverer;
use crate::conn::entry::unix_nanos;
use crate::conn::outbound::Outbound;
use crate::error::ClosedReason;
use crate::proto::route::{RouteHandler, RouteParser, RouteStop, RoutedMsg};
use crate::proto::wire;
use crate::server::{ServerShared, host_port};
use crate::stats::BatchStats;
use crate::subscription::Subscription;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;

/// How long a route has to complete its handshake (CONNECT and INFO).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first keepalive PING after registration (nats-server: about a second), then at most
/// every 30 s whatever the client ping interval.
const FIRST_ROUTE_PING: Duration = Duration::from_secs(1);
const MAX_ROUTE_PING_INTERVAL: Duration = Duration::from_secs(30);
const READ_BUF: usize = 64 * 1024;

/// A registered route, shared between its connection task, the cluster table and monitoring.
#[derive(Debug)]
pub struct RouteEntry {
    pub rid: u64,
    pub remote_id: String,
    pub remote_name: String,
    pub peer: SocketAddr,
    pub out: Arc<Outbound>,
    pub solicited: bool,
    /// Dialed because the configuration names it (not learnt by gossip, not accepted).
    pub configured: bool,
    /// The peer's route port (from its INFO).
    pub remote_port: u16,
    pub start: SystemTime,
    /// The peer's client URLs (`connect_urls` of its INFO), merged into our clients' INFO.
    pub client_urls: Mutex<Vec<String>>,
    /// The peer announced lame-duck mode: its client URLs are withdrawn.
    pub lame_duck: AtomicBool,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub rtt_ns: AtomicU64,
    pub num_subs: AtomicU64,
}

/// How a route connection came to be.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Accepted,
    Solicited { url: RouteUrl, explicit: bool },
}

/// How a route connection ended, which decides what its dialer does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The handshake never completed (closed, timed out, protocol error).
    NotEstablished,
    /// It was registered and is now gone: reconnect.
    Ended,
    /// It led back to this server: never dial it again.
    SelfRoute,
    /// We already have a route to that server (keep-first): wait until it goes away.
    Duplicate(String),
    /// Refused: another cluster's name, a duplicate server name or bad credentials.
    Refused,
    /// A dedicated per-account connection, which nats-mini does not support.
    Unsupported,
}

/// The INFO fields a route acts on; everything else is tolerated and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PeerInfo {
    server_id: String,
    server_name: String,
    cluster: String,
    cluster_dynamic: bool,
    host: String,
    port: u16,
    ip: String,
    connect_urls: Option<Vec<String>>,
    headers: bool,
    route_account: String,
    ldm: bool,
    auth_required: bool,
}

/// The CONNECT fields the accepting side checks.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PeerConnect {
    user: Option<String>,
    pass: Option<String>,
    lang: String,
    gateway: String,
    cluster: String,
    cluster_dynamic: bool,
    name: String,
}

/// The state one route connection's read loop owns.
struct RouteConn {
    srv: Arc<ServerShared>,
    rid: u64,
    peer: SocketAddr,
    out: Arc<Outbound>,
    origin: Origin,
    connect_seen: bool,
    entry: Option<Arc<RouteEntry>>,
    /// A connection we keep open but ignore (a dedicated per-account route of a 2.10+ peer).
    inert: bool,
    outcome: Outcome,
    /// The peer's interest, by `subject` or `subject queue`.
    remote_subs: FxHashMap<Vec<u8>, Arc<Subscription>>,
    d: Deliverer,
    pings_out: u32,
    ping_sent_at: Option<Instant>,
    /// Set when the route registers: the keepalive timer starts.
    arm_ping: bool,
}

fn parse_object<T: serde::de::DeserializeOwned>(
    json: &[u8],
) -> Option<(T, serde_json::Map<String, serde_json::Value>)> {
    let v: serde_json::Value = serde_json::from_slice(json.trim_ascii()).ok()?;
    let serde_json::Value::Object(map) = v else {
        return None;
    };
    let t = serde_json::from_value(serde_json::Value::Object(map.clone())).ok()?;
    Some((t, map))
}

impl RouteConn {
    fn label(&self) -> String {
        format!("{} - rid:{}", self.peer, self.rid)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.d.send(&self.out, bytes);
    }

    /// An accepting side's first op must be CONNECT (nats-server answers anything else with an
    /// authorization violation).
    fn require_connect(&self) -> Result<(), Close> {
        if matches!(self.origin, Origin::Accepted) && !self.connect_seen {
            return Err(Close::with_err(
                ClosedReason::AuthenticationViolation,
                "Authorization Violation",
            ));
        }
        Ok(())
    }

    fn registered(&self) -> Option<&Arc<RouteEntry>> {
        if self.inert {
            None
        } else {
            self.entry.as_ref()
        }
    }

    /// The route an `RS+`/`RS-` applies to: none before registration, on an ignored
    /// connection, or for another account than ours (a 2.15 peer announces `$SYS` interest).
    fn interest_route(&self, account: &[u8]) -> Result<Option<Arc<RouteEntry>>, Close> {
        self.require_connect()?;
        Ok(self.registered().filter(|_| account == ACCOUNT).cloned())
    }

    /// The first INFO: decide whether this connection becomes the route to that peer.
    fn handshake_info(
        &mut self,
        info: PeerInfo,
        mut raw: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Close> {
        let srv = self.srv.clone();
        if !info.route_account.is_empty() {
            tracing::debug!(
                "{} - Ignoring a dedicated route for account {:?} (not supported)",
                self.label(),
                info.route_account
            );
            self.inert = true;
            self.outcome = Outcome::Unsupported;
            return Ok(());
        }
        if info.server_id == srv.server_id {
            tracing::debug!("{} - Detected route to self, ignoring", self.label());
            self.outcome = Outcome::SelfRoute;
            return Err(Close::silent(ClosedReason::DuplicateRoute));
        }
        let ours = srv.cluster.name();
        if !info.cluster.is_empty() && info.cluster != ours {
            if srv.cluster.is_dynamic() && (!info.cluster_dynamic || ours < info.cluster) {
                srv.cluster.adopt_name(&info.cluster, info.cluster_dynamic);
                srv.cluster_name_changed();
            } else {
                tracing::error!(
                    "{} - Rejecting route to {:?}: cluster name {:?} does not match {:?}",
                    self.label(),
                    info.server_name,
                    info.cluster,
                    ours
                );
                self.outcome = Outcome::Refused;
                return Err(Close::silent(ClosedReason::ClusterNameConflict));
            }
        }
        if matches!(self.origin, Origin::Accepted) && info.server_name == srv.server_name {
            tracing::error!(
                "{} - Remote server has a duplicate name: {:?}",
                self.label(),
                info.server_name
            );
            self.outcome = Outcome::Refused;
            return Err(Close::silent(ClosedReason::DuplicateServerName));
        }
        self.out.headers.store(info.headers, Ordering::Relaxed);
        // What other peers need to dial this one: its advertised address, or the address it
        // connected from with its route port.
        if info.ip.is_empty() {
            let ip = format!("nats-route://{}/", host_port(&self.peer.ip(), info.port));
            raw.insert("ip".into(), serde_json::Value::String(ip));
        }
        raw.remove("nonce");
        let (solicited, configured) = match &self.origin {
            Origin::Accepted => (false, false),
            Origin::Solicited { explicit, .. } => (true, *explicit),
        };
        let entry = Arc::new(RouteEntry {
            rid: self.rid,
            remote_id: info.server_id.clone(),
            remote_name: info.server_name.clone(),
            peer: self.peer,
            out: self.out.clone(),
            solicited,
            configured,
            remote_port: info.port,
            start: SystemTime::now(),
            client_urls: Mutex::new(info.connect_urls.clone().unwrap_or_default()),
            lame_duck: AtomicBool::new(info.ldm),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            rtt_ns: AtomicU64::new(0),
            num_subs: AtomicU64::new(0),
        });
        if !srv.cluster.register(&entry) {
            tracing::debug!(
                "{} - Detected duplicate remote route {:?}",
                self.label(),
                info.server_id
            );
            self.outcome = Outcome::Duplicate(info.server_id);
            return Err(Close::silent(ClosedReason::DuplicateRoute));
        }
        tracing::info!(
            "{} - Route connection to {:?} ({}) registered",
            self.label(),
            info.server_name,
            info.server_id
        );
        self.entry = Some(entry);
        self.outcome = Outcome::Ended;
        self.arm_ping = true;
        // Gossip: tell the other peers about this one so they connect to it too (not for
        // routes we dialed because of gossip, as nats-server does).
        let from_gossip = matches!(
            self.origin,
            Origin::Solicited {
                explicit: false,
                ..
            }
        );
        if !from_gossip {
            let line = info_frame(&raw);
            srv.cluster.send_to_routes_except(&info.server_id, &line);
        }
        srv.client_urls_changed();
        Ok(())
    }

    /// A later INFO: an update about the peer itself, or gossip about another server.
    fn info_update(&mut self, entry: Arc<RouteEntry>, info: PeerInfo) {
        if info.server_id.is_empty() || info.server_id == self.srv.server_id {
            return;
        }
        if info.server_id != entry.remote_id {
            crate::cluster::dial::gossiped(
                &self.srv,
                &info.server_id,
                &info.host,
                info.port,
                &info.ip,
                info.auth_required,
                !info.route_account.is_empty(),
            );
            return;
        }
        let mut changed = false;
        if info.ldm && !entry.lame_duck.swap(true, Ordering::AcqRel) {
            changed = true;
        }
        if let Some(urls) = info.connect_urls {
            let mut current = entry.client_urls.lock();
            if *current != urls {
                *current = urls;
                changed = true;
            }
        }
        if changed {
            self.srv.client_urls_changed();
        }
    }
}

impl RouteHandler for RouteConn {
    type Error = Close;

    fn on_info(&mut self, json: &[u8]) -> Result<(), Close> {
        self.require_connect()?;
        let Some((info, raw)) = parse_object::<PeerInfo>(json) else {
            return Err(Close::silent(ClosedReason::ProtocolViolation));
        };
        match self.entry.clone() {
            Some(entry) => {
                self.info_update(entry, info);
                Ok(())
            }
            None if self.inert => Ok(()),
            None => self.handshake_info(info, raw),
        }
    }

    fn on_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        if !matches!(self.origin, Origin::Accepted) || self.connect_seen {
            return Ok(());
        }
        let Some((c, _)) = parse_object::<PeerConnect>(json) else {
            return Err(Close::silent(ClosedReason::ProtocolViolation));
        };
        let opts = self.srv.opts();
        if let Some(user) = &opts.cluster_user {
            let ok = c.user.as_deref() == Some(user.as_str())
                && crate::auth::password_ok(
                    c.pass.as_deref().unwrap_or(""),
                    opts.cluster_pass.as_deref().unwrap_or(""),
                );
            if !ok {
                tracing::error!("{} - Router authentication error", self.label());
                self.outcome = Outcome::Refused;
                return Err(Close::with_err(
                    ClosedReason::AuthenticationViolation,
                    "Authorization Violation",
                ));
            }
        }
        if !c.lang.is_empty() {
            self.outcome = Outcome::Refused;
            return Err(Close::with_err(
                ClosedReason::WrongPort,
                "attempted to connect to route port",
            ));
        }
        if !c.gateway.is_empty() {
            self.outcome = Outcome::Refused;
            return Err(Close::silent(ClosedReason::WrongPort));
        }
        let ours = self.srv.cluster.name();
        if c.cluster != ours {
            if self.srv.cluster.is_dynamic() && (!c.cluster_dynamic || ours < c.cluster) {
                self.srv.cluster.adopt_name(&c.cluster, c.cluster_dynamic);
                self.srv.cluster_name_changed();
            } else {
                let text = format!(
                    "Rejecting connection, cluster name {:?} does not match {:?}",
                    c.cluster, ours
                );
                tracing::error!("{} - {text}", self.label());
                self.outcome = Outcome::Refused;
                // The text is dynamic: queue it, then close with the reason alone.
                let mut line = Vec::new();
                wire::err(&mut line, &text);
                self.send(&line);
                return Err(Close::silent(ClosedReason::ClusterNameConflict));
            }
        }
        let _ = c.name;
        self.connect_seen = true;
        Ok(())
    }

    fn on_ping(&mut self) -> Result<(), Close> {
        self.require_connect()?;
        self.send(wire::PONG);
        Ok(())
    }

    fn on_pong(&mut self) -> Result<(), Close> {
        self.pings_out = 0;
        if let (Some(sent), Some(e)) = (self.ping_sent_at.take(), &self.entry) {
            let rtt = sent.elapsed().as_nanos().max(1) as u64;
            e.rtt_ns.store(rtt, Ordering::Relaxed);
        }
        Ok(())
    }

    fn on_err(&mut self, text: &[u8]) -> Result<(), Close> {
        tracing::error!(
            "{} - Router Error {}",
            self.label(),
            String::from_utf8_lossy(text)
        );
        if self.entry.is_none() && self.outcome == Outcome::NotEstablished {
            self.outcome = Outcome::Refused;
        }
        Err(Close::silent(ClosedReason::ParseError))
    }

    fn on_sub(
        &mut self,
        account: &[u8],
        subject: &[u8],
        queue: Option<(&[u8], u32)>,
    ) -> Result<(), Close> {
        let Some(entry) = self.interest_route(account)? else {
            return Ok(());
        };
        let key = interest_key(subject, queue.map(|(q, _)| q));
        if let Some(existing) = self.remote_subs.get(&key) {
            if let Some((_, w)) = queue {
                existing.weight.store(w.max(1), Ordering::Relaxed);
            }
            return Ok(());
        }
        let sub = Arc::new(Subscription::remote(
            self.out.clone(),
            self.rid,
            subject,
            queue.map(|(q, _)| q),
            queue.map_or(1, |(_, w)| w),
        ));
        if self.srv.sublist.insert(sub.clone()).is_err() {
            tracing::debug!(
                "{} - Ignoring interest in invalid subject {:?}",
                self.label(),
                String::from_utf8_lossy(subject)
            );
            return Ok(());
        }
        self.remote_subs.insert(key, sub);
        entry
            .num_subs
            .store(self.remote_subs.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn on_unsub(
        &mut self,
        account: &[u8],
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> Result<(), Close> {
        let Some(entry) = self.interest_route(account)? else {
            return Ok(());
        };
        if let Some(sub) = self.remote_subs.remove(&interest_key(subject, queue))
            && sub.claim_removal()
        {
            let _ = self.srv.sublist.remove(&sub);
        }
        entry
            .num_subs
            .store(self.remote_subs.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn on_msg(&mut self, m: &RoutedMsg<'_>) -> Result<(), Close> {
        self.require_connect()?;
        if self.registered().is_none() || m.account != ACCOUNT {
            return Ok(());
        }
        self.d.batch.in_msgs += 1;
        self.d.batch.in_bytes += m.data.len() as u64;
        let msg = m.as_msg();
        let result = self.srv.sublist.match_subject(m.subject);
        let srv = self.srv.clone();
        self.d.publish_routed(&srv, &result, &msg, m.queues);
        Ok(())
    }
}

/// Our route INFO line.
pub(crate) fn info_line(srv: &ServerShared) -> Vec<u8> {
    let opts = srv.opts();
    let listen = srv.cluster.listen_addr();
    let (mut host, mut port) = listen
        .map(|a| (a.ip().to_string(), a.port()))
        .unwrap_or_default();
    let mut ip = None;
    if let Some(adv) = opts.cluster_advertise.as_deref().filter(|a| !a.is_empty())
        && let Ok((h, p)) = crate::options::parse_host_port(adv, port)
    {
        ip = Some(format!(
            "nats-route://{}/",
            crate::cluster::url::join_host_port(&h, p)
        ));
        (host, port) = (h, p);
    }
    let mut info = serde_json::json!({
        "server_id": srv.server_id,
        "server_name": srv.server_name,
        "version": crate::options::COMPAT_VERSION,
        "proto": 2,
        "go": crate::server::PRODUCT,
        "host": host,
        "port": port,
        "headers": true,
        "max_payload": opts.max_payload,
        "cluster": srv.cluster.name(),
    });
    let obj = info.as_object_mut().expect("a JSON object literal");
    if srv.cluster.is_dynamic() {
        obj.insert("cluster_dynamic".into(), true.into());
    }
    if !opts.no_advertise {
        let urls = srv.own_client_urls();
        if !urls.is_empty() {
            obj.insert("connect_urls".into(), urls.into());
        }
    }
    if let Some(ip) = ip {
        obj.insert("ip".into(), ip.into());
    }
    if opts.cluster_user.is_some() {
        obj.insert("auth_required".into(), true.into());
    }
    if opts.cluster_tls.is_some() {
        obj.insert("tls_required".into(), true.into());
    }
    if srv.in_lame_duck() {
        obj.insert("ldm".into(), true.into());
    }
    info_frame(&info)
}

/// `INFO {json} \r\n`, with the space before CRLF nats-server writes on routes too.
fn info_frame<T: serde::Serialize>(json: &T) -> Vec<u8> {
    let mut line = b"INFO ".to_vec();
    let _ = serde_json::to_writer(&mut line, json);
    line.extend_from_slice(b" \r\n");
    line
}

/// Our CONNECT line for a route we dial.
fn connect_line(srv: &ServerShared, url: &RouteUrl) -> Vec<u8> {
    let mut c = serde_json::json!({
        "echo": true,
        "verbose": false,
        "pedantic": false,
    });
    let obj = c.as_object_mut().expect("a JSON object literal");
    if let Some(u) = &url.user {
        obj.insert("user".into(), u.clone().into());
        obj.insert("pass".into(), url.pass.clone().unwrap_or_default().into());
    }
    obj.insert("tls_required".into(), srv.cluster.tls().is_some().into());
    obj.insert("headers".into(), true.into());
    obj.insert("name".into(), srv.server_id.clone().into());
    obj.insert("cluster".into(), srv.cluster.name().into());
    if srv.cluster.is_dynamic() {
        obj.insert("cluster_dynamic".into(), true.into());
    }
    let mut line = b"CONNECT ".to_vec();
    let _ = serde_json::to_writer(&mut line, &c);
    line.extend_from_slice(b"\r\n");
    line
}

/// Runs one route connection until it closes and says how it ended.
pub(crate) async fn run<R, W>(
    srv: Arc<ServerShared>,
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    origin: Origin,
) -> Outcome
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let opts = srv.opts();
    let rid = srv.cluster.next_rid();
    let out = Arc::new(Outbound::new(opts.max_pending));
    out.headers.store(true, Ordering::Relaxed);
    let writer = {
        let out = out.clone();
        let deadline = opts.write_deadline;
        tokio::spawn(async move { out.write_loop(wr, deadline, None).await })
    };
    tracing::info!("{peer} - rid:{rid} - Route connection created");
    let mut conn = RouteConn {
        srv: srv.clone(),
        rid,
        peer,
        out: out.clone(),
        origin: origin.clone(),
        connect_seen: false,
        entry: None,
        inert: false,
        outcome: Outcome::NotEstablished,
        remote_subs: FxHashMap::default(),
        d: Deliverer::new(rid ^ 0x5bd1_e995),
        pings_out: 0,
        ping_sent_at: None,
        arm_ping: false,
    };
    match &origin {
        Origin::Accepted => {
            let line = info_line(&srv);
            conn.send(&line);
        }
        Origin::Solicited { url, .. } => {
            let c = connect_line(&srv, url);
            conn.send(&c);
            let line = info_line(&srv);
            conn.send(&line);
        }
    }
    conn.d.flush_receivers();

    let ping_every = opts.ping_interval.min(MAX_ROUTE_PING_INTERVAL);
    let handshake = tokio::time::sleep(HANDSHAKE_TIMEOUT);
    tokio::pin!(handshake);
    let ping_timer = tokio::time::sleep(Duration::from_secs(86400 * 365));
    tokio::pin!(ping_timer);
    let mut parser = RouteParser::new(opts.max_control_line);
    let mut buf = vec![0u8; READ_BUF];
    let shutdown = srv.shutdown_token().clone();
    let close = loop {
        tokio::select! {
            biased;
            _ = out.closed.cancelled() => break None,
            _ = shutdown.cancelled() => break Some(Close::silent(ClosedReason::ServerShutdown)),
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) => break Some(Close::silent(ClosedReason::ClientClosed)),
                    Ok(n) => n,
                    Err(_) => break Some(Close::silent(ClosedReason::ReadError)),
                };
                let res = parser.parse(&buf[..n], &mut conn);
                conn.d.flush_receivers();
                if n <= ARMING_READ_MAX {
                    srv.busy_poll.arm();
                }
                // Routes never stall (nats-server stalls client producers only): a peer must
                // not be slowed by one slow local subscriber.
                conn.d.stalled.clear();
                srv.stats.add(&conn.d.batch);
                if let Some(e) = &conn.entry {
                    e.in_msgs.fetch_add(conn.d.batch.in_msgs, Ordering::Relaxed);
                    e.in_bytes.fetch_add(conn.d.batch.in_bytes, Ordering::Relaxed);
                }
                out.last_activity.store(unix_nanos(SystemTime::now()), Ordering::Relaxed);
                conn.d.batch = BatchStats::default();
                if let Err(stop) = res {
                    break Some(match stop {
                        RouteStop::Proto(e) => {
                            tracing::error!("{peer} - rid:{rid} - Route protocol error: {e}");
                            Close::silent(ClosedReason::ParseError)
                        }
                        RouteStop::Handler(c) => c,
                    });
                }
                if conn.arm_ping {
                    conn.arm_ping = false;
                    ping_timer.as_mut().reset(tokio::time::Instant::now() + FIRST_ROUTE_PING);
                }
            }
            _ = &mut ping_timer => {
                if conn.pings_out + 1 > srv.opts().ping_max.max(1) {
                    break Some(Close::with_err(ClosedReason::StaleConnection, "Stale Connection"));
                }
                conn.pings_out += 1;
                conn.ping_sent_at = Some(Instant::now());
                conn.send(wire::PING);
                conn.d.flush_receivers();
                ping_timer.as_mut().reset(tokio::time::Instant::now() + ping_every);
            }
            // An unregistered connection, ignored ones included (a 2.10+ peer closes its
            // per-account connection itself; anything else must not hold a socket for ever).
            _ = &mut handshake, if conn.entry.is_none() => {
                tracing::debug!("{peer} - rid:{rid} - Route handshake timed out");
                break Some(Close::silent(ClosedReason::AuthenticationTimeout));
            }
        }
    };
    if let Some(c) = close {
        out.close(c);
    }
    let _ = writer.await;
    drop(rd);

    let subs: Vec<Arc<Subscription>> = conn
        .remote_subs
        .drain()
        .map(|(_, s)| s)
        .filter(|s| s.claim_removal())
        .collect();
    if !subs.is_empty() {
        srv.sublist.remove_batch(&subs);
    }
    let reason = out
        .close_reason()
        .map(|c| c.reason)
        .unwrap_or(ClosedReason::ClientClosed);
    match &conn.entry {
        Some(e) => {
            if srv.cluster.unregister(e) {
                srv.client_urls_changed();
            }
            tracing::info!(
                "{peer} - rid:{rid} - Router connection closed: {reason} - Remote: {}",
                e.remote_name
            );
        }
        None => tracing::debug!("{peer} - rid:{rid} - Router connection closed: {reason}"),
    }
    conn.outcome
}
