//! The chart on its own, through Helm v4 (pip helm-python-sdk, see chart_support/helm.py):
//! `helm lint` clean, `helm template` for the default values and every values file,
//! values.schema.json refusing a table of bad values with a message naming the field, the
//! values mirroring the NatsMini spec (fields, defaults, one values file per example), and the
//! chart's crds/ copy equal to the generated CRD.

mod chart_support;
mod common;

use chart_support::{
    chart_dir, ci_values_file, helm_batch, helm_template, rendered, spec_to_values, template_job,
};
use kube::CustomResourceExt;
use nats_mini_operator::NatsMini;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Every values file in charts/nats-mini/ci.
fn ci_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .expect("charts/nats-mini/ci")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Value sets lint and template must accept: defaults, every ci file, and the optional parts
/// switched on.
fn value_sets() -> Vec<(String, Vec<PathBuf>, Value)> {
    let mut sets = vec![("defaults".to_string(), vec![], json!({}))];
    for f in ci_files() {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        sets.push((name, vec![f], json!({})));
    }
    sets.push((
        "everything on".into(),
        vec![ci_values_file("tls")],
        json!({
            "operator": {"enabled": true},
            "networkPolicy": {
                "enabled": true,
                "clientFrom": [{"namespaceSelector": {"matchLabels": {"nats-client": "true"}}}],
                "monitorFrom": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
            },
            "tuning": {"mode": "initContainer", "fileMax": 1_048_576},
        }),
    ));
    sets.push((
        "webhook on cert-manager".into(),
        vec![],
        json!({"operator": {"enabled": true, "webhook": {
            "failurePolicy": "Fail", "timeoutSeconds": 5, "excludeNamespaces": ["legacy"],
            "certManager": {"enabled": true, "issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca"}},
        }}}),
    ));
    sets.push((
        "operator without webhook".into(),
        vec![],
        json!({"operator": {"enabled": true, "webhook": {"enabled": false}}}),
    ));
    sets
}

#[test]
fn helm_lint_is_clean_for_every_value_set() {
    let mut jobs = Vec::new();
    for (_, files, values) in value_sets() {
        for kube_version in ["v1.29.0", "v1.37.0"] {
            jobs.push(json!({
                "op": "lint", "values_files": files, "values": values,
                "strict": true, "kube_version": kube_version,
            }));
        }
    }
    let names: Vec<String> = value_sets()
        .into_iter()
        .flat_map(|(n, _, _)| [format!("{n} (1.29)"), format!("{n} (1.37)")])
        .collect();
    let mut problems = Vec::new();
    for (name, result) in names.iter().zip(helm_batch(jobs)) {
        assert_eq!(result["ok"], true, "{name}: {}", result["error"]);
        let report = &result["report"];
        assert_eq!(report["total_charts_linted"], 1, "{name}: {report}");
        for m in report["messages"].as_array().expect("messages") {
            // Severity 1 is INFO ("icon is recommended"); warnings and errors fail.
            if m["severity"].as_i64().unwrap_or(3) >= 2 {
                problems.push(format!("{name}: {} {}", m["path"], m["error"]));
            }
        }
        if let Some(errors) = report["errors"].as_array() {
            problems.extend(errors.iter().map(|e| format!("{name}: {e}")));
        }
    }
    assert!(problems.is_empty(), "helm lint:\n{}", problems.join("\n"));
}

