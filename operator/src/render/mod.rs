//! Pure rendering: a `NatsMini` plus a [`RenderContext`] in, the Kubernetes objects that run
//! it out. No API calls, no clock, no randomness: the same input always gives byte-identical
//! objects, which is what server-side apply, golden files and the chart-equivalence test need.
//!
//! What is rendered (see [`Rendered`]):
//!
//! | object | name | module |
//! |---|---|---|
//! | ConfigMap with `nats-mini.conf` | `NAME-config` | [`config`] |
//! | headless Service (routes, per-pod DNS) | `NAME-headless` | [`services`] |
//! | client Service | `NAME` | [`services`] |
//! | StatefulSet | `NAME` | [`statefulset`] |
//! | PodDisruptionBudget | `NAME` | [`pdb`] |
//! | ServiceMonitor (optional) | `NAME` | [`service_monitor`] |
//!
//! Invariants every output keeps (property-tested in `tests/properties.rs`):
//! - the config's route list has exactly `replicas` entries, one per ordinal, self included,
//!   each `nats://NAME-i.NAME-headless.NS.svc.DOMAIN:PORT`;
//! - every object name, pod name and the StatefulSet's revision label fit in 63 characters
//!   (checked up front: [`Names::new`] refuses a NatsMini whose name is too long);
//! - the selector labels are a subset of the pod template's labels and of every object's;
//! - secret values never appear: the config refers to `$VARIABLES` the pod fills from Secret
//!   keys.
//!
//! Owner references are left out: render works on objects that were never stored (the CLI,
//! tests), which have no uid. The controller adds the NatsMini's controller reference to each
//! object with [`Rendered::set_owner_reference`] before applying them.

pub mod config;
pub mod pdb;
pub mod service_monitor;
pub mod services;
pub mod statefulset;

use crate::crd::NatsMini;
use crate::{Error, Result};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Default image repository of the broker.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ghcr.io/nats-mini/nats-mini";
/// Default Kubernetes cluster DNS domain.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The field manager and `app.kubernetes.io/managed-by` value.
pub const MANAGER: &str = "nats-mini-operator";
/// `app.kubernetes.io/name` of everything rendered.
pub const APP_NAME: &str = "nats-mini";
/// `app.kubernetes.io/component` of everything rendered.
pub const COMPONENT: &str = "broker";

/// Longest Kubernetes name that is also a DNS label (Services, pod host names, label values).
pub const MAX_NAME_LEN: usize = 63;
/// Characters the StatefulSet controller appends to the StatefulSet name in the pods'
/// `controller-revision-hash` label (`-` and a hash of up to 10 characters).
pub const REVISION_SUFFIX_LEN: usize = 11;

/// What rendering needs besides the NatsMini: settings of the operator installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderContext {
    /// DNS domain of the cluster, used in route URLs (`…svc.DOMAIN`).
    pub cluster_domain: String,
    /// Image repository when the spec sets none.
    pub image_repository: String,
    /// Image tag when the spec sets none.
    pub image_tag: String,
}

