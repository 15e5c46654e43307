//! Running operations on the `nats-mini` binary, end to end: lame duck (two processes,
//! async-nats clients moving from one to the other, `/healthz`, SIGTERM during the drain) and
//! config reload (SIGHUP, `--signal reload`, a broken file, a field that cannot be reloaded,
//! and the symlink swap Kubernetes does for mounted ConfigMaps, picked up without a signal).
//!
//! Lame-duck durations are short (a few seconds, set by flag: the ≥ 30 s minimum applies to
//! config files only), so the whole file runs in well under a minute.

use futures::StreamExt;
use nats_mini_e2e::process::{
    Proc, TempDir, free_port, http_get, http_json, loopback, run, s, write_atomic,
};
use nats_mini_e2e::{QUIET, Raw, T, nats_sync, parse_info_line, show, within};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lame duck for these tests: a short drain, so a run takes seconds.
const LDM_DURATION: Duration = Duration::from_secs(4);
const LDM_GRACE: Duration = Duration::from_secs(2);
const LDM_FLAGS: [&str; 4] = [
    "--lame_duck_duration",
    "4s",
    "--lame_duck_grace_period",
    "2s",
];
/// Slack on top of a deadline on a busy 2-core machine.
const MARGIN: Duration = Duration::from_secs(3);

/// The binary on `127.0.0.1:port` without monitoring, with the given lame-duck duration and
/// grace period, once it is ready.
async fn ready_with_lame_duck(port: u16, duration: &str, grace: &str) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut p = Proc::spawn(
        &[
            "-listen",
            &listen,
            "-http",
            "off",
            "--lame_duck_duration",
            duration,
            "--lame_duck_grace_period",
            grace,
        ],
        &[],
    );
    p.wait_for_line("Server is ready").await;
    p
}

/// A raw protocol-1 client on `port` that has exchanged CONNECT and PING/PONG, so the server
/// sends it async INFOs (the lame-duck one among them).
async fn protocol1_client(port: u16) -> Raw {
    let (mut raw, info) = Raw::connect_info(loopback(port)).await;
    assert_eq!(info["port"], port, "{info}");
    raw.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n")
        .await;
    raw.read_until(b"PONG\r\n", T).await;
    // The INFO that follows the first PONG (nats-server 2.12+), if any.
    let extra = raw.read_for(QUIET).await;
    assert!(
        extra.is_empty() || (extra.starts_with(b"INFO {") && extra.ends_with(b"} \r\n")),
        "unexpected after the first PONG: {}",
        show(&extra)
    );
    raw
}

/// Connects with `token` (as `auth_token`) and returns the connection if the server answers
/// the PING with PONG, or the server's first line if it does not.
async fn connect_with_token(port: u16, token: &str) -> Result<Raw, String> {
    let (mut raw, info) = Raw::connect_info(loopback(port)).await;
    assert_eq!(info["auth_required"], true, "{info}");
    raw.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"auth_token\":\"{token}\"}}\r\nPING\r\n"
    ))
    .await;
    let got = raw.read_for(Duration::from_millis(500)).await;
    if got == b"PONG\r\n" {
        Ok(raw)
    } else {
        Err(show(&got))
    }
}

/// The `max_payload` a new client on `port` is told in its INFO.
async fn info_max_payload(port: u16) -> u64 {
    let (_raw, info) = Raw::connect_info(loopback(port)).await;
    info["max_payload"]
        .as_u64()
        .unwrap_or_else(|| panic!("no max_payload in INFO: {info}"))
}

