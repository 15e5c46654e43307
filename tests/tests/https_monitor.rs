//! Monitoring over TLS (`https_port` / `-ms` / `https: HOST:PORT`), as nats-server serves it:
//! the `tls` block's certificate, no client certificate asked for, `/varz` reporting the real
//! `https_port`, and plain HTTP on that port answered with Go's 400. Certificates are generated
//! here with rcgen; none are committed. The HTTPS client is a small rustls one.

use nats_mini::tls::TlsSettings;
use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::process::{Proc, TempDir, http_get, run};
use nats_mini_e2e::{T, within};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA and a server certificate for localhost/127.0.0.1 signed by it, in `dir`, with
/// file names prefixed by `tag` (so one directory can hold two PKIs).
fn pki(dir: &Path, tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{tag} test CA"));
    let ca = p.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(p, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("sign");
    let path = |name: &str| dir.join(format!("{tag}-{name}"));
    std::fs::write(path("ca.pem"), ca.pem()).expect("write");
    std::fs::write(path("server.pem"), cert.pem()).expect("write");
    std::fs::write(path("server-key.pem"), key.serialize_pem()).expect("write");
    (path("ca.pem"), path("server.pem"), path("server-key.pem"))
}

/// `GET path` over HTTPS to `addr`, trusting only `ca`, with SNI `localhost`: the status code
/// and the body.
async fn https_get(addr: SocketAddr, ca: &Path, path: &str) -> std::io::Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(c.expect("CA cert")).expect("CA cert");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let mut tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await?;
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        match tls.read_to_end(&mut buf).await {
            Ok(_) => {}
            // A peer that closes without close_notify: keep what arrived.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
            Err(e) => return Err(e),
        }
        nats_mini_e2e::process::parse_http_response(&buf)
    };
    within(T, "an HTTPS GET", fut).await
}

/// `GET path` over HTTPS that must answer 200 with JSON.
async fn https_json(addr: SocketAddr, ca: &Path, path: &str) -> serde_json::Value {
    let (status, body) = https_get(addr, ca, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} over HTTPS on {addr}: {e}"));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: bad JSON ({e}): {body}"))
}

fn tls_options(cert: &Path, key: &Path) -> Options {
    let mut o = Options::ephemeral();
    o.tls = Some(TlsSettings::new(cert, key));
    o.https = Some(("127.0.0.1".into(), 0));
    o
}

async fn start(opts: Options) -> Server {
    within(T, "server start", ServerBuilder::options(opts).start())
        .await
        .expect("server starts with HTTPS monitoring")
}

#[tokio::test]
async fn varz_and_healthz_over_https() {
    let dir = TempDir::new("https-mon");
    let (ca, cert, key) = pki(dir.path(), "a");
    let server = start(tls_options(&cert, &key)).await;
    let addr = server.https_monitor_addr().expect("https monitor bound");
    assert_ne!(addr.port(), 0);
    assert_eq!(server.monitor_addr(), Some(addr));
    assert_eq!(
        server.monitor_url(),
        Some(format!("https://127.0.0.1:{}", addr.port()))
    );

    let varz = https_json(addr, &ca, "/varz").await;
    assert_eq!(varz["https_port"], addr.port(), "{varz}");
    assert_eq!(varz["http_port"], 0, "{varz}");
    assert_eq!(varz["http_host"], "127.0.0.1", "{varz}");
    assert_eq!(varz["port"], server.client_addr().port());
    let (status, body) = https_get(addr, &ca, "/healthz").await.expect("healthz");
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ok\"}"));
    // The request counter saw the HTTPS requests.
    let varz = https_json(addr, &ca, "/varz").await;
    assert_eq!(varz["http_req_stats"]["/varz"], 2, "{varz}");
    assert_eq!(varz["http_req_stats"]["/healthz"], 1, "{varz}");
    server.shutdown().await;
}

#[tokio::test]
async fn plain_http_and_untrusted_clients_fail() {
    let dir = TempDir::new("https-plain");
    let (_ca, cert, key) = pki(dir.path(), "a");
    let (other_ca, _, _) = pki(dir.path(), "other");
    let server = start(tls_options(&cert, &key)).await;
    let addr = server.https_monitor_addr().expect("https monitor bound");

    // Plain HTTP gets Go's answer (what nats-server sends), never the data.
    let (status, body) = http_get(addr, "/varz")
        .await
        .expect("an HTTP answer to plain HTTP");
    assert_eq!(
        (status, body.as_str()),
        (400, "Client sent an HTTP request to an HTTPS server.\n")
    );
    // Raw bytes that are neither HTTP nor TLS: the connection is closed without data.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = within(T, "the server to close", s.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("server_id"));
    // A client that does not trust the certificate fails the handshake.
    let e = https_get(addr, &other_ca, "/varz")
        .await
        .expect_err("a certificate from an unknown CA must be refused");
    assert!(e.to_string().contains("certificate"), "{e}");
    server.shutdown().await;
}

