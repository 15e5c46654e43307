//! A client connection: its read loop, the protocol ops applied to the server, and delivery of
//! published messages to subscribers.
//!
//! One task reads and parses; a second ([`Outbound::write_loop`]) writes. A publish is handled
//! entirely inside the publisher's read loop: look up the subject (own L1 cache first, then the
//! shared index), append the message to every receiver's outbound queue, and — once the whole
//! read buffer is processed — wake each receiver's writer once. No lock is held across an await,
//! nothing on this path allocates in steady state, and no other connection can block it beyond
//! a short queue mutex.

use crate::conn::Close;
use crate::conn::busy_poll::ARMING_READ_MAX;
use crate::conn::deliver::Deliverer;
use crate::conn::entry::{ClientDesc, ClientEntry, ConnSnapshot, SubSnapshot, unix_nanos};
use crate::conn::outbound::{Enqueued, Outbound};
use crate::error::ClosedReason;
use crate::options::FIRST_PING_DELAY;
use crate::permissions::{Permissions, ResponseTracker, go_quote};
use crate::proto::wire;
use crate::proto::{Handler, Msg, ParseStop, Parser, ProtoError};
use crate::server::ServerShared;
use crate::stats::BatchStats;
use crate::subject;
use crate::sublist::MatchResult;
use crate::subscription::Subscription;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read buffer sizes: start small (idle connections are cheap), double after a full read, and
/// shrink again after a run of short reads — nats-server's policy.
const READ_MIN: usize = 512;
const READ_MAX: usize = 64 * 1024;

/// Per-connection L1 match cache bound (as nats-server).
const L1_MAX: usize = 512;

/// The client name the startup self-check connects with; its traffic is not counted.
pub const SELF_CHECK_NAME: &str = "__nats_mini_self_check";

/// nats-server (Go's encoding/json) treats `null` like an absent field; clients such as
/// async-nats send `"name":null`. These read `null` as the field's default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

fn yes() -> bool {
    true
}

/// The CONNECT options nats-mini acts on. Absent fields keep nats-server's defaults
/// (verbose, pedantic and echo on); unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectOpts {
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub verbose: bool,
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub pedantic: bool,
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub echo: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub no_responders: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub protocol: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lang: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub version: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub pass: Option<String>,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub new_account: Option<bool>,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            user: None,
            pass: None,
            auth_token: None,
            account: None,
            new_account: None,
        }
    }
}

/// The per-connection match cache, valid while the index generation is unchanged.
struct L1Cache {
    generation: u64,
    map: FxHashMap<Box<[u8]>, Arc<MatchResult<Subscription>>>,
    /// The last subject published and its match, checked before the map: publishers mostly
    /// repeat one subject, and a byte compare is cheaper than hashing, probing and touching the
    /// result's reference count for every message. Taken out while in use.
    last: Option<LastMatch>,
}

struct LastMatch {
    generation: u64,
    subject: Vec<u8>,
    result: Arc<MatchResult<Subscription>>,
}

/// The state a client's read loop owns. Implements the parser's [`Handler`].
pub(crate) struct ClientConn {
    pub cid: u64,
    pub out: Arc<Outbound>,
    entry: Arc<ClientEntry>,
    srv: Arc<ServerShared>,
    pub peer: SocketAddr,
    subs: FxHashMap<Box<[u8]>, Arc<Subscription>>,
    pub opts: ConnectOpts,
    connected: bool,
    first_pong_sent: bool,
    l1: L1Cache,
    /// Delivery state: receivers to wake after this read buffer, counters, queue-pick RNG.
    d: Deliverer,
    pings_out: u32,
    last_in: Instant,
    /// When the RTT was last measured (a PONG to our PING); None until the first one.
    rtt_at: Option<Instant>,
    ping_sent_at: Option<Instant>,
    pub is_self_check: bool,
    /// The authenticated user's permissions (`None`: everything allowed).
    perms: Option<Arc<Permissions>>,
    /// Publish-permission verdicts per subject (bounded), so the lists are matched once.
    pub_cache: FxHashMap<Box<[u8]>, bool>,
    responses: Option<Arc<ResponseTracker>>,
}