#[test]
fn helm_template_renders_every_value_set() {
    let sets = value_sets();
    let jobs = sets
        .iter()
        .map(|(_, files, values)| template_job("nats", "messaging", files, values.clone()))
        .collect();
    for ((name, _, values), result) in sets.iter().zip(helm_batch(jobs)) {
        let chart = rendered(&result).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kinds: Vec<&str> = chart
            .objects()
            .iter()
            .map(|o| o["kind"].as_str().expect("kind"))
            .collect();
        for kind in ["ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"] {
            assert!(kinds.contains(&kind), "{name}: no {kind} in {kinds:?}");
        }
        for obj in chart.objects() {
            let meta = &obj["metadata"];
            let cluster_scoped = matches!(
                obj["kind"].as_str(),
                Some("ClusterRole" | "ClusterRoleBinding" | "MutatingWebhookConfiguration")
            );
            assert_eq!(
                meta["namespace"].is_null(),
                cluster_scoped,
                "{name}: namespace of {} {}",
                obj["kind"],
                meta["name"]
            );
            assert_eq!(
                meta["labels"]["app.kubernetes.io/managed-by"], "Helm",
                "{name}: {}",
                meta["name"]
            );
            assert!(meta["labels"]["helm.sh/chart"].is_string(), "{name}");
        }
        let operator = values["operator"]["enabled"] == true;
        assert_eq!(kinds.contains(&"Deployment"), operator, "{name}: operator");
        assert_eq!(
            kinds.contains(&"MutatingWebhookConfiguration"),
            operator && values["operator"]["webhook"]["enabled"] != false,
            "{name}: the webhook comes with the operator unless turned off"
        );
        assert_eq!(
            kinds.contains(&"NetworkPolicy"),
            values["networkPolicy"]["enabled"] == true,
            "{name}: NetworkPolicy"
        );
        assert!(
            chart.notes.contains(":4222"),
            "{name}: NOTES.txt tells how to connect:\n{}",
            chart.notes
        );
        eprintln!("{name}: {} objects ({kinds:?})", kinds.len());
    }
}

#[test]
fn notes_say_how_to_connect_and_what_tuning_needs() {
    let r = helm_template("nats", "prod", &[ci_values_file("tls")], json!({}));
    assert!(
        r.notes.contains("tls://nats.prod.svc.cluster.local:4222"),
        "{}",
        r.notes
    );
    assert!(r.notes.contains("nats-users"), "{}", r.notes);
    let r = helm_template(
        "nats",
        "prod",
        &[ci_values_file("tuned-sysctls")],
        json!({}),
    );
    assert!(
        r.notes
            .contains("--allowed-unsafe-sysctls=net.core.somaxconn"),
        "{}",
        r.notes
    );
    let r = helm_template(
        "nats",
        "prod",
        &[ci_values_file("tuned-init-container")],
        json!({}),
    );
    assert!(
        r.notes.contains("NODE-WIDE fs.file-max=2097152"),
        "{}",
        r.notes
    );
}

/// Whether Helm's message names the field: dotted (`nats.limits.maxPayload`, the chart's own
/// checks), as a JSON pointer (`'/nats/limits/maxPayload'`, schema errors), or as the parent's
/// pointer plus the quoted key (missing or unknown properties).
fn names_field(message: &str, field: &str) -> bool {
    let pointer = format!(
        "/{}",
        field
            .replace("[", ".")
            .replace("]", "")
            .split('.')
            .collect::<Vec<_>>()
            .join("/")
    );
    let (parent, last) = pointer.rsplit_once('/').expect("a slash");
    message.contains(field)
        || message.contains(&format!("'{pointer}'"))
        || (message.contains(&format!("'{parent}'")) && message.contains(&format!("'{last}'")))
}

