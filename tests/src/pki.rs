//! Throwaway certificates for TLS tests, generated with rcgen at test time (none are
//! committed): a CA, a certificate for localhost/127.0.0.1 (`server.pem`, used by servers and,
//! for routes, as each node's client certificate too), a client certificate (`client.pem`) and
//! one from an unrelated CA (`bad.pem`).

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(dir: &Path, name: &str, pem: String) {
    std::fs::write(dir.join(name), pem).expect("write pem");
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, both signed by
/// the CA, plus a client certificate from an unrelated CA.
pub fn pki(tag: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("nm-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tls dir");
    let make_ca = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        let cert = p.self_signed(&key).expect("ca cert");
        (cert, Issuer::new(p, key))
    };
    let (ca, issuer) = make_ca("nats-mini test CA");
    write(&dir, "ca.pem", ca.pem());
    let leaf = |names: Vec<String>, issuer: &Issuer<'_, KeyPair>, cert: &str, key: &str| {
        let k = KeyPair::generate().expect("key");
        let c = CertificateParams::new(names)
            .expect("params")
            .signed_by(&k, issuer)
            .expect("sign");
        write(&dir, cert, c.pem());
        write(&dir, key, k.serialize_pem());
    };
    leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        &issuer,
        "server.pem",
        "server-key.pem",
    );
    leaf(
        vec!["client".into()],
        &issuer,
        "client.pem",
        "client-key.pem",
    );
    let (_other_ca, other) = make_ca("unrelated CA");
    leaf(vec!["intruder".into()], &other, "bad.pem", "bad-key.pem");
    Pki { dir }
}