/// Bound on the per-connection publish-permission cache.
const PUB_CACHE_MAX: usize = 1024;

impl ClientConn {
    fn new(entry: Arc<ClientEntry>, srv: Arc<ServerShared>) -> Self {
        let (cid, peer, out) = (entry.cid, entry.peer, entry.out.clone());
        ClientConn {
            cid,
            out,
            entry,
            srv,
            peer,
            subs: FxHashMap::default(),
            opts: ConnectOpts::default(),
            connected: false,
            first_pong_sent: false,
            l1: L1Cache {
                generation: u64::MAX,
                map: FxHashMap::default(),
                last: None,
            },
            d: Deliverer::new(cid),
            pings_out: 0,
            last_in: Instant::now(),
            rtt_at: None,
            ping_sent_at: None,
            is_self_check: false,
            perms: None,
            pub_cache: FxHashMap::default(),
            responses: None,
        }
    }

    /// Queues protocol bytes for this connection itself (PONG, +OK, -ERR, INFO).
    fn send_self(&mut self, bytes: &[u8]) {
        self.d.send(&self.out, bytes);
    }

    fn send_err(&mut self, text: &str) {
        if let Enqueued::Ok(true) = self.out.enqueue(None, |b| wire::err(b, text)) {
            self.d.flush.push(self.out.clone());
        }
    }

    fn send_info(&mut self, connect_info: bool) {
        let buf = self
            .srv
            .client_info_line(self.cid, &self.peer, connect_info);
        self.send_self(&buf);
    }

    /// Wakes every receiver that got data during this batch.
    fn flush_receivers(&mut self) {
        self.d.flush_receivers();
    }

    fn lookup(&mut self, subject: &[u8]) -> Arc<MatchResult<Subscription>> {
        let sl = &self.srv.sublist;
        // Read the generation before matching: if the index changes meanwhile, the entry is
        // stored under the old generation and dropped on the next lookup.
        let generation = sl.generation();
        if generation != self.l1.generation {
            self.l1.map.clear();
            self.l1.generation = generation;
        } else if let Some(r) = self.l1.map.get(subject) {
            return r.clone();
        }
        let r = sl.match_subject(subject);
        if self.l1.map.len() >= L1_MAX {
            self.l1.map.clear();
        }
        self.l1.map.insert(subject.into(), r.clone());
        r
    }

    /// The match for a published subject: the last one when it repeats, else [`Self::lookup`].
    fn last_match(&mut self, subject: &[u8]) -> LastMatch {
        let generation = self.srv.sublist.generation();
        match self.l1.last.take() {
            Some(last) if last.generation == generation && last.subject == subject => last,
            stale => {
                let result = self.lookup(subject);
                let mut buf = stale.map(|l| l.subject).unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(subject);
                LastMatch {
                    generation,
                    subject: buf,
                    result,
                }
            }
        }
    }

    /// Routes one published message to every matching subscription, local and remote.
    fn process_msg(&mut self, m: &Msg<'_>) {
        let last = self.last_match(m.subject);
        let skip = (!self.opts.echo).then_some(self.cid);
        let delivered = self.d.publish(&self.srv, &last.result, m, skip);
        self.l1.last = Some(last);
        if !delivered && !m.reply.is_empty() && self.opts.no_responders && self.opts.headers {
            self.no_responders(m.subject, m.reply);
        }
    }

