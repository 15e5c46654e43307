//! The two Services of a NatsMini.
//!
//! - `NAME-headless` (clusterIP None) gives every broker a stable DNS name
//!   (`NAME-i.NAME-headless.NS.svc.DOMAIN`) for the route list. It publishes not-ready
//!   addresses: a broker is only ready once it can serve, but its peers must reach it before
//!   that, or a cluster starting in parallel never forms. It carries the client and cluster
//!   ports (no monitoring port, so a ServiceMonitor selecting both Services scrapes each
//!   broker once, through the client Service).
//! - `NAME` is what clients use: client and monitoring ports, with the type and annotations
//!   of `spec.service`.

use super::{Names, object_meta, selector_labels};
use crate::crd::{CLIENT_PORT, NatsMini};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Port names, shared by the container ports, the Services and the probes.
pub const CLIENT_PORT_NAME: &str = "client";
pub const CLUSTER_PORT_NAME: &str = "cluster";
pub const MONITOR_PORT_NAME: &str = "monitor";

fn port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port: number,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        ..ServicePort::default()
    }
}

/// `NAME-headless`: per-pod DNS for routes.
pub fn headless(nm: &NatsMini, names: &Names) -> Service {
    Service {
        metadata: object_meta(names, &names.headless),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(names)),
            ports: Some(vec![
                port(CLIENT_PORT_NAME, CLIENT_PORT),
                port(CLUSTER_PORT_NAME, nm.spec.cluster.port),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// `NAME`: the client Service.
pub fn client(nm: &NatsMini, names: &Names) -> Service {
    let mut metadata = object_meta(names, &names.base);
    if !nm.spec.service.annotations.is_empty() {
        metadata.annotations = Some(nm.spec.service.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(nm.spec.service.type_.as_str().to_string()),
            selector: Some(selector_labels(names)),
            ports: Some(vec![
                port(CLIENT_PORT_NAME, CLIENT_PORT),
                port(MONITOR_PORT_NAME, nm.spec.monitoring.port),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
