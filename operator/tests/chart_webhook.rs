//! The chart's sidecar-injection webhook (`operator.webhook`), rendered by Helm v4 (pip
//! helm-python-sdk, see chart_support/helm.py): the objects exist only with the operator and
//! the webhook enabled; the Service reaches the port the operator container serves; the
//! chart-generated caBundle is the CA that signed the serving certificate, whose SANs are the
//! names the apiserver dials (checked with `openssl verify`, and end to end: the operator's
//! own webhook server, given the rendered Secret's key pair, answers a TLS client that trusts
//! only the caBundle and dials `SERVICE.NAMESPACE.svc`); the cert-manager variant; and the
//! selectors, evaluated as the apiserver evaluates them, sending exactly the opted-in pods to
//! the webhook, which then injects them.
//!
//! Not covered (no cluster here): Helm's `lookup` keeping an existing Secret on upgrade;
//! `helm template` always generates a new certificate.

mod chart_support;
mod webhook_support;

use chart_support::{Rendered, helm_batch, helm_template, rendered, template_job};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use nats_mini_operator::webhook::{self, SIDECAR_NAME, SidecarConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const NS: &str = "messaging";
const OPERATOR: &str = "nats-operator";
const SERVICE: &str = "nats-operator-webhook";
const SECRET: &str = "nats-operator-webhook-cert";

fn with_webhook(values: Value) -> Rendered {
    helm_template("nats", NS, &[], values)
}

fn webhook_config(r: &Rendered) -> MutatingWebhookConfiguration {
    serde_json::from_value(r.get("MutatingWebhookConfiguration", OPERATOR).clone())
        .expect("a MutatingWebhookConfiguration")
}

/// The caBundle of the rendered configuration, decoded.
fn ca_bundle(r: &Rendered) -> Vec<u8> {
    let hooks = webhook_config(r).webhooks.expect("webhooks");
    hooks[0]
        .client_config
        .ca_bundle
        .clone()
        .expect("caBundle")
        .0
}

fn operator_container(r: &Rendered) -> Value {
    r.get("Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"][0].clone()
}

fn env_of(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
}

#[test]
fn webhook_objects_render_only_with_the_operator_and_the_webhook_enabled() {
    let sets = [
        (json!({}), false),
        (
            json!({"operator": {"enabled": false, "webhook": {"enabled": true}}}),
            false,
        ),
        (
            json!({"operator": {"enabled": true, "webhook": {"enabled": false}}}),
            false,
        ),
        (json!({"operator": {"enabled": true}}), true),
    ];
    let jobs = sets
        .iter()
        .map(|(v, _)| template_job("nats", NS, &[] as &[PathBuf], v.clone()))
        .collect();
    for ((values, want), result) in sets.iter().zip(helm_batch(jobs)) {
        let r = rendered(&result).unwrap_or_else(|e| panic!("{values}: {e}"));
        let has = |kind: &str, name: &str| {
            r.objects()
                .iter()
                .any(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        };
        assert_eq!(
            has("MutatingWebhookConfiguration", OPERATOR),
            *want,
            "{values}"
        );
        assert_eq!(has("Service", SERVICE), *want, "{values}");
        assert_eq!(has("Secret", SECRET), *want, "{values}");
        for kind in ["Certificate", "Issuer"] {
            assert!(!has(kind, SERVICE), "{values}: {kind} without cert-manager");
        }
        if values["operator"]["enabled"] == true {
            // The Deployment serves the webhook exactly when it is configured.
            let c = operator_container(&r);
            assert_eq!(env_of(&c, "WEBHOOK_CERT_DIR").is_some(), *want, "{values}");
            let ports = c["ports"].as_array().expect("ports").len();
            assert_eq!(ports, if *want { 2 } else { 1 }, "{values}");
            let pod = &r.get("Deployment", OPERATOR)["spec"]["template"];
            assert_eq!(pod["spec"]["volumes"].is_array(), *want, "{values}");
            assert_eq!(
                pod["metadata"]["annotations"]["checksum/webhook-cert"].is_string(),
                *want,
                "{values}"
            );
        }
    }
}

#[test]
fn the_webhook_service_reaches_the_port_the_operator_serves() {
    let r = with_webhook(json!({"operator": {"enabled": true}}));
    let deployment = r.get("Deployment", OPERATOR);
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .expect("pod labels");
    let svc = r.get("Service", SERVICE);
    let selector = svc["spec"]["selector"].as_object().expect("selector");
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "the Service selects the operator pods"
        );
    }
    assert_eq!(
        svc["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"],
        "and nothing but them"
    );
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["port"], 443);
    // The named target port is a port of the operator container, and the operator listens
    // there (WEBHOOK_ADDR).
    let c = operator_container(&r);
    let target = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == port["targetPort"])
        .unwrap_or_else(|| panic!("no container port {}", port["targetPort"]));
    assert_eq!(target["containerPort"], 8443);
    assert_eq!(target["protocol"], "TCP");
    assert_eq!(
        env_of(&c, "WEBHOOK_ADDR").as_deref(),
        Some("0.0.0.0:8443"),
        "the operator listens on the container port"
    );
    // The certificate directory is the mounted Secret.
    let dir = env_of(&c, "WEBHOOK_CERT_DIR").expect("WEBHOOK_CERT_DIR");
    let mount = c["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == dir.as_str())
        .expect("a mount at WEBHOOK_CERT_DIR")
        .clone();
    assert_eq!(mount["readOnly"], true);
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume")
        .clone();
    assert_eq!(volume["secret"]["secretName"], SECRET);
    // The apiserver calls that Service on that port and path.
    let cfg = webhook_config(&r);
    let hooks = cfg.webhooks.expect("webhooks");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    let service = hook.client_config.service.as_ref().expect("service");
    assert_eq!(service.name, SERVICE);
    assert_eq!(service.namespace, NS);
    assert_eq!(service.port, Some(443));
    assert_eq!(service.path.as_deref(), Some("/mutate"));
    assert!(hook.client_config.url.is_none());
    assert_eq!(hook.admission_review_versions, vec!["v1".to_string()]);
    assert_eq!(hook.side_effects, "None");
    assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(hook.timeout_seconds, Some(10));
    assert_eq!(hook.reinvocation_policy.as_deref(), Some("IfNeeded"));
    let rules = hook.rules.as_ref().expect("rules");
    assert_eq!(
        serde_json::to_value(rules).expect("json"),
        json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["pods"], "scope": "Namespaced"}])
    );
}

