//! The `nats-mini-operator` binary.
//!
//! - `crd`: prints the NatsMini CustomResourceDefinition as YAML (the source of
//!   `deploy/crd.yaml` and the chart's copy; a test fails when they drift).
//! - `render -f FILE`: prints the objects the operator would apply for the NatsMini
//!   manifests in FILE (`-` for standard input; several documents allowed) as one YAML
//!   stream, for debugging and the chart-equivalence test.
//! - `run`: the operator. Serves `/metrics`, `/healthz` and `/readyz` (port 8080), the
//!   sidecar-injection webhook over HTTPS (port 8443, when `WEBHOOK_CERT_DIR` holds
//!   `tls.crt`/`tls.key`; every replica serves it, leader or not), competes
//!   for the leader Lease (`LEASE_NAME` in `POD_NAMESPACE`, held as `POD_NAME`), and while
//!   it leads runs the controller. Logs are JSON lines filtered by `RUST_LOG`. SIGTERM or
//!   SIGINT: stop the controller (running reconciles finish), release the Lease, exit 0.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::{Args, Parser, Subcommand};
use kube::CustomResourceExt;
use nats_mini_operator::controller::{self, Context, HttpRoutez};
use nats_mini_operator::http::{self, Health};
use nats_mini_operator::leader::{Election, LeaseConfig};
use nats_mini_operator::metrics::Metrics;
use nats_mini_operator::render::{self, RenderContext, to_yaml_stream};
use nats_mini_operator::webhook::{self, SidecarConfig};
use nats_mini_operator::{Error, NatsMini};
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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
        #[command(flatten)]
        render: RenderArgs,
    },
    /// Run the operator: controller (while leader), metrics and health endpoints.
    Run(RunArgs),
}

/// Settings of rendering, shared by `render` and `run`.
#[derive(Args)]
struct RenderArgs {
    /// Cluster DNS domain used in route URLs.
    #[arg(long, env = "CLUSTER_DOMAIN", default_value = render::DEFAULT_CLUSTER_DOMAIN)]
    cluster_domain: String,
    /// Image repository for manifests that set none.
    #[arg(long, env = "BROKER_IMAGE_REPOSITORY", default_value = render::DEFAULT_IMAGE_REPOSITORY)]
    image_repository: String,
    /// Image tag for manifests that set none.
    #[arg(long, env = "BROKER_IMAGE_TAG", default_value = env!("CARGO_PKG_VERSION"))]
    image_tag: String,
}

impl From<RenderArgs> for RenderContext {
    fn from(a: RenderArgs) -> RenderContext {
        RenderContext {
            cluster_domain: a.cluster_domain,
            image_repository: a.image_repository,
            image_tag: a.image_tag,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "nats-mini-operator")]
    lease_name: String,
    /// Namespace of the Lease (the operator's own). Default: the kubeconfig's namespace.
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Identity in the Lease (the pod name). Default: the host name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a holder that stopped renewing keeps the Lease.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds before expiry the holder renews (less than the duration).
    #[arg(long, env = "LEASE_GRACE_SECONDS", default_value_t = 5)]
    lease_grace_seconds: u64,
    /// Directory with `tls.crt` and `tls.key` for the sidecar-injection webhook, looked at
    /// again at most every 10 s on a handshake: a renewed certificate is served without a
    /// restart. Unset: no webhook is served.
    #[arg(long, env = "WEBHOOK_CERT_DIR")]
    webhook_cert_dir: Option<std::path::PathBuf>,
    /// Address of the webhook's HTTPS endpoint (`POST /mutate`).
    #[arg(long, env = "WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    webhook_addr: SocketAddr,
    #[command(flatten)]
    render: RenderArgs,
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
    #[error("{0:#}")]
    Run(#[from] anyhow::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd => print_crd(),
        Command::Render {
            file,
            namespace,
            render,
        } => render_file(&file, &namespace, &render.into()),
        Command::Run(args) => run(args).map_err(CliError::Run),
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

fn run(args: RunArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.lease_grace_seconds >= args.lease_duration_seconds {
        anyhow::bail!(
            "--lease-grace-seconds ({}) must be less than --lease-duration-seconds ({})",
            args.lease_grace_seconds,
            args.lease_duration_seconds
        );
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(operate(args))
}

/// Resolves once SIGTERM or SIGINT arrived (or at once if the handlers cannot be set).
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot install signal handlers")
            }
        }
        let _ = tx.send(true);
    });
    rx
}

