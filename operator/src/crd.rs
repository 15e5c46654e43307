//! The `NatsMini` custom resource (`nats-mini.io/v1alpha1`): spec, status, defaults and the
//! checks the schema cannot express.
//!
//! This module owns the API users write. The Rust types are the source of truth: the CRD's
//! structural schema (`nats-mini-operator crd`, `deploy/crd.yaml`, the chart's copy) is
//! generated from them by schemars, so every doc comment below is the `description` users
//! see in `kubectl explain natsmini.spec…`, and every `#[serde(default …)]` is a default the
//! apiserver writes into stored objects. Bounds, enums and patterns live in the schema so the
//! apiserver rejects bad values up front; [`NatsMiniSpec::validate`] repeats what the schema
//! checks and adds the cross-field rules it cannot express (e.g. `maxPayload ≤ maxPending`),
//! because the renderer must never trust that a stored object passed a current schema.
//!
//! Every optional field is skipped when unset so that rendering an object, serializing it and
//! reading it back is lossless and defaults never turn into explicit `null`s.
//!
//! No client, no I/O (→ [`crate::units`] only).

use crate::Error;
use crate::units::{GoDuration, Size};
use k8s_openapi::api::core::v1::{
    Affinity, PodSecurityContext, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// API group of the resource.
pub const GROUP: &str = "nats-mini.io";
/// API version of the resource.
pub const VERSION: &str = "v1alpha1";

/// Default client port (not configurable: clients and the chart expect 4222).
pub const CLIENT_PORT: i32 = 4222;
/// Default route (cluster) port.
pub const DEFAULT_CLUSTER_PORT: i32 = 6222;
/// Default monitoring (HTTP) port.
pub const DEFAULT_MONITOR_PORT: i32 = 8222;
/// Default `net.core.somaxconn` for the tuning modes.
pub const DEFAULT_SOMAXCONN: i32 = 8192;
/// Default lame-duck duration, as in the official NATS chart.
pub const DEFAULT_LAME_DUCK_DURATION: &str = "30s";
/// The lame-duck grace period the rendered config sets (nats-server's default): clients are
/// left alone this long before the broker starts closing them.
pub const LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// The shortest lame-duck duration the broker accepts in its config (nats-server's minimum);
/// longer than [`LAME_DUCK_GRACE_PERIOD`].
pub const MIN_LAME_DUCK_DURATION: Duration = Duration::from_secs(30);

/// A NatsMini is one nats-mini cluster: a StatefulSet of brokers that route to each other
/// over a headless Service, with a client Service in front. The operator renders the broker
/// config into a ConfigMap that the brokers reload on change, so scaling and limit changes
/// never restart running pods.
// Four `printcolumn(...)` attributes repeat `type_ = ...`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "nats-mini.io",
    version = "v1alpha1",
    kind = "NatsMini",
    plural = "natsminis",
    singular = "natsmini",
    shortname = "nm",
    category = "nats",
    namespaced,
    status = "NatsMiniStatus",
    derive = "PartialEq",
    doc = "A NatsMini is a nats-mini cluster: a StatefulSet of meshed brokers, a headless Service for their routes, a client Service, a config ConfigMap and a PodDisruptionBudget, all owned by this object.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired brokers"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Ready brokers"
    ),
    printcolumn(
        name = "Client URL",
        type_ = "string",
        json_path = ".status.clientURL",
        description = "URL clients inside the cluster connect to"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NatsMiniSpec {
    /// Number of brokers. Every broker routes to every other one (a full mesh); the route list
    /// in the config names each ordinal, so scaling up needs no restart of running brokers.
    /// 0 stops the cluster but keeps its Services and config.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// Container image of the broker. Unset fields fall back to the operator's defaults (the
    /// nats-mini image matching the operator's version).
    #[serde(default)]
    pub image: ImageSpec,

    /// Compute resources of the broker container (requests and limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Broker limits, written into the config file. Unset limits keep the broker's defaults
    /// (those of nats-server; `busyPoll` is nats-mini's own). All of them are reloaded without
    /// a restart except `maxPending`, which takes effect on the next pod restart.
    #[serde(default)]
    pub limits: LimitsSpec,

    /// Client authentication: a shared token or a list of users, with secrets read from
    /// Kubernetes Secrets. Secret values reach the broker as environment variables and are
    /// never written into the ConfigMap. Unset: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// TLS for client connections. Unset: plain TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// Route (cluster) settings.
    #[serde(default)]
    pub cluster: ClusterSpec,

    /// Monitoring endpoint and Prometheus integration.
    #[serde(default)]
    pub monitoring: MonitoringSpec,

    /// The client Service.
    #[serde(default)]
    pub service: ServiceSpec,

    /// Kernel tuning for many connections: the listen backlog (`net.core.somaxconn`) and,
    /// optionally, the node-wide file limit. The broker raises its own open-files soft limit
    /// to the hard limit at start; Kubernetes cannot set RLIMIT_NOFILE.
    #[serde(default)]
    pub tuning: TuningSpec,

    /// How long a stopping broker stays in lame-duck mode, spreading its clients' reconnects
    /// over this time (Go duration such as "30s" or "2m"). At least 30s (the broker, like
    /// nats-server, refuses less) and at most 1h. The pod's terminationGracePeriodSeconds is
    /// derived from it.
    #[serde(default = "default_lame_duck_duration")]
    pub lame_duck_duration: GoDuration,

    /// Broker log level (the `NATS_LOG` environment variable). Changing it restarts the brokers
    /// one by one.
    #[serde(default)]
    pub log_level: LogLevel,

    /// Pod template settings: extra labels and annotations, placement and security context.
    #[serde(default)]
    pub pod: PodSpecOverrides,

    /// The PodDisruptionBudget.
    #[serde(default)]
    pub pdb: PdbSpec,
}

fn default_replicas() -> i32 {
    1
}

fn default_lame_duck_duration() -> GoDuration {
    GoDuration(DEFAULT_LAME_DUCK_DURATION.to_string())
}

/// Container image of the broker.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository, e.g. "ghcr.io/nats-mini/nats-mini". Unset: the operator's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub repository: Option<String>,

    /// Image tag. Unset: the operator's default (its own version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    )]
    pub tag: Option<String>,

    /// When the kubelet pulls the image: Always, IfNotPresent or Never.
    #[serde(default)]
    pub pull_policy: PullPolicy,

    /// Names of Secrets (in the NatsMini's namespace) holding registry credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<String>,
}

