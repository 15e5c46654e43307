//! The `nats-mini` binary: flags, environment and config file → options, logging, signals →
//! [`Server`]. Also answers to the name `nats-server` (through a link), so scripts, charts and
//! the official clients' test harnesses that call nats-server work unchanged.

use nats_mini::cli::{self, Command};
use nats_mini::server::PRODUCT;
use nats_mini::{Options, Server, logging};
use std::path::Path;
use tokio::signal::unix::{SignalKind, signal};

/// The name we were invoked as (`nats-mini`, or `nats-server` through a link).
fn exe_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "nats-mini".into())
}

fn main() {
    let exe = exe_name();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("tune") {
        std::process::exit(run_tune(&args[1..]));
    }
    let cmd = match cli::parse(args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{exe}: {e}");
            if !e.0.starts_with("Parse error") && !e.0.contains("not supported") {
                eprintln!("Run '{exe} -help' for the list of options.");
            }
            std::process::exit(
                if e.0.contains("JetStream") || e.0.starts_with("Parse error") {
                    1
                } else {
                    2
                },
            );
        }
    };
    let (opts, notes) = match cmd {
        Command::Help => {
            print!("{}", cli::usage());
            return;
        }
        Command::Version => {
            println!(
                "{exe}: {PRODUCT} (nats-server v{} compatible)",
                nats_mini::options::COMPAT_VERSION
            );
            return;
        }
        Command::Signal { command, target } => {
            match nats_mini::signal::send(&command, target.as_deref()) {
                Ok(pid) => eprintln!("{exe}: signal {command:?} sent to process {pid}"),
                Err(e) => {
                    eprintln!("{exe}: {e}");
                    std::process::exit(1);
                }
            }
            return;
        }
        Command::TestConfig(opts, notes) => {
            let file = opts
                .config_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            for n in &notes {
                eprintln!("{exe}: {n}");
            }
            if notes.is_empty() {
                eprintln!("{exe}: configuration file {file} is valid");
                return;
            }
            // Warnings are fatal under -t, as in nats-server.
            eprintln!("{exe}: configuration file {file} has warnings");
            std::process::exit(1);
        }
        Command::Run(o, notes) => (*o, notes),
    };
    if let Err(e) = logging::init(&logging::LogConfig::from(&opts)) {
        eprintln!("{exe}: {e}");
        std::process::exit(1);
    }
    for n in &notes {
        tracing::warn!("{n}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::fatal(&format!("cannot start the runtime: {e}"));
            std::process::exit(1);
        }
    };
    let code = rt.block_on(run(opts, exe));
    std::process::exit(code);
}

/// `nats-mini tune`: host sysctls for the init container.
fn run_tune(args: &[String]) -> i32 {
    if args
        .iter()
        .any(|a| a == "-h" || a == "--help" || a == "-help")
    {
        print!("{}", nats_mini::tune::usage());
        return 0;
    }
    let t = match nats_mini::tune::parse(args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nats-mini tune: {e}");
            eprint!("{}", nats_mini::tune::usage());
            return 2;
        }
    };
    match nats_mini::tune::apply(&t, Path::new("/")) {
        Ok(lines) => {
            for l in lines {
                println!("nats-mini tune: {l}");
            }
            0
        }
        Err(e) => {
            eprintln!("nats-mini tune: {e}");
            1
        }
    }
}

async fn run(opts: Options, exe: String) -> i32 {
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
    );
    let (Ok(mut int), Ok(mut term), Ok(mut usr2), Ok(mut hup)) = signals else {
        logging::fatal("cannot install signal handlers");
        return 1;
    };
    let pid_file = opts.pid_file.clone();
    let ports_dir = opts.ports_file_dir.clone();
    let server = match Server::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            logging::fatal(&e.to_string());
            return 1;
        }
    };
    if let Some(p) = &pid_file
        && let Err(e) = std::fs::write(p, std::process::id().to_string())
    {
        logging::fatal(&format!("cannot write pid file {}: {e}", p.display()));
        server.shutdown().await;
        return 1;
    }
    let ports_file = ports_dir.map(|d| nats_mini::signal::write_ports_file(&d, &exe, &server));
    let ports_file = match ports_file.transpose() {
        Ok(p) => p,
        Err(e) => {
            logging::fatal(&e);
            server.shutdown().await;
            return 1;
        }
    };

    loop {
        tokio::select! {
            _ = int.recv() => {
                tracing::info!("Trapped \"interrupt\" signal");
                break;
            }
            _ = term.recv() => {
                if server.in_lame_duck() {
                    // Kubernetes sends TERM after a lame-duck preStop: let the drain finish.
                    tracing::info!("Trapped \"terminated\" signal: ignored during lame duck mode");
                    continue;
                }
                tracing::info!("Trapped \"terminated\" signal");
                break;
            }
            _ = hup.recv() => {
                tracing::warn!("Trapped \"hangup\" signal: configuration reload is not supported yet");
            }
            _ = usr2.recv(), if !server.in_lame_duck() => {
                tracing::info!("Trapped \"user defined signal 2\" signal");
                // Drain in lame duck, but let SIGINT still cut it short.
                tokio::select! {
                    _ = server.lame_duck() => {}
                    _ = int.recv() => tracing::info!("Trapped \"interrupt\" signal"),
                }
                break;
            }
        }
    }
    tracing::info!("Initiating Shutdown...");
    server.shutdown().await;
    for f in pid_file.iter().chain(ports_file.iter()) {
        let _ = std::fs::remove_file(f);
    }
    tracing::info!("Server Exiting..");
    0
}