#[test]
fn bad_values_are_refused_with_a_message_naming_the_field() {
    // (values, the field the message must name). Schema errors and the chart's own
    // cross-field checks (nats-mini.validate) alike.
    let cases: Vec<(Value, &str)> = vec![
        (json!({"replicas": -1}), "replicas"),
        (json!({"replicas": 1001}), "replicas"),
        (json!({"replicas": "3"}), "replicas"),
        (json!({"replicas": 1.5}), "replicas"),
        (json!({"replicas": null}), "replicas"),
        (json!({"replica": 3}), "replica"),
        (
            json!({"image": {"pullPolicy": "Sometimes"}}),
            "image.pullPolicy",
        ),
        (json!({"image": {"tag": "a b"}}), "image.tag"),
        (json!({"image": {"tag": "-rc1"}}), "image.tag"),
        (json!({"image": {"repository": ""}}), "image.repository"),
        (
            json!({"nats": {"limits": {"maxPayload": "lots"}}}),
            "nats.limits.maxPayload",
        ),
        (
            json!({"nats": {"limits": {"maxPayload": "1.5mb"}}}),
            "nats.limits.maxPayload",
        ),
        (
            json!({"nats": {"limits": {"maxPayload": 1.5}}}),
            "nats.limits.maxPayload",
        ),
        (
            json!({"nats": {"limits": {"maxPending": "1 mb"}}}),
            "nats.limits.maxPending",
        ),
        (
            json!({"nats": {"limits": {"maxPending": "99999999999999999999"}}}),
            "nats.limits.maxPending",
        ),
        (
            json!({"nats": {"limits": {"maxControlLine": -1}}}),
            "nats.limits.maxControlLine",
        ),
        (
            json!({"nats": {"limits": {"maxConnections": 0}}}),
            "nats.limits.maxConnections",
        ),
        (
            json!({"nats": {"limits": {"maxConnections": "1M"}}}),
            "nats.limits.maxConnections",
        ),
        (
            json!({"nats": {"limits": {"writeDeadline": "10"}}}),
            "nats.limits.writeDeadline",
        ),
        (
            json!({"nats": {"limits": {"pingInterval": "2d"}}}),
            "nats.limits.pingInterval",
        ),
        (
            json!({"nats": {"limits": {"busyPoll": "soon"}}}),
            "nats.limits.busyPoll",
        ),
        (
            // A bare 0 is a number: "0" must be quoted.
            json!({"nats": {"limits": {"busyPoll": 0}}}),
            "nats.limits.busyPoll",
        ),
        (
            json!({"nats": {"limits": {"busyPoll": "-1us"}}}),
            "nats.limits.busyPoll",
        ),
        (
            json!({"nats": {"limits": {"busyPoll": "50u"}}}),
            "nats.limits.busyPoll",
        ),
        (
            json!({"nats": {"limits": {"maxPingsOut": 0}}}),
            "nats.limits.maxPingsOut",
        ),
        (
            json!({"nats": {"limits": {"maxConns": 10}}}),
            "nats.limits.maxConns",
        ),
        (
            json!({"nats": {"resources": {"limits": {"memory": true}}}}),
            "nats.resources.limits.memory",
        ),
        (
            json!({"nats": {"resources": {"limit": {"memory": "1Gi"}}}}),
            "nats.resources.limit",
        ),
        (json!({"auth": {"token": {}}}), "auth.token.secretName"),
        (
            json!({"auth": {"token": {"secretName": "s", "key": "a/b"}}}),
            "auth.token.key",
        ),
        (
            json!({"auth": {"users": {"secretName": "s", "users": []}}}),
            "auth.users.users",
        ),
        (
            json!({"auth": {"users": {"secretName": "s", "users": [{"username": "a\"b"}]}}}),
            "auth.users.users[0].username",
        ),
        (
            json!({"auth": {"users": {"secretName": "s", "users": [{"username": "a", "password": "x"}]}}}),
            "auth.users.users[0].password",
        ),
        (json!({"auth": {"tokn": {"secretName": "s"}}}), "auth.tokn"),
        (json!({"tls": {"secretName": "Bad_Name"}}), "tls.secretName"),
        (
            json!({"tls": {"verifyClients": "yes"}}),
            "tls.verifyClients",
        ),
        (json!({"cluster": {"port": 0}}), "cluster.port"),
        (json!({"cluster": {"name": "a b"}}), "cluster.name"),
        (json!({"monitoring": {"port": 70000}}), "monitoring.port"),
        (
            json!({"monitoring": {"serviceMonitor": {"interval": "30"}}}),
            "monitoring.serviceMonitor.interval",
        ),
        (
            json!({"monitoring": {"serviceMonitor": {"labels": {"release": 1}}}}),
            "monitoring.serviceMonitor.labels.release",
        ),
        (json!({"service": {"type": "ExternalName"}}), "service.type"),
        (json!({"tuning": {"mode": "magic"}}), "tuning.mode"),
        (json!({"tuning": {"somaxconn": 5}}), "tuning.somaxconn"),
        (json!({"tuning": {"somaxconn": 70000}}), "tuning.somaxconn"),
        (
            json!({"tuning": {"mode": "initContainer", "fileMax": 100}}),
            "tuning.fileMax",
        ),
        (json!({"lameDuckDuration": "soon"}), "lameDuckDuration"),
        (json!({"logLevel": "loud"}), "logLevel"),
        (json!({"clusterDomain": "cluster..local"}), "clusterDomain"),
        (json!({"fullnameOverride": "Nats"}), "fullnameOverride"),
        (
            json!({"fullnameOverride": "a".repeat(53)}),
            "fullnameOverride",
        ),
        (json!({"pod": {"labels": {"tier": 1}}}), "pod.labels.tier"),
        (
            json!({"pod": {"tolerations": {"key": "k"}}}),
            "pod.tolerations",
        ),
        (json!({"pod": {"nodeSelect": {}}}), "pod.nodeSelect"),
        (json!({"pdb": {"maxUnavailable": 0}}), "pdb.maxUnavailable"),
        (
            json!({"pdb": {"maxUnavailable": "0%"}}),
            "pdb.maxUnavailable",
        ),
        (
            json!({"pdb": {"maxUnavailable": "half"}}),
            "pdb.maxUnavailable",
        ),
        (
            json!({"networkPolicy": {"enabled": "true"}}),
            "networkPolicy.enabled",
        ),
        (json!({"operator": {"replicas": 0}}), "operator.replicas"),
        (
            json!({"operator": {"image": {"tag": "a:b"}}}),
            "operator.image.tag",
        ),
        (
            json!({"operator": {"webhook": {"failurePolicy": "Maybe"}}}),
            "operator.webhook.failurePolicy",
        ),
        (
            json!({"operator": {"webhook": {"timeoutSeconds": 31}}}),
            "operator.webhook.timeoutSeconds",
        ),
        (
            json!({"operator": {"webhook": {"excludeNamespaces": ["Kube_System"]}}}),
            "operator.webhook.excludeNamespaces[0]",
        ),
        (
            json!({"operator": {"webhook": {"certValidityDays": 0}}}),
            "operator.webhook.certValidityDays",
        ),
        (
            json!({"operator": {"webhook": {"certManager": {"enabled": "yes"}}}}),
            "operator.webhook.certManager.enabled",
        ),
        (
            json!({"operator": {"webhook": {"certManager": {"issuerRef": {"kind": "Vault", "name": "v"}}}}}),
            "operator.webhook.certManager.issuerRef.kind",
        ),
        (
            json!({"operator": {"webhook": {"objectSelector": {}}}}),
            "operator.webhook.objectSelector",
        ),
        // The chart's own checks (the operator's NatsMiniSpec::validate rules).
        (
            json!({"operator": {"enabled": true, "webhook": {"certManager": {"enabled": true, "issuerRef": {"kind": "ClusterIssuer"}}}}}),
            "operator.webhook.certManager.issuerRef.name",
        ),
        (
            json!({"operator": {"enabled": true, "metricsPort": 8443}}),
            "operator.metricsPort",
        ),
        (json!({"cluster": {"port": 4222}}), "cluster.port"),
        (json!({"monitoring": {"port": 6222}}), "cluster.port"),
        (
            json!({"nats": {"limits": {"maxPayload": "128mb"}}}),
            "nats.limits.maxPayload",
        ),
        (
            json!({"nats": {"limits": {"maxPayload": "2mb", "maxPending": "1mb"}}}),
            "nats.limits.maxPayload",
        ),
        (
            json!({"nats": {"limits": {"maxPayload": 0}}}),
            "nats.limits.maxPayload",
        ),
        (
            json!({"nats": {"limits": {"maxPending": "0mb"}}}),
            "nats.limits.maxPending",
        ),
        (
            json!({"nats": {"limits": {"maxControlLine": "10"}}}),
            "nats.limits.maxControlLine",
        ),
        (
            json!({"nats": {"limits": {"pingInterval": "0s"}}}),
            "nats.limits.pingInterval",
        ),
        (
            json!({"nats": {"limits": {"writeDeadline": "0ms"}}}),
            "nats.limits.writeDeadline",
        ),
        (
            json!({"nats": {"limits": {"writeDeadline": "0"}}}),
            "nats.limits.writeDeadline",
        ),
        (
            json!({"nats": {"limits": {"busyPoll": "99999999999999999999h"}}}),
            "nats.limits.busyPoll",
        ),
        (
            json!({"auth": {"token": {"secretName": "a"}, "users": {"secretName": "b", "users": [{"username": "u"}]}}}),
            "auth",
        ),
        (
            json!({"auth": {"users": {"secretName": "b", "users": [{"username": "u"}, {"username": "u"}]}}}),
            "auth.users.users[1].username",
        ),
        (
            json!({"auth": {"users": {"secretName": "b", "users": [{"username": "a@b"}]}}}),
            "auth.users.users[0].passwordKey",
        ),
        (
            json!({"tuning": {"mode": "sysctls", "fileMax": 1_000_000}}),
            "tuning.fileMax",
        ),
        (json!({"lameDuckDuration": "5s"}), "lameDuckDuration"),
        (json!({"lameDuckDuration": "2h"}), "lameDuckDuration"),
        (
            json!({"lameDuckDuration": "99999999999999999999h"}),
            "lameDuckDuration",
        ),
        (
            json!({"clusterDomain": format!("{}.local", "a".repeat(60)).repeat(4)}),
            "clusterDomain",
        ),
    ];
    let mut jobs: Vec<Value> = cases
        .iter()
        .map(|(values, _)| template_job("nats", "default", &[] as &[PathBuf], values.clone()))
        .collect();
    // The release name itself: must be a DNS-1035 label of at most 52 characters.
    let names = [("1nats", "release name"), (&*"n".repeat(53), "at most 52")];
    for (name, _) in names {
        jobs.push(template_job(name, "default", &[] as &[PathBuf], json!({})));
    }
    let results = helm_batch(jobs);
    let mut problems = Vec::new();
    let expectations = cases.iter().map(|(v, f)| (v.to_string(), *f, false)).chain(
        names
            .iter()
            .map(|(n, f)| (format!("release {n}"), *f, true)),
    );
    for ((what, field, literal), result) in expectations.zip(&results) {
        match rendered(result) {
            Ok(_) => problems.push(format!("{what}: accepted, expected an error on {field}")),
            Err(message) => {
                let named = if literal {
                    message.contains(field)
                } else {
                    names_field(&message, field)
                };
                if !named {
                    problems.push(format!(
                        "{what}: the message does not name {field}:\n{message}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    eprintln!("{} bad value sets refused", results.len());
}

#[test]
fn ci_values_files_are_the_examples_in_values_form() {
    // One values file per example, holding the example's spec mapped to values (limits and
    // resources under nats:), read the way `helm -f` reads it (so 1_000_000 is a number).
    let examples = common::examples();
    let mut jobs = Vec::new();
    for (example, _) in &examples {
        jobs.push(json!({"op": "values", "values_files": [ci_values_file(example)]}));
    }
    let results = helm_batch(jobs);
    for ((example, docs), result) in examples.iter().zip(&results) {
        assert_eq!(result["ok"], true, "{example}: {}", result["error"]);
        assert_eq!(docs.len(), 1, "{example}: one NatsMini per example");
        // The spec as written, not with serde's defaults filled in: read the file again.
        let text = std::fs::read_to_string(common::examples_dir().join(format!("{example}.yaml")))
            .expect("example");
        let written: Value = serde_yaml::from_str(&text).expect("example parses");
        let want = spec_to_values(&written["spec"]);
        assert_eq!(
            result["values"], want,
            "{example}: ci/{example}-values.yaml is not deploy/examples/{example}.yaml's spec"
        );
    }
    // And no stray values file.
    let expected: Vec<PathBuf> = examples.iter().map(|(e, _)| ci_values_file(e)).collect();
    assert_eq!(
        ci_files(),
        expected,
        "charts/nats-mini/ci holds one file per example"
    );
}

#[test]
fn users_can_write_the_documented_limits_shape() {
    // The shape from the issue, as users write it.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("values.yaml");
    std::fs::write(
        &file,
        "nats:\n  limits:\n    maxConnections: 1_000_000\n    maxPayload: \"2mb\"\n  resources:\n    limits:\n      memory: 2Gi\n      cpu: \"4\"\n",
    )
    .expect("write values");
    let r = helm_template("nats", "default", &[file], json!({}));
    let config = r.get("ConfigMap", "nats-config")["data"]["nats-mini.conf"]
        .as_str()
        .expect("config")
        .to_string();
    assert!(config.contains("\nmax_connections: 1000000\n"), "{config}");
    assert!(config.contains("\nmax_payload: 2097152\n"), "{config}");
    let sts = r.get("StatefulSet", "nats");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"memory": "2Gi", "cpu": "4"}})
    );
}

#[test]
fn busy_poll_is_written_as_given_and_zero_turns_it_off() {
    // Unset: no busy_poll line (the broker's 50us default). "0", "20us" and "50µs" pass the
    // schema and the chart's checks and are written as given, after the other durations.
    let cases = [
        (json!(null), None),
        (json!("0"), Some("busy_poll: \"0\"")),
        (json!("20us"), Some("busy_poll: \"20us\"")),
        (json!("50\u{b5}s"), Some("busy_poll: \"50\u{b5}s\"")),
        (json!("50\u{3bc}s"), Some("busy_poll: \"50\u{3bc}s\"")),
    ];
    let jobs = cases
        .iter()
        .map(|(v, _)| {
            template_job(
                "nats",
                "default",
                &[] as &[PathBuf],
                json!({"nats": {"limits": {"pingInterval": "2m", "busyPoll": v}}}),
            )
        })
        .collect();
    for ((value, want), result) in cases.iter().zip(helm_batch(jobs)) {
        let r = rendered(&result).unwrap_or_else(|e| panic!("busyPoll {value}: {e}"));
        let config = r.get("ConfigMap", "nats-config")["data"]["nats-mini.conf"]
            .as_str()
            .expect("config")
            .to_string();
        match want {
            None => assert!(!config.contains("busy_poll"), "{config}"),
            Some(line) => assert!(
                config.contains(&format!("\nping_interval: \"2m\"\n{line}\n")),
                "busyPoll {value}: no {line:?} in\n{config}"
            ),
        }
    }
}

/// Schema nodes by dotted path.
fn schema_paths(node: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    out.push((path.to_string(), node.clone()));
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            schema_paths(v, &p, out);
        }
    }
}

