//! The operator's plain-HTTP endpoints, on the port the chart calls `metrics` (8080):
//!
//! - `/metrics`: [`Metrics`] in the Prometheus text format;
//! - `/healthz`: 200 while the process serves (the liveness probe);
//! - `/readyz`: 200 once start-up finished (API client built, leader election running), 503
//!   before and while shutting down. A standby replica is ready too: readiness says "can
//!   take over", not "is the leader" (the leader shows in `nats_mini_operator_leader`).
//!
//! Everything else is 404. The server stops accepting when `shutdown` resolves.

use crate::metrics::Metrics;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// What the endpoints report.
#[derive(Clone)]
pub struct Health {
    pub metrics: Metrics,
    ready: Arc<AtomicBool>,
}

impl Health {
    /// Not ready yet.
    pub fn new(metrics: Metrics) -> Health {
        Health {
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets what `/readyz` answers.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Answers one request.
pub fn respond(health: &Health, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            health.metrics.encode(),
        ),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        (&Method::GET, "/readyz") if health.is_ready() => {
            (StatusCode::OK, "text/plain", "ready\n".to_string())
        }
        (&Method::GET, "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

/// Accepts connections on `listener` and hands each to `on_connection` until `shutdown`
/// resolves. An accept error (say, out of file descriptors) is logged and retried after a
/// short pause rather than ending the server.
pub async fn accept_loop(
    listener: TcpListener,
    what: &'static str,
    shutdown: impl Future<Output = ()>,
    mut on_connection: impl FnMut(tokio::net::TcpStream),
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => on_connection(stream),
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, health: Health, shutdown: impl Future<Output = ()>) {
    accept_loop(listener, "metrics", shutdown, |stream| {
        let health = health.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let resp = respond(&health, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response<Full<Bytes>>) -> String {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn readyz_follows_start_up_and_the_rest_answer_as_documented() {
        let h = Health::new(Metrics::new().unwrap());
        assert_eq!(
            respond(&h, &Method::GET, "/readyz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        h.set_ready(true);
        assert_eq!(
            respond(&h, &Method::GET, "/readyz").status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&h, &Method::GET, "/healthz").status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&h, &Method::GET, "/nope").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond(&h, &Method::POST, "/metrics").status(),
            StatusCode::NOT_FOUND
        );
        let m = body(respond(&h, &Method::GET, "/metrics")).await;
        assert!(m.contains("nats_mini_operator_reconciles_total 0"), "{m}");
    }
}
