//! Golden files: every example in `deploy/examples/` rendered with the fixed golden context
//! must equal `tests/golden/<example>/<kind>-<name>.yaml`, one file per object, and the
//! directory must hold no other file. `UPDATE_GOLDEN=1 cargo test -p nats-mini-operator
//! --test golden` rewrites them; review the diff like code.

mod common;

use nats_mini_operator::render::{render, to_yaml_stream};
use std::collections::BTreeMap;
use std::path::Path;

fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

/// The expected files of one example: file name → YAML document.
fn rendered_files(docs: &[nats_mini_operator::NatsMini]) -> BTreeMap<String, String> {
    let ctx = common::golden_context();
    let mut files = BTreeMap::new();
    for nm in docs {
        let values = render(nm, &ctx)
            .unwrap_or_else(|e| panic!("render {:?}: {e}", nm.metadata.name))
            .to_values()
            .expect("objects serialize");
        for v in values {
            let kind = v["kind"].as_str().expect("kind").to_ascii_lowercase();
            let name = v["metadata"]["name"].as_str().expect("name");
            let file = format!("{kind}-{name}.yaml");
            let yaml = to_yaml_stream(std::slice::from_ref(&v)).expect("yaml");
            assert!(
                files.insert(file.clone(), yaml).is_none(),
                "two objects map to {file}"
            );
        }
    }
    files
}

#[test]
fn examples_render_to_their_golden_files() {
    let mut failures = Vec::new();
    for (example, docs) in common::examples() {
        let dir = golden_dir().join(&example);
        let want = rendered_files(&docs);
        if common::update_golden() {
            if dir.exists() {
                for entry in std::fs::read_dir(&dir).expect("golden dir") {
                    let path = entry.expect("entry").path();
                    if path.extension().is_some_and(|e| e == "yaml") {
                        std::fs::remove_file(&path).expect("remove stale golden");
                    }
                }
            }
            std::fs::create_dir_all(&dir).expect("create golden dir");
            for (file, yaml) in &want {
                std::fs::write(dir.join(file), yaml).expect("write golden");
            }
            continue;
        }
        let mut have = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    let name = path
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned();
                    have.insert(name, std::fs::read_to_string(&path).expect("read golden"));
                }
            }
        }
        for (file, yaml) in &want {
            match have.get(file) {
                None => failures.push(format!("{example}/{file}: missing golden file")),
                Some(g) if g != yaml => {
                    failures.push(format!("{example}/{file} differs:\n{}", line_diff(g, yaml)))
                }
                Some(_) => {}
            }
        }
        for file in have.keys().filter(|f| !want.contains_key(*f)) {
            failures.push(format!(
                "{example}/{file}: stale golden file (no such object rendered)"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: UPDATE_GOLDEN=1 cargo test -p nats-mini-operator --test golden",
        failures.join("\n\n")
    );
}

#[test]
fn every_example_has_a_golden_directory() {
    if common::update_golden() {
        return;
    }
    for (example, _) in common::examples() {
        assert!(
            golden_dir().join(&example).is_dir(),
            "tests/golden/{example}/ is missing"
        );
    }
}

/// Lines only in the golden file (`-`) and only in the fresh render (`+`), in order.
fn line_diff(golden: &str, fresh: &str) -> String {
    let g: Vec<&str> = golden.lines().collect();
    let f: Vec<&str> = fresh.lines().collect();
    // Longest common subsequence table; the files are small.
    let mut lcs = vec![vec![0usize; f.len() + 1]; g.len() + 1];
    for i in (0..g.len()).rev() {
        for j in (0..f.len()).rev() {
            lcs[i][j] = if g[i] == f[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < g.len() || j < f.len() {
        if i < g.len() && j < f.len() && g[i] == f[j] {
            i += 1;
            j += 1;
        } else if j < f.len() && (i == g.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", f[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", g[i]));
            i += 1;
        }
    }
    out
}
