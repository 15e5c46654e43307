//! The sidecar injector: a mutating admission webhook that gives annotated pods their own
//! nats-mini broker on `127.0.0.1:4222`, so an application talks NATS without knowing where
//! the cluster is.
//!
//! # What the pod author writes (pod template labels and annotations)
//!
//! | key | values | effect |
//! |---|---|---|
//! | [`INJECT`] `nats-mini.io/inject`, a **label** | `"true"` / `"enabled"` | opt in; anything else: the pod is left alone, whatever the annotation says |
//! | [`INJECT`] `nats-mini.io/inject`, an annotation | `"true"` / `"enabled"` | opt in, read only when the pod has no such label |
//! | [`MODE`] `nats-mini.io/sidecar-mode` | `native` (default) / `classic` | native: an init container with `restartPolicy: Always` (Kubernetes ≥ 1.29 by default), so it starts first, has a startup probe and never blocks a Job's completion; classic: one more regular container, for clusters without native sidecars |
//! | [`INJECTED`] `nats-mini.io/injected` | written by the webhook | idempotency marker: a pod carrying it is never mutated again (reinvocation, UPDATE) |
//!
//! The label is the opt-in to use: a MutatingWebhookConfiguration can select pods only by
//! their labels (`objectSelector`), so the chart's and deploy/'s configurations send the
//! apiserver here only for pods labelled `nats-mini.io/inject` `true`/`enabled`, and every other
//! pod is created without waiting on the operator. The annotation is honoured for a
//! configuration that selects pods more broadly (no `objectSelector`).
//!
//! # What is injected
//!
//! A container named [`SIDECAR_NAME`] running the broker image with `-listen 127.0.0.1:4222`
//! (clients of the pod only) and its monitor on [`SIDECAR_MONITOR_PORT`] for the startup
//! probe on `/healthz`; requests and limits (so LimitRange/ResourceQuota admission accepts
//! the pod) and a securityContext meeting the "restricted" Pod Security Standard. Every
//! application container without a `NATS_URL` gets `NATS_URL=nats://127.0.0.1:4222`.
//!
//! # Shape
//!
//! [`mutate`] is pure (pod in, JSON patch out); [`review`] turns an AdmissionReview body
//! into the response body (malformed input → 400 with a message, never a panic); [`serve`]
//! is the thin HTTPS shell (`POST /mutate`). Only CREATE of a Pod is mutated; every other
//! request is allowed unchanged. A dry-run gets the same answer (the webhook has no side
//! effects: `sideEffects: None`).

use crate::render::DEFAULT_IMAGE_REPOSITORY;
use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::{Value, json};

/// Opt-in label (what the webhook configurations select on) and annotation.
pub const INJECT: &str = "nats-mini.io/inject";
/// Values of [`INJECT`] that opt in.
pub const INJECT_VALUES: [&str; 2] = ["true", "enabled"];
/// `native` or `classic`.
pub const MODE: &str = "nats-mini.io/sidecar-mode";
/// Marker the webhook writes on every pod it mutated.
pub const INJECTED: &str = "nats-mini.io/injected";
/// Name of the injected container.
pub const SIDECAR_NAME: &str = "nats-mini-sidecar";
/// Client port of the sidecar, on the loopback interface only.
pub const SIDECAR_CLIENT_PORT: i32 = 4222;
/// Monitor port of the sidecar (the kubelet's startup probe needs it on the pod IP).
pub const SIDECAR_MONITOR_PORT: i32 = 8222;
/// The URL given to application containers.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// What the injector needs besides the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarConfig {
    /// Broker image (`repository:tag`).
    pub image: String,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        SidecarConfig {
            image: format!("{DEFAULT_IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Why a pod asks for no mutation, or what went wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("annotation {MODE} must be \"native\" or \"classic\", not {0:?}")]
    BadMode(String),
    #[error("the pod already has a container named {SIDECAR_NAME}")]
    NameTaken,
    /// The operations did not form a JSON patch (a bug).
    #[error("cannot build the patch: {0}")]
    Patch(String),
}

/// Sidecar flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Native,
    Classic,
}

fn lookup<'a>(
    map: &'a Option<std::collections::BTreeMap<String, String>>,
    key: &str,
) -> Option<&'a str> {
    map.as_ref().and_then(|m| m.get(key)).map(String::as_str)
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    lookup(&pod.metadata.annotations, key)
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    lookup(&pod.metadata.labels, key)
}

