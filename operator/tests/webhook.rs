//! The sidecar-injection webhook on real AdmissionReview v1 bodies (`tests/webhook/*.json`,
//! shaped as the apiserver sends them: a ReplicaSet's pod with only `generateName` and the
//! namespace only in the request, a dry run, an UPDATE, a non-Pod object, a bad annotation).
//!
//! The patch each answer carries is applied to the request's pod with json-patch 4 (what the
//! apiserver does with it), and the mutated pod is validated with `kubernetes-validate
//! --strict` for Kubernetes 1.29 and the newest version the tool ships; the native sidecar
//! must fail 1.27 (no `restartPolicy` on containers there), which shows the validation sees
//! the field. What the schemas cannot catch is asserted directly: no `restartPolicy` on a
//! regular container, requests/limits and a restricted securityContext on the sidecar.
//! Last, the same bodies go through the HTTPS server with a real TLS client.

mod common;
mod webhook_support;

use nats_mini_operator::webhook::{self, INJECTED, SIDECAR_NAME, SidecarConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> Vec<u8> {
    let path = common::repo_root()
        .join("operator/tests/webhook")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The response of the review, checked for the envelope every answer must have.
fn answer(body: &[u8]) -> Value {
    let (status, out) = webhook::review(body, &SidecarConfig::default());
    assert_eq!(status, http::StatusCode::OK);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let req: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], req["request"]["uid"]);
    v["response"].clone()
}

/// The request's pod with the response's patch applied.
fn mutated(body: &[u8], response: &Value) -> Value {
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes: Vec<u8> = serde_json::from_value(response["patch"].clone()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let req: Value = serde_json::from_slice(body).unwrap();
    let mut pod = req["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    pod
}

fn sidecar_of(pod: &Value) -> (&'static str, Value) {
    for list in ["initContainers", "containers"] {
        if let Some(c) = pod["spec"][list]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == SIDECAR_NAME))
        {
            return (list, c.clone());
        }
    }
    panic!("no sidecar in {pod}");
}

/// What the schemas do not check.
fn assert_apiserver_rules(pod: &Value) {
    for c in pod["spec"]["containers"].as_array().unwrap() {
        assert!(
            c.get("restartPolicy").is_none(),
            "regular container with restartPolicy: {c}"
        );
    }
    let (_, s) = sidecar_of(pod);
    assert!(s["resources"]["requests"]["cpu"].is_string(), "{s}");
    assert!(s["resources"]["requests"]["memory"].is_string(), "{s}");
    assert!(s["resources"]["limits"]["memory"].is_string(), "{s}");
    let sc = &s["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["metadata"]["annotations"][INJECTED], "true");
}

#[test]
fn a_replicaset_pod_gets_a_native_sidecar_before_its_init_containers() {
    let body = fixture("replicaset-pod-native.json");
    let pod = mutated(&body, &answer(&body));
    let (list, s) = sidecar_of(&pod);
    assert_eq!(list, "initContainers");
    assert_eq!(pod["spec"]["initContainers"][0]["name"], SIDECAR_NAME);
    assert_eq!(pod["spec"]["initContainers"][1]["name"], "migrate");
    assert_eq!(s["restartPolicy"], "Always");
    assert_eq!(s["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        s["args"],
        json!(["-listen", "127.0.0.1:4222", "-http", "0.0.0.0:8222"])
    );
    for c in pod["spec"]["containers"].as_array().unwrap() {
        let env = c["env"].as_array().unwrap();
        assert!(
            env.contains(&json!({"name": "NATS_URL", "value": "nats://127.0.0.1:4222"})),
            "{c}"
        );
    }
    assert_eq!(
        pod["spec"]["containers"][0]["env"][0],
        json!({"name": "LOG", "value": "info"})
    );
    assert_apiserver_rules(&pod);
}

#[test]
fn a_dry_run_classic_request_appends_a_container_and_keeps_an_explicit_nats_url() {
    let body = fixture("pod-classic-dry-run.json");
    let pod = mutated(&body, &answer(&body));
    let (list, _) = sidecar_of(&pod);
    assert_eq!(list, "containers");
    assert_eq!(
        pod["spec"]["containers"][0]["env"],
        json!([{"name": "NATS_URL", "value": "nats://nats.batch:4222"}])
    );
    assert_apiserver_rules(&pod);
}

#[test]
fn other_requests_are_allowed_unchanged_and_bad_annotations_are_denied() {
    for name in [
        "pod-not-opted-in.json",
        "pod-update.json",
        "deployment-not-a-pod.json",
    ] {
        let r = answer(&fixture(name));
        assert_eq!(r["allowed"], true, "{name}: {r}");
        assert!(r.get("patch").is_none(), "{name}: {r}");
    }
    let r = answer(&fixture("pod-bad-mode.json"));
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("nats-mini.io/sidecar-mode"),
        "{r}"
    );
}

#[test]
fn a_second_pass_over_the_mutated_pod_is_a_no_op() {
    let body = fixture("replicaset-pod-native.json");
    let pod = mutated(&body, &answer(&body));
    let mut again: Value = serde_json::from_slice(&body).unwrap();
    again["request"]["object"] = pod;
    let r = answer(&serde_json::to_vec(&again).unwrap());
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none(), "{r}");
}

