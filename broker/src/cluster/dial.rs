//! Soliciting and accepting route connections.
//!
//! Every configured seed gets a task that keeps a route to it for the server's lifetime:
//! resolve the name (at every attempt: peers' DNS names may not exist yet), connect, run the
//! route, and when it ends reconnect after a capped exponential backoff with jitter. A seed
//! that turns out to be this server is dropped for good; one that leads to a peer we already
//! have a route with waits until that route goes away. Peers learnt by gossip are dialed the
//! same way but only `connect_retries` more times once they fail. Refusals (another cluster's
//! name, bad credentials) back off to the cap, so a misconfigured peer causes no retry storm.

use crate::cluster::route::{self, Origin, Outcome};
use crate::cluster::url::{RouteUrl, join_host_port};
use crate::server::ServerShared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
const REFUSED_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Failed attempts to a seed are logged as errors the first time and then every this many
/// attempts (debug in between), so an absent peer does not flood the log.
const REPORT_EVERY: u32 = 60;

/// Starts the route listener's accept loop and a dialer for every configured seed.
pub(crate) fn start(srv: &Arc<ServerShared>, listener: TcpListener) {
    tokio::spawn(accept_loop(srv.clone(), listener));
    solicit_seeds(srv, &srv.opts().routes);
}

/// Starts a dialer for each configured seed (at start, and for seeds a reload added).
pub(crate) fn solicit_seeds(srv: &Arc<ServerShared>, seeds: &[String]) {
    for raw in seeds {
        match RouteUrl::parse(raw) {
            Ok(url) => {
                tokio::spawn(solicit(srv.clone(), url, Some(raw.clone()), None));
            }
            Err(e) => tracing::error!("Ignoring route: {e}"),
        }
    }
}

async fn accept_loop(srv: Arc<ServerShared>, listener: TcpListener) {
    let shutdown = srv.shutdown_token().clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_accepted(srv.clone(), stream, peer));
            }
            Err(e) => {
                tracing::error!("Temporary Route Accept Error({e}), sleeping 100ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs an accepted route connection, after the TLS handshake when `cluster.tls` is set.
async fn serve_accepted(srv: Arc<ServerShared>, stream: TcpStream, peer: SocketAddr) {
    let Some(tls) = srv.cluster.tls() else {
        let (rd, wr) = stream.into_split();
        route::run(srv, rd, wr, peer, Origin::Accepted).await;
        return;
    };
    match tokio::time::timeout(tls.timeout, tls.acceptor.accept(stream)).await {
        Ok(Ok(s)) => {
            let (rd, wr) = tokio::io::split(s);
            route::run(srv, rd, wr, peer, Origin::Accepted).await;
        }
        Ok(Err(e)) => tracing::error!("{peer} - Route TLS handshake error: {e}"),
        Err(_) => tracing::error!("{peer} - Route TLS handshake timeout"),
    }
}

/// Runs a route we dialed, after the TLS handshake (checking the dialed name) when
/// `cluster.tls` is set.
async fn run_solicited(
    srv: Arc<ServerShared>,
    stream: TcpStream,
    url: &RouteUrl,
    explicit: bool,
) -> Outcome {
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let origin = Origin::Solicited {
        url: url.clone(),
        explicit,
    };
    let Some(tls) = srv.cluster.tls() else {
        let (rd, wr) = stream.into_split();
        return route::run(srv, rd, wr, peer, origin).await;
    };
    let name = match rustls_pki_types::ServerName::try_from(url.host.clone()) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("Route {url}: {e}");
            return Outcome::Refused;
        }
    };
    match tokio::time::timeout(tls.timeout, tls.connector.connect(name, stream)).await {
        Ok(Ok(s)) => {
            let (rd, wr) = tokio::io::split(s);
            route::run(srv, rd, wr, peer, origin).await
        }
        Ok(Err(e)) => {
            tracing::error!("{peer} - Route TLS handshake error with {url}: {e}");
            Outcome::Refused
        }
        Err(_) => {
            tracing::error!("{peer} - Route TLS handshake timeout with {url}");
            Outcome::NotEstablished
        }
    }
}

/// The delay before attempt `failures + 1`: doubling from the base up to `cap`, then a random
/// 50–100 % of it, so peers that lost each other do not redial in lockstep.
fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.min(16));
    exp.min(cap).mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// Resolves `url` now and connects to one of its addresses. `Ok(None)`: every address is this
/// server's own route listener.
async fn connect(srv: &ServerShared, url: &RouteUrl) -> std::io::Result<Option<TcpStream>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await?
        .collect();
    let others: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| !srv.cluster.is_own_addr(a))
        .collect();
    if others.is_empty() {
        return Ok(None);
    }
    let addr = others[rand::random_range(0..others.len())];
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(Some(stream))
}

