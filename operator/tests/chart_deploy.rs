//! deploy/: the kustomization, the operator's install manifest (least-privilege RBAC, a
//! leader-elected Deployment with 2 replicas, a metrics Service) and its equality with what
//! the chart renders with `operator.enabled`.

mod chart_support;
mod common;

use chart_support::{HELM_ONLY_LABELS, helm_template, repo_root};
use nats_mini_operator::render::render;
use serde::Deserialize;
use serde_json::{Value, json};

const NAMESPACE: &str = "nats-mini-system";

fn deploy_objects() -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join("deploy").join("operator.yaml"))
        .expect("deploy/operator.yaml");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).expect("YAML");
            serde_json::to_value(v).expect("JSON")
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn kustomization_installs_the_crd_and_the_operator() {
    let text = std::fs::read_to_string(repo_root().join("deploy").join("kustomization.yaml"))
        .expect("deploy/kustomization.yaml");
    let k: Value = serde_yaml::from_str(&text).expect("YAML");
    assert_eq!(k["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(k["kind"], "Kustomization");
    assert_eq!(k["resources"], json!(["crd.yaml", "operator.yaml"]));
    for r in k["resources"].as_array().expect("resources") {
        let path = repo_root().join("deploy").join(r.as_str().expect("path"));
        assert!(path.is_file(), "{} is missing", path.display());
    }
}

#[test]
fn operator_manifest_has_every_object_in_its_namespace() {
    let objects = deploy_objects();
    let kinds: Vec<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().expect("kind").to_string(),
                o["metadata"]["name"].as_str().expect("name").to_string(),
            )
        })
        .collect();
    let want = [
        ("Namespace", NAMESPACE),
        ("ServiceAccount", "nats-mini-operator"),
        ("ClusterRole", "nats-mini-operator"),
        ("ClusterRoleBinding", "nats-mini-operator"),
        ("Role", "nats-mini-operator-leader-election"),
        ("RoleBinding", "nats-mini-operator-leader-election"),
        ("ClusterRole", "nats-mini-edit"),
        ("ClusterRole", "nats-mini-view"),
        ("Deployment", "nats-mini-operator"),
        ("Service", "nats-mini-operator-metrics"),
    ];
    assert_eq!(
        kinds,
        want.iter()
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .collect::<Vec<_>>()
    );
    for o in &objects {
        let cluster_scoped = matches!(
            o["kind"].as_str(),
            Some("Namespace" | "ClusterRole" | "ClusterRoleBinding")
        );
        if cluster_scoped {
            assert!(o["metadata"]["namespace"].is_null(), "{}", o["metadata"]);
        } else {
            assert_eq!(o["metadata"]["namespace"], NAMESPACE, "{}", o["metadata"]);
        }
    }
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        let b = objects
            .iter()
            .find(|o| o["kind"] == binding)
            .expect("binding");
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": "nats-mini-operator", "namespace": NAMESPACE}])
        );
    }
}

/// The (apiGroup, resource) → verbs the rules grant.
fn grants(role: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s.as_str().expect("string").to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(
            rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
            "{rule}"
        );
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                out.push((g.clone(), r.clone(), strings(&rule["verbs"])));
            }
        }
    }
    out
}

#[test]
fn operator_rbac_is_least_privilege_and_covers_what_it_renders() {
    let objects = deploy_objects();
    let cluster = grants(find(&objects, "ClusterRole", "nats-mini-operator"));
    for (g, r, verbs) in &cluster {
        assert!(
            g != "*" && r != "*" && !verbs.iter().any(|v| v == "*"),
            "wildcard in {g}/{r}: {verbs:?}"
        );
        assert!(
            !verbs
                .iter()
                .any(|v| v == "escalate" || v == "bind" || v == "impersonate"),
            "{g}/{r}: {verbs:?}"
        );
        assert_ne!(
            r, "leases",
            "the Lease right belongs in the namespaced Role"
        );
        assert_ne!(
            r, "customresourcedefinitions",
            "the CRD is shipped, not self-installed"
        );
        assert_ne!(r, "pods/exec", "lame duck comes from preStop, not exec");
    }
    let verbs_of = |group: &str, resource: &str| -> Vec<String> {
        cluster
            .iter()
            .filter(|(g, r, _)| g == group && r == resource)
            .flat_map(|(_, _, v)| v.clone())
            .collect()
    };
    let set = |v: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // The exact rights, resource by resource.
    let read = ["get", "list", "watch"];
    let apply = ["get", "list", "watch", "create", "patch", "delete"];
    let expected: Vec<(&str, &str, &[&str])> = vec![
        ("nats-mini.io", "natsminis", &read),
        (
            "nats-mini.io",
            "natsminis/status",
            &["get", "patch", "update"],
        ),
        ("nats-mini.io", "natsminis/finalizers", &["update"]),
        ("apps", "statefulsets", &apply),
        ("", "services", &apply),
        ("", "configmaps", &apply),
        ("policy", "poddisruptionbudgets", &apply),
        ("monitoring.coreos.com", "servicemonitors", &apply),
        ("", "pods", &["get", "list"]),
        ("", "secrets", &read),
        ("", "events", &["create", "patch"]),
        ("events.k8s.io", "events", &["create", "patch"]),
    ];
    for (g, r, v) in &expected {
        assert_eq!(sorted(verbs_of(g, r)), set(v), "{g}/{r}");
    }
    assert_eq!(
        cluster.len(),
        expected.len(),
        "unexpected grants: {cluster:?}"
    );
    // Every kind the operator renders can be applied: derived from a real render, so a new
    // rendered kind without RBAC fails here.
    let (_, docs) = common::examples()
        .into_iter()
        .find(|(e, _)| e == "tls")
        .expect("the tls example (it has a ServiceMonitor)");
    let rendered = render(&docs[0], &common::golden_context())
        .expect("renders")
        .to_values()
        .expect("values");
    for obj in rendered {
        let api = obj["apiVersion"].as_str().expect("apiVersion");
        let group = api.rsplit_once('/').map_or("", |(g, _)| g);
        let resource = format!("{}s", obj["kind"].as_str().expect("kind").to_lowercase());
        let verbs = verbs_of(group, &resource);
        for v in ["create", "patch", "get", "list", "watch"] {
            assert!(
                verbs.iter().any(|x| x == v),
                "the operator renders {group}/{resource} but may not {v} it"
            );
        }
    }
    // Leader election: the Lease, in the operator's namespace only.
    let role = grants(find(&objects, "Role", "nats-mini-operator-leader-election"));
    assert_eq!(role.len(), 1, "{role:?}");
    let (g, r, v) = &role[0];
    assert_eq!((g.as_str(), r.as_str()), ("coordination.k8s.io", "leases"));
    assert_eq!(
        sorted(v.clone()),
        set(&["get", "list", "watch", "create", "update", "patch"])
    );
}