/// Whether a TCP connection to `port` is refused right now.
async fn refused(port: u16) -> bool {
    matches!(
        tokio::time::timeout(T, tokio::net::TcpStream::connect(loopback(port))).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Runs `nats-mini --signal CMD=TARGET` and asserts it succeeded.
async fn send_signal(command: &str, target: &str) {
    let arg = format!("{command}={target}");
    let (status, p) = run(&["--signal", &arg], &[]).await;
    assert!(
        status.success(),
        "--signal {arg}: {status}; output:\n{}",
        p.output_text()
    );
}

async fn wait_pid_file(path: &std::path::Path, pid: u32) {
    let deadline = Instant::now() + T;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| t.trim() == pid.to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid file {} never held {pid}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Lame duck
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lame_duck_moves_async_nats_clients_to_the_other_server_and_exits_0() {
    let dir = TempDir::new("ldm");
    let (pa, pb, ha) = (free_port(), free_port(), free_port());
    let pid_file = dir.join("a.pid");
    let (listen_a, http_a) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{ha}"));
    let mut args_a = vec!["-listen", &listen_a, "--http", &http_a, "-P", s(&pid_file)];
    args_a.extend_from_slice(&LDM_FLAGS);
    let mut a = Proc::spawn(&args_a, &[]);
    let listen_b = format!("127.0.0.1:{pb}");
    let mut b = Proc::spawn(&["-listen", &listen_b, "-http", "off"], &[]);
    a.wait_for_line("Server is ready").await;
    b.wait_for_line("Server is ready").await;
    wait_pid_file(&pid_file, a.pid()).await;
    let (code, body) = http_get(loopback(ha), "/healthz").await.unwrap();
    assert_eq!(code, 200, "/healthz before lame duck: {body}");

    // async-nats clients that know both servers, connected to A (the first in the list).
    let urls = vec![
        format!("nats://127.0.0.1:{pa}"),
        format!("nats://127.0.0.1:{pb}"),
    ];
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let connect = |name: &'static str| {
        let events = events.clone();
        async_nats::ConnectOptions::new()
            .name(name)
            .retain_servers_order()
            .reconnect_delay_callback(|_| Duration::from_millis(100))
            .event_callback(move |e| {
                let events = events.clone();
                async move { events.lock().unwrap().push(format!("{name}: {e}")) }
            })
            .connect(urls.clone())
    };
    let sub_client = within(T, "connect sub client", connect("sub"))
        .await
        .expect("sub client connect");
    let pub_client = within(T, "connect pub client", connect("pub"))
        .await
        .expect("pub client connect");
    assert_eq!(sub_client.server_info().port, pa);
    assert_eq!(pub_client.server_info().port, pa);
    let mut sub = sub_client.subscribe("ldm.e2e").await.unwrap();
    nats_sync(&sub_client).await;
    pub_client
        .publish("ldm.e2e", "before".into())
        .await
        .unwrap();
    let m = within(T, "message through A", sub.next()).await.unwrap();
    assert_eq!(&m.payload[..], b"before");

    // A raw protocol-1 client shows the exact async INFO.
    let mut raw = protocol1_client(pa).await;

    let t0 = Instant::now();
    send_signal("ldm", s(&pid_file)).await;

    // Clients are told at once: an async INFO with "ldm":true.
    let upto = raw.read_until(b"\"ldm\":true", T).await;
    let rest = raw.read_line(T).await;
    let all = [upto, rest].concat();
    let start = all
        .windows(5)
        .rposition(|w| w == b"INFO ")
        .unwrap_or_else(|| panic!("no INFO line around ldm:\n{}", show(&all)));
    let info = parse_info_line(&all[start..]);
    assert_eq!(info["ldm"], true, "{info}");
    assert_eq!(info["port"], pa, "{info}");

    // /healthz fails during the drain.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (code, body) = http_get(loopback(ha), "/healthz").await.unwrap();
        if code != 200 {
            assert!(body.contains("error"), "/healthz {code} body: {body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz still 200 a second into lame duck: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // New connections are refused.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !refused(pa).await {
        assert!(
            Instant::now() < deadline,
            "A still accepts connections a second into lame duck"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        a.try_exit().await.is_none(),
        "A exited before the grace period ended; stderr:\n{}",
        a.stderr_text()
    );
    a.wait_for_line("Entering lame duck mode").await;

    // After the grace period A closes its clients; they reconnect to B.
    let deadline = Instant::now() + LDM_DURATION + MARGIN;
    while sub_client.server_info().port != pb || pub_client.server_info().port != pb {
        assert!(
            Instant::now() < deadline,
            "clients not on B ({pb}) {:?} after the lame duck signal: sub on {}, pub on {}; events: {:?}",
            t0.elapsed(),
            sub_client.server_info().port,
            pub_client.server_info().port,
            events.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // They still work through B: the old subscription was re-created there, new ones work.
    nats_sync(&sub_client).await;
    nats_sync(&pub_client).await;
    pub_client.publish("ldm.e2e", "after".into()).await.unwrap();
    let m = within(T, "message through B", sub.next()).await.unwrap();
    assert_eq!(&m.payload[..], b"after");
    let mut sub2 = pub_client.subscribe("ldm.e2e.two").await.unwrap();
    nats_sync(&pub_client).await;
    sub_client
        .publish("ldm.e2e.two", "two".into())
        .await
        .unwrap();
    let m = within(T, "a new subscription through B", sub2.next())
        .await
        .unwrap();
    assert_eq!(&m.payload[..], b"two");
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.iter().any(|e| e.contains("lame duck")),
        "async-nats saw no lame duck event: {ev:?}"
    );

    // A exits 0 within the lame-duck duration, not before the grace period.
    let left = (LDM_DURATION + MARGIN).saturating_sub(t0.elapsed());
    let status = a.wait_exit_within(left).await;
    let took = t0.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "A's exit: {status}; stderr:\n{}",
        a.stderr_text()
    );
    assert!(
        took >= LDM_GRACE,
        "A exited after {took:?}, before the {LDM_GRACE:?} grace period"
    );
    let got = raw.expect_closed(T).await;
    assert!(
        !nats_mini_e2e::contains(&got, b"-ERR"),
        "lame duck closes without -ERR: {}",
        show(&got)
    );
    let log = a.stderr_text();
    assert!(log.contains("Server Exiting"), "{log}");
    assert!(
        !pid_file.exists(),
        "pid file {} left behind",
        pid_file.display()
    );
    drop(b);
}

#[tokio::test]
async fn sigterm_during_lame_duck_does_not_cut_the_drain_short() {
    let port = free_port();
    let mut a = ready_with_lame_duck(port, LDM_FLAGS[1], LDM_FLAGS[3]).await;
    let mut raw = protocol1_client(port).await;

    let t0 = Instant::now();
    a.signal("USR2");
    raw.read_until(b"\"ldm\":true", T).await;
    raw.read_line(T).await;
    a.wait_for_line("Entering lame duck mode").await;
    // Kubernetes sends TERM after the preStop hook started the drain.
    a.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        a.try_exit().await.is_none(),
        "SIGTERM during lame duck stopped the server {:?} after the signal; stderr:\n{}",
        t0.elapsed(),
        a.stderr_text()
    );
    raw.expect_pong_ignoring_pings().await;

    let status = a.wait_exit_within(LDM_DURATION + MARGIN).await;
    let took = t0.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "exit: {status}; stderr:\n{}",
        a.stderr_text()
    );
    assert!(
        took >= LDM_GRACE,
        "exited after {took:?}: the TERM cut the {LDM_GRACE:?} grace period short"
    );
    raw.expect_closed(T).await;
}

/// Kubernetes sends SIGTERM milliseconds after the preStop hook's `--signal ldm` returns: both
/// signals can be pending when the server looks. The drain must still happen (an unbiased
/// signal loop took TERM first about a third of the time). Several rounds, since a race.
#[tokio::test]
async fn usr2_then_term_back_to_back_still_drains() {
    for round in 0..5 {
        let port = free_port();
        let mut a = ready_with_lame_duck(port, "1s", "0s").await;
        let _client = protocol1_client(port).await;
        // Both signals from one shell: as close together as a preStop hook and the kubelet.
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("kill -USR2 {0}; kill -TERM {0}", a.pid()))
            .status()
            .unwrap();
        assert!(status.success());
        let status = a.wait_exit_within(Duration::from_secs(1) + MARGIN).await;
        let log = a.stderr_text();
        assert_eq!(status.code(), Some(0), "round {round}: {log}");
        assert!(
            log.contains("Entering lame duck mode")
                && log.contains("\"terminated\" signal: ignored during lame duck mode"),
            "round {round}: TERM was taken before the lame-duck signal:\n{log}"
        );
    }
}

/// nats-server's lame duck finds no clients to drain and shuts down at once (it waits the
/// grace period only when there is someone to tell); a preStop hook on an idle pod should not
/// take the grace period.
#[tokio::test]
async fn lame_duck_without_clients_exits_at_once() {
    let port = free_port();
    let mut a = ready_with_lame_duck(port, "10s", "8s").await;
    let t0 = Instant::now();
    a.signal("USR2");
    a.wait_for_line("Entering lame duck mode").await;
    let limit = Duration::from_secs(2);
    while t0.elapsed() < limit {
        if let Some(status) = a.try_exit().await {
            assert_eq!(status.code(), Some(0), "{}", a.stderr_text());
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "with no clients, nats-server leaves lame duck and exits at once; nats-mini is still \
         running {limit:?} after SIGUSR2 (grace period 8s); stderr:\n{}",
        a.stderr_text()
    );
}

// ---------------------------------------------------------------------------------------------
// Reload
// ---------------------------------------------------------------------------------------------

fn conf(port: u16, http: Option<u16>, max_payload: u32, token: &str) -> String {
    let http = http
        .map(|h| format!("http: \"127.0.0.1:{h}\"\n"))
        .unwrap_or_default();
    format!(
        "# reload test\nlisten: 127.0.0.1:{port}\n{http}max_payload: {max_payload}\n\
         authorization {{\n  token: \"{token}\"\n}}\n"
    )
}

/// Starts `-c FILE -P PIDFILE` with config watching off (so only signals reload) and waits
/// until ready.
async fn start_with_config(file: &std::path::Path, pid_file: &std::path::Path) -> Proc {
    let mut p = Proc::spawn(
        &[
            "-c",
            s(file),
            "-P",
            s(pid_file),
            "-config_watch=false",
            "-http",
            "off",
        ],
        &[],
    );
    p.wait_for_line("Server is ready").await;
    wait_pid_file(pid_file, p.pid()).await;
    p
}

/// `-http off` on the command line would win over the file's `http`, so this one passes none.
async fn start_with_config_and_http(file: &std::path::Path, pid_file: &std::path::Path) -> Proc {
    let mut p = Proc::spawn(
        &["-c", s(file), "-P", s(pid_file), "-config_watch=false"],
        &[],
    );
    p.wait_for_line("Server is ready").await;
    wait_pid_file(pid_file, p.pid()).await;
    p
}

async fn config_load_time(http: u16) -> String {
    let v = http_json(loopback(http), "/varz").await;
    v["config_load_time"]
        .as_str()
        .unwrap_or_else(|| panic!("no config_load_time in /varz: {v}"))
        .to_string()
}

#[tokio::test]
async fn sighup_reload_changes_max_payload_and_token_live() {
    let dir = TempDir::new("reload");
    let (port, http) = (free_port(), free_port());
    let file = dir.write("nats.conf", &conf(port, Some(http), 1000, "one"));
    let pid_file = dir.join("nats.pid");
    let mut p = start_with_config_and_http(&file, &pid_file).await;

    assert_eq!(info_max_payload(port).await, 1000);
    let mut existing = connect_with_token(port, "one")
        .await
        .unwrap_or_else(|e| panic!("token one refused: {e}"));
    existing.send("SUB big 1\r\nPING\r\n").await;
    existing.expect(b"PONG\r\n").await;
    assert!(connect_with_token(port, "two").await.is_err());
    // 1500 bytes are over the limit for now.
    let mut over = connect_with_token(port, "one").await.unwrap();
    over.send(format!("PUB big 1500\r\n{}\r\n", "x".repeat(1500)))
        .await;
    let got = over.expect_closed(T).await;
    assert_eq!(show(&got), show(b"-ERR 'Maximum Payload Violation'\r\n"));
    let t_before = config_load_time(http).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Reload 1, on SIGHUP: a bigger max_payload. The connection stays and gets the new limit.
    write_atomic(&file, &conf(port, Some(http), 2000, "one"));
    let mark = p.mark();
    p.signal("HUP");
    p.wait_for_line_since(mark, "Reloaded server configuration", T)
        .await;
    assert_eq!(info_max_payload(port).await, 2000);
    let varz = http_json(loopback(http), "/varz").await;
    assert_eq!(varz["max_payload"], 2000, "{varz}");
    let t_after = config_load_time(http).await;
    assert_ne!(t_before, t_after, "/varz config_load_time did not move");
    assert!(
        t_after[..19] >= t_before[..19],
        "config_load_time went back: {t_before} → {t_after}"
    );
    existing
        .send(format!("PUB big 1500\r\n{}\r\nPING\r\n", "y".repeat(1500)))
        .await;
    existing
        .expect(format!("MSG big 1 1500\r\n{}\r\nPONG\r\n", "y".repeat(1500)).as_bytes())
        .await;
    drop(existing);

    // Reload 2, with `--signal reload=PIDFILE`: a new token.
    write_atomic(&file, &conf(port, Some(http), 2000, "two"));
    let mark = p.mark();
    send_signal("reload", s(&pid_file)).await;
    p.wait_for_line_since(mark, "Reloaded server configuration", T)
        .await;
    let mut two = connect_with_token(port, "two")
        .await
        .unwrap_or_else(|e| panic!("token two refused after reload: {e}"));
    two.expect_pong().await;
    let err = connect_with_token(port, "one")
        .await
        .expect_err("token one still accepted after reload");
    assert!(err.contains("Authorization Violation"), "{err}");
    assert!(!p.stderr_text().contains("Failed to reload"));
}

/// nats-server re-checks every client against the new authorization on reload and closes the
/// ones that no longer pass with `-ERR 'Authorization Violation'` (reload.go
/// reloadAuthorization); the nats.js suite's reload tests rely on it ("auth changes must apply
/// to live connections"). Limits-only reloads keep every connection (see the test above).
#[tokio::test]
async fn reload_to_a_new_token_disconnects_clients_using_the_old_one() {
    let dir = TempDir::new("reload-auth");
    let port = free_port();
    let file = dir.write("nats.conf", &conf(port, None, 1000, "one"));
    let pid_file = dir.join("nats.pid");
    let mut p = start_with_config(&file, &pid_file).await;
    let mut old = connect_with_token(port, "one").await.unwrap();

    write_atomic(&file, &conf(port, None, 1000, "two"));
    let mark = p.mark();
    p.signal("HUP");
    p.wait_for_line_since(mark, "Reloaded server configuration", T)
        .await;
    let got = old.read_for(Duration::from_secs(1)).await;
    assert!(
        nats_mini_e2e::contains(&got, b"-ERR 'Authorization Violation'\r\n") && old.closed,
        "a client authenticated with the old token must be closed with \
         -ERR 'Authorization Violation' after the reload (as nats-server does); got (closed: {}): {}",
        old.closed,
        show(&got)
    );
}

#[tokio::test]
async fn broken_config_on_reload_is_refused_and_the_old_config_stays() {
    let dir = TempDir::new("reload-broken");
    let port = free_port();
    let file = dir.write("nats.conf", &conf(port, None, 1000, "one"));
    let pid_file = dir.join("nats.pid");
    let mut p = start_with_config(&file, &pid_file).await;
    let mut existing = connect_with_token(port, "one").await.unwrap();

    // A syntax error: an unterminated block, and a new max_payload/token that must not apply.
    write_atomic(
        &file,
        &format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 2000\nauthorization {{\n  token: \"two\"\n"
        ),
    );
    let mark = p.mark();
    send_signal("reload", s(&pid_file)).await;
    let line = p.wait_for_line_since(mark, "Failed to reload", T).await;
    assert!(
        line.contains("nats.conf"),
        "the reload error does not name the file: {line}"
    );
    assert!(
        !p.stderr_lines()[mark..]
            .iter()
            .any(|l| l.contains("Reloaded server configuration")),
        "{}",
        p.stderr_text()
    );
    assert!(
        p.try_exit().await.is_none(),
        "a bad reload stopped the server"
    );
    assert_eq!(
        info_max_payload(port).await,
        1000,
        "old max_payload not in force"
    );
    connect_with_token(port, "one")
        .await
        .unwrap_or_else(|e| panic!("old token refused after a failed reload: {e}"));
    assert!(connect_with_token(port, "two").await.is_err());
    existing.expect_pong().await;

    // A good file afterwards reloads fine.
    write_atomic(&file, &conf(port, None, 3000, "one"));
    let mark = p.mark();
    p.signal("HUP");
    p.wait_for_line_since(mark, "Reloaded server configuration", T)
        .await;
    assert_eq!(info_max_payload(port).await, 3000);
}

#[tokio::test]
async fn reload_changing_the_port_is_refused() {
    let dir = TempDir::new("reload-port");
    let (port, other) = (free_port(), free_port());
    let file = dir.write("nats.conf", &conf(port, None, 1000, "one"));
    let pid_file = dir.join("nats.pid");
    let mut p = start_with_config(&file, &pid_file).await;

    write_atomic(&file, &conf(other, None, 2000, "one"));
    let mark = p.mark();
    p.signal("HUP");
    let line = p.wait_for_line_since(mark, "Failed to reload", T).await;
    assert!(
        line.contains("config reload not supported for Port"),
        "unexpected reload error: {line}"
    );
    assert!(
        line.contains(&port.to_string()) && line.contains(&other.to_string()),
        "the error should show old and new ports: {line}"
    );
    // The whole reload is refused: same port, old max_payload.
    assert_eq!(info_max_payload(port).await, 1000);
    assert!(refused(other).await, "something listens on the new port");
    assert!(p.try_exit().await.is_none());
}

#[tokio::test]
async fn kubernetes_configmap_symlink_swap_is_reloaded_without_a_signal() {
    // The layout kubelet makes for a mounted ConfigMap:
    //   dir/nats.conf -> ..data/nats.conf,  dir/..data -> ..2026_a,  dir/..2026_a/nats.conf
    let dir = TempDir::new("k8s-swap");
    let port = free_port();
    let body = |mp: u32| format!("listen: 127.0.0.1:{port}\nmax_payload: {mp}\n");
    std::fs::create_dir(dir.join("..2026_a")).unwrap();
    std::fs::write(dir.join("..2026_a/nats.conf"), body(1000)).unwrap();
    std::os::unix::fs::symlink("..2026_a", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/nats.conf", dir.join("nats.conf")).unwrap();
    let file = dir.join("nats.conf");
    let mut p = Proc::spawn(&["-c", s(&file), "-http", "off"], &[]);
    p.wait_for_line("Server is ready").await;
    assert_eq!(info_max_payload(port).await, 1000);
    let mut existing = protocol1_client(port).await;

    // kubelet's update: a new timestamped dir, a new ..data link renamed over the old one.
    std::fs::create_dir(dir.join("..2026_b")).unwrap();
    std::fs::write(dir.join("..2026_b/nats.conf"), body(5000)).unwrap();
    std::os::unix::fs::symlink("..2026_b", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2026_a")).unwrap();

    let t0 = Instant::now();
    let limit = Duration::from_secs(6);
    loop {
        let mp = info_max_payload(port).await;
        if mp == 5000 {
            break;
        }
        assert!(
            t0.elapsed() < limit,
            "max_payload still {mp} {limit:?} after the ConfigMap symlink swap; stderr:\n{}",
            p.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.wait_for_line("Reloaded server configuration").await;
    existing.expect_pong_ignoring_pings().await;
}
