//! The `nats-mini` binary: startup logs, flag and environment errors, a taken port, signals,
//! and flag-over-environment precedence.
//!
//! The binary lives in the workspace's target directory next to this test's `deps/` folder.
//! It is (re)built once per test process with `cargo build -p nats-mini --bin nats-mini` when
//! run under cargo (a no-op when it is fresh), so a stale binary is never tested; without cargo
//! an existing binary is used as is.

use nats_mini_e2e::process::{Proc, free_port, loopback};
use nats_mini_e2e::{Raw, T, show};

/// Starts `-listen 127.0.0.1:<port> -http off` (plus `extra`) and waits until ready.
async fn start_ready(port: u16, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["-listen", listen.as_str(), "-http", "off"];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args, env);
    p.wait_for_line("Server is ready").await;
    p
}

/// A raw client that has connected and seen its PING answered.
async fn connected_client(port: u16) -> Raw {
    let (mut raw, info) = Raw::connect_info(loopback(port)).await;
    assert_eq!(info["port"], port, "{info}");
    raw.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
        .await;
    raw.expect(b"PONG\r\n").await;
    raw
}

#[tokio::test]
async fn help_documents_the_default_listen_address() {
    let mut p = Proc::spawn(&["-help"], &[]);
    let status = p.wait_exit().await;
    assert!(status.success(), "-help: {status}; {}", p.stderr_text());
    let out = p.stdout_text();
    assert!(out.contains("0.0.0.0:4222"), "-help output:\n{out}");
    assert!(out.contains("-max_conns"), "-help output:\n{out}");

    let mut p = Proc::spawn(&["-version"], &[]);
    let status = p.wait_exit().await;
    assert!(status.success(), "-version: {status}");
    assert!(p.stdout_text().contains("nats-mini"), "{}", p.stdout_text());
}

#[tokio::test]
async fn starts_logs_ready_with_the_client_url_and_serves_clients() {
    let port = free_port();
    let mut p = start_ready(port, &[], &[]).await;
    let ready = p.wait_for_line("Server is ready").await;
    assert!(
        ready.contains(&format!("nats://127.0.0.1:{port}")),
        "ready line does not name the client URL: {ready}"
    );
    let listening = p.wait_for_line("Listening for client connections on").await;
    assert!(
        listening.contains(&format!("127.0.0.1:{port}")),
        "{listening}"
    );
    // nats-server's log shape: `[pid] date time [INF] message`.
    assert!(
        ready.starts_with(&format!("[{}] ", p.child.id())) && ready.contains(" [INF] "),
        "unexpected log line shape: {ready}"
    );
    let mut c = connected_client(port).await;
    c.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n").await;
    c.expect(b"MSG foo 1 2\r\nhi\r\nPONG\r\n").await;
}

async fn signal_stops_cleanly(sig: &str, trapped: &str) {
    let port = free_port();
    let mut p = start_ready(port, &[], &[]).await;
    let mut c = connected_client(port).await;
    p.signal(sig);
    let got = c.expect_closed(T).await;
    assert!(
        !nats_mini_e2e::contains(&got, b"-ERR"),
        "shutdown sends no -ERR: {}",
        show(&got)
    );
    let status = p.wait_exit().await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIG{sig}: {status}; stderr:\n{}",
        p.stderr_text()
    );
    let log = p.stderr_text();
    assert!(log.contains(trapped), "no {trapped:?} in:\n{log}");
    assert!(log.contains("Server Exiting"), "stderr:\n{log}");
    // The port is free again.
    std::net::TcpListener::bind(loopback(port)).expect("port still taken after exit");
}

#[tokio::test]
async fn sigterm_exits_0_and_closes_clients() {
    signal_stops_cleanly("TERM", "Trapped \"terminated\" signal").await;
}

#[tokio::test]
async fn sigint_exits_0_and_closes_clients() {
    signal_stops_cleanly("INT", "Trapped \"interrupt\" signal").await;
}

async fn exits_2_naming(args: &[&str], env: &[(&str, &str)], names: &[&str]) {
    let mut p = Proc::spawn(args, env);
    let status = p.wait_exit().await;
    let err = p.stderr_text();
    assert_eq!(
        status.code(),
        Some(2),
        "{args:?} {env:?}: {status}; stderr:\n{err}"
    );
    for n in names {
        assert!(
            err.contains(n),
            "{args:?} {env:?}: stderr does not name {n:?}:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn bad_flag_or_env_value_exits_2_naming_it() {
    exits_2_naming(&["-max_conns", "lots"], &[], &["max_conns", "lots"]).await;
    exits_2_naming(&["-max_conns=lots"], &[], &["max_conns", "lots"]).await;
    exits_2_naming(&[], &[("NATS_LOG", "loud")], &["NATS_LOG", "loud"]).await;
    exits_2_naming(
        &["-listen", "127.0.0.1:0"],
        &[("NATS_MAX_PAYLOAD", "huge")],
        &["NATS_MAX_PAYLOAD", "huge"],
    )
    .await;
    exits_2_naming(&["-bogus"], &[], &["bogus"]).await;
    exits_2_naming(&["-max_conns"], &[], &["max_conns"]).await;
}

#[tokio::test]
async fn taken_port_exits_nonzero_with_one_error_line_naming_it() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut p = Proc::spawn(&["-listen", &listen, "-http", "off"], &[]);
    let status = p.wait_exit().await;
    let err = p.stderr_text();
    assert!(!status.success(), "started on a taken port; stderr:\n{err}");
    let errors: Vec<String> = p
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("[ERR]") || l.contains("[FTL]"))
        .collect();
    assert_eq!(errors.len(), 1, "expected one error line; stderr:\n{err}");
    assert!(
        errors[0].contains(&port.to_string()),
        "the error does not name port {port}: {}",
        errors[0]
    );
    assert!(!err.contains("Server is ready"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    drop(holder);
}

#[tokio::test]
async fn max_conns_flag_wins_over_the_environment() {
    // Environment only: one connection allowed.
    let port = free_port();
    let _p = start_ready(port, &[], &[("NATS_MAX_CONNS", "1")]).await;
    let mut first = connected_client(port).await;
    let (mut second, _) = Raw::connect_info(loopback(port)).await;
    assert_eq!(
        show(&second.expect_closed(T).await),
        show(b"-ERR 'maximum connections exceeded'\r\n"),
        "NATS_MAX_CONNS=1 not applied"
    );
    first.expect_pong().await;

    // The flag wins: -max_conns 5 with NATS_MAX_CONNS=1 serves two clients.
    let port = free_port();
    let _p = start_ready(port, &["-max_conns", "5"], &[("NATS_MAX_CONNS", "1")]).await;
    let mut a = connected_client(port).await;
    let mut b = connected_client(port).await;
    a.expect_pong().await;
    b.expect_pong().await;
}