    /// A request reached nobody: answer with a 503 status on the requester's own subscription
    /// that matches the reply subject (if it has one), as nats-server does.
    fn no_responders(&mut self, subject: &[u8], reply: &[u8]) {
        let sid = self
            .subs
            .values()
            .find(|s| s.queue.is_none() && !s.is_removed() && subject::matches(&s.subject, reply))
            .map(|s| s.sid.clone());
        if let Some(sid) = sid
            && let Enqueued::Ok(true) = self
                .out
                .enqueue(None, |b| wire::no_responders(b, reply, &sid, subject))
        {
            self.d.flush.push(self.out.clone());
        }
    }

    /// Publish permission: the lists (cached per subject), else an allowed response.
    fn may_publish(&mut self, subject_: &[u8]) -> bool {
        let Some(p) = &self.perms else {
            return true;
        };
        let allowed = match self.pub_cache.get(subject_) {
            Some(v) => *v,
            None => {
                let v = p.can_publish(subject_);
                if self.pub_cache.len() >= PUB_CACHE_MAX {
                    self.pub_cache.clear();
                }
                self.pub_cache.insert(subject_.into(), v);
                v
            }
        };
        allowed || self.responses.as_ref().is_some_and(|r| r.allow(subject_))
    }

    fn publish_sub_count(&self) {
        self.entry
            .num_subs
            .store(self.subs.len() as u64, Ordering::Relaxed);
    }

    /// The connection's subscriptions as monitoring lists them.
    pub fn sub_snapshots(&self) -> Vec<SubSnapshot> {
        self.subs
            .values()
            .filter(|s| !s.is_removed())
            .map(|s| s.snapshot())
            .collect()
    }

    fn unsubscribe(&mut self, sid: &[u8]) {
        if let Some(sub) = self.subs.remove(sid)
            && sub.claim_removal()
        {
            self.srv.remove_subscription(&sub);
        }
    }

    /// Sends a server PING or closes a stale connection. Returns the delay to the next check.
    fn ping_tick(&mut self) -> Result<Duration, Close> {
        let interval = self.srv.opts().ping_interval;
        let now = Instant::now();
        let need_rtt = self.rtt_at.is_none();
        // A client that sent us something within the interval is alive: skip this PING.
        if need_rtt || now.duration_since(self.last_in) >= interval {
            if self.pings_out + 1 > self.srv.opts().ping_max {
                return Err(Close::with_err(
                    ClosedReason::StaleConnection,
                    "Stale Connection",
                ));
            }
            self.pings_out += 1;
            self.ping_sent_at = Some(now);
            self.send_self(wire::PING);
        }
        Ok(interval)
    }
}

impl Handler for ClientConn {
    type Error = Close;