#[tokio::test]
async fn no_client_certificate_needed_even_with_verify() {
    // `verify` makes client connections present certificates; monitoring does not ask for
    // one (nats-server serves it with NoClientCert).
    let dir = TempDir::new("https-verify");
    let (ca, cert, key) = pki(dir.path(), "a");
    let mut o = tls_options(&cert, &key);
    let t = o.tls.as_mut().unwrap();
    t.verify = true;
    t.ca_file = Some(ca.clone());
    let server = start(o).await;
    let addr = server.https_monitor_addr().unwrap();
    let varz = https_json(addr, &ca, "/varz").await;
    assert_eq!(varz["https_port"], addr.port());
    server.shutdown().await;
}

#[tokio::test]
async fn reload_serves_the_renewed_certificate() {
    let dir = TempDir::new("https-reload");
    let (ca_a, cert_a, key_a) = pki(dir.path(), "a");
    let (ca_b, cert_b, key_b) = pki(dir.path(), "b");
    let server = start(tls_options(&cert_a, &key_a)).await;
    let addr = server.https_monitor_addr().unwrap();
    https_json(addr, &ca_a, "/varz").await;

    let mut renewed = (*server.options()).clone();
    renewed.tls = Some(TlsSettings::new(&cert_b, &key_b));
    server.reload(renewed).expect("reload");
    https_json(addr, &ca_b, "/varz").await;
    assert!(https_get(addr, &ca_a, "/varz").await.is_err());

    // The listener itself cannot move on reload.
    let mut moved = (*server.options()).clone();
    moved.https = Some(("127.0.0.1".into(), 1));
    let e = server
        .reload(moved)
        .expect_err("https cannot change on reload");
    assert!(e.contains("HTTPS"), "{e}");
    server.shutdown().await;
}

/// The error of a start that must fail.
async fn start_err(opts: Options, what: &str) -> String {
    match within(T, "server start", ServerBuilder::options(opts).start()).await {
        Ok(_) => panic!("{what} must not start"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn https_without_tls_or_with_http_is_refused() {
    let mut o = Options::ephemeral();
    o.https = Some(("127.0.0.1".into(), 0));
    let e = start_err(o, "https without tls").await;
    assert!(e.contains("https_port") && e.contains("TLS"), "{e}");

    let dir = TempDir::new("https-both");
    let (_, cert, key) = pki(dir.path(), "a");
    let mut o = tls_options(&cert, &key);
    o.http = Some(("127.0.0.1".into(), 0));
    o.http_explicit = true;
    let e = start_err(o, "http and https together").await;
    assert!(
        e.contains("can't specify both HTTP (0) and HTTPs (0) ports"),
        "{e}"
    );
}

/// The port in a `Starting https monitor on HOST:PORT` log line.
fn logged_port(line: &str, host: &str) -> u16 {
    let at = line
        .find("Starting https monitor on ")
        .unwrap_or_else(|| panic!("{line}"));
    let rest = &line[at + "Starting https monitor on ".len()..];
    let port = rest
        .strip_prefix(&format!("{host}:"))
        .unwrap_or_else(|| panic!("not on {host}: {line}"));
    port.trim().parse().unwrap_or_else(|_| panic!("{line}"))
}

#[tokio::test]
async fn binary_serves_https_with_ms_flag() {
    let dir = TempDir::new("https-bin");
    let (ca, cert, key) = pki(dir.path(), "a");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let mut p = Proc::spawn(
        &[
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-ms",
            "-1",
            "--tls",
            "--tlscert",
            cert,
            "--tlskey",
            key,
        ],
        &[],
    );
    let line = p.wait_for_line("Starting https monitor on ").await;
    let port = logged_port(&line, "127.0.0.1");
    p.wait_for_line("Server is ready").await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let varz = https_json(addr, &ca, "/varz").await;
    assert_eq!(varz["https_port"], port, "{varz}");
    // HTTPS replaces the default plain-HTTP monitor.
    assert!(
        !p.stderr_text().contains("Starting http monitor"),
        "{}",
        p.stderr_text()
    );
    assert_eq!(varz["http_port"], 0, "{varz}");
}

#[tokio::test]
async fn binary_serves_https_from_a_config_file() {
    let dir = TempDir::new("https-conf");
    let (ca, cert, key) = pki(dir.path(), "a");
    let conf = dir.write(
        "https.conf",
        &format!(
            "listen: 127.0.0.1:-1\nhttps: \"127.0.0.1:-1\"\ntls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    );
    let mut p = Proc::spawn(&["-c", conf.to_str().unwrap()], &[]);
    let line = p.wait_for_line("Starting https monitor on ").await;
    let port = logged_port(&line, "127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (status, body) = https_get(addr, &ca, "/healthz").await.expect("healthz");
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ok\"}"));

    // `https_port` takes the client host; without a tls block it is an error naming the key.
    let bad = dir.write("no-tls.conf", "listen: 127.0.0.1:-1\nhttps_port: -1\n");
    let (status, out) = run(&["-c", bad.to_str().unwrap()], &[]).await;
    assert!(!status.success());
    assert!(
        out.output_text().contains("https_port"),
        "{}",
        out.output_text()
    );
    let (status, out) = run(&["-a", "127.0.0.1", "-p", "-1", "--https_port", "-1"], &[]).await;
    assert!(!status.success());
    assert!(
        out.output_text().contains("https_port") && out.output_text().contains("TLS"),
        "{}",
        out.output_text()
    );
}
