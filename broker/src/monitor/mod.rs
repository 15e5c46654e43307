//! HTTP monitoring: `/varz`, `/connz`, `/subsz`, `/routez`, `/healthz`, `/metrics` and `/`,
//! with nats-server's paths, field names, JSON types, formats and parameter errors, so
//! prometheus-nats-exporter, Grafana dashboards and `nats server` tooling work unchanged.
//! Served over plain HTTP (`http`) or, with `https_port`, over TLS with the `tls` block's
//! certificate ([`serve_tls`]).
//!
//! Serving never touches the message path's locks for long: counters are atomics or live in
//! each connection's outbound queue, and every response is built from snapshots. Unknown query
//! parameters are ignored (as nats-server ignores them); a malformed value of a known one is a
//! 400 with nats-server's message.

mod connz;
mod metrics;
pub mod process;
mod query;
mod routez;
mod subsz;
mod varz;

use crate::server::ServerShared;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use parking_lot::Mutex;
use query::Query;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

pub use metrics::Metrics;

/// State the monitoring endpoints keep between requests.
#[derive(Debug, Default)]
pub struct MonitorState {
    /// Requests per endpoint path (`/varz` `http_req_stats`).
    pub req_stats: Mutex<FxHashMap<&'static str, u64>>,
    pub cpu: process::CpuSampler,
}

type Resp = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    h.insert(
        hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        hyper::header::HeaderValue::from_static("*"),
    );
    r
}

/// nats-server pretty-prints monitoring JSON with two-space indentation.
fn pretty<T: Serialize>(v: &T) -> Resp {
    match serde_json::to_vec_pretty(v) {
        Ok(b) => json_bytes(StatusCode::OK, b),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Accepts monitoring connections on `listener` until the server shuts down, handing each to
/// `conn` in a task of its own.
async fn accept_loop<F, Fut>(srv: Arc<ServerShared>, listener: TcpListener, conn: F)
where
    F: Fn(Arc<ServerShared>, TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer): (TcpStream, SocketAddr) = tokio::select! {
            _ = srv.shutdown_token().cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("monitoring accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::spawn(conn(srv.clone(), stream, peer));
    }
}

/// Serves the monitoring endpoints as HTTP/1.1 over `io` until the client goes away.
async fn serve_http<I>(srv: Arc<ServerShared>, io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let svc = hyper::service::service_fn(move |req| {
        let srv = srv.clone();
        async move { Ok::<_, Infallible>(handle(&srv, req)) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc)
        .await;
}

/// Runs the monitoring server on `listener` until the server shuts down.
pub async fn serve(srv: Arc<ServerShared>, listener: TcpListener) {
    accept_loop(srv, listener, |srv, stream, _peer| serve_http(srv, stream)).await;
}

/// Runs the monitoring server over TLS (`https_port`) on `listener` until the server shuts
/// down: the certificate of the `tls` block (re-read on reload), no client certificate asked
/// for, the handshake bounded by `tls.timeout`.
pub async fn serve_tls(srv: Arc<ServerShared>, listener: TcpListener) {
    accept_loop(srv, listener, serve_tls_conn).await;
}

/// The answer Go's HTTP server (so nats-server) gives to plain HTTP on an HTTPS port.
const PLAIN_HTTP_ON_HTTPS: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Whether the first bytes are an HTTP request rather than a TLS record (Go's `looksLikeHTTP`).
fn looks_like_http(head: &[u8]) -> bool {
    [&b"GET /"[..], b"HEAD ", b"POST ", b"PUT /", b"OPTIO"]
        .iter()
        .any(|m| head.starts_with(m))
}

async fn serve_tls_conn(srv: Arc<ServerShared>, mut stream: TcpStream, peer: SocketAddr) {
    // The acceptor in force now: certificates renewed by a reload apply to new connections.
    let Some((acceptor, timeout)) = srv
        .tls()
        .and_then(|t| Some((t.monitor.clone()?, t.timeout)))
    else {
        return;
    };
    let handshake = async {
        let mut head = [0u8; 5];
        let n = stream.peek(&mut head).await?;
        if n == head.len() && looks_like_http(&head) {
            stream.write_all(PLAIN_HTTP_ON_HTTPS).await?;
            stream.shutdown().await?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "client sent an HTTP request to an HTTPS server",
            ));
        }
        acceptor.accept(stream).await
    };
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(tls)) => serve_http(srv, tls).await,
        Ok(Err(e)) => tracing::error!("monitoring: TLS handshake error from {peer}: {e}"),
        Err(_) => tracing::error!("monitoring: TLS handshake error from {peer}: timeout"),
    }
}

/// The monitoring endpoints, relative to `http_base_path`.
const ENDPOINTS: &[&str] = &[
    "/varz",
    "/connz",
    "/routez",
    "/subsz",
    "/subscriptionsz",
    "/healthz",
    "/metrics",
];

fn handle(srv: &Arc<ServerShared>, req: Request<Incoming>) -> Resp {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let opts = srv.opts();
    let base = opts.http_base_path.trim_end_matches('/');
    let Some(path) = req.uri().path().strip_prefix(base) else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    let path = if path.is_empty() { "/" } else { path };
    let q = Query::parse(req.uri().query().unwrap_or(""));
    let stat_key: &'static str = match path {
        "/" => "/",
        p => match ENDPOINTS.iter().find(|e| **e == p) {
            Some(e) => e,
            None => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
        },
    };
    *srv.monitor.req_stats.lock().entry(stat_key).or_insert(0) += 1;
    let result = match stat_key {
        "/" => Ok(index(base)),
        "/varz" => Ok(pretty(&varz::varz(srv))),
        "/connz" => connz::connz(srv, &q).map(|c| pretty(&c)),
        "/routez" => routez::routez(srv, &q).map(|r| pretty(&r)),
        "/subsz" | "/subscriptionsz" => subsz::subsz(srv, &q).map(|s| pretty(&s)),
        "/healthz" => healthz(srv, &q),
        "/metrics" => Ok(srv.metrics.render(srv)),
        _ => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
    };
    result.unwrap_or_else(|msg| text(StatusCode::BAD_REQUEST, msg))
}