    fn on_connect(&mut self, json: &[u8]) -> Result<bool, Close> {
        let opts: ConnectOpts = parse_json_object(json)?;
        let auth_violation = Close::with_err(
            ClosedReason::AuthenticationViolation,
            "Authorization Violation",
        );
        let creds = crate::auth::Credentials {
            user: opts.user.as_deref(),
            pass: opts.pass.as_deref(),
            token: opts.auth_token.as_deref(),
        };
        let authorized =
            if opts.name == SELF_CHECK_NAME && self.srv.is_self_check_secret(creds.token) {
                Some(crate::auth::Authorized::default())
            } else {
                self.srv.auth().authorize(&creds)
            };
        if authorized.is_some() && opts.name != SELF_CHECK_NAME {
            *self.entry.creds.lock() = Some(crate::conn::entry::SavedCreds {
                user: opts.user.clone(),
                pass: opts.pass.clone(),
                token: opts.auth_token.clone(),
            });
        }
        let Some(authorized) = authorized else {
            match creds.user {
                Some(u) => tracing::error!(
                    "{} - cid:{} - authentication error - User {u:?}",
                    self.peer,
                    self.cid
                ),
                None => tracing::error!("{} - cid:{} - authentication error", self.peer, self.cid),
            }
            return Err(auth_violation);
        };
        self.responses = authorized
            .permissions
            .as_ref()
            .and_then(|p| p.allow_responses)
            .map(|r| Arc::new(ResponseTracker::new(r)));
        self.perms = authorized.permissions;
        self.pub_cache.clear();
        if opts.account.is_some() || opts.new_account.is_some() {
            return Err(auth_violation);
        }
        if !(0..=1).contains(&opts.protocol) {
            return Err(Close::with_err(
                ClosedReason::BadClientProtocolVersion,
                "invalid client protocol",
            ));
        }
        if opts.no_responders && !opts.headers {
            return Err(Close::with_err(
                ClosedReason::NoRespondersRequiresHeaders,
                "no responders requires headers support",
            ));
        }
        self.out.headers.store(opts.headers, Ordering::Relaxed);
        self.is_self_check = opts.name == SELF_CHECK_NAME;
        if !self.connected {
            tracing::debug!(
                "{} - cid:{} - client connected name={:?} lang={:?} version={:?}",
                self.peer,
                self.cid,
                opts.name,
                opts.lang,
                opts.version
            );
        }
        if !self.connected {
            // Until a PING/PONG measures it, estimate the RTT as nats-server does: the time from
            // accepting the connection to its CONNECT.
            let est = self
                .entry
                .start
                .elapsed()
                .unwrap_or_default()
                .as_nanos()
                .max(1) as u64;
            self.entry.rtt_ns.store(est, Ordering::Relaxed);
        }
        *self.entry.desc.lock() = ClientDesc {
            name: opts.name.clone(),
            lang: opts.lang.clone(),
            version: opts.version.clone(),
            user: authorized.user.unwrap_or_default(),
        };
        self.entry
            .async_info
            .store(opts.protocol >= 1, Ordering::Release);
        self.connected = true;
        let verbose = opts.verbose;
        let headers = opts.headers;
        self.opts = opts;
        if verbose {
            self.send_self(wire::OK);
        }
        Ok(headers)
    }

    fn on_pub_line(&mut self, subject: &[u8]) -> Result<(), Close> {
        if self.opts.pedantic && !subject::is_valid_literal_subject(subject) {
            self.send_err("Invalid Publish Subject");
        }
        Ok(())
    }

    fn on_msg(&mut self, m: &Msg<'_>) -> Result<(), Close> {
        self.d.batch.in_msgs += 1;
        self.d.batch.in_bytes += m.data.len() as u64;
        if !m.subject.is_empty() && !self.may_publish(m.subject) {
            let text = format!(
                "Permissions Violation for Publish to {}",
                go_quote(m.subject)
            );
            tracing::error!("{} - cid:{} - {text}", self.peer, self.cid);
            self.send_err(&text);
            return Ok(());
        }
        if !m.reply.is_empty() && is_reserved_reply(m.reply) {
            let text = format!(
                "Permissions Violation for Publish with Reply of {}",
                go_quote(m.reply)
            );
            tracing::error!("{} - cid:{} - {text}", self.peer, self.cid);
            self.send_err(&text);
            return Ok(());
        }
        if self.opts.verbose {
            self.send_self(wire::OK);
        }
        if !m.subject.is_empty() {
            self.process_msg(m);
        }
        Ok(())
    }

