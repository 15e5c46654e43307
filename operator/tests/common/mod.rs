//! Helpers shared by the operator's integration tests: where things are, the example
//! NatsMinis, the fixed render context of the golden files, and the Python venv tools.

#![allow(dead_code)]

use nats_mini_operator::NatsMini;
use nats_mini_operator::render::{DEFAULT_CLUSTER_DOMAIN, DEFAULT_IMAGE_REPOSITORY, RenderContext};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The workspace root (the parent of `operator/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("operator/ has a parent")
        .to_path_buf()
}

/// `deploy/examples`.
pub fn examples_dir() -> PathBuf {
    repo_root().join("deploy").join("examples")
}

/// Every example as (stem, NatsMini documents), sorted by file name. Objects without a
/// namespace get `default`, as `nats-mini-operator render` does.
pub fn examples() -> Vec<(String, Vec<NatsMini>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("deploy/examples exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected at least 4 examples, found {files:?}"
    );
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable example");
            let docs = serde_yaml::Deserializer::from_str(&text)
                .map(|doc| {
                    let mut nm = NatsMini::deserialize(doc)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    nm.metadata
                        .namespace
                        .get_or_insert_with(|| "default".into());
                    nm
                })
                .collect();
            let stem = path
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (stem, docs)
        })
        .collect()
}

/// The context golden files are rendered with: fixed, so a version bump does not change them.
pub fn golden_context() -> RenderContext {
    RenderContext {
        cluster_domain: DEFAULT_CLUSTER_DOMAIN.into(),
        image_repository: DEFAULT_IMAGE_REPOSITORY.into(),
        image_tag: "0.1.0".into(),
    }
}

/// A tool from the workspace's Python venv (`.venv/bin/NAME`), or from `$PATH`, or from the
/// environment variable `env_var`. Panics with install instructions when it is missing:
/// these tests must fail, not skip, on a machine without their tools.
pub fn venv_tool(name: &str, env_var: &str, pip_package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv").join("bin").join(name);
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{name} not found (looked at ${env_var}, {}, $PATH). Install it with \
         `.venv/bin/pip install {pip_package}` (scripts/test-deps.sh does this).",
        venv.display()
    );
}

/// Whether `UPDATE_GOLDEN=1` asks tests to rewrite their expected files.
pub fn update_golden() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// Projects `files` (key, content) into `dir` as the kubelet's atomic writer updates a
/// ConfigMap or Secret volume: the files live in a fresh `..<version>` directory, `..data`
/// links to it (replaced by a rename, so readers switch at once), each key is a link through
/// `..data`, and older versions are removed.
pub fn project_volume(dir: &Path, files: &[(&str, &[u8])], version: usize) {
    use std::os::unix::fs::PermissionsExt;
    let versioned = format!("..{version}");
    let target = dir.join(&versioned);
    std::fs::create_dir_all(&target).expect("volume dir");
    for (key, content) in files {
        let file = target.join(key);
        std::fs::write(&file, content).expect("writing a volume key");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(&versioned, &tmp).expect("..data_tmp link");
    std::fs::rename(&tmp, dir.join("..data")).expect("swapping ..data");
    for (key, _) in files {
        let link = dir.join(key);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{key}"), &link).expect("key link");
        }
    }
    for old in std::fs::read_dir(dir).unwrap() {
        let old = old.unwrap().file_name().to_string_lossy().into_owned();
        if old.starts_with("..") && old != versioned && old != "..data" {
            std::fs::remove_dir_all(dir.join(old)).unwrap();
        }
    }
}
