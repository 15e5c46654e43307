//! The generated CRD: `deploy/crd.yaml` must equal what `nats-mini-operator crd` prints, and
//! the schema must follow the apiserver's structural-schema rules, which kubernetes-validate
//! does not check (it validates the CRD object's shape, not what its schema may contain).

mod common;

use kube::CustomResourceExt;
use nats_mini_operator::NatsMini;
use serde_json::Value;

fn generated_yaml() -> String {
    format!(
        "---\n{}",
        serde_yaml::to_string(&NatsMini::crd()).expect("CRD serializes")
    )
}

#[test]
fn deploy_crd_yaml_matches_the_generated_crd() {
    let path = common::repo_root().join("deploy").join("crd.yaml");
    let fresh = generated_yaml();
    if common::update_golden() {
        std::fs::write(&path, &fresh).expect("write deploy/crd.yaml");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "deploy/crd.yaml is out of date with the Rust types. Regenerate it:\n  \
         cargo run -p nats-mini-operator -- crd > deploy/crd.yaml"
    );
}

#[test]
fn binary_prints_the_same_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nats-mini-operator"))
        .arg("crd")
        .output()
        .expect("run nats-mini-operator crd");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), generated_yaml());
}

fn schema() -> Value {
    let crd = serde_json::to_value(NatsMini::crd()).expect("CRD as JSON");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Walks every schema node with its path.
fn walk<'a>(node: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), node));
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            walk(v, format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, format!("{path}[]"), out);
    }
    if let Some(ap) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(ap, format!("{path}{{}}"), out);
    }
}

#[test]
fn schema_is_structural() {
    let schema = schema();
    let mut nodes = Vec::new();
    walk(&schema, "$".into(), &mut nodes);
    assert!(nodes.len() > 100, "the schema is suspiciously small");
    for (path, node) in nodes {
        let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        let preserve = node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        assert!(
            node.get("type").is_some() || int_or_string || preserve,
            "{path}: no type"
        );
        if int_or_string {
            assert!(
                node.get("type").is_none(),
                "{path}: int-or-string with a type"
            );
        }
        for junctor in ["anyOf", "oneOf", "allOf", "not", "$ref"] {
            assert!(
                node.get(junctor).is_none(),
                "{path}: {junctor} is not allowed here"
            );
        }
        assert!(
            !(node.get("properties").is_some() && node.get("additionalProperties").is_some()),
            "{path}: properties and additionalProperties together"
        );
        if node.get("properties").is_some() {
            assert_eq!(node["type"], "object", "{path}: properties on a non-object");
        }
        if let Some(required) = node.get("required").and_then(Value::as_array) {
            for r in required {
                let r = r.as_str().expect("required names are strings");
                assert!(
                    node["properties"].get(r).is_some(),
                    "{path}: required {r} is not a property"
                );
            }
        }
    }
}

#[test]
fn crd_has_the_api_users_expect() {
    let crd = serde_json::to_value(NatsMini::crd()).expect("CRD as JSON");
    assert_eq!(crd["metadata"]["name"], "natsminis.nats-mini.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "nm");
    let v = &crd["spec"]["versions"][0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["subresources"]["status"], serde_json::json!({}));
    assert_eq!(
        v["subresources"]["scale"],
        serde_json::json!({
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        })
    );
    let columns: Vec<&str> = v["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("column name"))
        .collect();
    assert_eq!(columns, ["Replicas", "Ready", "Client URL", "Age"]);

    let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(spec["replicas"]["minimum"], 0.0);
    assert_eq!(spec["replicas"]["default"], 1);
    assert_eq!(
        spec["tuning"]["properties"]["mode"]["enum"],
        serde_json::json!(["initContainer", "sysctls", "none"])
    );
    assert_eq!(
        spec["image"]["properties"]["pullPolicy"]["enum"],
        serde_json::json!(["Always", "IfNotPresent", "Never"])
    );
    assert_eq!(spec["tuning"]["properties"]["somaxconn"]["minimum"], 128.0);
    assert_eq!(spec["tuning"]["properties"]["somaxconn"]["default"], 8192);
    assert_eq!(spec["cluster"]["properties"]["port"]["maximum"], 65535.0);
    let mode_doc = spec["tuning"]["properties"]["mode"]["description"]
        .as_str()
        .expect("description");
    assert!(mode_doc.contains("--allowed-unsafe-sysctls=net.core.somaxconn"));
    let file_max_doc = spec["tuning"]["properties"]["fileMax"]["description"]
        .as_str()
        .expect("description");
    assert!(file_max_doc.contains("NODE-WIDE"));
    assert!(
        spec["limits"]["properties"]["maxPayload"]["pattern"]
            .as_str()
            .is_some()
    );
    assert!(spec["lameDuckDuration"]["pattern"].as_str().is_some());
    // busyPoll: a duration like writeDeadline (same pattern, which takes Go's bare "0"), with
    // the advice for CPU-limited pods where `kubectl explain` shows it.
    let limits = &spec["limits"]["properties"];
    assert_eq!(limits["busyPoll"]["type"], "string");
    assert_eq!(limits["busyPoll"]["nullable"], true);
    assert_eq!(
        limits["busyPoll"]["pattern"],
        limits["writeDeadline"]["pattern"]
    );
    let busy_poll_doc = limits["busyPoll"]["description"]
        .as_str()
        .expect("description");
    for want in ["busy_poll", "\"0\" turns it off", "CPU limit", "CFS quota"] {
        assert!(
            busy_poll_doc.contains(want),
            "{want:?} not in {busy_poll_doc:?}"
        );
    }
    // Every spec field is documented.
    let mut nodes = Vec::new();
    walk(
        &v["schema"]["openAPIV3Schema"]["properties"]["spec"],
        "spec".into(),
        &mut nodes,
    );
    for (path, node) in nodes {
        assert!(
            node.get("description").is_some() || path.ends_with("[]") || path.ends_with("{}"),
            "{path} has no description"
        );
    }
}
