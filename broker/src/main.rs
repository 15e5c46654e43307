//! The `nats-mini` binary: flags and environment → options, logging, signals → [`Server`].

use nats_mini::cli::{self, Command};
use nats_mini::server::PRODUCT;
use nats_mini::{Server, logging};
use tokio::signal::unix::{SignalKind, signal};

fn main() {
    let cmd = match cli::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nats-mini: {e}");
            eprintln!("Run 'nats-mini -help' for the list of options.");
            std::process::exit(2);
        }
    };
    let opts = match cmd {
        Command::Help => {
            print!("{}", cli::usage());
            return;
        }
        Command::Version => {
            println!("{PRODUCT}");
            return;
        }
        Command::Run(o) => *o,
    };
    logging::init(opts.log_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(run(opts));
    std::process::exit(code);
}

async fn run(opts: nats_mini::Options) -> i32 {
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        _ => {
            tracing::error!("cannot install signal handlers");
            return 1;
        }
    };
    let server = match Server::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    let name = tokio::select! {
        _ = int.recv() => "interrupt",
        _ = term.recv() => "terminated",
    };
    tracing::info!("Trapped {name:?} signal");
    tracing::info!("Initiating Shutdown...");
    server.shutdown().await;
    tracing::info!("Server Exiting..");
    0
}