/// Image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Broker limits, each with the config key it sets: nats-server's, except `busy_poll`, which is
/// nats-mini's own.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Maximum number of client connections per broker (config key max_connections).
    /// Default 65536.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_connections: Option<i64>,

    /// Maximum message payload (config key max_payload): bytes as an integer, or a size
    /// string such as "2mb" (2^20 multiples for kb/mb/ki/mi/kib/mib…, 10^3 multiples for
    /// k/m/g…). Default 1MB. Must not exceed maxPending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<Size>,

    /// Maximum bytes queued for one client before it is a slow consumer (config key
    /// max_pending). Default 64MB. Takes effect when a pod restarts (not reloadable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<Size>,

    /// Maximum length of a protocol line (config key max_control_line). Default 4KB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_control_line: Option<Size>,

    /// How long a write to a client may block before the client is closed as a slow
    /// consumer (config key write_deadline), e.g. "10s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_deadline: Option<GoDuration>,

    /// Interval between server PINGs to idle clients (config key ping_interval), e.g. "2m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<GoDuration>,

    /// nats-mini's own setting (config key busy_poll; nats-server has none): after a small
    /// client read, one task keeps a worker polling this long instead of letting it sleep,
    /// trading CPU for lower request/reply latency. A Go duration such as "20us" or "50µs";
    /// "0" turns it off. Default 50us. Under a tight CPU limit (resources.limits.cpu of about
    /// one core or less) set "0": the spinning burns CFS quota and gets the broker throttled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_poll: Option<GoDuration>,

    /// Unanswered PINGs before a client is disconnected (config key ping_max). Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_pings_out: Option<i32>,
}

/// Client authentication. Set exactly one of `token` and `users`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// A shared token clients present in CONNECT, read from a Secret key into the broker's
    /// `NATS_TOKEN` environment variable. Rotating it needs a rollout (environment variables
    /// from Secrets are read at container start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretKeyRef>,

    /// Users with passwords, the passwords read from keys of one Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UsersSpec>,
}

/// A key in a Secret in the NatsMini's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key in the Secret's data.
    #[serde(default = "default_token_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