#[test]
fn users_may_scale_natsminis_through_aggregated_roles() {
    let objects = deploy_objects();
    let edit = find(&objects, "ClusterRole", "nats-mini-edit");
    assert_eq!(
        edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    assert!(
        grants(edit).iter().any(|(g, r, v)| g == "nats-mini.io"
            && r == "natsminis/scale"
            && v.iter().any(|x| x == "update")),
        "kubectl scale natsmini needs update on natsminis/scale"
    );
    let view = find(&objects, "ClusterRole", "nats-mini-view");
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    for (_, _, verbs) in grants(view) {
        assert_eq!(verbs, vec!["get", "list", "watch"]);
    }
}

#[test]
fn operator_deployment_is_leader_elected_restricted_and_scraped() {
    let objects = deploy_objects();
    let d = find(&objects, "Deployment", "nats-mini-operator");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "nats-mini-operator");
    let c = &pod["containers"][0];
    assert_eq!(c["args"], json!(["run"]));
    assert_eq!(
        c["image"],
        format!(
            "ghcr.io/nats-mini/nats-mini-operator:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    let env: Vec<&str> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    for name in ["POD_NAME", "POD_NAMESPACE", "LEASE_NAME"] {
        assert!(env.contains(&name), "leader election needs {name}: {env:?}");
    }
    // Restricted Pod Security Standard.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object());
    // Probes and the metrics Service use the same named port.
    assert_eq!(c["ports"][0]["name"], "metrics");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let svc = find(&objects, "Service", "nats-mini-operator-metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        svc["spec"]["selector"], d["spec"]["selector"]["matchLabels"],
        "the metrics Service selects the operator's pods"
    );
    let labels = d["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .expect("labels");
    for (k, v) in d["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(labels.get(k), Some(v), "selector ⊂ pod labels");
    }
}

/// Drops Helm's own labels (and managed-by, which Helm sets and the plain manifest does not).
fn without_helm_labels(mut obj: Value) -> Value {
    fn strip(labels: &mut Value) {
        if let Some(m) = labels.as_object_mut() {
            for k in HELM_ONLY_LABELS {
                m.remove(k);
            }
            m.remove("app.kubernetes.io/managed-by");
        }
    }
    strip(&mut obj["metadata"]["labels"]);
    strip(&mut obj["spec"]["template"]["metadata"]["labels"]);
    obj
}

#[test]
fn chart_with_operator_enabled_renders_deploy_operator_yaml() {
    // Release nats-mini in nats-mini-system gives the names and namespace of the plain
    // manifest; only the Namespace object is the manifest's alone (Helm installs into an
    // existing or --create-namespace namespace).
    let chart = helm_template(
        "nats-mini",
        NAMESPACE,
        &[],
        json!({"operator": {"enabled": true}}),
    );
    let manifest = deploy_objects();
    let mut problems = Vec::new();
    for want in manifest.iter().filter(|o| o["kind"] != "Namespace") {
        let kind = want["kind"].as_str().expect("kind");
        let name = want["metadata"]["name"].as_str().expect("name");
        let got = without_helm_labels(chart.get(kind, name).clone());
        let want = without_helm_labels(want.clone());
        if got != want {
            problems.push(format!(
                "{kind} {name}:\n deploy/operator.yaml: {}\n chart: {}",
                serde_json::to_string(&want).expect("json"),
                serde_json::to_string(&got).expect("json")
            ));
        }
    }
    let operator_objects = chart
        .objects()
        .iter()
        .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/name"] == "nats-mini-operator")
        .count();
    assert_eq!(
        operator_objects,
        manifest.len() - 1,
        "the chart renders operator objects the manifest lacks"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
