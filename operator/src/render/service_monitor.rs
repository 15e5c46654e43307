//! The optional prometheus-operator ServiceMonitor (`monitoring.coreos.com/v1`).
//!
//! prometheus-operator's CRDs are not part of Kubernetes and k8s-openapi has no type for
//! them, so the object is a [`DynamicObject`]; the controller applies it only when the
//! ServiceMonitor CRD is installed. It selects the brokers' Services and scrapes the
//! `monitor` port's `/metrics`. Only the client Service has that port, so each broker is
//! scraped once although the headless Service carries the same labels.

use super::services::MONITOR_PORT_NAME;
use super::{Names, common_labels, object_meta, selector_labels};
use crate::crd::NatsMini;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

/// The API resource of ServiceMonitors.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// The ServiceMonitor `NAME`, when `spec.monitoring.serviceMonitor.enabled`.
pub fn service_monitor(nm: &NatsMini, names: &Names) -> Option<DynamicObject> {
    let sm = &nm.spec.monitoring.service_monitor;
    if !sm.enabled {
        return None;
    }
    let mut metadata = object_meta(names, &names.base);
    let mut labels = sm.labels.clone();
    labels.extend(common_labels(names));
    metadata.labels = Some(labels);
    let mut endpoint = json!({
        "port": MONITOR_PORT_NAME,
        "path": "/metrics",
        "scheme": "http",
    });
    if let (Some(interval), Some(map)) = (&sm.interval, endpoint.as_object_mut()) {
        map.insert("interval".into(), json!(interval.0));
    }
    let mut obj = DynamicObject::new(&names.base, &api_resource());
    obj.metadata = metadata;
    obj.data = json!({
        "spec": {
            "selector": { "matchLabels": selector_labels(names) },
            "namespaceSelector": { "matchNames": [names.namespace] },
            "endpoints": [endpoint],
        }
    });
    Some(obj)
}