fn default_token_key() -> String {
    "token".to_string()
}

/// Users whose passwords are keys of one Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersSpec {
    /// Name of the Secret holding the passwords.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// The users. Each password reaches the broker as the environment variable
    /// `NATS_USER_<index>_PASSWORD`, so reordering the list restarts the brokers.
    #[schemars(length(min = 1, max = 256))]
    pub users: Vec<UserSpec>,
}

/// One user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// User name clients present in CONNECT.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9._@-]+$"))]
    pub username: String,
    /// Key of the user's password in the Secret. Unset: the user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub password_key: Option<String>,
}

impl UserSpec {
    /// The Secret key holding this user's password.
    pub fn password_key(&self) -> &str {
        self.password_key.as_deref().unwrap_or(&self.username)
    }
}

/// TLS for client connections.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A Secret of type kubernetes.io/tls (keys tls.crt and tls.key, plus ca.crt when
    /// verifyClients is set), e.g. one written by cert-manager. It is mounted read-only at
    /// /etc/nats-mini-tls; the broker reloads renewed certificates.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Require and verify client certificates against the Secret's ca.crt.
    #[serde(default)]
    pub verify_clients: bool,
}

/// Route (cluster) settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Route port, on every broker and on the headless Service.
    #[serde(default = "default_cluster_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Cluster name every broker announces; brokers with different names do not route to
    /// each other. Unset: the NatsMini's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub name: Option<String>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            port: DEFAULT_CLUSTER_PORT,
            name: None,
        }
    }
}

fn default_cluster_port() -> i32 {
    DEFAULT_CLUSTER_PORT
}

/// Monitoring endpoint (`/healthz`, `/varz`, `/routez`, `/metrics`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// HTTP monitoring port; the probes use it, and the client Service exposes it.
    #[serde(default = "default_monitor_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// A prometheus-operator ServiceMonitor scraping `/metrics` of every broker.
    #[serde(default)]
    pub service_monitor: ServiceMonitorSpec,
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        MonitoringSpec {
            port: DEFAULT_MONITOR_PORT,
            service_monitor: ServiceMonitorSpec::default(),
        }
    }
}

fn default_monitor_port() -> i32 {
    DEFAULT_MONITOR_PORT
}

/// A prometheus-operator ServiceMonitor (monitoring.coreos.com/v1).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Create the ServiceMonitor. Needs the prometheus-operator CRDs in the cluster.
    #[serde(default)]
    pub enabled: bool,
    /// Scrape interval, e.g. "30s". Unset: Prometheus' default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    /// Extra labels on the ServiceMonitor, typically what a Prometheus' serviceMonitorSelector
    /// matches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The client Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type: ClusterIP, NodePort or LoadBalancer.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations on the client Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Type of the client Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Kernel tuning.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TuningSpec {
    /// How to apply the settings. "none" (default): leave the kernel alone. "initContainer":
    /// a privileged init container from the broker image runs `nats-mini tune`, which writes
    /// the sysctls and reports what it set; the namespace must allow privileged pods (Pod
    /// Security Standard "privileged"). "sysctls": net.core.somaxconn goes into the pod's
    /// securityContext.sysctls; it is not in Kubernetes' safe set, so every kubelet must run
    /// with --allowed-unsafe-sysctls=net.core.somaxconn, or the pods are rejected with
    /// SysctlForbidden; fileMax cannot be set in this mode.
    #[serde(default)]
    pub mode: TuningMode,
    /// Listen backlog (net.core.somaxconn) of the pod's network namespace: how many
    /// connections may wait to be accepted, e.g. during a reconnect storm. Affects only the
    /// pod.
    #[serde(default = "default_somaxconn")]
    #[schemars(range(min = 128, max = 65535))]
    pub somaxconn: i32,
    /// System-wide maximum of open files (fs.file-max), initContainer mode only. This setting
    /// is NODE-WIDE: it changes the kernel limit for every pod on the node, not just this one.
    /// Unset: not changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 65536))]
    pub file_max: Option<i64>,
}

impl Default for TuningSpec {
    fn default() -> Self {
        TuningSpec {
            mode: TuningMode::default(),
            somaxconn: DEFAULT_SOMAXCONN,
            file_max: None,
        }
    }
}