/// `openssl ARGS`; panics when openssl is missing (scripts/test-deps.sh installs it).
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): install it (scripts/test-deps.sh does)")
        });
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The files of the rendered Secret `name`.
fn secret_files(r: &Rendered, name: &str) -> BTreeMap<String, Vec<u8>> {
    let secret: Secret = serde_json::from_value(r.get("Secret", name).clone()).expect("a Secret");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    secret
        .data
        .expect("data")
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

#[test]
fn the_ca_bundle_signed_the_serving_certificate_for_the_service_name() {
    let jobs = ["nats", "other"]
        .iter()
        .map(|n| {
            template_job(
                n,
                NS,
                &[] as &[PathBuf],
                json!({"operator": {"enabled": true}}),
            )
        })
        .collect();
    let results = helm_batch(jobs);
    let r = rendered(&results[0]).expect("renders");
    let other = rendered(&results[1]).expect("renders");
    let files = secret_files(&r, SECRET);
    let ca_bundle = ca_bundle(&r);
    assert_eq!(
        ca_bundle, files["ca.crt"],
        "caBundle is the Secret's ca.crt"
    );
    assert_ne!(
        files["ca.crt"], files["tls.crt"],
        "a CA and a leaf, not one self-signed cert"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let ca = write(dir.path(), "ca.crt", &ca_bundle);
    let crt = write(dir.path(), "tls.crt", &files["tls.crt"]);
    let host = format!("{SERVICE}.{NS}.svc");
    // The apiserver's check: chain to the caBundle, name SERVICE.NAMESPACE.svc.
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &ca,
        "-purpose",
        "sslserver",
        "-verify_hostname",
        &host,
        &crt,
    ]);
    assert!(ok && text.contains(": OK"), "{text}");
    let (ok, text) = openssl(&["x509", "-in", &crt, "-noout", "-ext", "subjectAltName"]);
    assert!(ok, "{text}");
    for name in [
        SERVICE.to_string(),
        format!("{SERVICE}.{NS}"),
        host.clone(),
        format!("{SERVICE}.{NS}.svc.cluster.local"),
    ] {
        assert!(
            text.contains(&format!("DNS:{name}")),
            "{name} not in {text}"
        );
    }
    let (ok, text) = openssl(&["x509", "-in", &ca, "-noout", "-ext", "basicConstraints"]);
    assert!(ok && text.contains("CA:TRUE"), "{text}");
    // Teeth: another release's CA did not sign it, and another name does not match.
    let other_ca = write(
        dir.path(),
        "other-ca.crt",
        &secret_files(&other, "other-operator-webhook-cert")["ca.crt"],
    );
    let (ok, text) = openssl(&["verify", "-CAfile", &other_ca, &crt]);
    assert!(!ok, "another CA verified the certificate: {text}");
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &ca,
        "-verify_hostname",
        "nats.messaging.svc",
        &crt,
    ]);
    assert!(!ok, "the certificate matched a foreign name: {text}");
    // The key is the certificate's.
    let key = write(dir.path(), "tls.key", &files["tls.key"]);
    let pubkey = |args: &[&str]| {
        let (ok, text) = openssl(args);
        assert!(ok, "{text}");
        text
    };
    assert_eq!(
        pubkey(&["x509", "-in", &crt, "-noout", "-pubkey"]),
        pubkey(&["pkey", "-in", &key, "-pubout"])
    );
    // The operator pods roll when the certificate changes: the checksum is the certificate's.
    let (ok, text) = openssl(&["dgst", "-sha256", "-r", &crt]);
    assert!(ok, "{text}");
    let digest = text.split_whitespace().next().expect("digest");
    assert_eq!(
        r.get("Deployment", OPERATOR)["spec"]["template"]["metadata"]["annotations"]["checksum/webhook-cert"],
        digest
    );
}