impl Default for RenderContext {
    /// `cluster.local` and the nats-mini image of this operator's version.
    fn default() -> Self {
        RenderContext {
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
            image_repository: DEFAULT_IMAGE_REPOSITORY.to_string(),
            image_tag: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl RenderContext {
    fn validate(&self) -> Result<()> {
        let bad = |message: String| Error::InvalidSpec {
            field: "operator --cluster-domain".into(),
            message,
        };
        let d = &self.cluster_domain;
        if d.is_empty() || d.len() > 253 {
            return Err(bad(format!("{d:?} is not a DNS domain")));
        }
        for label in d.split('.') {
            if !is_dns_label(label) {
                return Err(bad(format!("{d:?} is not a DNS domain")));
            }
        }
        Ok(())
    }
}

/// The objects for one NatsMini, in apply order.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub config_map: ConfigMap,
    pub headless_service: Service,
    pub client_service: Service,
    pub stateful_set: StatefulSet,
    pub pdb: PodDisruptionBudget,
    /// Present when `spec.monitoring.serviceMonitor.enabled`.
    pub service_monitor: Option<DynamicObject>,
}

impl Rendered {
    /// Sets `metadata.ownerReferences` of every object to `[owner]` (for the controller).
    pub fn set_owner_reference(&mut self, owner: OwnerReference) {
        let owners = Some(vec![owner]);
        self.config_map.metadata.owner_references = owners.clone();
        self.headless_service.metadata.owner_references = owners.clone();
        self.client_service.metadata.owner_references = owners.clone();
        self.stateful_set.metadata.owner_references = owners.clone();
        self.pdb.metadata.owner_references = owners.clone();
        if let Some(sm) = &mut self.service_monitor {
            sm.metadata.owner_references = owners;
        }
    }

    /// Every object as JSON, in apply order, with object keys sorted (so output does not
    /// depend on serde_json's `preserve_order` feature).
    pub fn to_values(&self) -> Result<Vec<Value>> {
        let mut out = vec![
            to_value("ConfigMap", &self.config_map)?,
            to_value("Service", &self.headless_service)?,
            to_value("Service", &self.client_service)?,
            to_value("StatefulSet", &self.stateful_set)?,
            to_value("PodDisruptionBudget", &self.pdb)?,
        ];
        if let Some(sm) = &self.service_monitor {
            out.push(to_value("ServiceMonitor", sm)?);
        }
        Ok(out)
    }

    /// Every object as one YAML stream (documents separated by `---`).
    pub fn to_yaml(&self) -> Result<String> {
        to_yaml_stream(&self.to_values()?)
    }
}

fn to_value<T: Serialize>(what: &str, obj: &T) -> Result<Value> {
    let mut v = serde_json::to_value(obj).map_err(|source| Error::Serialize {
        what: what.to_string(),
        source,
    })?;
    sort_keys(&mut v);
    Ok(v)
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// Joins values into a YAML stream, each document starting with `---`.
pub fn to_yaml_stream(values: &[Value]) -> Result<String> {
    let mut out = String::new();
    for v in values {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(v)?);
    }
    Ok(out)
}

/// Renders every object for `nm`. Fails on an invalid spec or a name that cannot name its
/// children, never on anything else.
pub fn render(nm: &NatsMini, ctx: &RenderContext) -> Result<Rendered> {
    ctx.validate()?;
    nm.spec.validate()?;
    let names = Names::new(nm, ctx)?;
    Ok(Rendered {
        config_map: config::config_map(nm, &names),
        headless_service: services::headless(nm, &names),
        client_service: services::client(nm, &names),
        stateful_set: statefulset::stateful_set(nm, &names, ctx)?,
        pdb: pdb::pod_disruption_budget(nm, &names),
        service_monitor: service_monitor::service_monitor(nm, &names),
    })
}

/// The names derived from a NatsMini, checked to fit Kubernetes' limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The NatsMini's name: also the StatefulSet's, the client Service's, the PDB's and the
    /// ServiceMonitor's.
    pub base: String,
    pub namespace: String,
    /// `NAME-headless`.
    pub headless: String,
    /// `NAME-config`.
    pub config_map: String,
    /// The cluster DNS domain.
    pub cluster_domain: String,
}

/// Key of the config file in the ConfigMap.
pub const CONFIG_FILE: &str = "nats-mini.conf";
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/nats-mini";
/// Where the TLS Secret is mounted (beside, not inside, the read-only config mount).
pub const TLS_DIR: &str = "/etc/nats-mini-tls";
/// Where the pid file lives (an emptyDir): preStop signals the broker through it.
pub const RUN_DIR: &str = "/var/run/nats-mini";
/// The pid file.
pub const PID_FILE: &str = "/var/run/nats-mini/nats-mini.pid";

impl Names {
    /// Derives and checks every name. The NatsMini's name must be a DNS-1035 label (it names
    /// Services) short enough that `NAME-headless`, `NAME-config`, the last pod name and the
    /// StatefulSet revision label stay within 63 characters, and every route host within 253.
    pub fn new(nm: &NatsMini, ctx: &RenderContext) -> Result<Names> {
        let base = nm
            .metadata
            .name
            .clone()
            .ok_or(Error::MissingMetadata("name"))?;
        let namespace = nm
            .metadata
            .namespace
            .clone()
            .ok_or(Error::MissingMetadata("namespace"))?;
        let invalid = |message: String| Error::InvalidName {
            name: base.clone(),
            message,
        };
        if !is_dns1035_label(&base) {
            return Err(invalid(
                "must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter) because it names Services".into(),
            ));
        }
        let names = Names {
            headless: format!("{base}-headless"),
            config_map: format!("{base}-config"),
            base: base.clone(),
            namespace,
            cluster_domain: ctx.cluster_domain.clone(),
        };
        let last_ordinal = nm.spec.replicas.max(1) - 1;
        let derived = [
            ("headless Service", names.headless.len()),
            ("ConfigMap", names.config_map.len()),
            ("pod", names.pod(last_ordinal).len()),
            (
                "StatefulSet revision label",
                base.len() + REVISION_SUFFIX_LEN,
            ),
        ];
        for (what, len) in derived {
            if len > MAX_NAME_LEN {
                return Err(invalid(format!(
                    "the {what} name would be {len} characters (limit {MAX_NAME_LEN}); use at most {} characters",
                    MAX_NAME_LEN - (len - base.len())
                )));
            }
        }
        let host = names.pod_host(last_ordinal);
        if host.len() > 253 {
            return Err(invalid(format!(
                "route host {host} is {} characters (limit 253)",
                host.len()
            )));
        }
        Ok(names)
    }

    /// Name of the pod with this ordinal.
    pub fn pod(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.base)
    }

