//! The PodDisruptionBudget: at most `spec.pdb.maxUnavailable` brokers (default 1) down at
//! once during drains, so a rolling node upgrade never takes the mesh below quorum of
//! connections. Validation refuses 0 and "0%", which would block every drain.

use super::{Names, object_meta, selector_labels};
use crate::crd::NatsMini;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The PodDisruptionBudget `NAME`.
pub fn pod_disruption_budget(nm: &NatsMini, names: &Names) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: object_meta(names, &names.base),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(nm.spec.pdb.max_unavailable()),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