    fn on_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) -> Result<(), Close> {
        // Re-using a live sid is ignored (the old subscription stays), as in nats-server.
        let live = self.subs.get(sid).map(|s| !s.is_removed());
        match live {
            Some(true) => {}
            other => {
                if other == Some(false) {
                    self.subs.remove(sid);
                }
                let mut deliver_deny = None;
                if let Some(p) = &self.perms {
                    if !p.can_subscribe(subject, queue) {
                        let mut text = format!(
                            "Permissions Violation for Subscription to {}",
                            go_quote(subject)
                        );
                        if let Some(q) = queue {
                            text.push_str(&format!(" using queue {}", go_quote(q)));
                        }
                        tracing::error!("{} - cid:{} - {text}", self.peer, self.cid);
                        self.send_err(&text);
                        return Ok(());
                    }
                    deliver_deny = p.delivery_denies(subject, queue.is_some());
                }
                let max_subs = self.srv.opts().max_subscriptions;
                if max_subs > 0 && self.subs.len() >= max_subs {
                    self.send_err("maximum subscriptions exceeded");
                    return Ok(());
                }
                let mut sub = Subscription::new(self.out.clone(), self.cid, subject, queue, sid);
                sub.deliver_deny = deliver_deny;
                sub.responses = self.responses.clone();
                let sub = Arc::new(sub);
                if self.srv.add_subscription(sub.clone()).is_err() {
                    self.send_err("Invalid Subject");
                    return Ok(());
                }
                self.subs.insert(sid.into(), sub);
                self.publish_sub_count();
            }
        }
        if self.opts.verbose {
            self.send_self(wire::OK);
        }
        Ok(())
    }

    fn on_unsub(&mut self, sid: &[u8], max: i64) -> Result<(), Close> {
        if let Some(sub) = self.subs.get(sid) {
            let delivered = sub.delivered.load(Ordering::Relaxed);
            if sub.is_removed() {
                self.subs.remove(sid);
            } else if max > 0 && max as u64 > delivered {
                sub.max.store(max as u64, Ordering::Relaxed);
            } else {
                self.unsubscribe(sid);
            }
            self.publish_sub_count();
        }
        if self.opts.verbose {
            self.send_self(wire::OK);
        }
        Ok(())
    }

    fn on_ping(&mut self) -> Result<(), Close> {
        self.send_self(wire::PONG);
        // The first PING of a protocol-1 client is followed by an INFO that confirms the
        // CONNECT (nats-server 2.12+).
        if self.connected && !self.first_pong_sent {
            self.first_pong_sent = true;
            if self.opts.protocol >= 1 {
                self.send_info(true);
            }
        }
        Ok(())
    }

    fn on_pong(&mut self) -> Result<(), Close> {
        self.pings_out = 0;
        if let Some(sent) = self.ping_sent_at.take() {
            let now = Instant::now();
            self.rtt_at = Some(now);
            let rtt = now.duration_since(sent).as_nanos().max(1) as u64;
            self.entry.rtt_ns.store(rtt, Ordering::Relaxed);
        }
        Ok(())
    }

    fn on_info(&mut self, json: &[u8]) -> Result<(), Close> {
        // A client's INFO is ignored, but it must be well-formed JSON, or the connection closes.
        parse_json_object::<serde::de::IgnoredAny>(json).map(|_| ())
    }

    fn on_err(&mut self, text: &[u8]) -> Result<(), Close> {
        tracing::error!(
            "{} - cid:{} - Client Error {}",
            self.peer,
            self.cid,
            String::from_utf8_lossy(text)
        );
        Err(Close::silent(ClosedReason::ParseError))
    }
}

/// Reply prefixes nats-server reserves for its own machinery (service imports, gateways,
/// JetStream acks); clients may not publish with them, whatever their permissions.
fn is_reserved_reply(reply: &[u8]) -> bool {
    reply.starts_with(b"_R_.")
        || (reply.len() > 8 && reply.starts_with(b"$JS.ACK."))
        || (reply.len() > 5 && reply.starts_with(b"_GR_."))
        || (reply.len() > 4 && reply.starts_with(b"$GR."))
}

/// Decodes a JSON object the way Go's encoding/json fills a struct: `null` leaves the defaults,
/// anything but an object (an array, a string) is an error. Errors close the connection
/// silently, as nats-server does.
fn parse_json_object<T: serde::de::DeserializeOwned + Default>(json: &[u8]) -> Result<T, Close> {
    let bad = Close::silent(ClosedReason::ProtocolViolation);
    let trimmed = json.trim_ascii();
    if trimmed == b"null" {
        return Ok(T::default());
    }
    if trimmed.first() != Some(&b'{') {
        return Err(bad);
    }
    serde_json::from_slice(trimmed).map_err(|_| bad)
}

