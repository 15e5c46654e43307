//! The reconciler: a NatsMini in, its children applied and its status written out.
//!
//! One reconcile, in this order (the tower-test scenarios in this module pin it):
//!
//! 1. [`render`] every child; an invalid spec or name stops here (nothing is applied).
//! 2. Server-side apply of each child (field manager [`MANAGER`], forced, so the operator
//!    wins conflicts on the fields it renders and leaves everyone else's alone), each with
//!    the NatsMini's controller owner reference: deleting the NatsMini garbage-collects them
//!    and no finalizer is needed. The ServiceMonitor is applied only when API discovery
//!    (`GET /apis/monitoring.coreos.com/v1`, allowed to every authenticated user by the
//!    built-in `system:discovery` role, so no RBAC rule is needed; the answer is cached for
//!    [`DISCOVERY_TTL`]) says the cluster serves `servicemonitors`; otherwise it is skipped
//!    and the `ServiceMonitor` condition says why (a Warning Event too, once). When
//!    `monitoring.serviceMonitor` is off, a ServiceMonitor this NatsMini owns is deleted
//!    (looked up once per operator process and object, and again after each apply).
//! 3. Status: `replicas`/`readyReplicas` from the applied StatefulSet, the ready pods'
//!    `/routez` route counts (fetched through [`Routez`], injectable for tests), and the
//!    Ready/Progressing/Degraded conditions. Ready is only True when every broker is ready
//!    and each one sees `replicas-1` routes: the mesh is verified, not assumed. The status is
//!    merge-patched only when it changed, so the status write does not retrigger reconciles
//!    forever.
//! 4. A Normal `Applied` Event when a generation is applied for the first time.
//!
//! On failure the reconcile sets `Degraded=True` (reason [`Error::reason`]), publishes a
//! Warning Event, and returns the error; [`error_policy`] then counts it in the metrics and
//! requeues with exponential backoff per object ([`BACKOFF_BASE`] doubling up to
//! [`BACKOFF_MAX`]), reset by the next success. Nothing in here panics on bad input.

use crate::crd::{NatsMini, NatsMiniStatus, PodRoutes, condition};
use crate::metrics::Metrics;
use crate::render::{self, MANAGER, Names, RenderContext, render, selector_string};
use crate::{Error, Result};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// First retry after a failed reconcile.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest wait between retries of a failing reconcile.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Requeue while the cluster is not Ready yet (pods starting, mesh forming): `/routez` is
/// polled, not watched.
pub const REQUEUE_NOT_READY: Duration = Duration::from_secs(10);
/// Requeue of a Ready cluster, to notice a broken mesh that no watch event reports.
pub const REQUEUE_READY: Duration = Duration::from_secs(300);
/// Longest time one `/routez` fetch may take.
pub const ROUTEZ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the answer of the ServiceMonitor API discovery is trusted: at most one discovery
/// request per this period, whatever the number of NatsMinis and reconciles.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(60);
/// The group/version ServiceMonitors are served under.
const MONITORING_API: &str = "monitoring.coreos.com/v1";
/// Longest condition message (the apiserver allows 32 KiB; keep statuses readable).
const MAX_MESSAGE: usize = 1024;

/// Reads how many routes a broker has. The controller uses [`HttpRoutez`]; tests inject
/// their own.
pub trait Routez: Send + Sync {
    /// `num_routes` of the broker's `/routez` at `http://IP:PORT/routez`.
    fn num_routes<'a>(
        &'a self,
        pod_ip: &'a str,
        port: i32,
    ) -> BoxFuture<'a, std::result::Result<i32, String>>;
}

/// Fetches `/routez` over plain HTTP/1.1 with [`ROUTEZ_TIMEOUT`].
pub struct HttpRoutez;

impl Routez for HttpRoutez {
    fn num_routes<'a>(
        &'a self,
        pod_ip: &'a str,
        port: i32,
    ) -> BoxFuture<'a, std::result::Result<i32, String>> {
        Box::pin(async move {
            match tokio::time::timeout(ROUTEZ_TIMEOUT, fetch_routez(pod_ip, port)).await {
                Ok(r) => r,
                Err(_) => Err(format!("timed out after {ROUTEZ_TIMEOUT:?}")),
            }
        })
    }
}

