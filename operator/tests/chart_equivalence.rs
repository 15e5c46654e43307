//! The Helm-equivalence test: for the same input, the chart (charts/nats-mini, rendered by
//! Helm v4 through helm-python-sdk) and the operator's render functions must produce the same
//! ConfigMap, Services, StatefulSet, PodDisruptionBudget and ServiceMonitor. Drift between the
//! two is a failure.
//!
//! "The same input": each example CR in deploy/examples with its values file
//! charts/nats-mini/ci/<example>-values.yaml and the release named like the NatsMini (the
//! files' correspondence is checked in `chart_helm.rs`), plus a table of edge cases written as
//! NatsMini specs and turned into values by [`chart_support::spec_to_values`].
//!
//! "The same objects": equal as parsed YAML (JSON values), after removing Helm's own labels
//! (`helm.sh/chart`, `app.kubernetes.io/version`) and mapping `app.kubernetes.io/managed-by`
//! (`Helm` ↔ `nats-mini-operator`), and after dropping the config file's leading comment
//! block, which names its writer. Everything else, including every line of the config file,
//! must match.

mod chart_support;
mod common;

use chart_support::{
    ci_values_file, helm_batch, normalise, release_name, rendered, spec_to_values, template_job,
};
use nats_mini_operator::NatsMini;
use nats_mini_operator::render::{RenderContext, render};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Compares the operator's objects with the chart's; returns a readable report of every
/// difference (empty when equal).
fn compare(case: &str, operator: Vec<Value>, chart: &chart_support::Rendered) -> Vec<String> {
    let mut problems = Vec::new();
    let compared_kinds = [
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ];
    let mut expected_names = Vec::new();
    for want in operator {
        let kind = want["kind"].as_str().expect("kind").to_string();
        let name = want["metadata"]["name"].as_str().expect("name").to_string();
        expected_names.push((kind.clone(), name.clone()));
        let want = normalise(want, false);
        let Some(got) = chart
            .objects()
            .into_iter()
            .find(|o| o["kind"] == kind.as_str() && o["metadata"]["name"] == name.as_str())
        else {
            problems.push(format!("{case}: the chart renders no {kind} {name}"));
            continue;
        };
        let got = normalise(got.clone(), true);
        if got != want {
            problems.push(format!(
                "{case}: {kind} {name} differs (- operator, + chart):\n{}",
                diff(&want, &got)
            ));
        }
    }
    // The chart must not render broker objects the operator does not.
    for obj in chart.objects() {
        let kind = obj["kind"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if compared_kinds.contains(&kind)
            && !expected_names
                .iter()
                .any(|(k, n)| k.as_str() == kind && n.as_str() == name)
        {
            problems.push(format!(
                "{case}: the chart renders {kind} {name}, the operator does not"
            ));
        }
    }
    problems
}

/// A line diff of the two objects' YAML.
fn diff(want: &Value, got: &Value) -> String {
    let a = serde_yaml::to_string(want).expect("yaml");
    let b = serde_yaml::to_string(got).expect("yaml");
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for line in &a {
        if !b.contains(line) {
            out.push_str(&format!("- {line}\n"));
        }
    }
    for line in &b {
        if !a.contains(line) {
            out.push_str(&format!("+ {line}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("(same lines, different order or nesting)\n");
        out.push_str(&format!("operator:\n{a:#?}\nchart:\n{b:#?}\n"));
    }
    out
}

fn operator_values(nm: &NatsMini, ctx: &RenderContext) -> Vec<Value> {
    render(nm, ctx)
        .unwrap_or_else(|e| panic!("operator render of {:?}: {e}", nm.metadata.name))
        .to_values()
        .expect("objects serialize")
}

#[test]
fn chart_app_version_is_the_operator_default_image_tag() {
    // The operator's default image tag is its crate version; the chart's is its appVersion.
    // The equivalence below relies on them being equal.
    let chart: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(chart_support::chart_dir().join("Chart.yaml"))
            .expect("Chart.yaml"),
    )
    .expect("Chart.yaml parses");
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        RenderContext::default().image_tag,
        env!("CARGO_PKG_VERSION"),
        "operator default tag"
    );
}

#[test]
fn every_example_renders_the_same_objects_from_the_chart_and_the_operator() {
    let ctx = common::golden_context();
    let mut jobs = Vec::new();
    let mut cases = Vec::new();
    for (example, docs) in common::examples() {
        let file = ci_values_file(&example);
        assert!(
            file.is_file(),
            "{example}: no values file {} (every deploy/examples/<example>.yaml needs one)",
            file.display()
        );
        for nm in docs {
            let namespace = nm.metadata.namespace.clone().expect("namespace");
            jobs.push(template_job(
                &release_name(&nm),
                &namespace,
                std::slice::from_ref(&file),
                json!({}),
            ));
            cases.push((example.clone(), nm));
        }
    }
    let results = helm_batch(jobs);
    let mut problems = Vec::new();
    let mut objects = 0;
    for ((example, nm), result) in cases.iter().zip(&results) {
        let chart = rendered(result).unwrap_or_else(|e| panic!("helm template {example}: {e}"));
        let operator = operator_values(nm, &ctx);
        objects += operator.len();
        problems.extend(compare(example, operator, &chart));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "{} examples: {objects} objects equal between chart and operator",
        cases.len()
    );
    assert!(objects >= 25, "only {objects} objects compared");
}

/// Edge cases beyond the examples: (case, namespace, NatsMini spec, cluster domain, values
/// merged over the mapped spec).
fn edge_cases() -> Vec<(
    &'static str,
    &'static str,
    Value,
    Option<&'static str>,
    Value,
)> {
    vec![
        (
            "zero-replicas",
            "default",
            json!({"replicas": 0}),
            None,
            json!({}),
        ),
        (
            "ports-and-names",
            "prod",
            json!({
                "replicas": 2,
                "cluster": {"port": 7222, "name": "mesh.a_b-1"},
                "monitoring": {"port": 9222},
                "service": {"type": "NodePort"},
                "logLevel": "debug",
                "lameDuckDuration": "90.5s",
                "pdb": {"maxUnavailable": "25%"},
            }),
            None,
            json!({}),
        ),
        (
            "fractional-lame-duck",
            "default",
            // 0.1m is 6s in integers but 6.000000000000001 in floats: the chart must not round up.
            json!({"lameDuckDuration": "0.1m25s1ms999999ns"}),
            None,
            json!({}),
        ),
        (
            "pod-overrides",
            "team-a",
            json!({
                "replicas": 3,
                "tuning": {"mode": "sysctls", "somaxconn": 4096},
                "pod": {
                    "labels": {"team": "a", "app.kubernetes.io/name": "not-this"},
                    "annotations": {"example.com/owner": "team-a"},
                    "securityContext": {
                        "runAsUser": 1000,
                        "fsGroup": 2000,
                        "seccompProfile": {"type": "Unconfined"},
                        "sysctls": [
                            {"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
                            {"name": "net.core.somaxconn", "value": "1"}
                        ]
                    },
                    "topologySpreadConstraints": [
                        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"},
                        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                         "labelSelector": {"matchLabels": {"team": "a"}}}
                    ],
                    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3600000}]
                }
            }),
            None,
            json!({}),
        ),
        (
            "users-and-sizes",
            "default",
            json!({
                "auth": {"users": {"secretName": "pw", "users": [
                    {"username": "alice"}, {"username": "bob@example.com", "passwordKey": "bob"},
                    {"username": "carol.c", "passwordKey": "carol"}
                ]}},
                "tls": {"secretName": "certs"},
                "limits": {
                    "maxConnections": 2_000_000_000_i64,
                    "maxPayload": 1_048_576,
                    "maxPending": "1GB",
                    "maxControlLine": 4096,
                    "writeDeadline": "1m30s",
                    "pingInterval": "2m",
                    "busyPoll": "1ms250us",
                    "maxPingsOut": 1000
                },
            }),
            None,
            json!({}),
        ),
        (
            // Busy polling off, as advised under a CPU limit of one core: `busy_poll: "0"`.
            "busy-poll-off",
            "default",
            json!({
                "limits": {"busyPoll": "0"},
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            }),
            None,
            json!({}),
        ),
        (
            // Microseconds in all three spellings Go accepts, written as given, and a lame duck
            // in µs (the chart's grace-period arithmetic must read it too).
            "busy-poll-micro",
            "default",
            json!({
                "limits": {"busyPoll": "50\u{b5}s", "writeDeadline": "1500\u{3bc}s", "pingInterval": "90000000us"},
                "lameDuckDuration": "45000000\u{b5}s",
            }),
            None,
            json!({}),
        ),
        (
            "size-suffixes",
            "default",
            json!({"limits": {"maxPayload": "1k", "maxPending": "0064Mi", "maxControlLine": "2KiB"}}),
            None,
            json!({}),
        ),
        (
            "numeric-quantities",
            "default",
            json!({"resources": {"limits": {"cpu": "4", "memory": "2Gi"}, "requests": {"cpu": "0.5", "memory": "1073741824"}}}),
            None,
            // What users type: numbers. The chart writes them as quantity strings.
            json!({"nats": {"resources": {"limits": {"cpu": 4}, "requests": {"cpu": 0.5, "memory": 1073741824}}}}),
        ),
        (
            "cluster-domain-and-image",
            "messaging",
            json!({
                "replicas": 2,
                "tuning": {"mode": "initContainer"},
                "image": {"repository": "mirror.example/nats-mini", "tag": "0.1.0-rc.1", "pullPolicy": "Never"},
                "monitoring": {"serviceMonitor": {"enabled": true}},
            }),
            Some("k8s.example.org"),
            json!({}),
        ),
        (
            "a-name-of-exactly-fifty-two-characters-for-ten-pods2",
            "default",
            json!({"replicas": 10, "auth": {"token": {"secretName": "tok"}}}),
            None,
            json!({}),
        ),
    ]
}

