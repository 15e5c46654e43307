//! nats-mini-operator: runs nats-mini clusters on Kubernetes from `NatsMini` objects.
//!
//! # Layout
//!
//! - [`crd`]: the `NatsMini` resource (spec, status, defaults, validation). Its Rust types
//!   generate the CRD's structural schema.
//! - [`units`]: sizes and durations as the spec holds them, parsed by nats-server's rules.
//! - [`render`]: pure functions from a `NatsMini` (and a [`render::RenderContext`]) to the
//!   Kubernetes objects that run it: ConfigMap, Services, StatefulSet, PodDisruptionBudget,
//!   ServiceMonitor. No API calls, so every output can be checked in unit tests and golden
//!   files.
//!
//! - [`controller`]: the reconciler (render → server-side apply of every child with owner
//!   references → status from the StatefulSet and each ready broker's `/routez`), its error
//!   policy (exponential backoff, Degraded condition, Warning Event) and the kube-runtime
//!   `Controller` that drives it.
//! - [`metrics`]: the operator's own Prometheus metrics.
//! - [`http`]: `/metrics`, `/healthz` and `/readyz`.
//! - [`leader`]: leader election on a coordination.k8s.io Lease (kube-lease-manager).
//! - [`webhook`]: the sidecar injector (mutating admission webhook over HTTPS).
//! - `fixtures` (tests only): tower-test `ApiServerVerifier` scenarios, as in
//!   kube-rs/controller-rs.
//!
//! The binary (`src/main.rs`) offers `crd` (print the CRD YAML), `render -f FILE` (print
//! the objects for NatsMini manifests as a YAML stream) and `run` (the operator).
//!
//! No `unwrap`/`expect` outside tests: [`Error`] carries every failure.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod controller;
pub mod crd;
#[cfg(test)]
mod fixtures;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod units;
pub mod webhook;

pub use crd::{NatsMini, NatsMiniSpec, NatsMiniStatus};

/// Everything that can go wrong in the operator's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec value the schema should have refused, or a cross-field rule it cannot express.
    #[error("invalid {field}: {message}")]
    InvalidSpec { field: String, message: String },

    /// The NatsMini's name cannot name its children: it is not a DNS-1035 label, or a
    /// derived name would exceed 63 characters.
    #[error("invalid name {name:?}: {message}")]
    InvalidName { name: String, message: String },

    /// The object has no metadata.name or metadata.namespace.
    #[error("NatsMini has no metadata.{0}")]
    MissingMetadata(&'static str),

    /// Turning an object into JSON failed (a bug: rendered objects are plain data).
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// YAML in or out failed.
    #[error("YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),

    /// Server-side apply of a rendered child failed.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },

    /// Any other API call failed (reading pods, writing status).
    #[error("{what}: {source}")]
    Kube {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// A short, stable label for metrics (`error` label of the reconcile failure counter).
    pub fn metric_label(&self) -> String {
        match self {
            Error::InvalidSpec { .. } => "invalid_spec",
            Error::InvalidName { .. } => "invalid_name",
            Error::MissingMetadata(_) => "missing_metadata",
            Error::Serialize { .. } => "serialize",
            Error::Yaml(_) => "yaml",
            Error::Apply { .. } => "apply",
            Error::Kube { .. } => "kube",
        }
        .to_string()
    }
}

impl Error {
    /// The `reason` of the Degraded condition and of the Warning Event (CamelCase, as
    /// Kubernetes reasons are).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec { .. } => "InvalidSpec",
            Error::InvalidName { .. } => "InvalidName",
            Error::MissingMetadata(_) => "MissingMetadata",
            Error::Serialize { .. } | Error::Yaml(_) => "InternalError",
            Error::Apply { .. } => "ApplyFailed",
            Error::Kube { .. } => "ApiError",
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
