//! Everything the operator renders, and `deploy/crd.yaml`, validated against the Kubernetes
//! OpenAPI schemas with `kubernetes-validate --strict` (pip `kubernetes-validate`, installed
//! in the workspace's `.venv`) for Kubernetes 1.29 and for the newest version the tool ships.
//! The tool missing is a failure, not a skip.
//!
//! What kubernetes-validate checks: each built-in object (ConfigMap, Service, StatefulSet,
//! PodDisruptionBudget, CustomResourceDefinition) against the JSON schema generated from that
//! Kubernetes version's OpenAPI document; `--strict` also rejects unknown fields, which is
//! what catches a field k8s-openapi 0.29 (1.33 types) knows but 1.29 does not. It does not
//! check apiserver-side rules (immutable fields, cross-field validation, structural-schema
//! rules of a CRD's schema: `tests/crd.rs` covers those), and it has no schema for custom
//! resources: NatsMini and ServiceMonitor only produce a "Couldn't find schema" warning.
//! So NatsMini examples are validated here against the CRD's own openAPIV3Schema with the
//! `jsonschema` package (a dependency of kubernetes-validate), and the ServiceMonitor's
//! shape is asserted in `tests/properties.rs`.

mod common;

use nats_mini_operator::render::render;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest Kubernetes version the rendered objects must be valid for.
const OLDEST: &str = "1.29.0";

fn kubernetes_validate() -> PathBuf {
    common::venv_tool(
        "kubernetes-validate",
        "KUBERNETES_VALIDATE",
        "kubernetes-validate",
    )
}

/// Runs the tool; returns (exit code, stdout lines).
fn run(tool: &Path, version: Option<&str>, files: &[PathBuf]) -> (i32, Vec<String>) {
    let mut cmd = Command::new(tool);
    cmd.arg("--strict");
    if let Some(v) = version {
        cmd.args(["-k", v]);
    }
    cmd.args(files);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty() || out.status.success(),
        "kubernetes-validate failed: {stderr}"
    );
    (
        out.status.code().unwrap_or(-1),
        stdout.lines().map(str::to_string).collect(),
    )
}

/// The newest Kubernetes version the installed tool ships: what it validates against when
/// no `-k` is given.
fn newest_version(tool: &Path) -> String {
    let crd = common::repo_root().join("deploy").join("crd.yaml");
    let (_, lines) = run(tool, None, &[crd]);
    lines
        .iter()
        .find_map(|l| l.split(" against version ").nth(1))
        .map(|v| format!("{}.0", v.trim()))
        .unwrap_or_else(|| panic!("cannot tell the newest version from {lines:?}"))
}

#[test]
fn rendered_objects_and_the_crd_validate_for_1_29_and_the_newest_kubernetes() {
    let tool = kubernetes_validate();
    let newest = newest_version(&tool);
    let minor: u32 = newest
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("bad version {newest}"));
    assert!(
        minor > 29,
        "kubernetes-validate ships nothing newer than 1.29 ({newest})"
    );
    eprintln!("validating for Kubernetes {OLDEST} and {newest}");
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = common::golden_context();

    let mut files = vec![common::repo_root().join("deploy").join("crd.yaml")];
    let mut builtin_objects = 1; // the CRD
    let mut custom_objects = 0;
    for (example, docs) in common::examples() {
        let mut yaml = String::new();
        for nm in &docs {
            let rendered = render(nm, &ctx).unwrap_or_else(|e| panic!("{example}: {e}"));
            builtin_objects += 5;
            custom_objects += usize::from(rendered.service_monitor.is_some());
            yaml.push_str(&rendered.to_yaml().expect("yaml"));
        }
        let path = dir.path().join(format!("{example}.yaml"));
        std::fs::write(&path, yaml).expect("write rendered yaml");
        files.push(path);
    }

    for version in [OLDEST, newest.as_str()] {
        let (code, lines) = run(&tool, Some(version), &files);
        let minor = version.rsplit_once('.').map_or(version, |(mm, _)| mm);
        let passed = lines
            .iter()
            .filter(|l| l.starts_with("INFO ") && l.ends_with(&format!("against version {minor}")))
            .count();
        let errors: Vec<&String> = lines
            .iter()
            .filter(|l| !l.starts_with("INFO ") && !l.starts_with("WARN "))
            .collect();
        let unexpected_warnings: Vec<&String> = lines
            .iter()
            .filter(|l| {
                l.starts_with("WARN ")
                    && !l.contains("kind ServiceMonitor with api version monitoring.coreos.com/v1")
            })
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
        assert!(
            unexpected_warnings.is_empty(),
            "Kubernetes {version}: {unexpected_warnings:?}"
        );
        assert_eq!(
            passed,
            builtin_objects,
            "Kubernetes {version}: expected every built-in object to pass:\n{}",
            lines.join("\n")
        );
        let warned = lines.iter().filter(|l| l.starts_with("WARN ")).count();
        assert_eq!(
            warned, custom_objects,
            "one 'no schema' warning per ServiceMonitor"
        );
    }
}