async fn fetch_routez(ip: &str, port: i32) -> std::result::Result<i32, String> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let host = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    let stream = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(|e| format!("connect {host}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("{host}: {e}"))?;
    tokio::spawn(conn);
    let req = http::Request::get("/routez")
        .header(http::header::HOST, host.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{host}/routez: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{host}/routez: HTTP {}", resp.status()));
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{host}/routez: {e}"))?
        .to_bytes();
    parse_num_routes(&body).map_err(|e| format!("{host}/routez: {e}"))
}

/// `num_routes` of a `/routez` document (nats-server's field).
pub fn parse_num_routes(body: &[u8]) -> std::result::Result<i32, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    v.get("num_routes")
        .and_then(serde_json::Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| "no num_routes".to_string())
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub render: RenderContext,
    pub routez: Arc<dyn Routez>,
    /// Consecutive failures per `namespace/name`, for the backoff. A std mutex: never held
    /// across an await.
    failures: Mutex<HashMap<String, u32>>,
    /// The last ServiceMonitor discovery: when, and whether the kind was served.
    service_monitor_discovery: Mutex<Option<(Instant, bool)>>,
    /// NatsMinis (`namespace/name`) known to own no ServiceMonitor: nothing to delete while
    /// `monitoring.serviceMonitor` stays off.
    without_service_monitor: Mutex<HashSet<String>>,
}

impl Context {
    /// A context whose Events name `instance` (the pod name) as the reporting instance.
    pub fn new(
        client: Client,
        instance: Option<String>,
        metrics: Metrics,
        render: RenderContext,
        routez: Arc<dyn Routez>,
    ) -> Context {
        let reporter = Reporter {
            controller: MANAGER.to_string(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            render,
            routez,
            failures: Mutex::new(HashMap::new()),
            service_monitor_discovery: Mutex::new(None),
            without_service_monitor: Mutex::new(HashSet::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        lock(&self.failures)
    }

    /// Whether the cluster serves monitoring.coreos.com/v1 ServiceMonitors, from API
    /// discovery at most once per [`DISCOVERY_TTL`]. A 404 means no; other errors are not
    /// cached and fail the reconcile.
    async fn service_monitors_served(&self) -> Result<bool> {
        if let Some((at, served)) = *lock(&self.service_monitor_discovery)
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(served);
        }
        // Read as plain JSON: only the resource names matter, and a lenient read does not
        // fail on an aggregated apiserver's sloppy APIResourceList.
        let failed = |source| Error::Kube {
            what: "discovering whether ServiceMonitors are served",
            source,
        };
        let request = http::Request::get(format!("/apis/{MONITORING_API}"))
            .body(Vec::new())
            .map_err(|e| failed(kube::Error::HttpError(e)))?;
        let plural = render::service_monitor::api_resource().plural;
        let served = match self.client.request::<serde_json::Value>(request).await {
            Ok(list) => list["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["name"] == plural.as_str()),
            // A group the apiserver does not serve: 404 with a plain-text body, which kube turns
            // into a Status with only the code set.
            Err(kube::Error::Api(s)) if s.code == 404 => false,
            Err(source) => return Err(failed(source)),
        };
        *lock(&self.service_monitor_discovery) = Some((Instant::now(), served));
        Ok(served)
    }
}

/// A std mutex's guard; a poisoned one only loses cached counts or answers: keep going.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the reconcile did about the ServiceMonitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceMonitorOutcome {
    /// `monitoring.serviceMonitor` is off (an owned one was deleted if there was one).
    Disabled,
    /// Applied.
    Applied,
    /// Wanted, but the cluster does not serve the kind: skipped.
    CrdNotInstalled,
}

fn key(nm: &NatsMini) -> String {
    format!("{}/{}", nm.namespace().unwrap_or_default(), nm.name_any())
}

/// The delay before retry number `failures` (1 for the first failure).
pub fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1u32 << shift).min(BACKOFF_MAX)
}

/// Reconciles one NatsMini; see the module docs for the steps.
pub async fn reconcile(nm: Arc<NatsMini>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    match apply(&nm, &ctx).await {
        Ok(action) => {
            ctx.failures().remove(&key(&nm));
            Ok(action)
        }
        Err(e) => {
            report_failure(&nm, &ctx, &e).await;
            Err(e)
        }
    }
}

/// Counts the failure and requeues with exponential backoff.
pub fn error_policy(nm: Arc<NatsMini>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error);
    let n = {
        let mut f = ctx.failures();
        let n = f.entry(key(&nm)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(n);
    tracing::warn!(
        natsmini = %key(&nm),
        error = %error,
        failures = n,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn apply(nm: &NatsMini, ctx: &Context) -> Result<Action> {
    let namespace = nm.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let mut rendered = render(nm, &ctx.render)?;
    let names = Names::new(nm, &ctx.render)?;
    let mut owner = nm
        .controller_owner_ref(&())
        .ok_or(Error::MissingMetadata("uid"))?;
    owner.block_owner_deletion = Some(true);
    rendered.set_owner_reference(owner);

    let client = &ctx.client;
    let ns = namespace.as_str();
    apply_child(client, ns, &rendered.config_map, "ConfigMap").await?;
    apply_child(client, ns, &rendered.headless_service, "Service").await?;
    apply_child(client, ns, &rendered.client_service, "Service").await?;
    let sts = apply_child(client, ns, &rendered.stateful_set, "StatefulSet").await?;
    apply_child(client, ns, &rendered.pdb, "PodDisruptionBudget").await?;
    let monitor = sync_service_monitor(nm, ctx, ns, rendered.service_monitor.as_ref()).await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pods = pods
        .list(&ListParams::default().labels(&selector_string(&names)))
        .await
        .map_err(|source| Error::Kube {
            what: "listing the brokers' pods",
            source,
        })?;
    let observed = observe(nm, &sts, &pods.items, ctx.routez.as_ref()).await;
    let old = nm.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let mut status = status_from(nm, &names, &observed, &old, now);
    set_service_monitor_condition(&mut status.conditions, monitor, nm.metadata.generation, now);
    let ready = is_true(&status.conditions, condition::READY);
    if status != old {
        patch_status(nm, ctx, &status).await?;
    }
    let skipped = |s: &NatsMiniStatus| {
        s.conditions
            .iter()
            .any(|c| c.type_ == condition::SERVICE_MONITOR && c.reason == "CRDNotInstalled")
    };
    if skipped(&status) && !skipped(&old) {
        let event = Event {
            type_: EventType::Warning,
            reason: "ServiceMonitorSkipped".into(),
            note: Some(SKIPPED_MESSAGE.into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        publish(ctx, nm, &event).await;
    }
    let generation = nm.metadata.generation;
    if generation.is_some() && old.observed_generation != generation {
        let event = Event {
            type_: EventType::Normal,
            reason: "Applied".into(),
            note: Some(format!(
                "applied generation {}: {} broker(s)",
                generation.unwrap_or_default(),
                nm.spec.replicas
            )),
            action: "Reconcile".into(),
            secondary: None,
        };
        publish(ctx, nm, &event).await;
    }
    Ok(Action::requeue(if ready {
        REQUEUE_READY
    } else {
        REQUEUE_NOT_READY
    }))
}

const SKIPPED_MESSAGE: &str = "monitoring.serviceMonitor is enabled but the cluster does not serve monitoring.coreos.com/v1 ServiceMonitors (is the prometheus-operator CRD installed?): skipped";

/// Applies the rendered ServiceMonitor when the kind is served; without one, deletes the
/// ServiceMonitor this NatsMini owns, if any.
async fn sync_service_monitor(
    nm: &NatsMini,
    ctx: &Context,
    ns: &str,
    rendered: Option<&DynamicObject>,
) -> Result<ServiceMonitorOutcome> {
    let key = key(nm);
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        ns,
        &render::service_monitor::api_resource(),
    );
    match rendered {
        Some(sm) => {
            if !ctx.service_monitors_served().await? {
                tracing::info!(natsmini = %key, "{SKIPPED_MESSAGE}");
                return Ok(ServiceMonitorOutcome::CrdNotInstalled);
            }
            lock(&ctx.without_service_monitor).remove(&key);
            apply_one(&api, sm, "ServiceMonitor").await?;
            Ok(ServiceMonitorOutcome::Applied)
        }
        None => {
            if lock(&ctx.without_service_monitor).contains(&key) {
                return Ok(ServiceMonitorOutcome::Disabled);
            }
            if ctx.service_monitors_served().await? {
                delete_owned(&api, &Names::new(nm, &ctx.render)?.base, nm).await?;
            }
            lock(&ctx.without_service_monitor).insert(key);
            Ok(ServiceMonitorOutcome::Disabled)
        }
    }
}

/// Deletes `name` if `owner` owns it (a 404 at either step is fine); a ServiceMonitor of the
/// same name that someone else made is left alone. The delete is conditional on the uid
/// read, so an object replaced in between survives.
async fn delete_owned(api: &Api<DynamicObject>, name: &str, owner: &NatsMini) -> Result<()> {
    let kube_err = |source| Error::Kube {
        what: "deleting the ServiceMonitor",
        source,
    };
    let found = match api.get(name).await {
        Ok(found) => found,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(source) => return Err(kube_err(source)),
    };
    let owned = found
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == owner.metadata.uid.as_ref());
    if !owned {
        tracing::info!(natsmini = %key(owner), servicemonitor = name, "not ours: left alone");
        return Ok(());
    }
    let params = kube::api::DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: found.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {
            tracing::info!(natsmini = %key(owner), servicemonitor = name, "deleted the ServiceMonitor");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(kube_err(source)),
    }
}

/// The `ServiceMonitor` condition for `outcome`: present only while one is wanted.
pub fn set_service_monitor_condition(
    conditions: &mut Vec<Condition>,
    outcome: ServiceMonitorOutcome,
    generation: Option<i64>,
    now: Timestamp,
) {
    let (status, reason, message) = match outcome {
        ServiceMonitorOutcome::Disabled => {
            conditions.retain(|c| c.type_ != condition::SERVICE_MONITOR);
            return;
        }
        ServiceMonitorOutcome::Applied => (true, "Applied", "ServiceMonitor applied"),
        ServiceMonitorOutcome::CrdNotInstalled => (false, "CRDNotInstalled", SKIPPED_MESSAGE),
    };
    set_condition(
        conditions,
        condition::SERVICE_MONITOR,
        status,
        reason,
        message,
        generation,
        now,
    );
}

/// [`apply_one`] for a built-in namespaced kind.
async fn apply_child<K>(client: &Client, ns: &str, obj: &K, kind: &'static str) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    apply_one(&Api::namespaced(client.clone(), ns), obj, kind).await
}

/// Server-side applies `obj` (forced, field manager [`MANAGER`]) and returns what the
/// apiserver stored.
async fn apply_one<K>(api: &Api<K>, obj: &K, kind: &'static str) -> Result<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(|source| Error::Apply { kind, name, source })
}

async fn patch_status(nm: &NatsMini, ctx: &Context, status: &NatsMiniStatus) -> Result<()> {
    let namespace = nm.namespace().unwrap_or_default();
    let api: Api<NatsMini> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch_status(
        &nm.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Kube {
        what: "writing the NatsMini status",
        source,
    })
}

async fn publish(ctx: &Context, nm: &NatsMini, event: &Event) {
    if let Err(e) = ctx.recorder.publish(event, &nm.object_ref(&())).await {
        tracing::warn!(natsmini = %key(nm), error = %e, "cannot publish an Event");
    }
}

/// After a failed reconcile: `Degraded=True` with the error, and a Warning Event. Failures
/// here are logged only: the original error is what counts.
async fn report_failure(nm: &NatsMini, ctx: &Context, error: &Error) {
    let old = nm.status.clone().unwrap_or_default();
    let mut status = old.clone();
    set_condition(
        &mut status.conditions,
        condition::DEGRADED,
        true,
        error.reason(),
        &error.to_string(),
        nm.metadata.generation,
        Timestamp::now(),
    );
    if status != old
        && let Err(e) = patch_status(nm, ctx, &status).await
    {
        tracing::warn!(natsmini = %key(nm), error = %e, "cannot write the Degraded condition");
    }
    let event = Event {
        type_: EventType::Warning,
        reason: error.reason().into(),
        note: Some(truncate(&error.to_string())),
        action: "Reconcile".into(),
        secondary: None,
    };
    publish(ctx, nm, &event).await;
}

/// What the cluster looks like right now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// `status.replicas` of the StatefulSet.
    pub replicas: i32,
    /// `status.readyReplicas` of the StatefulSet.
    pub ready_replicas: i32,
    /// Each ready pod's route count, or why it could not be read; sorted by pod name.
    pub routes: Vec<(String, std::result::Result<i32, String>)>,
}

fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn observe(nm: &NatsMini, sts: &StatefulSet, pods: &[Pod], routez: &dyn Routez) -> Observed {
    let st = sts.status.clone().unwrap_or_default();
    let port = nm.spec.monitoring.port;
    let mut ready: Vec<(String, String)> = pods
        .iter()
        .filter(|p| pod_is_ready(p) && p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            Some((p.name_any(), ip))
        })
        .collect();
    ready.sort();
    let routes = futures::future::join_all(
        ready
            .iter()
            .map(|(name, ip)| async move { (name.clone(), routez.num_routes(ip, port).await) }),
    )
    .await;
    Observed {
        replicas: st.replicas,
        ready_replicas: st.ready_replicas.unwrap_or(0),
        routes,
    }
}

/// The status for `observed`, keeping each condition's lastTransitionTime from `old` while
/// its status does not change. Pure, so the rules are unit-tested.
pub fn status_from(
    nm: &NatsMini,
    names: &Names,
    observed: &Observed,
    old: &NatsMiniStatus,
    now: Timestamp,
) -> NatsMiniStatus {
    let want = nm.spec.replicas;
    let generation = nm.metadata.generation;
    let peers = want - 1;
    let mut problems = Vec::new();
    if observed.ready_replicas < want || (observed.routes.len() as i32) < want {
        problems.push((
            "PodsNotReady",
            format!(
                "{} of {want} broker(s) ready",
                observed.ready_replicas.min(observed.routes.len() as i32)
            ),
        ));
    }
    if observed.replicas > want {
        problems.push((
            "ScalingDown",
            format!("{} broker(s) running, {want} wanted", observed.replicas),
        ));
    }
    for (pod, r) in &observed.routes {
        match r {
            Ok(n) if *n == peers => {}
            Ok(n) => problems.push((
                "MeshIncomplete",
                format!("{pod} has {n} route(s), wants {peers}"),
            )),
            Err(e) => problems.push(("RoutezUnavailable", format!("{pod}: {e}"))),
        }
    }
    let ready = problems.is_empty();
    let mut conditions = old.conditions.clone();
    let (reason, message) = if ready {
        if want == 0 {
            ("ScaledToZero", "no brokers wanted".to_string())
        } else {
            (
                "Meshed",
                format!("{want} broker(s) ready, each with {peers} route(s)"),
            )
        }
    } else {
        let reason = problems[problems.len() - 1].0;
        let message = problems
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        (reason, message)
    };
    set_condition(
        &mut conditions,
        condition::READY,
        ready,
        reason,
        &message,
        generation,
        now,
    );
    let (p_reason, p_message) = if ready {
        ("Stable", "nothing left to do".to_string())
    } else {
        ("Reconciling", message.clone())
    };
    set_condition(
        &mut conditions,
        condition::PROGRESSING,
        !ready,
        p_reason,
        &p_message,
        generation,
        now,
    );
    set_condition(
        &mut conditions,
        condition::DEGRADED,
        false,
        "Reconciled",
        "every object applied",
        generation,
        now,
    );
    NatsMiniStatus {
        observed_generation: generation,
        replicas: observed.replicas,
        ready_replicas: observed.ready_replicas,
        selector: Some(selector_string(names)),
        client_url: Some(names.client_url(nm.spec.tls.is_some())),
        routes: observed
            .routes
            .iter()
            .map(|(pod, r)| PodRoutes {
                pod: pod.clone(),
                routes: r.as_ref().copied().unwrap_or(0),
            })
            .collect(),
        conditions,
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Sets condition `type_`, keeping its lastTransitionTime when the status is unchanged.
fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let message = truncate(message);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(now);
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message,
            observed_generation: generation,
            last_transition_time: Time(now),
        }),
    }
}