/// Keeps a route to `url`: for a configured seed (`seed`, its text in `routes`) as long as the
/// configuration names it, for a peer learnt by gossip (`implicit_id` is its server id)
/// `connect_retries` more times once it fails.
pub(crate) async fn solicit(
    srv: Arc<ServerShared>,
    mut url: RouteUrl,
    seed: Option<String>,
    implicit_id: Option<String>,
) {
    let explicit = seed.is_some();
    let still_configured = |srv: &ServerShared| match &seed {
        Some(raw) => srv.opts().routes.contains(raw),
        None => true,
    };
    let opts = srv.opts();
    if url.user.is_none() && opts.cluster_user.is_some() {
        url.user = opts.cluster_user.clone();
        url.pass = opts.cluster_pass.clone();
    }
    let retries = if explicit {
        u32::MAX
    } else {
        opts.connect_retries
    };
    let shutdown = srv.shutdown_token().clone();
    // Nodes started together would otherwise dial each other at the same instant.
    tokio::time::sleep(Duration::from_millis(rand::random_range(0..100))).await;
    let mut failures = 0u32;
    let mut attempts = 0u32;
    while !shutdown.is_cancelled() && !srv.in_lame_duck() && still_configured(&srv) {
        attempts += 1;
        tracing::debug!("Trying to connect to route on {}", url.host_port());
        let outcome = match connect(&srv, &url).await {
            Ok(Some(stream)) => run_solicited(srv.clone(), stream, &url, explicit).await,
            Ok(None) => {
                tracing::debug!("Route {url} is this server, ignoring");
                Outcome::SelfRoute
            }
            Err(e) => {
                if attempts == 1 || attempts % REPORT_EVERY == 0 {
                    tracing::error!(
                        "Error trying to connect to route {} (attempt {attempts}): {e}",
                        url.host_port()
                    );
                } else {
                    tracing::debug!(
                        "Error trying to connect to route {} (attempt {attempts}): {e}",
                        url.host_port()
                    );
                }
                Outcome::NotEstablished
            }
        };
        let cap = match &outcome {
            Outcome::SelfRoute | Outcome::Unsupported => break,
            Outcome::Duplicate(id) => {
                if !explicit {
                    break;
                }
                wait_until_gone(&srv, id).await;
                failures = 0;
                attempts = 0;
                BACKOFF_BASE
            }
            Outcome::Ended => {
                failures = 0;
                attempts = 0;
                BACKOFF_CAP
            }
            Outcome::Refused => {
                failures += 1;
                REFUSED_BACKOFF_CAP
            }
            Outcome::NotEstablished => {
                failures += 1;
                BACKOFF_CAP
            }
        };
        if attempts > retries {
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff(failures, cap)) => {}
        }
    }
    if let Some(id) = implicit_id {
        srv.cluster.release_implicit_dial(&id);
    }
}

/// Waits until no route to `server_id` is registered (the duplicate we lost to went away).
async fn wait_until_gone(srv: &ServerShared, server_id: &str) {
    let shutdown = srv.shutdown_token().clone();
    while srv.cluster.has_route(server_id) && !shutdown.is_cancelled() {
        let changed = srv.cluster.changed.notified();
        tokio::select! {
            _ = changed => {}
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// A peer told us about another server (gossip): dial it unless it is us, already connected,
/// being dialed, or one of our configured seeds (whose own dialer handles it).
pub(crate) fn gossiped(
    srv: &Arc<ServerShared>,
    server_id: &str,
    host: &str,
    port: u16,
    ip: &str,
    auth_required: bool,
    per_account: bool,
) {
    if per_account || server_id == srv.server_id || srv.cluster.has_route(server_id) {
        return;
    }
    let target = if ip.is_empty() {
        RouteUrl::parse(&format!("nats-route://{}", join_host_port(host, port)))
    } else {
        RouteUrl::parse(ip)
    };
    let Ok(mut url) = target else {
        tracing::debug!("Ignoring gossip about {server_id}: no usable address");
        return;
    };
    if is_configured(srv, host, port, &url) {
        return;
    }
    if !srv.cluster.claim_implicit_dial(server_id) {
        return;
    }
    if !auth_required {
        url.user = None;
        url.pass = None;
    }
    tracing::debug!("Connecting to implicit route {url} ({server_id})");
    tokio::spawn(solicit(srv.clone(), url, None, Some(server_id.to_string())));
}

/// Whether the gossiped server is one of our configured seeds (compared as `host:port`, by
/// its INFO host and by the address it was seen at, as nats-server does).
fn is_configured(srv: &ServerShared, host: &str, port: u16, seen: &RouteUrl) -> bool {
    let one = join_host_port(host, port).to_ascii_lowercase();
    let two = seen.host_port().to_ascii_lowercase();
    srv.opts()
        .routes
        .iter()
        .filter_map(|r| RouteUrl::parse(r).ok())
        .map(|u| u.host_port().to_ascii_lowercase())
        .any(|hp| hp == one || hp == two)
}