fn chart_schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).expect("schema"),
    )
    .expect("values.schema.json is JSON")
}

#[test]
fn every_value_is_documented_and_every_natsmini_field_has_a_value() {
    let schema = chart_schema();
    let mut chart = Vec::new();
    schema_paths(&schema, "", &mut chart);
    for (path, node) in &chart {
        assert!(
            node.get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty()),
            "values.schema.json: {path:?} has no description"
        );
    }
    // Every field of the NatsMini spec (down to where the chart passes Kubernetes objects
    // through) exists in the chart's values, at the mapped path.
    let crd = serde_json::to_value(NatsMini::crd()).expect("crd");
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut crd_paths = Vec::new();
    schema_paths(spec, "", &mut crd_paths);
    let chart_map: std::collections::BTreeMap<&str, &Value> =
        chart.iter().map(|(p, n)| (p.as_str(), n)).collect();
    let values: Value = serde_yaml::from_str(
        &std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml"),
    )
    .expect("values.yaml parses");
    let mut missing = Vec::new();
    let (mut checked, mut defaults) = (0, 0);
    for (path, node) in crd_paths.iter().filter(|(p, _)| !p.is_empty()) {
        let mapped = match path
            .split_once('.')
            .map_or((path.as_str(), ""), |(a, b)| (a, b))
        {
            ("limits" | "resources", rest) => {
                let head = path.split('.').next().unwrap_or_default();
                if rest.is_empty() {
                    format!("nats.{head}")
                } else {
                    format!("nats.{head}.{rest}")
                }
            }
            _ => path.clone(),
        };
        // Below a pass-through node (a Kubernetes type the chart hands over as written) the
        // chart has no schema of its own.
        let passed_through = mapped.match_indices('.').any(|(i, _)| {
            chart_map
                .get(&mapped[..i])
                .is_some_and(|n| n.get("properties").is_none())
        });
        if passed_through {
            continue;
        }
        if !chart_map.contains_key(mapped.as_str()) {
            missing.push(format!("spec.{path} (values: {mapped})"));
            continue;
        }
        checked += 1;
        // Scalar defaults of the CRD are the chart's defaults too.
        if let Some(default) = node.get("default").filter(|d| !d.is_object()) {
            let mut v = &values;
            for part in mapped.split('.') {
                v = &v[part];
            }
            if !v.is_null() {
                assert_eq!(
                    v, default,
                    "values.yaml {mapped} vs the CRD's default of spec.{path}"
                );
                defaults += 1;
            }
        }
    }
    assert!(
        missing.is_empty(),
        "NatsMini fields without a chart value:\n{}",
        missing.join("\n")
    );
    eprintln!(
        "{checked} NatsMini spec fields have a chart value, {defaults} with the same default"
    );
    assert!(
        checked >= 40 && defaults >= 8,
        "{checked} fields, {defaults} defaults"
    );
}