/// Whether the pod opted in and is not injected yet. The [`INJECT`] label decides when the pod
/// has it (so `nats-mini.io/inject: "false"` as a label opts out even with the annotation set);
/// the annotation only when it has not.
pub fn wants_injection(pod: &Pod) -> bool {
    let opt_in = label(pod, INJECT).or_else(|| annotation(pod, INJECT));
    opt_in.is_some_and(|v| INJECT_VALUES.contains(&v)) && annotation(pod, INJECTED).is_none()
}

/// The injected container.
pub fn sidecar(cfg: &SidecarConfig, mode: Mode) -> Value {
    let mut c = json!({
        "name": SIDECAR_NAME,
        "image": cfg.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "-listen", format!("127.0.0.1:{SIDECAR_CLIENT_PORT}"),
            "-http", format!("0.0.0.0:{SIDECAR_MONITOR_PORT}"),
        ],
        "env": [{"name": "NATS_LOG", "value": "error"}],
        "ports": [{"name": "nats-sidecar-m", "containerPort": SIDECAR_MONITOR_PORT, "protocol": "TCP"}],
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": SIDECAR_MONITOR_PORT},
            "periodSeconds": 1,
            "failureThreshold": 30,
        },
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"memory": "128Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    });
    if mode == Mode::Native {
        c["restartPolicy"] = json!("Always");
    }
    c
}

/// JSON-pointer escaping of one path segment (RFC 6901).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The patch that injects the sidecar, or `None` when the pod is not to be touched.
pub fn mutate(pod: &Pod, cfg: &SidecarConfig) -> Result<Option<json_patch::Patch>, WebhookError> {
    if !wants_injection(pod) {
        return Ok(None);
    }
    let mode = match annotation(pod, MODE) {
        None | Some("native") => Mode::Native,
        Some("classic") => Mode::Classic,
        Some(other) => return Err(WebhookError::BadMode(other.to_string())),
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let init = spec.init_containers.unwrap_or_default();
    if spec
        .containers
        .iter()
        .chain(&init)
        .any(|c| c.name == SIDECAR_NAME)
    {
        return Err(WebhookError::NameTaken);
    }
    // A pod that opted in by label alone may have no annotations at all.
    let mut ops = vec![if pod.metadata.annotations.is_some() {
        json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", escape(INJECTED)),
            "value": "true",
        })
    } else {
        json!({"op": "add", "path": "/metadata/annotations", "value": {INJECTED: "true"}})
    }];
    for (i, c) in spec.containers.iter().enumerate() {
        let env = c.env.as_deref().unwrap_or_default();
        if env.iter().any(|e| e.name == "NATS_URL") {
            continue;
        }
        let var = json!({"name": "NATS_URL", "value": NATS_URL});
        if c.env.is_none() {
            ops.push(
                json!({"op": "add", "path": format!("/spec/containers/{i}/env"), "value": [var]}),
            );
        } else {
            ops.push(
                json!({"op": "add", "path": format!("/spec/containers/{i}/env/-"), "value": var}),
            );
        }
    }
    let container = sidecar(cfg, mode);
    match mode {
        // First among the init containers: the broker is up before any other starts.
        Mode::Native
            if pod
                .spec
                .as_ref()
                .is_some_and(|s| s.init_containers.is_some()) =>
        {
            ops.push(json!({"op": "add", "path": "/spec/initContainers/0", "value": container}))
        }
        Mode::Native => {
            ops.push(json!({"op": "add", "path": "/spec/initContainers", "value": [container]}))
        }
        Mode::Classic => {
            ops.push(json!({"op": "add", "path": "/spec/containers/-", "value": container}))
        }
    }
    serde_json::from_value(Value::Array(ops))
        .map(Some)
        .map_err(|e| WebhookError::Patch(e.to_string()))
}

/// Answers one AdmissionReview body: the HTTP status and the response body.
pub fn review(body: &[u8], cfg: &SidecarConfig) -> (StatusCode, Vec<u8>) {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("not an AdmissionReview: {e}")),
    };
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => return bad_request("the AdmissionReview has no request"),
    };
    let resp = respond(&req, cfg);
    match serde_json::to_vec(&resp.into_review()) {
        Ok(b) => (StatusCode::OK, b),
        Err(e) => bad_request(&format!("cannot encode the response: {e}")),
    }
}

