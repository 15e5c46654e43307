//! The `nats-mini-operator` binary: `render -f` prints exactly what the library renders (the
//! golden files, for the golden context), reads several documents and standard input, and
//! refuses what is not a valid NatsMini with a message and a non-zero exit.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn operator(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nats-mini-operator"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nats-mini-operator");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

#[test]
fn render_prints_the_same_objects_as_the_library() {
    let ctx = common::golden_context();
    for (example, docs) in common::examples() {
        let path = common::examples_dir().join(format!("{example}.yaml"));
        let out = operator(
            &[
                "render",
                "-f",
                &path.to_string_lossy(),
                "--image-tag",
                &ctx.image_tag,
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut want = String::new();
        for nm in &docs {
            want.push_str(
                &nats_mini_operator::render::render(nm, &ctx)
                    .expect("renders")
                    .to_yaml()
                    .expect("yaml"),
            );
        }
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{example}");
    }
}

#[test]
fn render_reads_several_documents_from_stdin_with_the_given_namespace_and_domain() {
    let input = "apiVersion: nats-mini.io/v1alpha1\nkind: NatsMini\nmetadata: {name: a}\nspec: {replicas: 2}\n---\napiVersion: nats-mini.io/v1alpha1\nkind: NatsMini\nmetadata: {name: b, namespace: other}\nspec: {}\n";
    let out = operator(
        &[
            "render",
            "-f",
            "-",
            "-n",
            "team",
            "--cluster-domain",
            "k8s.example",
        ],
        Some(input),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("\nkind: StatefulSet\n").count(), 2);
    assert!(text.contains("nats://a-1.a-headless.team.svc.k8s.example:6222"));
    assert!(text.contains("nats://b-0.b-headless.other.svc.k8s.example:6222"));
}

#[test]
fn render_refuses_invalid_input_with_a_message() {
    let cases = [
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
            "not a NatsMini",
        ),
        (
            "apiVersion: nats-mini.io/v1alpha1\nkind: NatsMini\nmetadata: {name: a}\nspec: {limits: {maxPayload: lots}}\n",
            "spec.limits.maxPayload",
        ),
        (
            "apiVersion: nats-mini.io/v1alpha1\nkind: NatsMini\nmetadata: {name: Bad_Name}\nspec: {}\n",
            "DNS-1035",
        ),
        (
            "apiVersion: nats-mini.io/v1alpha1\nkind: NatsMini\nmetadata: {name: a}\nspec: {replicas: three}\n",
            "document 0",
        ),
    ];
    for (input, want) in cases {
        let out = operator(&["render", "-f", "-"], Some(input));
        assert!(!out.status.success(), "{input}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{input}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing is printed on error");
    }
    let out = operator(&["render", "-f", "/nonexistent/natsmini.yaml"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn there_is_no_run_command_yet() {
    let out = operator(&["run"], None);
    assert!(!out.status.success());
}