/// Waits until `rx` holds `want` (or its sender is gone).
async fn wait_for(mut rx: watch::Receiver<bool>, want: bool) {
    let _ = rx.wait_for(|v| *v == want).await;
}

async fn operate(args: RunArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let stop = shutdown_signal();
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let metrics = Metrics::new().context("cannot register metrics")?;
    let health = Health::new(metrics.clone());
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.metrics_addr))?;
    tracing::info!(addr = %args.metrics_addr, "serving /metrics, /healthz, /readyz");
    let http_task = tokio::spawn(http::serve(
        listener,
        health.clone(),
        wait_for(stop.clone(), true),
    ));
    let render: RenderContext = args.render.into();
    if let Some(dir) = &args.webhook_cert_dir {
        // Re-read when the mounted Secret changes (cert-manager renewals): no restart needed.
        let tls = webhook::reloading_tls_config(dir, webhook::CERT_CHECK_INTERVAL)
            .map_err(anyhow::Error::msg)
            .context("webhook certificate")?;
        let listener = tokio::net::TcpListener::bind(args.webhook_addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.webhook_addr))?;
        let cfg = SidecarConfig {
            image: format!("{}:{}", render.image_repository, render.image_tag),
        };
        tracing::info!(addr = %args.webhook_addr, "serving the sidecar-injection webhook (POST /mutate)");
        tokio::spawn(webhook::serve(
            listener,
            tls,
            cfg,
            wait_for(stop.clone(), true),
        ));
    }

    // Fail early, with a hint, when the CRD is missing (kube-rs/controller-rs does the same).
    kube::Api::<NatsMini>::all(client.clone())
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .context("cannot list NatsMini objects: is the CRD installed (`nats-mini-operator crd | kubectl apply -f -`) and may the operator list them?")?;

    let identity = match args.identity {
        Some(id) => id,
        None => hostname(),
    };
    let lease = LeaseConfig {
        name: args.lease_name,
        namespace: args
            .lease_namespace
            .unwrap_or_else(|| client.default_namespace().to_string()),
        identity: identity.clone(),
        duration_seconds: args.lease_duration_seconds,
        grace_seconds: args.lease_grace_seconds,
    };
    let election = Election::start(client.clone(), &lease)
        .await
        .with_context(|| format!("cannot use the Lease {}/{}", lease.namespace, lease.name))?;
    health.set_ready(true);
    tracing::info!(lease = %lease.name, namespace = %lease.namespace, %identity, "competing for the leader Lease");

    loop {
        let mut leader = election.leader.clone();
        let mut stopping = stop.clone();
        tokio::select! {
            _ = leader.wait_for(|l| *l) => {}
            _ = stopping.wait_for(|s| *s) => break,
        }
        if *stop.borrow() {
            break;
        }
        metrics.leader.set(1);
        tracing::info!(%identity, "leading: starting the controller");
        let ctx = Arc::new(Context::new(
            client.clone(),
            Some(identity.clone()),
            metrics.clone(),
            render.clone(),
            Arc::new(HttpRoutez),
        ));
        let lost = wait_for(election.leader.clone(), false);
        let stopped = wait_for(stop.clone(), true);
        controller::run(ctx, async move {
            tokio::select! {
                () = lost => {}
                () = stopped => {}
            }
        })
        .await;
        metrics.leader.set(0);
        if *stop.borrow() {
            break;
        }
        tracing::warn!(%identity, "lost the leader Lease: controller stopped, waiting to lead again");
    }

    health.set_ready(false);
    match tokio::time::timeout(Duration::from_secs(10), election.step_down()).await {
        Ok(Ok(())) => tracing::info!("released the leader Lease"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the leader Lease"),
        Err(_) => tracing::warn!("releasing the leader Lease timed out"),
    }
    let _ = http_task.await;
    tracing::info!("stopped");
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("nats-mini-operator-{}", std::process::id()))
}