/// What the apiserver does with a label selector (matchLabels and matchExpressions, ANDed).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let got = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => got.is_some_and(|v| values.contains(v)),
            "NotIn" => got.is_none_or(|v| !values.contains(v)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            other => panic!("unknown operator {other}"),
        }
    });
    labels_ok && exprs_ok
}

/// Whether the configuration sends the creation of `pod` in `namespace` to the webhook (the
/// namespace's labels are what Kubernetes sets on every namespace).
fn sent_to_webhook(cfg: &MutatingWebhookConfiguration, namespace: &str, pod: &Pod) -> bool {
    let hook = &cfg.webhooks.as_ref().expect("webhooks")[0];
    let ns_labels = BTreeMap::from([(
        "kubernetes.io/metadata.name".to_string(),
        namespace.to_string(),
    )]);
    let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
    selects(
        hook.namespace_selector.as_ref().expect("namespaceSelector"),
        &ns_labels,
    ) && selects(
        hook.object_selector.as_ref().expect("objectSelector"),
        &pod_labels,
    )
}

fn pod(labels: Value, annotations: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"generateName": "orders-", "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "orders:1"}]},
    }))
    .expect("pod")
}

#[test]
fn the_selectors_send_exactly_the_opted_in_pods_and_the_webhook_injects_them() {
    let r = with_webhook(json!({"operator": {"enabled": true,
        "webhook": {"excludeNamespaces": ["kube-system", "legacy", NS]}}}));
    let cfg = webhook_config(&r);
    // The operator's own pod template, even if someone labelled it to opt in.
    let mut operator_pod: Pod =
        serde_json::from_value(r.get("Deployment", OPERATOR)["spec"]["template"].clone())
            .expect("operator pod");
    operator_pod
        .metadata
        .labels
        .get_or_insert_default()
        .insert("nats-mini.io/inject".into(), "true".into());
    // (namespace, pod, sent to the webhook)
    let cases = [
        (
            "shop",
            pod(json!({"nats-mini.io/inject": "true"}), json!(null)),
            true,
        ),
        (
            "shop",
            pod(
                json!({"nats-mini.io/inject": "enabled", "app": "x"}),
                json!({"nats-mini.io/sidecar-mode": "classic"}),
            ),
            true,
        ),
        (
            "shop",
            pod(
                json!({"nats-mini.io/inject": "false"}),
                json!({"nats-mini.io/inject": "true"}),
            ),
            false,
        ),
        (
            "shop",
            pod(json!({"nats-mini.io/inject": "True"}), json!(null)),
            false,
        ),
        ("shop", pod(json!({"app": "orders"}), json!(null)), false),
        ("shop", pod(json!(null), json!(null)), false),
        // The annotation alone does not reach the webhook: a configuration selects by label.
        (
            "shop",
            pod(json!(null), json!({"nats-mini.io/inject": "true"})),
            false,
        ),
        (
            NS,
            pod(json!({"nats-mini.io/inject": "true"}), json!(null)),
            false,
        ),
        (
            "kube-system",
            pod(json!({"nats-mini.io/inject": "true"}), json!(null)),
            false,
        ),
        (
            "legacy",
            pod(json!({"nats-mini.io/inject": "true"}), json!(null)),
            false,
        ),
        ("shop", operator_pod.clone(), false),
    ];
    for (i, (namespace, p, want)) in cases.iter().enumerate() {
        let sent = sent_to_webhook(&cfg, namespace, p);
        assert_eq!(sent, *want, "case {i}: {namespace} {:?}", p.metadata);
        if sent {
            // Every pod the apiserver sends is one the webhook injects.
            let patch = webhook::mutate(p, &SidecarConfig::default())
                .expect("mutates")
                .unwrap_or_else(|| panic!("case {i}: sent but not injected"));
            let mut v = serde_json::to_value(p).expect("json");
            json_patch::patch(&mut v, &patch).expect("patch applies");
            let names: Vec<&Value> = ["initContainers", "containers"]
                .iter()
                .flat_map(|l| v["spec"][l].as_array().into_iter().flatten())
                .map(|c| &c["name"])
                .collect();
            assert!(names.contains(&&json!(SIDECAR_NAME)), "case {i}: {v}");
        }
    }
    // The release namespace is excluded once even when listed again.
    let ns = &cfg.webhooks.expect("webhooks")[0]
        .namespace_selector
        .clone()
        .expect("namespaceSelector")
        .match_expressions
        .expect("expressions")[0];
    assert_eq!(
        ns.values.clone().expect("values"),
        vec![NS, "kube-system", "legacy"]
    );
}