fn bad_request(message: &str) -> (StatusCode, Vec<u8>) {
    let body = serde_json::to_vec(&AdmissionResponse::invalid(message).into_review())
        .unwrap_or_else(|_| message.as_bytes().to_vec());
    (StatusCode::BAD_REQUEST, body)
}

fn respond(req: &AdmissionRequest<DynamicObject>, cfg: &SidecarConfig) -> AdmissionResponse {
    let allow = AdmissionResponse::from(req);
    if !req.kind.group.is_empty() || req.kind.kind != "Pod" || req.operation != Operation::Create {
        return allow;
    }
    let Some(obj) = &req.object else {
        return allow;
    };
    let pod: Pod = match serde_json::to_value(obj).and_then(serde_json::from_value) {
        Ok(p) => p,
        Err(e) => return allow.deny(format!("cannot read the pod: {e}")),
    };
    let who = format!(
        "{}/{}",
        req.namespace.as_deref().unwrap_or(""),
        pod.metadata
            .name
            .as_deref()
            .or(pod.metadata.generate_name.as_deref())
            .unwrap_or("")
    );
    match mutate(&pod, cfg) {
        Ok(None) => allow,
        Ok(Some(patch)) => {
            tracing::info!(pod = %who, dry_run = req.dry_run, "injecting the nats-mini sidecar");
            match allow.clone().with_patch(patch) {
                Ok(r) => r,
                Err(e) => allow.deny(format!("cannot encode the patch: {e}")),
            }
        }
        Err(e) => allow.deny(e.to_string()),
    }
}

/// Serves `POST /mutate` over TLS until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    cfg: SidecarConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use http_body_util::{BodyExt, Full, Limited};
    use hyper::body::Bytes;
    /// An AdmissionReview of a large pod is well under this; the apiserver caps at 3 MiB.
    const MAX_BODY: usize = 4 * 1024 * 1024;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let cfg = std::sync::Arc::new(cfg);
    crate::http::accept_loop(listener, "webhook", shutdown, |stream| {
        let acceptor = acceptor.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(error = %e, "webhook TLS handshake failed");
                    return;
                }
            };
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let cfg = cfg.clone();
                    async move {
                        let (status, body) = if req.method() != http::Method::POST
                            || req.uri().path() != "/mutate"
                        {
                            (StatusCode::NOT_FOUND, b"not found\n".to_vec())
                        } else {
                            match Limited::new(req.into_body(), MAX_BODY).collect().await {
                                Ok(b) => review(&b.to_bytes(), &cfg),
                                Err(e) => bad_request(&format!("cannot read the body: {e}")),
                            }
                        };
                        let mut resp = http::Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = status;
                        resp.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(error = %e, "webhook connection ended with an error");
            }
        });
    })
    .await;
}

/// How often, at most, [`ReloadingCert`] looks at the certificate files again.
pub const CERT_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A certificate chain and its key from PEM (`tls.crt` with the chain, `tls.key`), checked to
/// belong together.
fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &rustls::crypto::CryptoProvider,
) -> Result<rustls::sign::CertifiedKey, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    if certs.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("tls.key: {e}"))?;
    rustls::sign::CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("tls.crt and tls.key: {e}"))
}

fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
    resolver: std::sync::Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// A rustls server config from PEM files (`tls.crt` with the chain, `tls.key`), as a
/// `kubernetes.io/tls` Secret mounts them; the certificate never changes.
pub fn tls_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    let provider = provider();
    let key = certified_key(cert_pem, key_pem, &provider)?;
    server_config(
        provider,
        std::sync::Arc::new(rustls::sign::SingleCertAndKey::from(key)),
    )
}

/// A rustls server config serving `DIR/tls.crt` and `DIR/tls.key` through a
/// [`ReloadingCert`]: a renewed certificate (cert-manager, a Secret update) is served without
/// a restart. The files must be valid at start.
pub fn reloading_tls_config(
    dir: &std::path::Path,
    interval: std::time::Duration,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    let provider = provider();
    let resolver = ReloadingCert::load(dir, interval, provider.clone())?;
    server_config(provider, std::sync::Arc::new(resolver))
}