#[test]
fn chart_crd_is_the_generated_crd() {
    // crds/ holds a byte-for-byte copy of deploy/crd.yaml, which tests/crd.rs keeps equal to
    // `nats-mini-operator crd`. UPDATE_GOLDEN=1 rewrites it.
    let generated = format!(
        "---\n{}",
        serde_yaml::to_string(&NatsMini::crd()).expect("CRD serializes")
    );
    let path = chart_dir().join("crds").join("natsminis.nats-mini.io.yaml");
    if common::update_golden() {
        std::fs::write(&path, &generated).expect("write the chart's CRD");
    }
    let copy = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        copy == generated,
        "{} is out of date with the Rust types. Regenerate it:\n  \
         cargo run -p nats-mini-operator -- crd > {}",
        path.display(),
        path.display()
    );
    // And it is the only file there, the one Helm installs.
    let result = &helm_batch(vec![json!({"op": "crds"})])[0];
    let crds = result["crds"].as_array().expect("crds");
    assert_eq!(crds.len(), 1, "{crds:?}");
    assert_eq!(
        crds[0]["filename"],
        "nats-mini/crds/natsminis.nats-mini.io.yaml"
    );
    assert_eq!(
        crds[0]["data"],
        generated.as_str(),
        "Helm loads the copy as it is"
    );
}