fn index(base: &str) -> Resp {
    let mut html = String::from(
        "<html lang=\"en\">\n<head><title>nats-mini monitoring</title></head>\n<body>\n",
    );
    html.push_str(&format!("<h3>{}</h3>\n", crate::server::PRODUCT));
    for e in ENDPOINTS {
        if *e == "/subscriptionsz" {
            continue;
        }
        html.push_str(&format!("<a href=.{base}{e}>{e}</a><br/>\n"));
    }
    html.push_str("</body>\n</html>\n");
    let mut r = text(StatusCode::OK, html);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `/healthz`: ok once the startup self-check passed and while not in lame duck. The JetStream
/// parameters the official Helm chart sends are validated and otherwise ignored: without
/// JetStream the answer is the same, as nats-server gives for a server without JetStream.
fn healthz(srv: &ServerShared, q: &Query) -> Result<Resp, String> {
    for p in [
        "js-enabled",
        "js-enabled-only",
        "js-server-only",
        "js-meta-only",
        "details",
    ] {
        q.bool(p)?;
    }
    let (code, body) = if srv.is_ready() && !srv.in_lame_duck() {
        (
            StatusCode::OK,
            Health {
                status: "ok",
                error: None,
            },
        )
    } else {
        let why = if srv.in_lame_duck() {
            "lame duck mode"
        } else {
            "startup did not complete"
        };
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Health {
                status: "error",
                error: Some(format!("failed to be ready for connections: {why}")),
            },
        )
    };
    // nats-server writes /healthz compactly, unlike the other endpoints.
    let b = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    Ok(json_bytes(code, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// Before the startup self-check has passed (the server is not ready), `/healthz` answers
    /// 500 with nats-server's error JSON, so probes keep the pod out of rotation.
    #[tokio::test]
    async fn healthz_fails_until_the_self_check_passed() {
        let srv = ServerShared::new(crate::Options::ephemeral());
        assert!(!srv.is_ready());
        let r = healthz(&srv, &Query::parse("")).unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body.as_ref(),
            br#"{"status":"error","error":"failed to be ready for connections: startup did not complete"}"#
        );
        // A bad parameter is refused whatever the state.
        assert!(healthz(&srv, &Query::parse("js-enabled=maybe")).is_err());
    }
}