/// The serving certificate from `tls.crt` and `tls.key` in a directory, read again on a
/// handshake when `interval` has passed since the last look. A Secret volume is updated by
/// swapping its `..data` symlink, which leaves the files' own paths and often their mtimes
/// alone, so the files' contents are compared, not their metadata. New contents that do not
/// parse, or a certificate and key that do not belong together (a half-written update), are
/// logged once and the previous certificate stays in service.
pub struct ReloadingCert {
    dir: std::path::PathBuf,
    interval: std::time::Duration,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
    state: std::sync::Mutex<CertState>,
}

struct CertState {
    checked: std::time::Instant,
    /// The files' contents at the last look, valid or not.
    seen: (Vec<u8>, Vec<u8>),
    current: std::sync::Arc<rustls::sign::CertifiedKey>,
}

impl ReloadingCert {
    /// Reads the files once; they must hold a valid pair.
    pub fn load(
        dir: &std::path::Path,
        interval: std::time::Duration,
        provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<ReloadingCert, String> {
        let seen = read_pair(dir)?;
        let current = std::sync::Arc::new(certified_key(&seen.0, &seen.1, &provider)?);
        Ok(ReloadingCert {
            dir: dir.to_path_buf(),
            interval,
            provider,
            state: std::sync::Mutex::new(CertState {
                checked: std::time::Instant::now(),
                seen,
                current,
            }),
        })
    }

    /// The certificate to serve now, after a look at the files if one is due.
    pub fn current(&self) -> std::sync::Arc<rustls::sign::CertifiedKey> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.checked.elapsed() >= self.interval {
            state.checked = std::time::Instant::now();
            match read_pair(&self.dir) {
                Ok(files) if files == state.seen => {}
                Ok(files) => {
                    match certified_key(&files.0, &files.1, &self.provider) {
                        Ok(key) => {
                            state.current = std::sync::Arc::new(key);
                            tracing::info!(dir = %self.dir.display(), "webhook certificate reloaded");
                        }
                        Err(e) => tracing::error!(
                            dir = %self.dir.display(),
                            error = %e,
                            "the new webhook certificate is unusable; still serving the previous one"
                        ),
                    }
                    state.seen = files;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot read the webhook certificate; still serving the previous one"
                ),
            }
        }
        state.current.clone()
    }
}

