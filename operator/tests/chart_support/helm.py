"""Helm v4 for the chart tests, through the pip package helm-python-sdk (import helm_python).

The package has no `helm` executable: it binds libhelm_c (Helm's Go SDK, v4) with ctypes. This
script offers what the Rust tests need as JSON in, JSON out:

    python helm.py < request.json > response.json

request:  {"chart": DIR, "jobs": [JOB, ...]}
JOB:      {"op": "template", "name": RELEASE, "namespace": NS,
           "values_files": [FILE, ...], "values": {...}}         -> like `helm template NAME DIR -n NS -f FILE... --set-json`
          {"op": "lint", "values_files": [...], "values": {...},
           "strict": bool, "kube_version": "v1.29.0"}             -> like `helm lint --strict --kube-version`
          {"op": "values", "values_files": [...]}                 -> the files parsed and merged by Helm's YAML reader
          {"op": "crds"}                                          -> the files under crds/
          {"op": "version"}                                       -> Helm SDK and libhelm_c versions
response: [RESULT, ...], one per job; every RESULT has "ok" (bool) and, when false, "error".
          template: "manifests": [{"source": TEMPLATE, "text": YAML, "objects": [OBJ, ...]}]
          (NOTES.txt apart, as "notes"; empty documents dropped; objects parsed with PyYAML,
          whose YAML 1.1 reading matches the apiserver's).

Values files are read by Helm (`values_from_yaml`, so `1_000_000` is an integer as with
`helm -f`) and merged in order like repeated `-f` flags (maps merge recursively, later files
win); "values" is merged last, like --set-json. Rendering validates values.schema.json first,
as `helm template` does.
"""

import json
import sys

import yaml

try:
    import helm_python as helm
except ImportError as e:  # the Rust side turns this into a failing test with the pip line
    print(json.dumps({"fatal": "cannot import helm_python (pip install helm-python-sdk): %s" % e}))
    sys.exit(3)


def merge(base, override):
    """Helm's mergeMaps: maps merge recursively, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def user_values(job):
    values = {}
    for path in job.get("values_files", []):
        with open(path, encoding="utf-8") as f:
            values = merge(values, helm.values_from_yaml(f.read()) or {})
    return merge(values, job.get("values") or {})


def template(chart, job):
    rendered = chart.render(
        user_values(job),
        name=job["name"],
        namespace=job.get("namespace", "default"),
        is_install=True,
    )
    manifests, notes = [], None
    for source in sorted(rendered):
        text = rendered[source]
        if source.endswith("NOTES.txt"):
            notes = text
            continue
        objects = [o for o in yaml.safe_load_all(text) if o is not None]
        if objects:
            manifests.append({"source": source, "text": text, "objects": objects})
    return {"manifests": manifests, "notes": notes}


def lint(chart_dir, job):
    kwargs = {}
    if "strict" in job:
        kwargs["strict"] = job["strict"]
    if "kube_version" in job:
        kwargs["kube_version"] = job["kube_version"]
    return {"report": helm.lint(chart_dir, user_values(job) or None, **kwargs)}


def run(chart_dir, chart, job):
    op = job["op"]
    if op == "template":
        return template(chart, job)
    if op == "lint":
        return lint(chart_dir, job)
    if op == "values":
        return {"values": user_values(job)}
    if op == "crds":
        return {"crds": chart.crds}
    if op == "version":
        return {"helm": helm.helm_sdk_version(), "helm_c": helm.helm_c_version()}
    raise ValueError("unknown op %r" % op)


def main():
    request = json.load(sys.stdin)
    results = []
    with helm.Chart.load(request["chart"]) as chart:
        for job in request["jobs"]:
            try:
                result = run(request["chart"], chart, job)
                result["ok"] = True
            except helm.HelmError as e:
                result = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            results.append(result)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