#[test]
fn a_field_unknown_to_kubernetes_1_29_is_caught() {
    // The strict 1.29 schemas reject a field only newer Kubernetes has: pod-level
    // `resources` arrived in 1.32, and k8s-openapi's 1.33 types could carry it. Proves the
    // check has teeth.
    let tool = kubernetes_validate();
    let (_, docs) = common::examples().into_iter().next().expect("an example");
    let rendered = render(&docs[0], &common::golden_context()).expect("renders");
    let mut sts = serde_json::to_value(&rendered.stateful_set).expect("json");
    sts["spec"]["template"]["spec"]["resources"] = serde_json::json!({"limits": {"cpu": "1"}});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sts.yaml");
    std::fs::write(&path, serde_yaml::to_string(&sts).expect("yaml")).expect("write");
    let (code, lines) = run(&tool, Some(OLDEST), std::slice::from_ref(&path));
    assert_ne!(
        code, 0,
        "pod-level resources must not validate for 1.29: {lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("ERROR ")), "{lines:?}");
}

/// The Python beside kubernetes-validate (the venv's), which has `jsonschema` and `yaml`.
fn venv_python() -> PathBuf {
    let tool = kubernetes_validate();
    let python = tool.with_file_name("python");
    assert!(
        python.is_file(),
        "no python beside {} (install kubernetes-validate into the .venv)",
        tool.display()
    );
    python
}

const SCHEMA_CHECK: &str = r#"
import json, sys, jsonschema
data = json.load(sys.stdin)
schema = data["schema"]
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
problems = []
for name, obj in data["good"]:
    for e in v.iter_errors(obj):
        problems.append("%s should validate: %s: %s" % (name, "/".join(map(str, e.path)), e.message))
for name, obj in data["bad"]:
    if v.is_valid(obj):
        problems.append("%s should be rejected by the schema" % name)
print("\n".join(problems))
sys.exit(1 if problems else 0)
"#;

#[test]
fn examples_match_the_crd_schema_and_bad_values_do_not() {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(nats_mini_operator::NatsMini::crd()).expect("crd");
    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    let mut good = Vec::new();
    for (example, docs) in common::examples() {
        for nm in docs {
            let mut v = serde_json::to_value(&nm).expect("json");
            // What a user writes has no namespace/status; the schema does not cover metadata.
            v.as_object_mut().expect("object").remove("metadata");
            good.push(serde_json::json!([example, v]));
        }
    }
    // Spellings the examples do not use: Go's bare "0" and its micro signs (busyPoll "0" turns
    // busy polling off).
    let good_specs = [
        (
            "busy poll off",
            serde_json::json!({"limits": {"busyPoll": "0"}}),
        ),
        (
            "busy poll with micro sign",
            serde_json::json!({"limits": {"busyPoll": "50\u{b5}s"}}),
        ),
        (
            "busy poll with greek mu",
            serde_json::json!({"limits": {"busyPoll": "1.5\u{3bc}s"}}),
        ),
        (
            "write deadline in microseconds",
            serde_json::json!({"limits": {"writeDeadline": "1500us"}}),
        ),
    ];
    for (name, spec) in good_specs {
        good.push(serde_json::json!([name, {"apiVersion": "nats-mini.io/v1alpha1", "kind": "NatsMini", "spec": spec}]));
    }
    let bad_specs = [
        ("negative replicas", serde_json::json!({"replicas": -1})),
        ("too many replicas", serde_json::json!({"replicas": 5000})),
        (
            "unknown tuning mode",
            serde_json::json!({"tuning": {"mode": "magic"}}),
        ),
        (
            "tiny somaxconn",
            serde_json::json!({"tuning": {"somaxconn": 5}}),
        ),
        (
            "small fileMax",
            serde_json::json!({"tuning": {"fileMax": 100}}),
        ),
        (
            "unknown pull policy",
            serde_json::json!({"image": {"pullPolicy": "Sometimes"}}),
        ),
        (
            "bad image tag",
            serde_json::json!({"image": {"tag": "a b"}}),
        ),
        ("port 0", serde_json::json!({"cluster": {"port": 0}})),
        (
            "port 70000",
            serde_json::json!({"monitoring": {"port": 70000}}),
        ),
        (
            "size word",
            serde_json::json!({"limits": {"maxPayload": "lots"}}),
        ),
        (
            "size with space",
            serde_json::json!({"limits": {"maxPending": "1 mb"}}),
        ),
        (
            "negative size",
            serde_json::json!({"limits": {"maxControlLine": -1}}),
        ),
        (
            "duration without unit",
            serde_json::json!({"limits": {"writeDeadline": "10"}}),
        ),
        (
            "duration word",
            serde_json::json!({"lameDuckDuration": "soon"}),
        ),
        (
            "busy poll word",
            serde_json::json!({"limits": {"busyPoll": "soon"}}),
        ),
        (
            "busy poll as a number",
            serde_json::json!({"limits": {"busyPoll": 0}}),
        ),
        (
            "negative busy poll",
            serde_json::json!({"limits": {"busyPoll": "-50us"}}),
        ),
        (
            "zero with leading zero",
            serde_json::json!({"limits": {"busyPoll": "00"}}),
        ),
        (
            "zero connections",
            serde_json::json!({"limits": {"maxConnections": 0}}),
        ),
        ("unknown log level", serde_json::json!({"logLevel": "loud"})),
        (
            "unknown service type",
            serde_json::json!({"service": {"type": "ExternalName"}}),
        ),
        (
            "user name with quote",
            serde_json::json!({"auth": {"users": {"secretName": "s", "users": [{"username": "a\"b"}]}}}),
        ),
        (
            "empty user list",
            serde_json::json!({"auth": {"users": {"secretName": "s", "users": []}}}),
        ),
        (
            "secret key with slash",
            serde_json::json!({"auth": {"token": {"secretName": "s", "key": "a/b"}}}),
        ),
        (
            "cluster name with space",
            serde_json::json!({"cluster": {"name": "a b"}}),
        ),
    ];
    let bad: Vec<serde_json::Value> = bad_specs
        .iter()
        .map(|(name, spec)| {
            serde_json::json!([name, {"apiVersion": "nats-mini.io/v1alpha1", "kind": "NatsMini", "spec": spec}])
        })
        .collect();
    let input = serde_json::json!({"schema": schema, "good": good, "bad": bad});
    let mut child = Command::new(venv_python())
        .args(["-c", SCHEMA_CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.to_string().as_bytes())
            .expect("write schema check input");
    }
    let out = child.wait_with_output().expect("python finished");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