fn read_pair(dir: &std::path::Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let read = |f: &str| {
        let path = dir.join(f);
        std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    Ok((read("tls.crt")?, read("tls.key")?))
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(
        &self,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(annotations: Value, spec: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"generateName": "app-", "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    fn apply(p: &Pod, patch: &json_patch::Patch) -> Value {
        let mut v = serde_json::to_value(p).unwrap();
        json_patch::patch(&mut v, patch).unwrap();
        v
    }

    #[test]
    fn opted_in_pod_gets_a_native_sidecar_first_and_nats_url() {
        let p = pod(
            json!({INJECT: "true"}),
            json!({"initContainers": [{"name": "migrate", "image": "m"}],
                   "containers": [{"name": "app", "image": "a"},
                                  {"name": "b", "image": "b", "env": [{"name": "X", "value": "1"}]}]}),
        );
        let patch = mutate(&p, &SidecarConfig::default()).unwrap().unwrap();
        let out = apply(&p, &patch);
        assert_eq!(out["metadata"]["annotations"][INJECTED], "true");
        assert_eq!(out["spec"]["initContainers"][0]["name"], SIDECAR_NAME);
        assert_eq!(out["spec"]["initContainers"][0]["restartPolicy"], "Always");
        assert_eq!(out["spec"]["initContainers"][1]["name"], "migrate");
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "NATS_URL", "value": NATS_URL}])
        );
        assert_eq!(out["spec"]["containers"][1]["env"][1]["name"], "NATS_URL");
        // Idempotent: the mutated pod is not mutated again.
        let again: Pod = serde_json::from_value(out).unwrap();
        assert_eq!(mutate(&again, &SidecarConfig::default()), Ok(None));
    }

    #[test]
    fn classic_mode_appends_a_container_without_restart_policy() {
        let p = pod(
            json!({INJECT: "enabled", MODE: "classic"}),
            json!({"containers": [{"name": "app", "image": "a",
                                   "env": [{"name": "NATS_URL", "value": "nats://elsewhere:4222"}]}]}),
        );
        let out = apply(&p, &mutate(&p, &SidecarConfig::default()).unwrap().unwrap());
        assert_eq!(out["spec"]["containers"][1]["name"], SIDECAR_NAME);
        assert!(out["spec"]["containers"][1].get("restartPolicy").is_none());
        assert!(out["spec"].get("initContainers").is_none());
        // An explicit NATS_URL is kept.
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "NATS_URL", "value": "nats://elsewhere:4222"}])
        );
    }

    #[test]
    fn pods_without_opt_in_or_with_opt_out_are_left_alone() {
        let spec = json!({"containers": [{"name": "app", "image": "a"}]});
        for a in [
            json!(null),
            json!({}),
            json!({INJECT: "false"}),
            json!({INJECT: "true", INJECTED: "true"}),
        ] {
            assert_eq!(
                mutate(&pod(a.clone(), spec.clone()), &SidecarConfig::default()),
                Ok(None),
                "{a}"
            );
        }
    }

    fn labelled(labels: Value, annotations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"generateName": "app-", "labels": labels, "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "a"}]},
        }))
        .unwrap()
    }

    #[test]
    fn the_label_opts_in_and_a_pod_without_annotations_gets_the_marker() {
        for value in INJECT_VALUES {
            let p = labelled(json!({INJECT: value, "app": "orders"}), json!(null));
            assert!(p.metadata.annotations.is_none());
            let out = apply(&p, &mutate(&p, &SidecarConfig::default()).unwrap().unwrap());
            assert_eq!(out["metadata"]["annotations"], json!({INJECTED: "true"}));
            assert_eq!(out["spec"]["initContainers"][0]["name"], SIDECAR_NAME);
            let again: Pod = serde_json::from_value(out).unwrap();
            assert_eq!(
                mutate(&again, &SidecarConfig::default()),
                Ok(None),
                "{value}"
            );
        }
        // Label plus other annotations (the mode among them): the marker joins them.
        let p = labelled(json!({INJECT: "true"}), json!({MODE: "classic"}));
        let out = apply(&p, &mutate(&p, &SidecarConfig::default()).unwrap().unwrap());
        assert_eq!(
            out["metadata"]["annotations"],
            json!({MODE: "classic", INJECTED: "true"})
        );
        assert_eq!(out["spec"]["containers"][1]["name"], SIDECAR_NAME);
    }

    #[test]
    fn the_label_wins_over_the_annotation() {
        // (labels, annotations, injected?)
        let cases = [
            (json!({INJECT: "false"}), json!({INJECT: "true"}), false),
            (
                json!({INJECT: "disabled"}),
                json!({INJECT: "enabled"}),
                false,
            ),
            (json!({INJECT: "true"}), json!({INJECT: "false"}), true),
            (json!({"other": "x"}), json!({INJECT: "true"}), true),
            (json!({INJECT: "True"}), json!(null), false),
            (json!({INJECT: "true"}), json!({INJECTED: "true"}), false),
        ];
        for (labels, annotations, want) in cases {
            let p = labelled(labels.clone(), annotations.clone());
            assert_eq!(wants_injection(&p), want, "{labels} {annotations}");
            assert_eq!(
                mutate(&p, &SidecarConfig::default()).unwrap().is_some(),
                want,
                "{labels} {annotations}"
            );
        }
    }

    #[test]
    fn a_bad_mode_or_a_taken_name_is_refused() {
        let spec = json!({"containers": [{"name": "app", "image": "a"}]});
        assert!(matches!(
            mutate(
                &pod(json!({INJECT: "true", MODE: "sideways"}), spec),
                &SidecarConfig::default()
            ),
            Err(WebhookError::BadMode(_))
        ));
        let spec = json!({"containers": [{"name": SIDECAR_NAME, "image": "a"}]});
        assert_eq!(
            mutate(
                &pod(json!({INJECT: "true"}), spec),
                &SidecarConfig::default()
            ),
            Err(WebhookError::NameTaken)
        );
    }

    #[test]
    fn json_pointer_segments_are_escaped() {
        assert_eq!(escape(INJECTED), "nats-mini.io~1injected");
        assert_eq!(escape("a~b"), "a~0b");
    }

    #[test]
    fn malformed_bodies_get_400_and_never_panic() {
        for body in [
            &b"not json"[..],
            b"{}",
            b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
            b"[]",
        ] {
            let (status, out) = review(body, &SidecarConfig::default());
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(body)
            );
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["response"]["allowed"], false);
        }
    }
}