fn default_somaxconn() -> i32 {
    DEFAULT_SOMAXCONN
}

/// How kernel tuning is applied.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TuningMode {
    InitContainer,
    Sysctls,
    #[default]
    None,
}

/// Broker log level.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Pod template settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecOverrides {
    /// Extra pod labels. The operator's own app.kubernetes.io labels win on conflict.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity of the pods, e.g. anti-affinity to spread brokers over nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Topology spread constraints. A constraint without labelSelector gets the brokers'
    /// selector labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Priority class of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Pod security context. Fields set here replace the operator's restricted defaults
    /// (runAsNonRoot, runAsUser/runAsGroup 65532, seccompProfile RuntimeDefault) one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
}

/// The PodDisruptionBudget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    /// Brokers that may be down at once during voluntary disruptions (drains): a number or
    /// a percentage such as "25%". 0 would block every drain and is refused. Default 1.
    #[serde(
        default = "default_max_unavailable",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_unavailable: Option<IntOrString>,
}

impl PdbSpec {
    /// `maxUnavailable`, 1 when unset (or explicitly null).
    pub fn max_unavailable(&self) -> IntOrString {
        self.max_unavailable.clone().unwrap_or(IntOrString::Int(1))
    }
}

impl Default for PdbSpec {
    fn default() -> Self {
        PdbSpec {
            max_unavailable: default_max_unavailable(),
        }
    }
}

fn default_max_unavailable() -> Option<IntOrString> {
    Some(IntOrString::Int(1))
}

/// Observed state, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NatsMiniStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Brokers that exist (from the StatefulSet); the scale subresource reads it.
    #[serde(default)]
    pub replicas: i32,
    /// Brokers whose readiness probe passes.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the brokers' pods, in string form, for the scale subresource (HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// URL clients in the cluster connect to.
    #[serde(default, rename = "clientURL", skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// Routes each ready broker reports on /routez.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<PodRoutes>,
    /// Ready (every broker ready and meshed: each sees replicas-1 routes), Progressing and
    /// Degraded, with reasons and messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The routes one broker reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodRoutes {
    /// Pod name.
    pub pod: String,
    /// Number of routes the broker has (replicas-1 in a complete mesh).
    pub routes: i32,
}

/// Condition types the controller writes.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    pub const DEGRADED: &str = "Degraded";
    /// Only while `monitoring.serviceMonitor.enabled`: True (reason `Applied`) once the
    /// ServiceMonitor is applied, False (reason `CRDNotInstalled`) while the cluster does not
    /// serve monitoring.coreos.com/v1 ServiceMonitors and the operator skips it. Not a
    /// failure: Degraded stays False.
    pub const SERVICE_MONITOR: &str = "ServiceMonitor";
}

