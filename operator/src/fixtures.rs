//! Test fixtures for the controller, after kube-rs/controller-rs: an [`ApiServerVerifier`]
//! wraps tower-test's mock so each scenario states the exact requests a reconcile must send
//! (method, path, query, content type, body) and answers them as the apiserver would. A
//! missing request fails the verifier's timeout; an extra one leaves the reconcile waiting
//! for an answer that never comes, which fails the reconcile's timeout.

use crate::controller::{Context, Routez};
use crate::crd::{NatsMini, NatsMiniSpec};
use crate::metrics::Metrics;
use crate::render::RenderContext;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tower_test::mock::{Handle, SendResponse};

pub type ApiServerHandle = Handle<Request<Body>, Response<Body>>;

/// How long a scenario may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Answers `/routez` from a table of pod IP → route count (missing IP: unreachable).
pub struct FakeRoutez(pub BTreeMap<String, i32>);

impl Routez for FakeRoutez {
    fn num_routes<'a>(
        &'a self,
        pod_ip: &'a str,
        _port: i32,
    ) -> BoxFuture<'a, std::result::Result<i32, String>> {
        let r = self
            .0
            .get(pod_ip)
            .copied()
            .ok_or_else(|| format!("{pod_ip}: connection refused"));
        Box::pin(async move { r })
    }
}

/// A stored NatsMini `demo` in namespace `ns` (uid, generation 1, no status yet).
pub fn natsmini(replicas: i32) -> NatsMini {
    let mut nm = NatsMini::new(
        "demo",
        NatsMiniSpec {
            replicas,
            ..serde_json::from_str("{}").unwrap()
        },
    );
    nm.metadata.namespace = Some("ns".into());
    nm.metadata.uid = Some("uid-1".into());
    nm.metadata.generation = Some(1);
    nm.metadata.resource_version = Some("10".into());
    nm
}

/// A context on the mock, with `routez` as the `/routez` source.
pub fn context(routez: FakeRoutez) -> (Arc<Context>, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Context::new(
        client,
        Some("operator-0".into()),
        Metrics::new().unwrap(),
        RenderContext::default(),
        Arc::new(routez),
    );
    (Arc::new(ctx), ApiServerVerifier(handle))
}

/// One request as the verifier saw it.
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeSet<String>,
    pub content_type: String,
    pub body: Value,
}

pub struct ApiServerVerifier(pub ApiServerHandle);

fn reply(send: SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    let resp = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    send.send_response(resp);
}

