//! The `nats-mini-operator` binary.
//!
//! - `crd`: prints the NatsMini CustomResourceDefinition as YAML (the source of
//!   `deploy/crd.yaml` and the chart's copy; a test fails when they drift).
//! - `render -f FILE`: prints the objects the operator would apply for the NatsMini
//!   manifests in FILE (`-` for standard input; several documents allowed) as one YAML
//!   stream, for debugging and the chart-equivalence test.
//!
//! The controller (`run`) comes in a later increment.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::{Parser, Subcommand};
use kube::CustomResourceExt;
use nats_mini_operator::render::{self, RenderContext, to_yaml_stream};
use nats_mini_operator::{Error, NatsMini};
use serde::Deserialize;
use std::io::{Read, Write};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nats-mini-operator",
    version,
    about = "Kubernetes operator for nats-mini"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the NatsMini CustomResourceDefinition as YAML.
    Crd,
    /// Print the objects rendered for NatsMini manifests as a YAML stream.
    Render {
        /// File with one or more NatsMini documents; `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// Namespace for manifests that name none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Cluster DNS domain used in route URLs.
        #[arg(long, default_value = render::DEFAULT_CLUSTER_DOMAIN)]
        cluster_domain: String,
        /// Image repository for manifests that set none.
        #[arg(long, default_value = render::DEFAULT_IMAGE_REPOSITORY)]
        image_repository: String,
        /// Image tag for manifests that set none.
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        image_tag: String,
    },
}

/// Errors of the binary: the library's, plus reading input.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Operator(#[from] Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: document {index}: {source}")]
    Parse {
        path: String,
        index: usize,
        source: serde_yaml::Error,
    },
    #[error("{path}: document {index} is {kind}, not a NatsMini")]
    NotNatsMini {
        path: String,
        index: usize,
        kind: String,
    },
    #[error("cannot write output: {0}")]
    Write(std::io::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd => print_crd(),
        Command::Render {
            file,
            namespace,
            cluster_domain,
            image_repository,
            image_tag,
        } => {
            let ctx = RenderContext {
                cluster_domain,
                image_repository,
                image_tag,
            };
            render_file(&file, &namespace, &ctx)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nats-mini-operator: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_crd() -> Result<(), CliError> {
    let yaml = serde_yaml::to_string(&NatsMini::crd()).map_err(Error::from)?;
    write_out(&format!("---\n{yaml}"))
}

fn render_file(path: &str, namespace: &str, ctx: &RenderContext) -> Result<(), CliError> {
    let text = if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|source| CliError::Read {
                path: path.into(),
                source,
            })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|source| CliError::Read {
            path: path.into(),
            source,
        })?
    };
    let mut values = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc).map_err(|source| CliError::Parse {
            path: path.into(),
            index,
            source,
        })?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("(no kind)")
            .to_string();
        if kind != "NatsMini" {
            return Err(CliError::NotNatsMini {
                path: path.into(),
                index,
                kind,
            });
        }
        let mut nm: NatsMini = serde_yaml::from_value(value).map_err(|source| CliError::Parse {
            path: path.into(),
            index,
            source,
        })?;
        nm.metadata
            .namespace
            .get_or_insert_with(|| namespace.to_string());
        values.extend(render::render(&nm, ctx)?.to_values()?);
    }
    write_out(&to_yaml_stream(&values)?)
}

fn write_out(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Write)
}
