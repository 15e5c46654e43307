//! The sidecar-injection webhook's HTTPS server on a loopback port and a TLS client for it,
//! shared by `tests/webhook.rs` and `tests/chart_webhook.rs`.

#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use nats_mini_operator::webhook::{self, SidecarConfig};
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;

/// A running `webhook::serve` on 127.0.0.1.
pub struct Server {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the webhook server with this TLS config.
pub async fn start(tls: Arc<rustls::ServerConfig>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(webhook::serve(
        listener,
        tls,
        SidecarConfig::default(),
        async {
            let _ = stop_rx.await;
        },
    ));
    Server { addr, stop, task }
}

impl Server {
    /// Asks the server to stop and waits (at most 5 s) until it has.
    pub async fn stop(self) {
        self.stop.send(()).expect("the server is running");
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("the server stops on shutdown")
            .expect("server task");
    }
}

/// A TLS client trusting exactly `roots`.
pub fn connector(
    roots: impl IntoIterator<Item = CertificateDer<'static>>,
) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for cert in roots {
        store.add(cert).expect("a root certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(store)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(client))
}

/// Opens a TLS connection to `addr` for the name `host`: the handshake's error when the
/// certificate is not trusted for that name.
pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    host: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(host.to_string()).expect("a DNS name");
    connector.connect(name, tcp).await
}

/// POSTs `body` to `path` over TLS as `host`; the status and the response body.
pub async fn post(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    host: &str,
    path: &str,
    body: Vec<u8>,
) -> (http::StatusCode, Vec<u8>) {
    let tls = connect(connector, addr, host).await.expect("TLS handshake");
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header("host", host)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, bytes.to_vec())
}