fn proto_close(e: ProtoError) -> Close {
    match e {
        ProtoError::UnknownOp => Close::with_err(
            ClosedReason::ProtocolViolation,
            "Unknown Protocol Operation",
        ),
        ProtoError::MaxControlLine => Close::with_err(
            ClosedReason::MaxControlLineExceeded,
            "maximum control line exceeded",
        ),
        ProtoError::MaxPayload => Close::with_err(
            ClosedReason::MaxPayloadExceeded,
            "Maximum Payload Violation",
        ),
        ProtoError::AuthViolation => Close::with_err(
            ClosedReason::AuthenticationViolation,
            "Authorization Violation",
        ),
        ProtoError::BadArgs | ProtoError::HeadersNotSupported => {
            Close::silent(ClosedReason::ProtocolViolation)
        }
    }
}

/// Serves one accepted client connection until it closes.
pub(crate) async fn serve(srv: Arc<ServerShared>, stream: TcpStream, peer: SocketAddr, cid: u64) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = srv.tls() else {
        let (rd, wr) = stream.into_split();
        return run_conn(srv, rd, wr, peer, cid, true).await;
    };
    // nats-server's order: INFO in plain text (it says tls_required), then the client starts
    // the handshake; with handshake_first the handshake comes first and INFO follows in TLS.
    let mut stream = stream;
    if !tls.handshake_first {
        let info = srv.client_info_line(cid, &peer, false);
        let sent = tokio::time::timeout(tls.timeout, stream.write_all(&info)).await;
        if !matches!(sent, Ok(Ok(()))) {
            srv.abandon_client(cid);
            return;
        }
    }
    match tokio::time::timeout(tls.timeout, tls.acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            let (rd, wr) = tokio::io::split(tls_stream);
            run_conn(srv, rd, wr, peer, cid, tls.handshake_first).await
        }
        Ok(Err(e)) => {
            tracing::error!("{peer} - cid:{cid} - TLS handshake error: {e}");
            srv.abandon_client(cid);
        }
        Err(_) => {
            tracing::error!("{peer} - cid:{cid} - TLS handshake timeout");
            srv.abandon_client(cid);
        }
    }
}

