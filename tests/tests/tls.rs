//! TLS with a real client (async-nats): server-only TLS, required client certificates
//! (accepted, missing, signed by the wrong CA). Certificates are generated here with rcgen;
//! none are committed.

use nats_mini::tls::TlsSettings;
use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::pki::{Pki, pki};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

async fn start(pki: &Pki, verify: bool) -> Server {
    let mut t = TlsSettings::new(pki.path("server.pem"), pki.path("server-key.pem"));
    if verify {
        t.verify = true;
        t.ca_file = Some(pki.path("ca.pem"));
    }
    let mut o = Options::ephemeral();
    o.tls = Some(t);
    tokio::time::timeout(T, ServerBuilder::options(o).start())
        .await
        .expect("start timed out")
        .expect("server starts with TLS")
}

fn url(server: &Server) -> String {
    format!("tls://localhost:{}", server.client_addr().port())
}

async fn round_trip(client: &async_nats::Client) {
    use futures::StreamExt;
    let mut sub = client.subscribe("tls.test").await.expect("subscribe");
    client.flush().await.expect("flush");
    // Let the SUB reach the server before publishing (async-nats' flush only writes).
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .publish("tls.test", "secret".into())
        .await
        .expect("publish");
    let m = tokio::time::timeout(T, sub.next())
        .await
        .expect("message in time")
        .expect("message");
    assert_eq!(&m.payload[..], b"secret");
}

#[tokio::test]
async fn server_only_tls_carries_messages() {
    let pki = pki("server-only");
    let server = start(&pki, false).await;
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(pki.path("ca.pem"))
        .require_tls(true)
        .connect(url(&server))
        .await
        .expect("TLS connect");
    round_trip(&client).await;
    assert_eq!(server.num_connections(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn info_says_tls_required_before_the_handshake() {
    use tokio::io::AsyncReadExt;
    let pki = pki("info");
    let server = start(&pki, false).await;
    let mut s = tokio::net::TcpStream::connect(server.client_addr())
        .await
        .expect("connect");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(T, s.read(&mut buf))
        .await
        .expect("INFO in time")
        .expect("read");
    let info = String::from_utf8_lossy(&buf[..n]);
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains("\"tls_required\":true"), "{info}");
    server.shutdown().await;
}

#[tokio::test]
async fn client_certificates_are_required_and_verified() {
    let pki = pki("verify");
    let server = start(&pki, true).await;

    let good = async_nats::ConnectOptions::new()
        .add_root_certificates(pki.path("ca.pem"))
        .add_client_certificate(pki.path("client.pem"), pki.path("client-key.pem"))
        .require_tls(true)
        .connect(url(&server))
        .await
        .expect("a client certificate from the CA is accepted");
    round_trip(&good).await;

    // Without a certificate: the handshake fails, nothing can be sent.
    let missing = async_nats::ConnectOptions::new()
        .add_root_certificates(pki.path("ca.pem"))
        .require_tls(true)
        .connect(url(&server))
        .await;
    assert!(missing.is_err(), "no client certificate must be refused");
    // A certificate from another CA: refused too.
    let wrong = async_nats::ConnectOptions::new()
        .add_root_certificates(pki.path("ca.pem"))
        .add_client_certificate(pki.path("bad.pem"), pki.path("bad-key.pem"))
        .require_tls(true)
        .connect(url(&server))
        .await;
    assert!(
        wrong.is_err(),
        "a certificate from the wrong CA must be refused"
    );
    assert_eq!(
        server.num_connections(),
        1,
        "only the good client is connected"
    );
    server.shutdown().await;
}