/// Deep-merges `over` into `base` (Helm's rule: maps merge, everything else is replaced).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[test]
fn edge_cases_render_the_same_objects_from_the_chart_and_the_operator() {
    let mut jobs = Vec::new();
    let mut cases = Vec::new();
    for (name, namespace, spec, domain, over) in edge_cases() {
        let nm: NatsMini = serde_json::from_value(json!({
            "apiVersion": "nats-mini.io/v1alpha1",
            "kind": "NatsMini",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut ctx = common::golden_context();
        let mut values = spec_to_values(&spec);
        if let Some(d) = domain {
            ctx.cluster_domain = d.to_string();
            values["clusterDomain"] = json!(d);
        }
        merge(&mut values, &over);
        jobs.push(template_job(name, namespace, &[] as &[PathBuf], values));
        cases.push((name, nm, ctx));
    }
    let results = helm_batch(jobs);
    let mut problems = Vec::new();
    for ((name, nm, ctx), result) in cases.iter().zip(&results) {
        match rendered(result) {
            Ok(chart) => problems.extend(compare(name, operator_values(nm, ctx), &chart)),
            Err(e) => problems.push(format!("{name}: helm template failed: {e}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_chart_and_the_operator_refuse_the_same_cross_field_mistakes() {
    // Rules the CRD schema cannot express live in NatsMiniSpec::validate and in the chart's
    // nats-mini.validate helper; each must refuse what the other refuses.
    let specs = [
        json!({"cluster": {"port": 4222}}),
        json!({"monitoring": {"port": 6222}}),
        json!({"limits": {"maxPayload": "128mb"}}),
        json!({"limits": {"maxPayload": "2mb", "maxPending": "1mb"}}),
        json!({"limits": {"maxPayload": 0}}),
        json!({"limits": {"maxPending": "0kb"}}),
        json!({"limits": {"maxControlLine": 10}}),
        json!({"limits": {"pingInterval": "0s"}}),
        json!({"limits": {"writeDeadline": "0.0000000001s"}}),
        json!({"limits": {"writeDeadline": "0"}}),
        json!({"limits": {"busyPoll": "soon"}}),
        json!({"limits": {"busyPoll": "-1us"}}),
        json!({"limits": {"busyPoll": "00"}}),
        json!({"limits": {"busyPoll": "99999999999999999999h"}}),
        json!({"auth": {"token": {"secretName": "a"}, "users": {"secretName": "b", "users": [{"username": "u"}]}}}),
        json!({"auth": {"users": {"secretName": "b", "users": [{"username": "u"}, {"username": "u"}]}}}),
        json!({"auth": {"users": {"secretName": "b", "users": [{"username": "a@b"}]}}}),
        json!({"tuning": {"mode": "sysctls", "fileMax": 1_000_000}}),
        json!({"lameDuckDuration": "10s"}),
        json!({"lameDuckDuration": "29.999s"}),
        json!({"lameDuckDuration": "1h0m0.001s"}),
    ];
    let mut jobs = Vec::new();
    for spec in &specs {
        let nm: NatsMini = serde_json::from_value(json!({
            "apiVersion": "nats-mini.io/v1alpha1", "kind": "NatsMini",
            "metadata": {"name": "bad", "namespace": "default"}, "spec": spec,
        }))
        .expect("deserializes");
        let operator = render(&nm, &common::golden_context());
        assert!(operator.is_err(), "the operator accepts {spec}");
        jobs.push(template_job(
            "bad",
            "default",
            &[] as &[PathBuf],
            spec_to_values(spec),
        ));
    }
    for (spec, result) in specs.iter().zip(helm_batch(jobs)) {
        assert!(
            rendered(&result).is_err(),
            "the chart accepts {spec} (the operator refuses it)"
        );
    }
}