impl NatsMiniSpec {
    /// Checks what the schema checks and the cross-field rules it cannot express. The error
    /// names the field (JSON path under `spec`) and says what is wrong.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field: &str, message: String| Error::InvalidSpec {
            field: format!("spec.{field}"),
            message,
        };
        if !(0..=1000).contains(&self.replicas) {
            return Err(invalid(
                "replicas",
                format!("{} is not in 0..=1000", self.replicas),
            ));
        }
        for (field, port) in [
            ("cluster.port", self.cluster.port),
            ("monitoring.port", self.monitoring.port),
        ] {
            if !(1..=65535).contains(&port) {
                return Err(invalid(field, format!("{port} is not a port (1..=65535)")));
            }
        }
        let ports: BTreeSet<i32> = [CLIENT_PORT, self.cluster.port, self.monitoring.port]
            .into_iter()
            .collect();
        if ports.len() != 3 {
            return Err(invalid(
                "cluster.port",
                format!(
                    "client ({CLIENT_PORT}), cluster ({}) and monitoring ({}) ports must differ",
                    self.cluster.port, self.monitoring.port
                ),
            ));
        }
        self.validate_limits()?;
        if let Some(auth) = &self.auth {
            match (&auth.token, &auth.users) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "auth",
                        "set either token or users, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(invalid("auth", "set token or users".into()));
                }
                (None, Some(users)) => {
                    if users.users.is_empty() {
                        return Err(invalid(
                            "auth.users.users",
                            "needs at least one user".into(),
                        ));
                    }
                    let mut seen = BTreeSet::new();
                    for (i, u) in users.users.iter().enumerate() {
                        if !is_token(&u.username, b"._@-") {
                            return Err(invalid(
                                &format!("auth.users.users[{i}].username"),
                                format!("{:?} may only hold letters, digits and ._@-", u.username),
                            ));
                        }
                        if !is_token(u.password_key(), b"-._") {
                            let message = match &u.password_key {
                                Some(key) => format!("{key:?} is not a Secret key"),
                                None => format!(
                                    "unset, and the user name {:?} is not a Secret key: set passwordKey",
                                    u.username
                                ),
                            };
                            return Err(invalid(
                                &format!("auth.users.users[{i}].passwordKey"),
                                message,
                            ));
                        }
                        if !seen.insert(u.username.as_str()) {
                            return Err(invalid(
                                &format!("auth.users.users[{i}].username"),
                                format!("{:?} appears twice", u.username),
                            ));
                        }
                    }
                }
                (Some(token), None) => {
                    if !is_token(&token.key, b"-._") {
                        return Err(invalid(
                            "auth.token.key",
                            format!("{:?} is not a Secret key", token.key),
                        ));
                    }
                }
            }
        }
        if let Some(name) = &self.cluster.name
            && !is_token(name, b"._-")
        {
            return Err(invalid(
                "cluster.name",
                format!("{name:?} may only hold letters, digits and ._-"),
            ));
        }
        if let Some(tag) = &self.image.tag
            && (tag.is_empty() || !is_token(tag, b"_.-") || tag.starts_with(['.', '-']))
        {
            return Err(invalid("image.tag", format!("{tag:?} is not an image tag")));
        }
        if let Some(repo) = &self.image.repository
            && (repo.is_empty() || repo.chars().any(|c| c.is_whitespace()))
        {
            return Err(invalid(
                "image.repository",
                format!("{repo:?} is not a repository"),
            ));
        }
        if !(128..=65535).contains(&self.tuning.somaxconn) {
            return Err(invalid(
                "tuning.somaxconn",
                format!("{} is not in 128..=65535", self.tuning.somaxconn),
            ));
        }
        if let Some(file_max) = self.tuning.file_max {
            if file_max < 65536 {
                return Err(invalid(
                    "tuning.fileMax",
                    format!("{file_max} is below 65536"),
                ));
            }
            if self.tuning.mode != TuningMode::InitContainer {
                return Err(invalid(
                    "tuning.fileMax",
                    "is only applied in initContainer mode (fs.file-max is node-wide and cannot be a pod sysctl)".into(),
                ));
            }
        }
        let ldm = self.lame_duck_duration()?;
        // The broker (like nats-server) refuses to start with less, so a shorter value would
        // crash-loop every pod; the floor is also above the grace period.
        if ldm < MIN_LAME_DUCK_DURATION {
            return Err(invalid(
                "lameDuckDuration",
                format!(
                    "{} is below {}s, the least the broker (like nats-server) accepts",
                    self.lame_duck_duration,
                    MIN_LAME_DUCK_DURATION.as_secs()
                ),
            ));
        }
        if ldm > Duration::from_secs(3600) {
            return Err(invalid(
                "lameDuckDuration",
                format!("{} is longer than 1h", self.lame_duck_duration),
            ));
        }
        if let Some(interval) = &self.monitoring.service_monitor.interval {
            interval
                .parse()
                .map_err(|e| invalid("monitoring.serviceMonitor.interval", e.to_string()))?;
        }
        match &self.pdb.max_unavailable() {
            IntOrString::Int(n) if *n <= 0 => {
                return Err(invalid(
                    "pdb.maxUnavailable",
                    format!("{n} would block every node drain; use 1 or more"),
                ));
            }
            IntOrString::String(s) => {
                let pct = s
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<u32>().ok())
                    .filter(|p| (1..=100).contains(p));
                if pct.is_none() {
                    return Err(invalid(
                        "pdb.maxUnavailable",
                        format!(
                            "{s:?} is not a percentage in 1%..100% (0% would block every drain)"
                        ),
                    ));
                }
            }
            IntOrString::Int(_) => {}
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), Error> {
        let invalid = |field: &str, message: String| Error::InvalidSpec {
            field: format!("spec.limits.{field}"),
            message,
        };
        let l = &self.limits;
        if let Some(n) = l.max_connections
            && n < 1
        {
            return Err(invalid("maxConnections", format!("{n} is below 1")));
        }
        if let Some(n) = l.max_pings_out
            && !(1..=1000).contains(&n)
        {
            return Err(invalid("maxPingsOut", format!("{n} is not in 1..=1000")));
        }
        let size = |field: &str, s: &Option<Size>| -> Result<Option<u64>, Error> {
            s.as_ref()
                .map(|s| s.bytes().map_err(|e| invalid(field, e.to_string())))
                .transpose()
        };
        let payload = size("maxPayload", &l.max_payload)?;
        let pending = size("maxPending", &l.max_pending)?;
        let control = size("maxControlLine", &l.max_control_line)?;
        if payload == Some(0) {
            return Err(invalid("maxPayload", "must be above 0".into()));
        }
        if pending == Some(0) {
            return Err(invalid("maxPending", "must be above 0".into()));
        }
        if let Some(c) = control
            && c < 256
        {
            return Err(invalid("maxControlLine", format!("{c} is below 256 bytes")));
        }
        // nats-server refuses to start when max_payload > max_pending; the default
        // max_pending is 64MB.
        let pending_or_default = pending.unwrap_or(64 * 1024 * 1024);
        if let Some(p) = payload
            && p > pending_or_default
        {
            return Err(invalid(
                "maxPayload",
                format!("{p} bytes exceeds maxPending ({pending_or_default} bytes)"),
            ));
        }
        // (field, whether 0 is allowed): a zero busyPoll turns busy polling off.
        for (field, d, zero_allowed) in [
            ("writeDeadline", &l.write_deadline, false),
            ("pingInterval", &l.ping_interval, false),
            ("busyPoll", &l.busy_poll, true),
        ] {
            if let Some(d) = d {
                let parsed = d.parse().map_err(|e| invalid(field, e.to_string()))?;
                if parsed.is_zero() && !zero_allowed {
                    return Err(invalid(field, "must be above 0".into()));
                }
            }
        }
        Ok(())
    }

    /// The lame-duck duration, parsed.
    pub fn lame_duck_duration(&self) -> Result<Duration, Error> {
        self.lame_duck_duration
            .parse()
            .map_err(|e| Error::InvalidSpec {
                field: "spec.lameDuckDuration".into(),
                message: e.to_string(),
            })
    }

    /// The cluster name brokers announce.
    pub fn cluster_name<'a>(&'a self, natsmini_name: &'a str) -> &'a str {
        self.cluster.name.as_deref().unwrap_or(natsmini_name)
    }
}

