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
    if args.first().map(String::as_str) == Some("bench") {
        std::process::exit(nats_mini::bench::main(&args[1..]));
    }
    let cmd = match cli::parse(args.clone(), |k| std::env::var(k).ok()) {
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
    let code = rt.block_on(run(opts, exe, args));
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

fn reload(server: &Server, args: &[String]) {
    match reread(args).and_then(|o| server.reload(o)) {
        Ok(()) => {}
        Err(e) => tracing::error!("Failed to reload server configuration: {e}"),
    }
}

/// Re-reads flags, environment and config file (flags still win) for a reload.
fn reread(args: &[String]) -> Result<Options, String> {
    match cli::parse(args.to_vec(), |k| std::env::var(k).ok()) {
        Ok(Command::Run(o, notes)) => {
            for n in notes {
                tracing::warn!("{n}");
            }
            Ok(*o)
        }
        Ok(_) => Err("unexpected command on reload".into()),
        Err(e) => Err(e.0),
    }
}

/// A digest of the file's bytes; reading by path follows Kubernetes' symlink swaps of mounted
/// ConfigMaps and Secrets, which change neither the path nor (reliably) the mtime.
fn file_digest(p: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(p).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// How often the config file is checked for changes.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

async fn run(opts: Options, exe: String, args: Vec<String>) -> i32 {
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
    );
    let (Ok(mut int), Ok(mut term), Ok(mut usr2), Ok(mut hup), Ok(mut usr1)) = signals else {
        logging::fatal("cannot install signal handlers");
        return 1;
    };
    let pid_file = opts.pid_file.clone();
    let watch = opts.config_file.clone().filter(|_| opts.config_watch);
    let mut watch_digest = watch.as_deref().and_then(file_digest);
    let mut watch_tick = tokio::time::interval(WATCH_INTERVAL);
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
            // Lame duck first: Kubernetes sends SIGTERM right after the preStop hook's
            // `--signal ldm`, and when both are pending at once the drain must win (an unbiased
            // select picked TERM about a third of the time and exited without draining).
            biased;
            _ = usr2.recv(), if !server.in_lame_duck() => {
                tracing::info!("Trapped \"user defined signal 2\" signal");
                // Drain in lame duck. SIGINT still cuts it short; SIGTERM (which Kubernetes
                // sends after the preStop hook) is ignored; reloads still apply.
                let drain = server.lame_duck();
                tokio::pin!(drain);
                loop {
                    tokio::select! {
                        _ = &mut drain => break,
                        _ = int.recv() => {
                            tracing::info!("Trapped \"interrupt\" signal");
                            break;
                        }
                        _ = term.recv() => {
                            tracing::info!("Trapped \"terminated\" signal: ignored during lame duck mode");
                        }
                        _ = hup.recv() => {
                            tracing::info!("Trapped \"hangup\" signal");
                            reload(&server, &args);
                        }
                    }
                }
                break;
            }
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
                tracing::info!("Trapped \"hangup\" signal");
                reload(&server, &args);
            }
            _ = usr1.recv() => {
                match logging::reopen() {
                    Ok(()) => tracing::info!("Trapped \"user defined signal 1\" signal: log file reopened"),
                    Err(e) => tracing::error!("{e}"),
                }
            }
            _ = watch_tick.tick(), if watch.is_some() => {
                let now = watch.as_deref().and_then(file_digest);
                if now.is_some() && now != watch_digest {
                    watch_digest = now;
                    tracing::info!("Configuration file changed");
                    reload(&server, &args);
                }
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