/// Runs the controller over every namespace until `shutdown` resolves, then lets running
/// reconciles finish.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let owned = watcher::Config::default()
        .labels(&format!("app.kubernetes.io/managed-by={MANAGER}"))
        .any_semantic();
    Controller::new(
        Api::<NatsMini>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
    .owns(Api::<Service>::all(client.clone()), owned.clone())
    .owns(Api::<ConfigMap>::all(client.clone()), owned.clone())
    .owns(Api::<PodDisruptionBudget>::all(client), owned)
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        match result {
            Ok((obj, _)) => tracing::debug!(natsmini = %obj, "reconciled"),
            Err(e) => tracing::debug!(error = %e, "reconcile loop"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::natsmini as nm;

    fn status(nm: &NatsMini, o: &Observed, old: &NatsMiniStatus, now: Timestamp) -> NatsMiniStatus {
        let names = Names::new(nm, &RenderContext::default()).unwrap();
        status_from(nm, &names, o, old, now)
    }

    fn cond<'a>(s: &'a NatsMiniStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn observed(routes: &[i32]) -> Observed {
        Observed {
            replicas: routes.len() as i32,
            ready_replicas: routes.len() as i32,
            routes: routes
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("demo-{i}"), Ok(*n)))
                .collect(),
        }
    }

    #[test]
    fn ready_only_when_every_broker_sees_every_other() {
        let n = nm(3);
        let now = Timestamp::now();
        let s = status(&n, &observed(&[2, 2, 2]), &NatsMiniStatus::default(), now);
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "Ready").reason, "Meshed");
        assert_eq!(cond(&s, "Progressing").status, "False");
        assert_eq!(cond(&s, "Degraded").status, "False");
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.ready_replicas, 3);
        assert_eq!(
            s.routes[1],
            PodRoutes {
                pod: "demo-1".into(),
                routes: 2
            }
        );
        assert_eq!(
            s.client_url.as_deref(),
            Some("nats://demo.ns.svc.cluster.local:4222")
        );

        let s = status(&n, &observed(&[2, 1, 2]), &NatsMiniStatus::default(), now);
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Ready").reason, "MeshIncomplete");
        assert!(
            cond(&s, "Ready")
                .message
                .contains("demo-1 has 1 route(s), wants 2")
        );
        assert_eq!(cond(&s, "Progressing").status, "True");
    }

    #[test]
    fn not_ready_while_pods_are_missing_or_routez_fails() {
        let n = nm(3);
        let now = Timestamp::now();
        let s = status(&n, &observed(&[1, 1]), &NatsMiniStatus::default(), now);
        assert_eq!(cond(&s, "Ready").status, "False");
        assert!(cond(&s, "Ready").message.contains("2 of 3 broker(s) ready"));

        let mut o = observed(&[2, 2, 2]);
        o.routes[2].1 = Err("connection refused".into());
        let s = status(&n, &o, &NatsMiniStatus::default(), now);
        assert_eq!(cond(&s, "Ready").reason, "RoutezUnavailable");
        assert_eq!(s.routes[2].routes, 0);
    }

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let n = nm(1);
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let s0 = status(&n, &observed(&[]), &NatsMiniStatus::default(), t0);
        assert_eq!(cond(&s0, "Ready").status, "False");
        // Same observation later: nothing changes, so no status patch is needed.
        let s1 = status(&n, &observed(&[]), &s0, t1);
        assert_eq!(s0, s1);
        // The broker comes up: Ready flips and only the flipped conditions get t1.
        let s2 = status(&n, &observed(&[0]), &s1, t1);
        assert_eq!(cond(&s2, "Ready").last_transition_time, Time(t1));
        assert_eq!(cond(&s2, "Degraded").last_transition_time, Time(t0));
    }

    #[test]
    fn scaled_to_zero_is_ready() {
        let s = status(
            &nm(0),
            &observed(&[]),
            &NatsMiniStatus::default(),
            Timestamp::now(),
        );
        assert_eq!(cond(&s, "Ready").reason, "ScaledToZero");
        assert_eq!(cond(&s, "Ready").status, "True");
    }

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn routez_documents_are_read_by_num_routes() {
        assert_eq!(parse_num_routes(br#"{"num_routes":2,"routes":[]}"#), Ok(2));
        assert!(parse_num_routes(b"{}").is_err());
        assert!(parse_num_routes(b"not json").is_err());
    }
}

/// The exact request sequences, against tower-test's mock apiserver.
#[cfg(test)]
mod scenarios {
    use super::*;
    use crate::fixtures::{
        ApiServerVerifier, FakeRoutez, SERVICE_MONITOR_PATH, TIMEOUT, context, natsmini, ready_pod,
    };
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
    }

    fn meshed_routez() -> FakeRoutez {
        FakeRoutez(BTreeMap::from([
            ("10.0.0.0".to_string(), 2),
            ("10.0.0.1".to_string(), 2),
            ("10.0.0.2".to_string(), 2),
        ]))
    }

    #[tokio::test]
    async fn create_applies_each_child_then_writes_status_then_records_an_event() {
        let (ctx, mut api) = context(meshed_routez());
        let nm = Arc::new(natsmini(3));
        let server = tokio::spawn(async move {
            let bodies = api
                .expect_children(json!({"replicas": 3, "readyReplicas": 3}))
                .await;
            assert_eq!(bodies[0]["kind"], "ConfigMap");
            assert!(
                bodies[0]["data"]["nats-mini.conf"]
                    .as_str()
                    .unwrap()
                    .contains("demo-2.demo-headless.ns.svc.cluster.local")
            );
            assert_eq!(bodies[3]["kind"], "StatefulSet");
            assert_eq!(bodies[3]["spec"]["replicas"], 3);
            api.expect_pod_list((0..3).map(ready_pod).collect()).await;
            let status = api.expect_status_patch().await;
            assert_eq!(status["observedGeneration"], 1);
            assert_eq!(status["replicas"], 3);
            assert_eq!(status["readyReplicas"], 3);
            assert_eq!(
                status["selector"],
                "app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo,app.kubernetes.io/name=nats-mini"
            );
            assert_eq!(status["clientURL"], "nats://demo.ns.svc.cluster.local:4222");
            assert_eq!(status["routes"][2], json!({"pod": "demo-2", "routes": 2}));
            assert_eq!(condition(&status, "Ready")["status"], "True");
            assert_eq!(condition(&status, "Ready")["reason"], "Meshed");
            assert_eq!(condition(&status, "Progressing")["status"], "False");
            assert_eq!(condition(&status, "Degraded")["status"], "False");
            let event = api.expect_event().await;
            assert_eq!(event["type"], "Normal");
            assert_eq!(event["reason"], "Applied");
            assert_eq!(event["note"], "applied generation 1: 3 broker(s)");
            assert_eq!(event["regarding"]["uid"], "uid-1");
            status
        });
        let action = tokio::time::timeout(TIMEOUT, reconcile(nm.clone(), ctx.clone()))
            .await
            .expect("reconcile finished")
            .expect("reconcile succeeded");
        assert_eq!(action, Action::requeue(REQUEUE_READY));
        let status = tokio::time::timeout(TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();

        // The same object again, now with that status: children are re-applied (SSA is
        // idempotent), but an unchanged status is not written and no new Event is sent.
        let mut again = natsmini(3);
        again.status = Some(serde_json::from_value(status).unwrap());
        let (ctx, mut api) = context(meshed_routez());
        let server = tokio::spawn(async move {
            api.expect_children(json!({"replicas": 3, "readyReplicas": 3}))
                .await;
            api.expect_pod_list((0..3).map(ready_pod).collect()).await;
        });
        let action = tokio::time::timeout(TIMEOUT, reconcile(Arc::new(again), ctx))
            .await
            .expect("no request beyond the children and the pod list")
            .unwrap();
        assert_eq!(action, Action::requeue(REQUEUE_READY));
        tokio::time::timeout(TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();
    }

    fn with_service_monitor(mut nm: NatsMini) -> NatsMini {
        nm.spec.monitoring.service_monitor.enabled = true;
        nm
    }

    /// The five built-in children of a 3-broker cluster whose StatefulSet is all ready.
    async fn three_children(api: &mut ApiServerVerifier) {
        api.expect_builtin_children(json!({"replicas": 3, "readyReplicas": 3}))
            .await;
    }

    async fn three_pods(api: &mut ApiServerVerifier) {
        api.expect_pod_list((0..3).map(ready_pod).collect()).await;
    }

    async fn finish<T>(server: tokio::task::JoinHandle<T>) -> T {
        tokio::time::timeout(TIMEOUT, server)
            .await
            .expect("the verifier finished")
            .expect("the verifier's assertions held")
    }

    async fn reconciled(nm: NatsMini, ctx: &Arc<Context>) -> Action {
        tokio::time::timeout(TIMEOUT, reconcile(Arc::new(nm), ctx.clone()))
            .await
            .expect("no request beyond the expected ones")
            .expect("reconcile succeeded")
    }

    #[tokio::test]
    async fn a_service_monitor_without_its_crd_is_skipped_with_a_condition_and_one_warning() {
        let (ctx, mut api) = context(meshed_routez());
        let server = tokio::spawn(async move {
            three_children(&mut api).await;
            api.expect_discovery(false).await;
            // No ServiceMonitor request: straight on to the status.
            three_pods(&mut api).await;
            let status = api.expect_status_patch().await;
            let sm = condition(&status, "ServiceMonitor");
            assert_eq!(sm["status"], "False");
            assert_eq!(sm["reason"], "CRDNotInstalled");
            assert!(
                sm["message"]
                    .as_str()
                    .unwrap()
                    .contains("does not serve monitoring.coreos.com/v1 ServiceMonitors"),
                "{sm}"
            );
            assert_eq!(condition(&status, "Degraded")["status"], "False");
            assert_eq!(condition(&status, "Ready")["status"], "True");
            let skipped = api.expect_event().await;
            assert_eq!(skipped["type"], "Warning");
            assert_eq!(skipped["reason"], "ServiceMonitorSkipped");
            assert_eq!(api.expect_event().await["reason"], "Applied");
            (api, status)
        });
        let action = reconciled(with_service_monitor(natsmini(3)), &ctx).await;
        assert_eq!(action, Action::requeue(REQUEUE_READY));
        let (mut api, status) = finish(server).await;

        // Again within DISCOVERY_TTL: the cached answer, no discovery, no new status or Event.
        let mut again = with_service_monitor(natsmini(3));
        again.status = Some(serde_json::from_value(status).unwrap());
        let server = tokio::spawn(async move {
            three_children(&mut api).await;
            three_pods(&mut api).await;
            api
        });
        reconciled(again.clone(), &ctx).await;
        let mut api = finish(server).await;

        // Once the answer is older than DISCOVERY_TTL it is asked again; now the CRD is
        // there, so the ServiceMonitor is applied and the condition turns True.
        *lock(&ctx.service_monitor_discovery) = Some((
            Instant::now() - DISCOVERY_TTL - Duration::from_secs(1),
            false,
        ));
        let server = tokio::spawn(async move {
            three_children(&mut api).await;
            api.expect_discovery(true).await;
            let sm = api.expect_apply(SERVICE_MONITOR_PATH, None).await;
            assert_eq!(sm["kind"], "ServiceMonitor");
            three_pods(&mut api).await;
            let status = api.expect_status_patch().await;
            let sm = condition(&status, "ServiceMonitor");
            assert_eq!(sm["status"], "True");
            assert_eq!(sm["reason"], "Applied");
        });
        reconciled(again, &ctx).await;
        finish(server).await;
    }

    #[tokio::test]
    async fn turning_the_service_monitor_off_deletes_the_owned_one_once() {
        let (ctx, mut api) = context(meshed_routez());
        let server = tokio::spawn(async move {
            three_children(&mut api).await;
            api.expect_discovery(true).await;
            let sm = api.expect_apply(SERVICE_MONITOR_PATH, None).await;
            assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
            assert_eq!(sm["spec"]["endpoints"][0]["port"], "monitor");
            three_pods(&mut api).await;
            let status = api.expect_status_patch().await;
            assert_eq!(condition(&status, "ServiceMonitor")["reason"], "Applied");
            assert_eq!(api.expect_event().await["reason"], "Applied");
            (api, sm, status)
        });
        reconciled(with_service_monitor(natsmini(3)), &ctx).await;
        let (mut api, mut stored_sm, status) = finish(server).await;

        // Generation 2 turns it off: the ServiceMonitor it owns is read, then deleted on
        // the condition that it is still the object read (its uid).
        stored_sm["metadata"]["uid"] = json!("sm-uid");
        let mut off = natsmini(3);
        off.metadata.generation = Some(2);
        off.status = Some(serde_json::from_value(status).unwrap());
        let server = tokio::spawn(async move {
            three_children(&mut api).await;
            api.expect_service_monitor_get(Some(stored_sm)).await;
            let options = api.expect_service_monitor_delete().await;
            assert_eq!(options["preconditions"]["uid"], "sm-uid", "{options}");
            three_pods(&mut api).await;
            let status = api.expect_status_patch().await;
            assert!(
                status["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["type"] != "ServiceMonitor"),
                "{status}"
            );
            // The Recorder turns the second `Applied` into a series.
            assert_eq!(api.expect_event_repeat().await["reason"], "Applied");
            (api, status)
        });
        reconciled(off.clone(), &ctx).await;
        let (mut api, status) = finish(server).await;

        // Known to be gone: the next reconciles do not look for it again.
        off.status = Some(serde_json::from_value(status).unwrap());
        let server = tokio::spawn(async move {
            three_children(&mut api).await;
            three_pods(&mut api).await;
        });
        reconciled(off, &ctx).await;
        finish(server).await;
    }

    #[tokio::test]
    async fn a_service_monitor_someone_else_owns_is_left_alone() {
        let (ctx, mut api) = context(meshed_routez());
        let server = tokio::spawn(async move {
            three_children(&mut api).await;
            api.expect_discovery(true).await;
            api.expect_service_monitor_get(Some(json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                "metadata": {"name": "demo", "namespace": "ns", "uid": "theirs"},
            })))
            .await;
            // No DELETE: the pod list comes next.
            three_pods(&mut api).await;
            api.expect_status_patch().await;
            api.expect_event().await;
        });
        reconciled(natsmini(3), &ctx).await;
        finish(server).await;
    }

    #[tokio::test]
    async fn an_incomplete_mesh_is_progressing_not_ready_and_polled_again_soon() {
        let mut routez = meshed_routez();
        routez.0.insert("10.0.0.1".into(), 1);
        let (ctx, mut api) = context(routez);
        let server = tokio::spawn(async move {
            api.expect_children(json!({"replicas": 3, "readyReplicas": 3}))
                .await;
            api.expect_pod_list((0..3).map(ready_pod).collect()).await;
            let status = api.expect_status_patch().await;
            assert_eq!(condition(&status, "Ready")["status"], "False");
            assert_eq!(condition(&status, "Ready")["reason"], "MeshIncomplete");
            assert_eq!(
                condition(&status, "Ready")["message"],
                "demo-1 has 1 route(s), wants 2"
            );
            assert_eq!(condition(&status, "Progressing")["status"], "True");
            assert_eq!(status["routes"][1], json!({"pod": "demo-1", "routes": 1}));
            api.expect_event().await;
        });
        let action = tokio::time::timeout(TIMEOUT, reconcile(Arc::new(natsmini(3)), ctx))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(action, Action::requeue(REQUEUE_NOT_READY));
        tokio::time::timeout(TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_failing_apply_sets_degraded_records_a_warning_and_backs_off() {
        let (ctx, mut api) = context(meshed_routez());
        let nm = Arc::new(natsmini(3));
        let server = tokio::spawn(async move {
            for round in 0..2 {
                let seen = api.fail_next(500, "etcd is on fire").await;
                assert_eq!(seen.path, "/api/v1/namespaces/ns/configmaps/demo-config");
                let status = api.expect_status_patch().await;
                let degraded = condition(&status, "Degraded");
                assert_eq!(degraded["status"], "True");
                assert_eq!(degraded["reason"], "ApplyFailed");
                assert!(
                    degraded["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("applying ConfigMap demo-config:"),
                    "{degraded}"
                );
                let event = if round == 0 {
                    api.expect_event().await
                } else {
                    let e = api.expect_event_repeat().await;
                    assert_eq!(e["series"]["count"], 2);
                    e
                };
                assert_eq!(event["type"], "Warning");
                assert_eq!(event["reason"], "ApplyFailed");
                assert_eq!(event["action"], "Reconcile");
                assert!(
                    event["note"].as_str().unwrap().contains("etcd is on fire"),
                    "{event}"
                );
            }
        });
        let mut delays = Vec::new();
        for _ in 0..2 {
            let err = tokio::time::timeout(TIMEOUT, reconcile(nm.clone(), ctx.clone()))
                .await
                .unwrap()
                .expect_err("the apply failed");
            assert!(
                matches!(
                    err,
                    Error::Apply {
                        kind: "ConfigMap",
                        ..
                    }
                ),
                "{err}"
            );
            delays.push(error_policy(nm.clone(), &err, ctx.clone()));
        }
        assert_eq!(
            delays,
            [
                Action::requeue(Duration::from_secs(5)),
                Action::requeue(Duration::from_secs(10))
            ]
        );
        assert!(
            ctx.metrics
                .encode()
                .contains("nats_mini_operator_reconcile_errors_total{error=\"apply\"} 2")
        );
        tokio::time::timeout(TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn an_invalid_spec_applies_nothing_and_reports_why() {
        let (ctx, mut api) = context(meshed_routez());
        let mut nm = natsmini(3);
        nm.spec.lame_duck_duration = crate::units::GoDuration("5s".into());
        let server = tokio::spawn(async move {
            let status = api.expect_status_patch().await;
            let degraded = condition(&status, "Degraded");
            assert_eq!(degraded["status"], "True");
            assert_eq!(degraded["reason"], "InvalidSpec");
            assert!(
                degraded["message"]
                    .as_str()
                    .unwrap()
                    .contains("spec.lameDuckDuration"),
                "{degraded}"
            );
            let event = api.expect_event().await;
            assert_eq!(event["reason"], "InvalidSpec");
        });
        let err = tokio::time::timeout(TIMEOUT, reconcile(Arc::new(nm), ctx))
            .await
            .unwrap()
            .expect_err("invalid spec");
        assert!(matches!(err, Error::InvalidSpec { .. }), "{err}");
        tokio::time::timeout(TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn an_object_without_uid_cannot_own_children_and_applies_nothing() {
        let (ctx, mut api) = context(meshed_routez());
        let mut nm = natsmini(1);
        nm.metadata.uid = None;
        let server = tokio::spawn(async move {
            let status = api.expect_status_patch().await;
            assert_eq!(condition(&status, "Degraded")["reason"], "MissingMetadata");
            api.expect_event().await;
        });
        let err = tokio::time::timeout(TIMEOUT, reconcile(Arc::new(nm), ctx))
            .await
            .unwrap()
            .expect_err("no uid");
        assert!(matches!(err, Error::MissingMetadata("uid")), "{err}");
        tokio::time::timeout(TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();
    }
}
