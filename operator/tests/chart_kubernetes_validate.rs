//! Every manifest the chart renders (defaults, every ci values file, everything switched on),
//! the chart's CRD and everything in deploy/ validated with `kubernetes-validate --strict`
//! (pip kubernetes-validate) for Kubernetes 1.29 and the newest version the tool ships.
//! Custom resources (ServiceMonitor, cert-manager's Certificate and Issuer) have no schema
//! there: exactly one "no schema" warning per such object is allowed; their shape is covered
//! by the equivalence tests (the operator's ServiceMonitor is checked in tests/properties.rs,
//! the webhook's cert-manager objects in chart_webhook.rs and chart_deploy.rs).

mod chart_support;
mod common;

use chart_support::{
    chart_dir, ci_values_file, helm_batch, kubernetes_validate, newest_kubernetes, rendered,
    repo_root, template_job,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;

const OLDEST: &str = "1.29.0";

/// Kinds kubernetes-validate has no schema for.
const CUSTOM: [&str; 3] = ["ServiceMonitor", "Certificate", "Issuer"];

#[test]
fn chart_and_deploy_manifests_validate_for_1_29_and_the_newest_kubernetes() {
    let newest = newest_kubernetes();
    let minor: u32 = newest
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("bad version {newest}"));
    assert!(
        minor > 29,
        "kubernetes-validate ships nothing newer than 1.29"
    );

    // Releases to render: (release, namespace, values files, values).
    let mut releases: Vec<(String, Vec<PathBuf>, Value)> =
        vec![("defaults".into(), vec![], json!({}))];
    for (example, _) in common::examples() {
        releases.push((example.clone(), vec![ci_values_file(&example)], json!({})));
    }
    releases.push((
        "everything".into(),
        vec![ci_values_file("tls")],
        json!({
            "operator": {"enabled": true},
            "networkPolicy": {
                "enabled": true,
                "clientFrom": [{"namespaceSelector": {"matchLabels": {"nats-client": "true"}}}],
                "monitorFrom": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
            },
            "tuning": {"mode": "initContainer", "fileMax": 1_048_576},
            "pdb": {"maxUnavailable": "50%"},
            "pod": {"securityContext": {"fsGroup": 65532}},
        }),
    ));
    // The webhook on cert-manager (the default above generates its certificate).
    releases.push((
        "webhook-cert-manager".into(),
        vec![],
        json!({"operator": {"enabled": true, "webhook": {"failurePolicy": "Fail",
            "certManager": {"enabled": true}}}}),
    ));
    let jobs = releases
        .iter()
        .map(|(name, files, values)| {
            template_job(
                &format!("r-{name}").chars().take(40).collect::<String>(),
                "validate",
                files,
                values.clone(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = vec![
        repo_root().join("deploy").join("crd.yaml"),
        repo_root().join("deploy").join("operator.yaml"),
        chart_dir().join("crds").join("natsminis.nats-mini.io.yaml"),
        repo_root()
            .join("deploy")
            .join("webhook")
            .join("webhook.yaml"),
    ];
    // crd.yaml and the chart's CRD copy: one object each; operator.yaml: every document.
    let operator_yaml = std::fs::read_to_string(&files[1]).expect("deploy/operator.yaml");
    let mut builtin = 2 + serde_yaml::Deserializer::from_str(&operator_yaml).count();
    let mut custom = 0;
    let webhook_yaml = std::fs::read_to_string(&files[3]).expect("deploy/webhook/webhook.yaml");
    for doc in serde_yaml::Deserializer::from_str(&webhook_yaml) {
        let obj = serde_yaml::Value::deserialize(doc).expect("YAML");
        if CUSTOM.contains(&obj["kind"].as_str().expect("kind")) {
            custom += 1;
        } else {
            builtin += 1;
        }
    }
    let mut kinds = std::collections::BTreeSet::new();
    for ((name, _, _), result) in releases.iter().zip(helm_batch(jobs)) {
        let chart = rendered(&result).unwrap_or_else(|e| panic!("{name}: {e}"));
        for obj in chart.objects() {
            let kind = obj["kind"].as_str().expect("kind");
            kinds.insert(kind.to_string());
            if CUSTOM.contains(&kind) {
                custom += 1;
            } else {
                builtin += 1;
            }
        }
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, chart.yaml_stream()).expect("write rendered chart");
        files.push(path);
    }
    for kind in [
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ServiceMonitor",
        "Secret",
        "MutatingWebhookConfiguration",
        "Certificate",
        "Issuer",
    ] {
        assert!(kinds.contains(kind), "no {kind} was validated: {kinds:?}");
    }

    for version in [OLDEST, newest.as_str()] {
        let (code, lines) = kubernetes_validate(Some(version), &files);
        let minor = version.rsplit_once('.').map_or(version, |(mm, _)| mm);
        let passed = lines
            .iter()
            .filter(|l| l.starts_with("INFO ") && l.ends_with(&format!("against version {minor}")))
            .count();
        let errors: Vec<&String> = lines
            .iter()
            .filter(|l| !l.starts_with("INFO ") && !l.starts_with("WARN "))
            .collect();
        assert!(
            code == 0 && errors.is_empty(),
            "Kubernetes {version}: exit {code}\n{}",
            errors
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("WARN ")).collect();
        assert!(
            warnings.iter().all(|l| [
                "kind ServiceMonitor with api version monitoring.coreos.com/v1",
                "kind Certificate with api version cert-manager.io/v1",
                "kind Issuer with api version cert-manager.io/v1",
            ]
            .iter()
            .any(|k| l.contains(k))),
            "Kubernetes {version}: {warnings:?}"
        );
        assert_eq!(
            warnings.len(),
            custom,
            "one 'no schema' warning per custom resource"
        );
        assert_eq!(
            passed,
            builtin,
            "Kubernetes {version}: expected every built-in object to pass:\n{}",
            lines.join("\n")
        );
        eprintln!(
            "Kubernetes {version}: {passed} objects valid, {custom} custom resources unchecked"
        );
    }
}

#[test]
fn a_chart_mistake_is_caught_by_the_strict_schemas() {
    // Proves the check has teeth on chart output: a field Kubernetes 1.29 does not know
    // (pod-level resources arrived in 1.32) added to the rendered StatefulSet is rejected.
    let results = helm_batch(vec![template_job("nats", "default", &[], json!({}))]);
    let chart = rendered(&results[0]).expect("renders");
    let mut sts = chart.get("StatefulSet", "nats").clone();
    sts["spec"]["template"]["spec"]["resources"] = json!({"limits": {"cpu": "1"}});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sts.yaml");
    std::fs::write(&path, serde_yaml::to_string(&sts).expect("yaml")).expect("write");
    let (code, lines) = kubernetes_validate(Some(OLDEST), std::slice::from_ref(&path));
    assert_ne!(code, 0, "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("ERROR ")), "{lines:?}");
}