#[tokio::test]
async fn the_operator_serves_the_chart_certificate_to_a_client_trusting_the_ca_bundle() {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    let r = with_webhook(json!({"operator": {"enabled": true}}));
    let files = secret_files(&r, SECRET);
    // What the operator does with the mounted Secret (main.rs: webhook::tls_config).
    let tls = webhook::tls_config(&files["tls.crt"], &files["tls.key"]).expect("tls config");
    let server = webhook_support::start(tls).await;
    // What the apiserver does: trust the caBundle alone, dial SERVICE.NAMESPACE.svc.
    let roots = CertificateDer::pem_slice_iter(&ca_bundle(&r))
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM");
    assert_eq!(roots.len(), 1);
    let connector = webhook_support::connector(roots);
    let host = format!("{SERVICE}.{NS}.svc");
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": serde_json::to_value(pod(json!({"nats-mini.io/inject": "true"}), json!(null))).expect("json"),
            "dryRun": false,
        }
    });
    let (status, body) = webhook_support::post(
        &connector,
        server.addr,
        &host,
        "/mutate",
        review.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(v["response"]["allowed"], true, "{v}");
    assert_eq!(v["response"]["patchType"], "JSONPatch", "{v}");
    // A client dialling another name is refused: the certificate is the Service's.
    let wrong = webhook_support::connect(&connector, server.addr, "nats.shop.svc").await;
    assert!(wrong.is_err(), "a foreign name was accepted");
    server.stop().await;
}