    /// Fully qualified DNS name of the pod with this ordinal (via the headless Service).
    pub fn pod_host(&self, ordinal: i32) -> String {
        format!(
            "{}.{}.{}.svc.{}",
            self.pod(ordinal),
            self.headless,
            self.namespace,
            self.cluster_domain
        )
    }

    /// DNS name of the client Service.
    pub fn client_host(&self) -> String {
        format!(
            "{}.{}.svc.{}",
            self.base, self.namespace, self.cluster_domain
        )
    }

    /// The URL clients in the cluster connect to (`status.clientURL`): `tls://` when client
    /// TLS is on, so clients know to expect it.
    pub fn client_url(&self, tls: bool) -> String {
        let scheme = if tls { "tls" } else { "nats" };
        format!(
            "{scheme}://{}:{}",
            self.client_host(),
            crate::crd::CLIENT_PORT
        )
    }
}

/// The selector labels in `key=value,…` form, as the scale subresource reads them from
/// `status.selector`.
pub fn selector_string(names: &Names) -> String {
    selector_labels(names)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The labels every rendered object carries.
pub fn common_labels(names: &Names) -> BTreeMap<String, String> {
    let mut l = selector_labels(names);
    l.insert(
        "app.kubernetes.io/managed-by".to_string(),
        MANAGER.to_string(),
    );
    l
}

/// The stable subset that selects the brokers' pods (StatefulSet and PDB selectors, Service
/// selectors). Never changes for an existing NatsMini: a StatefulSet's selector is immutable.
pub fn selector_labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP_NAME.to_string()),
        ("app.kubernetes.io/instance".to_string(), names.base.clone()),
        (
            "app.kubernetes.io/component".to_string(),
            COMPONENT.to_string(),
        ),
    ])
}

/// Metadata of a rendered object: name, namespace and [`common_labels`].
pub fn object_meta(names: &Names, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(names.namespace.clone()),
        labels: Some(common_labels(names)),
        ..ObjectMeta::default()
    }
}

/// A DNS-1035 label: `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::NatsMiniSpec;

    fn nm(name: &str, replicas: i32) -> NatsMini {
        let mut nm = NatsMini::new(
            name,
            NatsMiniSpec {
                replicas,
                ..serde_json::from_str("{}").unwrap()
            },
        );
        nm.metadata.namespace = Some("ns".into());
        nm
    }

    #[test]
    fn names_are_derived_from_the_natsmini() {
        let n = Names::new(&nm("demo", 3), &RenderContext::default()).unwrap();
        assert_eq!(n.headless, "demo-headless");
        assert_eq!(n.config_map, "demo-config");
        assert_eq!(n.pod(2), "demo-2");
        assert_eq!(n.pod_host(2), "demo-2.demo-headless.ns.svc.cluster.local");
        assert_eq!(n.client_host(), "demo.ns.svc.cluster.local");
        assert_eq!(n.client_url(false), "nats://demo.ns.svc.cluster.local:4222");
        assert_eq!(n.client_url(true), "tls://demo.ns.svc.cluster.local:4222");
        assert_eq!(
            selector_string(&n),
            "app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo,app.kubernetes.io/name=nats-mini"
        );
    }

    #[test]
    fn the_longest_name_that_fits_is_52_characters() {
        let ctx = RenderContext::default();
        let ok = format!("a{}", "b".repeat(51));
        assert!(Names::new(&nm(&ok, 3), &ctx).is_ok());
        let too_long = format!("a{}", "b".repeat(52));
        let err = Names::new(&nm(&too_long, 3), &ctx).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{err}");
        assert!(err.to_string().contains("at most 52"), "{err}");
    }

    #[test]
    fn names_that_cannot_name_services_are_refused() {
        let ctx = RenderContext::default();
        for bad in ["1abc", "Abc", "a.b", "a_b", "a-", "-a", ""] {
            assert!(
                matches!(
                    Names::new(&nm(bad, 1), &ctx),
                    Err(Error::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_namespace_is_an_error() {
        let mut n = nm("demo", 1);
        n.metadata.namespace = None;
        assert!(matches!(
            render(&n, &RenderContext::default()),
            Err(Error::MissingMetadata("namespace"))
        ));
    }

    #[test]
    fn bad_cluster_domain_is_an_error() {
        let ctx = RenderContext {
            cluster_domain: "cluster..local".into(),
            ..RenderContext::default()
        };
        assert!(render(&nm("demo", 1), &ctx).is_err());
    }

    #[test]
    fn owner_reference_reaches_every_object() {
        let mut n = nm("demo", 1);
        n.spec.monitoring.service_monitor.enabled = true;
        let mut r = render(&n, &RenderContext::default()).unwrap();
        r.set_owner_reference(OwnerReference {
            api_version: "nats-mini.io/v1alpha1".into(),
            kind: "NatsMini".into(),
            name: "demo".into(),
            uid: "1234".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        });
        let values = r.to_values().unwrap();
        assert_eq!(values.len(), 6);
        for v in values {
            assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "1234", "{v}");
        }
    }
}