/// ASCII letters, digits and the given punctuation only, non-empty.
fn is_token(s: &str, punctuation: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || punctuation.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> NatsMiniSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn empty_spec_gets_every_default() {
        let s = spec("{}");
        assert_eq!(s.replicas, 1);
        assert_eq!(s.cluster.port, 6222);
        assert_eq!(s.monitoring.port, 8222);
        assert_eq!(s.tuning.somaxconn, 8192);
        assert_eq!(s.tuning.mode, TuningMode::None);
        assert_eq!(s.lame_duck_duration.0, "30s");
        assert_eq!(s.pdb.max_unavailable(), IntOrString::Int(1));
        assert_eq!(s.image.pull_policy, PullPolicy::IfNotPresent);
        s.validate().unwrap();
    }

    #[test]
    fn spec_round_trips_without_nulls() {
        let s = spec("replicas: 3\nlimits: {maxPayload: 2mb, maxConnections: 1000000}\n");
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("null"), "{json}");
        let back: NatsMiniSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            ("replicas: -1", "spec.replicas"),
            ("cluster: {port: 4222}", "spec.cluster.port"),
            ("monitoring: {port: 70000}", "spec.monitoring.port"),
            ("limits: {maxPayload: lots}", "spec.limits.maxPayload"),
            ("limits: {maxPayload: 128mb}", "spec.limits.maxPayload"),
            (
                "limits: {maxPayload: 2mb, maxPending: 1mb}",
                "spec.limits.maxPayload",
            ),
            ("limits: {writeDeadline: '10'}", "spec.limits.writeDeadline"),
            ("limits: {pingInterval: 0s}", "spec.limits.pingInterval"),
            ("limits: {writeDeadline: '0'}", "spec.limits.writeDeadline"),
            ("limits: {busyPoll: soon}", "spec.limits.busyPoll"),
            ("limits: {busyPoll: 50u}", "spec.limits.busyPoll"),
            ("limits: {busyPoll: '-1us'}", "spec.limits.busyPoll"),
            ("limits: {maxControlLine: 10}", "spec.limits.maxControlLine"),
            ("auth: {}", "spec.auth"),
            (
                "auth: {token: {secretName: a}, users: {secretName: b, users: [{username: u}]}}",
                "spec.auth",
            ),
            (
                "auth: {users: {secretName: b, users: [{username: u}, {username: u}]}}",
                "spec.auth.users.users[1].username",
            ),
            (
                "auth: {users: {secretName: b, users: [{username: 'a\"b'}]}}",
                "spec.auth.users.users[0].username",
            ),
            (
                "auth: {token: {secretName: a, key: 'x y'}}",
                "spec.auth.token.key",
            ),
            (
                "auth: {users: {secretName: b, users: [{username: a@b}]}}",
                "spec.auth.users.users[0].passwordKey",
            ),
            ("lameDuckDuration: 5s", "spec.lameDuckDuration"),
            ("lameDuckDuration: 29s", "spec.lameDuckDuration"),
            ("lameDuckDuration: 2h", "spec.lameDuckDuration"),
            ("lameDuckDuration: soon", "spec.lameDuckDuration"),
            ("tuning: {somaxconn: 5}", "spec.tuning.somaxconn"),
            (
                "tuning: {mode: sysctls, fileMax: 1000000}",
                "spec.tuning.fileMax",
            ),
            ("pdb: {maxUnavailable: 0}", "spec.pdb.maxUnavailable"),
            ("pdb: {maxUnavailable: '0%'}", "spec.pdb.maxUnavailable"),
            ("pdb: {maxUnavailable: 'half'}", "spec.pdb.maxUnavailable"),
            ("cluster: {name: 'a b'}", "spec.cluster.name"),
            ("image: {tag: 'a b'}", "spec.image.tag"),
        ];
        for (yaml, field) in cases {
            match spec(yaml).validate() {
                Err(Error::InvalidSpec { field: f, .. }) => assert_eq!(f, field, "{yaml}"),
                other => panic!("{yaml}: expected an error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn valid_specs_pass() {
        for yaml in [
            "pdb: {maxUnavailable: '25%'}",
            "lameDuckDuration: 2m",
            "tuning: {mode: initContainer, fileMax: 1048576}",
            "auth: {users: {secretName: s, users: [{username: alice}, {username: bob, passwordKey: b}]}}",
            "limits: {maxPayload: 8mb, maxPending: 128mb, maxControlLine: 8kb}",
            "limits: {busyPoll: '0'}",
            "limits: {busyPoll: 0s}",
            "limits: {busyPoll: 50us}",
            "limits: {busyPoll: 50\u{b5}s}",
            "limits: {busyPoll: 50\u{3bc}s}",
            "limits: {busyPoll: 1ms, writeDeadline: 500\u{b5}s}",
            "lameDuckDuration: 30000000\u{b5}s",
        ] {
            spec(yaml).validate().unwrap();
        }
    }

    #[test]
    fn a_bad_busy_poll_is_refused_with_a_message_naming_the_field() {
        let err = spec("limits: {busyPoll: soon}").validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid spec.limits.busyPoll: \"soon\" is not a duration (examples: \"500ms\", \"2s\", \"1m30s\")"
        );
        // "0" is a duration (off) for busyPoll only; the other durations must be above 0.
        let err = spec("limits: {pingInterval: '0'}").validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid spec.limits.pingInterval: must be above 0"
        );
    }

    #[test]
    fn busy_poll_round_trips_as_busy_poll_and_is_skipped_when_unset() {
        let s = spec("limits: {busyPoll: '0'}");
        assert_eq!(s.limits.busy_poll, Some(GoDuration("0".into())));
        let json = serde_json::to_value(&s.limits).unwrap();
        assert_eq!(json, serde_json::json!({"busyPoll": "0"}));
        let json = serde_json::to_value(&spec("{}").limits).unwrap();
        assert_eq!(json, serde_json::json!({}));
    }
}