impl ApiServerVerifier {
    /// The next request, with its responder.
    pub async fn next(&mut self) -> (Seen, SendResponse<Response<Body>>) {
        let (req, send) = self
            .0
            .next_request()
            .await
            .expect("the reconcile stopped before the expected request");
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        let query = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let content_type = parts
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query,
                content_type,
                body,
            },
            send,
        )
    }

    /// Expects a forced server-side apply by `nats-mini-operator` of the object at `path`,
    /// owned by the test NatsMini; answers with the object plus `status` when given.
    pub async fn expect_apply(&mut self, path: &str, status: Option<Value>) -> Value {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "PATCH", "{}", seen.path);
        assert_eq!(seen.path, path);
        assert_eq!(
            seen.query,
            BTreeSet::from([
                "fieldManager=nats-mini-operator".to_string(),
                "force=true".to_string()
            ]),
            "{path}"
        );
        assert_eq!(seen.content_type, "application/apply-patch+yaml", "{path}");
        let owner = &seen.body["metadata"]["ownerReferences"];
        assert_eq!(
            owner,
            &json!([{
                "apiVersion": "nats-mini.io/v1alpha1",
                "kind": "NatsMini",
                "name": "demo",
                "uid": "uid-1",
                "controller": true,
                "blockOwnerDeletion": true,
            }]),
            "{path}"
        );
        let mut stored = seen.body.clone();
        if let Some(s) = status {
            stored["status"] = s;
        }
        reply(send, StatusCode::OK, &stored);
        seen.body
    }

    /// Expects the five children applied in order, then (ServiceMonitor off, fresh
    /// context) the ServiceMonitor discovery, answered as by a cluster without the CRD.
    pub async fn expect_children(&mut self, sts_status: Value) -> Vec<Value> {
        let bodies = self.expect_builtin_children(sts_status).await;
        self.expect_discovery(false).await;
        bodies
    }

    /// Expects the five built-in children applied in order; the StatefulSet answers with
    /// `sts_status`.
    pub async fn expect_builtin_children(&mut self, sts_status: Value) -> Vec<Value> {
        let mut bodies = Vec::new();
        for (path, status) in [
            ("/api/v1/namespaces/ns/configmaps/demo-config", None),
            ("/api/v1/namespaces/ns/services/demo-headless", None),
            ("/api/v1/namespaces/ns/services/demo", None),
            (
                "/apis/apps/v1/namespaces/ns/statefulsets/demo",
                Some(sts_status.clone()),
            ),
            (
                "/apis/policy/v1/namespaces/ns/poddisruptionbudgets/demo",
                None,
            ),
        ] {
            bodies.push(self.expect_apply(path, status).await);
        }
        bodies
    }

    /// Expects the discovery of monitoring.coreos.com/v1; answers with a list holding
    /// `servicemonitors` when `served`, else as the apiserver answers an unknown group: 404
    /// with a plain-text body.
    pub async fn expect_discovery(&mut self, served: bool) {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.path, "/apis/monitoring.coreos.com/v1");
        if served {
            reply(
                send,
                StatusCode::OK,
                &json!({
                    "kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": "monitoring.coreos.com/v1",
                    "resources": [{
                        "name": "servicemonitors", "singularName": "servicemonitor",
                        "namespaced": true, "kind": "ServiceMonitor",
                        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
                    }],
                }),
            );
        } else {
            let resp = Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header("content-type", "text/plain; charset=utf-8")
                .body(Body::from(b"404 page not found\n".to_vec()))
                .unwrap();
            send.send_response(resp);
        }
    }

    /// Expects a GET of the ServiceMonitor `demo`; answers with `stored` or a 404.
    pub async fn expect_service_monitor_get(&mut self, stored: Option<Value>) {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.path, SERVICE_MONITOR_PATH);
        match stored {
            Some(obj) => reply(send, StatusCode::OK, &obj),
            None => not_found(
                send,
                "servicemonitors.monitoring.coreos.com \"demo\" not found",
            ),
        }
    }

    /// Expects the DELETE of the ServiceMonitor `demo`; returns its body (DeleteOptions).
    pub async fn expect_service_monitor_delete(&mut self) -> Value {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "DELETE");
        assert_eq!(seen.path, SERVICE_MONITOR_PATH);
        reply(
            send,
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
        );
        seen.body
    }

    /// Expects the pod list by the brokers' selector; answers with `pods`.
    pub async fn expect_pod_list(&mut self, pods: Vec<Value>) {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.path, "/api/v1/namespaces/ns/pods");
        assert!(
            seen.query.contains(
                "labelSelector=app.kubernetes.io%2Fcomponent%3Dbroker%2Capp.kubernetes.io%2Finstance%3Ddemo%2Capp.kubernetes.io%2Fname%3Dnats-mini"
            ),
            "{:?}",
            seen.query
        );
        reply(
            send,
            StatusCode::OK,
            &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}),
        );
    }

    /// Expects a merge patch of the NatsMini's status; returns the status sent.
    pub async fn expect_status_patch(&mut self) -> Value {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "PATCH");
        assert_eq!(
            seen.path,
            "/apis/nats-mini.io/v1alpha1/namespaces/ns/natsminis/demo/status"
        );
        assert_eq!(seen.content_type, "application/merge-patch+json");
        let mut stored = serde_json::to_value(natsmini(3)).unwrap();
        stored["status"] = seen.body["status"].clone();
        reply(send, StatusCode::OK, &stored);
        seen.body["status"].clone()
    }

    /// Expects a new Event about the NatsMini; returns it.
    pub async fn expect_event(&mut self) -> Value {
        self.expect_event_request("POST", "/apis/events.k8s.io/v1/namespaces/ns/events")
            .await
    }

    /// Expects the repeat of an Event: kube's Recorder patches the first one into a series.
    pub async fn expect_event_repeat(&mut self) -> Value {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "PATCH");
        assert!(
            seen.path
                .starts_with("/apis/events.k8s.io/v1/namespaces/ns/events/demo."),
            "{}",
            seen.path
        );
        assert_eq!(seen.content_type, "application/merge-patch+json");
        reply(send, StatusCode::OK, &seen.body);
        seen.body
    }

    async fn expect_event_request(&mut self, method: &str, path: &str) -> Value {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, method);
        assert_eq!(seen.path, path);
        assert_eq!(seen.body["regarding"]["kind"], "NatsMini");
        assert_eq!(seen.body["regarding"]["name"], "demo");
        assert_eq!(seen.body["reportingController"], "nats-mini-operator");
        assert_eq!(seen.body["reportingInstance"], "operator-0");
        reply(send, StatusCode::CREATED, &seen.body);
        seen.body
    }

    /// Answers the next request with an apiserver error.
    pub async fn fail_next(&mut self, code: u16, message: &str) -> Seen {
        let (seen, send) = self.next().await;
        let status = StatusCode::from_u16(code).unwrap();
        reply(
            send,
            status,
            &json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": message,
                "reason": status.canonical_reason().unwrap_or("Error"), "code": code,
            }),
        );
        seen
    }
}

/// Where the ServiceMonitor `demo` lives.
pub const SERVICE_MONITOR_PATH: &str =
    "/apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors/demo";

fn not_found(send: SendResponse<Response<Body>>, message: &str) {
    reply(
        send,
        StatusCode::NOT_FOUND,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": "NotFound", "code": 404,
        }),
    );
}

/// A ready pod `demo-i` with IP `10.0.0.i`.
pub fn ready_pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("demo-{i}"), "namespace": "ns"},
        "status": {
            "podIP": format!("10.0.0.{i}"),
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}