fn validate(tool: &Path, version: &str, file: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(["--strict", "-k", version])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn mutated_pods_validate_for_1_29_and_the_newest_kubernetes_and_native_fails_1_27() {
    let tool = common::venv_tool(
        "kubernetes-validate",
        "KUBERNETES_VALIDATE",
        "kubernetes-validate",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for name in ["replicaset-pod-native.json", "pod-classic-dry-run.json"] {
        let body = fixture(name);
        let mut pod = mutated(&body, &answer(&body));
        // What the apiserver stores: generateName resolved, namespace from the request.
        pod["metadata"]["name"] = json!("orders-7d9f8b6c5-x2x9q");
        pod["metadata"]["namespace"] = json!("shop");
        let path = dir.path().join(name.replace(".json", ".yaml"));
        std::fs::write(&path, serde_yaml::to_string(&pod).unwrap()).unwrap();
        files.push((name.to_string(), path));
    }
    // Without -k the tool uses the newest version it ships.
    let (_, text) = validate(&tool, "1.29.0", &files[0].1);
    assert!(text.contains("against version 1.29"), "{text}");
    let newest = {
        let out = Command::new(&tool)
            .arg("--strict")
            .arg(&files[0].1)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        s.split(" against version ")
            .nth(1)
            .map(|v| format!("{}.0", v.trim()))
            .unwrap_or_else(|| panic!("cannot tell the newest version from {s}"))
    };
    for version in ["1.29.0", newest.as_str()] {
        for (name, path) in &files {
            let (ok, text) = validate(&tool, version, path);
            assert!(ok, "{name} for {version}:\n{text}");
            assert!(text.contains("INFO"), "{text}");
        }
    }
    let (ok, text) = validate(&tool, "1.27.0", &files[0].1);
    assert!(
        !ok && text.contains("restartPolicy"),
        "a native sidecar must not validate for 1.27:\n{text}"
    );
}

#[tokio::test]
async fn the_https_server_answers_reviews_and_refuses_garbage() {
    use rustls_pki_types::CertificateDer;

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = webhook::tls_config(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let server = webhook_support::start(tls).await;
    let connector = webhook_support::connector([CertificateDer::from(cert.cert.der().to_vec())]);
    let post = |path: &'static str, body: Vec<u8>| {
        webhook_support::post(&connector, server.addr, "localhost", path, body)
    };

    let body = fixture("replicaset-pod-native.json");
    let (status, out) = post("/mutate", body.clone()).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let pod = mutated(&body, &v["response"]);
    assert_eq!(pod["spec"]["initContainers"][0]["name"], SIDECAR_NAME);

    let (status, out) = post("/mutate", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["response"]["allowed"], false);

    let (status, _) = post("/elsewhere", body).await;
    assert_eq!(status, 404);

    server.stop().await;
}

/// A renewed certificate is served without a restart: the Secret volume's `..data` symlink is
/// swapped as the kubelet does, and after the check interval a client trusting only the new
/// certificate gets through. Unusable updates (garbage, a certificate with another key) are
/// ignored and the previous certificate keeps serving.
#[tokio::test]
async fn the_https_server_serves_a_renewed_certificate_and_ignores_broken_ones() {
    use rustls_pki_types::CertificateDer;
    const INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

    let a = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (a_crt, a_key) = (a.cert.pem(), a.signing_key.serialize_pem());
    let (b_crt, b_key) = (b.cert.pem(), b.signing_key.serialize_pem());
    let dir = tempfile::tempdir().unwrap();
    let project = |crt: &str, key: &str, version: usize| {
        common::project_volume(
            dir.path(),
            &[("tls.crt", crt.as_bytes()), ("tls.key", key.as_bytes())],
            version,
        );
    };
    project(&a_crt, &a_key, 0);

    let tls = webhook::reloading_tls_config(dir.path(), INTERVAL).unwrap();
    let server = webhook_support::start(tls).await;
    let trusts_a = webhook_support::connector([CertificateDer::from(a.cert.der().to_vec())]);
    let trusts_b = webhook_support::connector([CertificateDer::from(b.cert.der().to_vec())]);
    let serves = |connector: &tokio_rustls::TlsConnector| {
        let connector = connector.clone();
        let addr = server.addr;
        async move {
            webhook_support::connect(&connector, addr, "localhost")
                .await
                .is_ok()
        }
    };
    assert!(serves(&trusts_a).await);
    assert!(!serves(&trusts_b).await, "B is not served before the swap");

    // Garbage, then B's certificate with A's key: each is looked at after the interval,
    // refused, and A stays in service.
    for (version, (crt, key)) in [("not a pem", "nor this"), (b_crt.as_str(), a_key.as_str())]
        .into_iter()
        .enumerate()
    {
        project(crt, key, version + 1);
        tokio::time::sleep(INTERVAL * 2).await;
        assert!(
            serves(&trusts_a).await,
            "A still served after update {}",
            version + 1
        );
        assert!(
            !serves(&trusts_b).await,
            "B not served after update {}",
            version + 1
        );
    }

    // The real renewal: B from the next handshake after the interval on.
    project(&b_crt, &b_key, 3);
    tokio::time::sleep(INTERVAL * 2).await;
    assert!(serves(&trusts_b).await, "B served after the swap");
    assert!(!serves(&trusts_a).await, "A no longer served");
    let (status, _) = webhook_support::post(
        &trusts_b,
        server.addr,
        "localhost",
        "/mutate",
        fixture("replicaset-pod-native.json"),
    )
    .await;
    assert_eq!(status, 200);

    server.stop().await;
}
