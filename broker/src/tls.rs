//! TLS with rustls, for client connections, HTTPS monitoring and routes: the only module that
//! builds TLS configurations.
//!
//! Clients: nats-server's order is kept: the server sends INFO in plain text (with
//! `tls_required`), the client then starts the TLS handshake, and everything after is
//! encrypted — unless `handshake_first`, where the handshake comes first and INFO follows
//! inside TLS. With `verify`, clients must present a certificate signed by `ca_file`.
//!
//! Routes (`cluster.tls`): the handshake comes first on both sides, and verification is mutual
//! and mandatory, as in nats-server (each node is the other's client): the peer's certificate
//! must be signed by `ca_file`, and a dialing node checks the name it dialed.

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// `tls { … }` / `--tls*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates against `ca_file`.
    pub verify: bool,
    /// Handshake timeout (nats-server's `tls.timeout`, default 2 s).
    pub timeout: Duration,
    /// TLS handshake before INFO (nats-server 2.10+ `handshake_first`).
    pub handshake_first: bool,
}

impl TlsSettings {
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        TlsSettings {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            ca_file: None,
            verify: false,
            timeout: Duration::from_secs(2),
            handshake_first: false,
        }
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid certificate in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(certs)
}

/// Builds the acceptor from the files (read now, so a reload picks up renewed certificates).
pub fn acceptor(s: &TlsSettings) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&s.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file)
        .map_err(|e| format!("cannot read private key from {}: {e}", s.key_file.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = if s.verify {
        let ca = s
            .ca_file
            .as_ref()
            .ok_or("tls.verify needs a ca_file to verify client certificates against")?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider)
            .build()
            .map_err(|e| format!("cannot build the client certificate verifier: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not form a valid pair: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn roots(ca: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots
            .add(c)
            .map_err(|e| format!("invalid CA certificate in {}: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// A client-side configuration: servers verified against `ca`, `cert`/`key` presented when
/// given (routes always present theirs; the bench client when the server verifies clients).
pub fn connector(ca: &Path, cert_key: Option<(&Path, &Path)>) -> Result<TlsConnector, String> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots(ca)?);
    let config = match cert_key {
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read private key from {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(certs(cert)?, key)
                .map_err(|e| format!("certificate and key do not form a valid pair: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Route TLS: the acceptor (peer certificates required, verified against `ca_file`) and the
/// connector (the peer verified against `ca_file` and the dialed name; our certificate
/// presented).
pub fn route_tls(s: &TlsSettings) -> Result<(TlsAcceptor, TlsConnector), String> {
    let ca = s
        .ca_file
        .as_ref()
        .ok_or("cluster.tls needs a ca_file: route certificates are verified in both directions")?;
    let acceptor = acceptor(&TlsSettings {
        verify: true,
        ..s.clone()
    })?;
    let connector = connector(ca, Some((&s.cert_file, &s.key_file)))?;
    Ok((acceptor, connector))
}

/// The acceptor for HTTPS monitoring: the same certificate, but no client certificate is
/// asked for even with `verify` (nats-server serves monitoring with `NoClientCert`).
pub fn monitor_acceptor(s: &TlsSettings) -> Result<TlsAcceptor, String> {
    acceptor(&TlsSettings {
        verify: false,
        ..s.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let s = TlsSettings::new("/nonexistent/cert.pem", "/nonexistent/key.pem");
        let e = acceptor(&s).err().unwrap();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }

    #[test]
    fn verify_needs_a_ca() {
        let dir = std::env::temp_dir().join(format!("nm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("c.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), ck.signing_key.serialize_pem()).unwrap();
        let mut s = TlsSettings::new(dir.join("c.pem"), dir.join("k.pem"));
        assert!(acceptor(&s).is_ok());
        s.verify = true;
        assert!(acceptor(&s).err().unwrap().contains("ca_file"));
        s.ca_file = Some(dir.join("c.pem"));
        assert!(acceptor(&s).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