#[test]
fn with_cert_manager_a_certificate_is_issued_and_its_ca_injected() {
    let sets = [
        json!({"operator": {"enabled": true, "webhook": {"certManager": {"enabled": true}}}}),
        json!({"operator": {"enabled": true, "webhook": {"failurePolicy": "Fail", "timeoutSeconds": 5,
            "certManager": {"enabled": true, "issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca"}}}}}),
    ];
    let jobs = sets
        .iter()
        .map(|v| template_job("nats", NS, &[] as &[PathBuf], v.clone()))
        .collect();
    let results = helm_batch(jobs);
    for (values, result) in sets.iter().zip(&results) {
        let r = rendered(result).unwrap_or_else(|e| panic!("{values}: {e}"));
        assert!(
            !r.objects().iter().any(|o| o["kind"] == "Secret"),
            "{values}: cert-manager writes the Secret"
        );
        let cert = r.get("Certificate", SERVICE);
        assert_eq!(cert["apiVersion"], "cert-manager.io/v1");
        assert_eq!(
            cert["spec"]["secretName"], SECRET,
            "the Secret the operator mounts"
        );
        let dns: Vec<&str> = cert["spec"]["dnsNames"]
            .as_array()
            .expect("dnsNames")
            .iter()
            .map(|d| d.as_str().expect("name"))
            .collect();
        assert!(
            dns.contains(&format!("{SERVICE}.{NS}.svc").as_str()),
            "{dns:?}"
        );
        assert_eq!(cert["spec"]["usages"], json!(["server auth"]));
        let cfg_obj = r.get("MutatingWebhookConfiguration", OPERATOR);
        assert_eq!(
            cfg_obj["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{NS}/{SERVICE}"),
            "cert-manager injects the CA of that Certificate"
        );
        let cfg = webhook_config(&r);
        let hook = &cfg.webhooks.expect("webhooks")[0];
        assert!(
            hook.client_config.ca_bundle.is_none(),
            "{values}: the cainjector fills it"
        );
        let pod = &r.get("Deployment", OPERATOR)["spec"]["template"];
        assert!(
            pod["metadata"]["annotations"].is_null(),
            "{values}: no checksum to roll on"
        );
        assert_eq!(pod["spec"]["volumes"][0]["secret"]["secretName"], SECRET);
        let issuer = &cert["spec"]["issuerRef"];
        if values["operator"]["webhook"]["certManager"]["issuerRef"].is_object() {
            assert_eq!(
                issuer,
                &json!({"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
            );
            assert!(!r.objects().iter().any(|o| o["kind"] == "Issuer"));
            assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
            assert_eq!(hook.timeout_seconds, Some(5));
        } else {
            let own = r.get("Issuer", SERVICE);
            assert_eq!(own["spec"], json!({"selfSigned": {}}));
            assert_eq!(
                issuer,
                &json!({"name": SERVICE, "kind": "Issuer", "group": "cert-manager.io"})
            );
        }
    }
}