/// Runs one client connection over its read and write halves (plain TCP, TLS, or in-process).
pub(crate) async fn run_conn<R, W>(
    srv: Arc<ServerShared>,
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    cid: u64,
    send_info: bool,
) where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let opts = srv.opts();
    let out = Arc::new(Outbound::new(opts.max_pending));
    let entry = Arc::new(ClientEntry::new(cid, peer, out.clone()));
    let mut conn = ClientConn::new(entry.clone(), srv.clone());
    srv.register_client(entry.clone());

    let writer = {
        let out = out.clone();
        let deadline = opts.write_deadline;
        let hist = srv.metrics.flush_seconds.clone();
        tokio::spawn(async move { out.write_loop(wr, deadline, Some(hist)).await })
    };

    if send_info {
        conn.send_info(false);
        conn.flush_receivers();
    }

    let mut parser = Parser::new(opts.max_control_line, opts.max_payload);
    let mut config_gen = srv.config_generation();
    let auth_required = srv.auth().required();
    parser.awaiting_connect = auth_required;

    let auth_deadline = tokio::time::sleep(if auth_required {
        opts.auth_timeout
    } else {
        Duration::from_secs(86400 * 365)
    });
    tokio::pin!(auth_deadline);
    let ping_timer = tokio::time::sleep(opts.ping_interval);
    tokio::pin!(ping_timer);
    let mut first_ping_armed = false;

    let mut buf = vec![0u8; READ_MIN];
    let mut short_reads = 0u32;
    let close = loop {
        tokio::select! {
            biased;
            _ = out.closed.cancelled() => break None,
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) => break Some(Close::silent(ClosedReason::ClientClosed)),
                    Ok(n) => n,
                    Err(_) => break Some(Close::silent(ClosedReason::ReadError)),
                };
                conn.last_in = Instant::now();
                // A reload changed the limits: apply them from this read on.
                let generation = srv.config_generation();
                if generation != config_gen {
                    config_gen = generation;
                    let o = srv.opts();
                    parser.max_payload = o.max_payload;
                    parser.max_control_line = o.max_control_line;
                }
                let was_connected = conn.connected;
                let res = parser.parse(&buf[..n], &mut conn);
                conn.flush_receivers();
                if n <= ARMING_READ_MAX {
                    srv.busy_poll.arm();
                }
                // The startup self-check is not client traffic.
                if !conn.is_self_check {
                    srv.stats.add(&conn.d.batch);
                }
                entry.in_msgs.fetch_add(conn.d.batch.in_msgs, Ordering::Relaxed);
                entry.in_bytes.fetch_add(conn.d.batch.in_bytes, Ordering::Relaxed);
                out.last_activity.store(unix_nanos(std::time::SystemTime::now()), Ordering::Relaxed);
                conn.d.batch = BatchStats::default();
                if !conn.d.stalled.is_empty() {
                    let stalls = crate::conn::outbound::stall(&mut conn.d.stalled).await;
                    if stalls > 0 {
                        srv.stats.stalls.fetch_add(stalls, Ordering::Relaxed);
                        entry.stalls.fetch_add(stalls, Ordering::Relaxed);
                    }
                }
                if let Err(stop) = res {
                    break Some(match stop {
                        ParseStop::Proto(e) => proto_close(e),
                        ParseStop::Handler(c) => c,
                    });
                }
                if !was_connected && conn.connected && !first_ping_armed {
                    // The first PING comes soon after CONNECT (with up to 20% jitter) so the
                    // RTT is known early.
                    first_ping_armed = true;
                    let base = srv.opts().ping_interval.min(FIRST_PING_DELAY);
                    let jitter = base.mul_f64((conn.d.next_random() % 1000) as f64 / 5000.0);
                    ping_timer.as_mut().reset(tokio::time::Instant::now() + base + jitter);
                }
                // Grow after a full read, shrink after a run of short ones.
                if n == buf.len() && buf.len() < READ_MAX {
                    buf.resize(buf.len() * 2, 0);
                    short_reads = 0;
                } else if n < buf.len() / 2 && buf.len() > READ_MIN {
                    short_reads += 1;
                    if short_reads > 2 {
                        buf.truncate(buf.len() / 2);
                        buf.shrink_to_fit();
                        short_reads = 0;
                    }
                }
            }
            _ = &mut ping_timer => {
                match conn.ping_tick() {
                    Ok(next) => {
                        ping_timer.as_mut().reset(tokio::time::Instant::now() + next);
                        conn.flush_receivers();
                    }
                    Err(c) => break Some(c),
                }
            }
            _ = &mut auth_deadline, if auth_required && !conn.connected => {
                break Some(Close::with_err(ClosedReason::AuthenticationTimeout, "Authentication Timeout"));
            }
        }
    };
    if let Some(c) = close {
        out.close(c);
    }
    let _ = writer.await;
    drop(rd);

    let reason = out
        .close_reason()
        .map(|c| c.reason)
        .unwrap_or(ClosedReason::ClientClosed);
    let subs_now = conn.sub_snapshots();
    let count = subs_now.len() as u64;
    let mut closed: ConnSnapshot = entry.snapshot(subs_now, Some(count));
    closed.stop = Some(std::time::SystemTime::now());
    closed.reason = Some(reason);

    // Remove every subscription in one batch.
    let subs: Vec<Arc<Subscription>> = conn
        .subs
        .drain()
        .map(|(_, s)| s)
        .filter(|s| s.claim_removal())
        .collect();
    srv.remove_subscriptions(&subs);
    srv.unregister_client(closed, conn.is_self_check);
}
