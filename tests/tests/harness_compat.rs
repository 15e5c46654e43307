//! The official NATS clients' test harnesses start `nats-server` in their own ways
//! (`shared/reference/client-test-harnesses.md`): these tests start nats-mini exactly so and
//! check it becomes ready the way each harness detects readiness. Also: the binary run through
//! a link named `nats-server`, `-t`, refusals with the right exit codes, nats-server's classic
//! sample config, and the precedence flags > `NATS_*` environment > config file.

use nats_mini_e2e::process::{
    Proc, TempDir, binary, free_port, http_get, http_json, loopback, run, run_program, s,
};
use nats_mini_e2e::{Raw, T, show, within};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tests whose command line (like nats.rs's) leaves nats-mini's monitoring at its default
/// port 8222 take turns, so they do not fight over it with each other.
static DEFAULT_HTTP_PORT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// nats.rs's readiness regex `.+\sclient connections on\s+(\S+)`, applied line by line:
/// the captured address of the first matching line.
fn client_addr_from_log(log: &str) -> Option<String> {
    const PHRASE: &str = "client connections on";
    for line in log.lines() {
        let Some(i) = line.find(PHRASE) else { continue };
        // `.+\s` before the phrase: at least one character, then whitespace.
        if i < 2 || !line[..i].ends_with(char::is_whitespace) {
            continue;
        }
        let rest = &line[i + PHRASE.len()..];
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let addr: String = rest
            .trim_start()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        if !addr.is_empty() {
            return Some(addr);
        }
    }
    None
}

/// The port from the `Listening for client connections on HOST:PORT` line.
async fn listen_port(p: &mut Proc) -> u16 {
    let line = p.wait_for_line("Listening for client connections on").await;
    line.rsplit(':')
        .next()
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// Waits for a file to exist and be non-empty; returns its contents.
async fn wait_file(path: &Path, d: Duration) -> String {
    let deadline = Instant::now() + d;
    loop {
        if let Ok(t) = std::fs::read_to_string(path)
            && !t.is_empty()
        {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {d:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `CONNECT json` + `PING` and returns the first reply bytes (PONG or -ERR …).
async fn connect_reply(port: u16, connect_json: &str) -> (serde_json::Value, String) {
    let (mut raw, info) = Raw::connect_info(loopback(port)).await;
    raw.send(format!("CONNECT {connect_json}\r\nPING\r\n"))
        .await;
    // A bcrypt check in a debug build on a loaded machine can take most of a second: read
    // until the answer is complete (PONG or an error) rather than for a fixed time.
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        got.extend_from_slice(&raw.read_for(Duration::from_millis(100)).await);
        let text = String::from_utf8_lossy(&got);
        if text.contains("PONG\r\n") || text.contains("-ERR") {
            break;
        }
    }
    (info, show(&got))
}

// ---------------------------------------------------------------------------------------------
// nats.rs: `nats-server --store_dir DIR -p -1 -l LOGFILE -P PIDFILE`, ready when the log file
// has the client address; lame duck through `nats-server --signal ldm=<pid>`.
// ---------------------------------------------------------------------------------------------

fn nats_rs_server(dir: &TempDir) -> Proc {
    let (store, log, pid) = (
        dir.join("store"),
        dir.join("nats.log"),
        dir.join("nats.pid"),
    );
    Proc::spawn(
        &[
            "--store_dir",
            s(&store),
            "-p",
            "-1",
            "-l",
            s(&log),
            "-P",
            s(&pid),
        ],
        &[],
    )
}

#[tokio::test]
async fn nats_rs_harness_log_file_pid_file_and_signal_ldm() {
    let _turn = DEFAULT_HTTP_PORT.lock().await;
    let dir = TempDir::new("nats-rs");
    let mut p = nats_rs_server(&dir);

    // client_addr(): poll the log file for the regex (the harness gives it 100 × 500 ms).
    let deadline = Instant::now() + Duration::from_secs(5);
    let addr = loop {
        let log = std::fs::read_to_string(dir.join("nats.log")).unwrap_or_default();
        if let Some(a) = client_addr_from_log(&log) {
            break a;
        }
        if let Some(status) = p.try_exit().await {
            panic!("exited ({status}); stderr:\n{}", p.stderr_text());
        }
        assert!(
            Instant::now() < deadline,
            "no `client connections on ADDR` line in the -l log file; log:\n{log}\nstderr:\n{}",
            p.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The harness connects to that address (0.0.0.0 replaced by localhost) and reads INFO.
    let addr = addr.replace("0.0.0.0", "localhost");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "{addr}");
    let first_line = tokio::task::spawn_blocking(move || {
        let stream = std::net::TcpStream::connect(&addr).expect("connect to the logged address");
        stream.set_read_timeout(Some(T)).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let info = nats_mini_e2e::parse_info_line(first_line.as_bytes());
    assert_eq!(info["port"], port, "INFO port is not the real port: {info}");
    assert!(!info["tls_required"].as_bool().unwrap_or(false), "{info}");

    // The pid file holds the pid.
    let pid = wait_file(&dir.join("nats.pid"), T).await;
    assert_eq!(pid.trim(), p.pid().to_string());

    // Its lame duck test: a client sees the LDM event after `--signal ldm=<pid>`.
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let ev = events.clone();
    let client = within(
        T,
        "async-nats connect",
        async_nats::ConnectOptions::new()
            .event_callback(move |e| {
                let ev = ev.clone();
                async move { ev.lock().unwrap().push(e.to_string()) }
            })
            .connect(format!("nats://127.0.0.1:{port}")),
    )
    .await
    .expect("async-nats connect");
    nats_mini_e2e::nats_sync(&client).await;
    let (status, out) = run(&["--signal", &format!("ldm={}", pid.trim())], &[]).await;
    assert!(
        status.success(),
        "--signal ldm=<pid>: {}",
        out.output_text()
    );
    let deadline = Instant::now() + T;
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.contains("lame duck"))
    {
        assert!(
            Instant::now() < deadline,
            "no lame duck event; events: {:?}",
            events.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.wait_for_line("Entering lame duck mode").await;
    let log = std::fs::read_to_string(dir.join("nats.log")).unwrap();
    assert!(
        log.contains("Entering lame duck mode"),
        "the -l log file misses the lame duck line:\n{log}"
    );
    // The harness stops servers with SIGKILL (Proc's drop).
}

/// nats.rs (and nats-core's Python helper) run many tests in parallel, each with its own
/// `nats-server -p -1 …` and no monitoring flag. nats-server has no monitoring unless asked
/// (`-m`/`http`), so they coexist; nats-mini's default `-http 0.0.0.0:8222` makes every server
/// after the first fail with `cannot listen for monitoring on 0.0.0.0:8222`.
#[tokio::test]
async fn nats_rs_style_servers_run_side_by_side() {
    let _turn = DEFAULT_HTTP_PORT.lock().await;
    let (d1, d2) = (TempDir::new("nats-rs-1"), TempDir::new("nats-rs-2"));
    let mut p1 = nats_rs_server(&d1);
    let mut p2 = nats_rs_server(&d2);
    for p in [&mut p1, &mut p2] {
        let port = listen_port(p).await;
        p.wait_for_line("Server is ready").await;
        let (_raw, info) = Raw::connect_info(loopback(port)).await;
        assert_eq!(info["port"], port);
    }
}

// ---------------------------------------------------------------------------------------------
// nats.py: `-p PORT -m HTTP -a 127.0.0.1 [--auth T] [-DV] --config FILE`, flags winning over
// the file; ready when /varz answers 200; nats-core's helper reads stderr lines.
// ---------------------------------------------------------------------------------------------

async fn start_nats_py_style(dir: &TempDir) -> (Proc, u16, u16, u16) {
    let (port, http, file_port) = (free_port(), free_port(), free_port());
    let file = dir.write(
        "nats.conf",
        &format!("port: {file_port}\nmax_payload: 4096\n"),
    );
    let (port_s, http_s) = (port.to_string(), http.to_string());
    let p = Proc::spawn(
        &[
            "-p",
            &port_s,
            "-m",
            &http_s,
            "-a",
            "127.0.0.1",
            "--auth",
            "s3cr3t",
            "-DV",
            "--config",
            s(&file),
        ],
        &[],
    );
    (p, port, http, file_port)
}

#[tokio::test]
async fn nats_py_harness_flags_win_over_the_config_file() {
    let dir = TempDir::new("nats-py");
    let (mut p, port, http, file_port) = start_nats_py_style(&dir).await;

    // Readiness as nats.py does it: GET /varz on the -m port until 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    let varz = loop {
        if let Ok((200, body)) = http_get(loopback(http), "/varz").await {
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        if let Some(status) = p.try_exit().await {
            panic!("exited ({status}); stderr:\n{}", p.stderr_text());
        }
        assert!(
            Instant::now() < deadline,
            "/varz on -m {http} never answered 200; stderr:\n{}",
            p.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(varz["port"], port, "-p must win over the file's port");
    assert_eq!(varz["max_payload"], 4096, "the file's other keys apply");

    // nats-core's helper: `Listening for client connections on H:P`, then `Server is ready`.
    let listening = p.wait_for_line("Listening for client connections on").await;
    assert!(
        listening.ends_with(&format!(
            "Listening for client connections on 127.0.0.1:{port}"
        )),
        "{listening}"
    );
    p.wait_for_line("Server is ready").await;
    let lines = p.stderr_lines();
    let li = lines
        .iter()
        .position(|l| l.contains("Listening for client connections on"));
    let ri = lines.iter().position(|l| l.contains("Server is ready"));
    assert!(
        li < ri,
        "`Server is ready` before the listening line:\n{}",
        p.stderr_text()
    );
    assert!(!lines.iter().any(|l| l.contains(&format!(":{file_port}"))));

    // The file's port is not served; -p's is, with --auth's token.
    assert!(std::net::TcpStream::connect(loopback(file_port)).is_err());
    let (info, reply) = connect_reply(
        port,
        r#"{"verbose":false,"pedantic":false,"auth_token":"s3cr3t"}"#,
    )
    .await;
    assert_eq!(info["auth_required"], true, "{info}");
    assert_eq!(info["host"], "127.0.0.1", "{info}");
    assert_eq!(info["max_payload"], 4096, "{info}");
    assert_eq!(reply, "PONG\\r\\n\n");
    let (_, reply) = connect_reply(
        port,
        r#"{"verbose":false,"pedantic":false,"auth_token":"nope"}"#,
    )
    .await;
    assert!(reply.contains("Authorization Violation"), "{reply}");
    // -DV: debug/trace lines show up once a client connected.
    let deadline = Instant::now() + T;
    while !p
        .stderr_lines()
        .iter()
        .any(|l| l.contains("[DBG]") || l.contains("[TRC]"))
    {
        assert!(
            Instant::now() < deadline,
            "-DV logged no debug or trace line:\n{}",
            p.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// nats-server's monitoring host defaults to the client host (`HTTPHost = Host`, after all
/// flags), so `-m 8222 -a 127.0.0.1` serves monitoring on 127.0.0.1 only. nats-mini applies
/// `-m` before it has seen `-a` and binds 0.0.0.0 — monitoring exposed on every interface
/// when the user asked for loopback.
#[tokio::test]
async fn nats_py_harness_monitoring_listens_on_the_a_host() {
    let dir = TempDir::new("nats-py-m");
    let (mut p, _port, http, _) = start_nats_py_style(&dir).await;
    p.wait_for_line("Server is ready").await;
    let line = p.wait_for_line("Starting http monitor on").await;
    assert!(
        line.ends_with(&format!("Starting http monitor on 127.0.0.1:{http}")),
        "with -a 127.0.0.1 the monitor must listen on 127.0.0.1 (as nats-server): {line}"
    );
    let varz = http_json(loopback(http), "/varz").await;
    assert_eq!(varz["http_host"], "127.0.0.1", "{varz}");
}

// ---------------------------------------------------------------------------------------------
// nats.js: only `-c FILE`, a generated config; ready when <ports_file_dir>/<exe>_<pid>.ports
// appears.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nats_js_harness_generated_config_writes_the_ports_file() {
    let dir = TempDir::new("nats-js");
    let conf = format!(
        "host: \"127.0.0.1\"\nport: -1\nhttp: \"127.0.0.1:-1\"\nleafnodes {{\n  listen: \"127.0.0.1:-1\"\n}}\n\
         server_tags [\n  id:abc\n]\nwebsocket {{\n  port: -1\n  no_tls: true\n}}\nports_file_dir: {}\n\
         cluster {{\n  name: c1\n  listen: \"127.0.0.1:-1\"\n}}\n",
        s(dir.path())
    );
    let file = dir.write("nats-server_abc.conf", &conf);
    let mut p = Proc::spawn(&["-c", s(&file)], &[]);
    let ports_file = dir.join(&format!("nats-mini_{}.ports", p.pid()));
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        if let Ok(t) = std::fs::read_to_string(&ports_file)
            && serde_json::from_str::<serde_json::Value>(&t).is_ok()
        {
            break t;
        }
        if let Some(status) = p.try_exit().await {
            panic!("exited ({status}); stderr:\n{}", p.stderr_text());
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within 5 s (the nats.js harness's wait); stderr:\n{}",
            ports_file.display(),
            p.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ports: serde_json::Value = serde_json::from_str(&text).unwrap();
    let nats = ports["nats"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no nats URL: {text}"));
    let port: u16 = nats
        .strip_prefix("nats://127.0.0.1:")
        .unwrap_or_else(|| panic!("nats URL not on 127.0.0.1: {text}"))
        .parse()
        .unwrap();
    let monitoring = ports["monitoring"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no monitoring URL: {text}"));
    let http: u16 = monitoring
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("monitoring URL not on 127.0.0.1: {text}"))
        .parse()
        .unwrap();
    assert!(port != 0 && http != 0, "{text}");
    // The cluster URL (the harness's cluster tests read it to build route lists).
    let cluster: u16 = ports["cluster"][0]
        .as_str()
        .and_then(|c| c.strip_prefix("nats://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no cluster URL on 127.0.0.1: {text}"))
        .parse()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(loopback(cluster))
            .await
            .is_ok(),
        "nothing listens on the cluster port {cluster}"
    );

    // The harness connects until it succeeds: the port serves clients.
    let (mut raw, info) = Raw::connect_info(loopback(port)).await;
    assert_eq!(info["port"], port);
    raw.send("CONNECT {\"verbose\":false}\r\nPING\r\n").await;
    raw.expect(b"PONG\r\n").await;
    let varz = http_json(loopback(http), "/varz").await;
    assert_eq!(varz["port"], port);

    // The blocks nats-mini does not serve are accepted with a warning naming them.
    let log = p.stderr_text();
    for block in ["websocket", "leafnodes"] {
        assert!(
            p.stderr_lines()
                .iter()
                .any(|l| l.contains("[WRN]") && l.contains(block)),
            "no warning naming {block}:\n{log}"
        );
    }
    // Stopped, it removes the ports file (as nats-server does).
    p.signal("TERM");
    let status = p.wait_exit().await;
    assert_eq!(status.code(), Some(0));
    assert!(!ports_file.exists(), "ports file left behind");
}

// ---------------------------------------------------------------------------------------------
// The binary through a link named `nats-server`.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn binary_called_nats_server_through_a_link() {
    let dir = TempDir::new("as-nats-server");
    let bin_dir = dir.join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let link = bin_dir.join("nats-server");
    std::os::unix::fs::symlink(binary(), &link).unwrap();
    let ports_dir = dir.join("ports");
    std::fs::create_dir(&ports_dir).unwrap();

    let (status, out) = run_program(&link, &["--version"]).await;
    assert!(status.success(), "--version: {status}");
    let v = out.stdout_text();
    assert!(
        v.starts_with("nats-server") && v.contains("2.15.1"),
        "nats-server --version: {v}"
    );

    let mut p = Proc::spawn_program(
        &link,
        &[
            "-p",
            "-1",
            "-m",
            "0",
            "--ports_file_dir",
            s(&ports_dir),
            "--lame_duck_duration",
            "2s",
            "--lame_duck_grace_period",
            "1s",
        ],
        &[],
    );
    let ports_file = ports_dir.join(format!("nats-server_{}.ports", p.pid()));
    let text = wait_file(&ports_file, Duration::from_secs(5)).await;
    let ports: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("ports file is not JSON ({e}): {text}"));
    let url = ports["nats"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{text}"));
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(port, listen_port(&mut p).await, "{text}");
    let mut c = nats_mini_e2e::raw_connected(loopback(port), "{\"verbose\":false}").await;
    c.expect_pong().await;
    drop(c);

    let pid = p.pid().to_string();
    let (status, out) = run_program(&link, &["-sl", &format!("ldm={pid}")]).await;
    assert!(
        status.success(),
        "nats-server -sl ldm=<pid>: {}",
        out.output_text()
    );
    p.wait_for_line("Entering lame duck mode").await;
    let status = p.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", p.stderr_text());
    assert!(!ports_file.exists(), "ports file left behind");
}

// ---------------------------------------------------------------------------------------------
// -t, refusals, exit codes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn t_checks_config_files() {
    let dir = TempDir::new("test-config");
    let good = dir.write(
        "good.conf",
        "port: 4222\nmax_payload: 1MB\nauthorization {\n  token: \"x\"\n}\n",
    );
    let (status, p) = run(&["-t", "-c", s(&good)], &[]).await;
    let out = p.output_text();
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("configuration file {} is valid", s(&good))),
        "{out}"
    );

    let unknown = dir.write("unknown.conf", "port: 4222\n\n  foo_unknown: 1\n");
    let (status, p) = run(&["-t", "-c", s(&unknown)], &[]).await;
    let out = p.output_text();
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("{}:3:3", s(&unknown))),
        "the error must name file:line:col: {out}"
    );
    assert!(out.contains("unknown field \"foo_unknown\""), "{out}");

    // Warnings fail -t, as in nats-server.
    let ping = dir.write("ping.conf", "ping_interval: 5\n");
    let (status, p) = run(&["-t", "-c", s(&ping)], &[]).await;
    let out = p.output_text();
    assert_eq!(
        status.code(),
        Some(1),
        "a bare-number ping_interval warns: {out}"
    );
    assert!(out.contains("ping_interval"), "{out}");
    let ws = dir.write("ws.conf", "websocket {\n  port: -1\n  no_tls: true\n}\n");
    let (status, p) = run(&["-t", "-c", s(&ws)], &[]).await;
    let out = p.output_text();
    assert_eq!(status.code(), Some(1), "a websocket block warns: {out}");
    assert!(out.contains("websocket"), "{out}");

    // A syntax error.
    let broken = dir.write("broken.conf", "authorization {\n  token: \"x\"\n");
    let (status, p) = run(&["-t", "-c", s(&broken)], &[]).await;
    assert_eq!(status.code(), Some(1), "{}", p.output_text());
    assert!(!p.output_text().contains("panicked"));
}

#[tokio::test]
async fn jetstream_flag_is_refused_with_exit_1() {
    for flag in ["-js", "--jetstream"] {
        let (status, p) = run(&[flag, "-p", "-1", "-m", "0"], &[]).await;
        let out = p.output_text();
        assert_eq!(status.code(), Some(1), "{flag}: {out}");
        assert!(out.contains("JetStream is not supported"), "{flag}: {out}");
    }
}

#[tokio::test]
async fn taken_port_and_bad_address_exit_nonzero() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let (status, p) = run(
        &["-p", &port.to_string(), "-a", "127.0.0.1", "-m", "0"],
        &[],
    )
    .await;
    let out = p.output_text();
    assert!(!status.success(), "started on a taken port: {out}");
    assert!(
        out.contains(&port.to_string()) && out.to_lowercase().contains("port"),
        "the error must name the port {port}: {out}"
    );
    assert!(
        !out.contains("Server is ready") && !out.contains("panicked"),
        "{out}"
    );
    drop(holder);

    let (status, p) = run(&["-a", "999.999.999.999", "-p", "-1", "-m", "0"], &[]).await;
    let out = p.output_text();
    assert!(!status.success(), "started on 999.999.999.999: {out}");
    assert!(out.contains("999.999.999.999"), "{out}");
    assert!(
        !out.contains("Server is ready") && !out.contains("panicked"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// nats-server's classic sample config (tests/fixtures/nats-server-sample.conf).
// ---------------------------------------------------------------------------------------------

fn sample_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/nats-server-sample.conf")
}

/// A copy of the sample with free ports, loopback instead of its `net: apcera.me` (which does
/// not resolve here), and the log and pid files in `dir`. Returns (file, port, http port).
fn sample_copy(dir: &TempDir) -> (std::path::PathBuf, u16, u16) {
    let (port, http, cluster) = (free_port(), free_port(), free_port());
    let text = std::fs::read_to_string(sample_path()).unwrap();
    let replace = |t: String, from: &str, to: &str| {
        assert!(t.contains(from), "the sample has no {from:?}");
        t.replacen(from, to, 1)
    };
    let text = replace(text, "port: 4242", &format!("port: {port}"));
    let text = replace(text, "net: apcera.me", "net: 127.0.0.1");
    let text = replace(text, "http_port: 8222", &format!("http_port: {http}"));
    let text = replace(text, "port: 4244", &format!("port: {cluster}"));
    let text = replace(text, "/tmp/gnatsd.log", s(&dir.join("gnatsd.log")));
    let text = replace(text, "/tmp/gnatsd.pid", s(&dir.join("gnatsd.pid")));
    (dir.write("sample.conf", &text), port, http)
}

async fn start_sample(dir: &TempDir) -> (Proc, u16, u16) {
    let (file, port, http) = sample_copy(dir);
    let mut p = Proc::spawn(&["-c", s(&file)], &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((200, _)) = http_get(loopback(http), "/varz").await {
            break;
        }
        if let Some(status) = p.try_exit().await {
            panic!(
                "the sample config did not start ({status}); stderr:\n{}",
                p.stderr_text()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no /varz; stderr:\n{}",
            p.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (p, port, http)
}

#[tokio::test]
async fn classic_sample_config_is_valid_and_takes_effect() {
    let (status, p) = run(&["-t", "-c", s(&sample_path())], &[]).await;
    assert_eq!(
        status.code(),
        Some(0),
        "-t on the sample: {}",
        p.output_text()
    );
    assert!(p.output_text().contains("is valid"), "{}", p.output_text());

    let dir = TempDir::new("sample");
    let (p, port, http) = start_sample(&dir).await;
    let varz = http_json(loopback(http), "/varz").await;
    assert_eq!(varz["port"], port, "{varz}");
    assert_eq!(varz["max_connections"], 100, "{varz}");
    assert_eq!(varz["max_control_line"], 512, "{varz}");
    assert_eq!(varz["max_payload"], 65536, "{varz}");
    assert_eq!(varz["max_pending"], 10_000_000, "{varz}");
    assert_eq!(
        varz["auth_timeout"].as_f64(),
        Some(1.0),
        "authorization timeout: {varz}"
    );

    // pid_file and log_file (without timestamps: logtime false).
    let pid = wait_file(&dir.join("gnatsd.pid"), T).await;
    assert_eq!(pid.trim(), p.pid().to_string());
    let log = wait_file(&dir.join("gnatsd.log"), T).await;
    let listening = log
        .lines()
        .find(|l| l.contains("Listening for client connections on"))
        .unwrap_or_else(|| panic!("log_file:\n{log}"));
    assert!(
        listening.starts_with(&format!("[{}] [INF] ", p.pid())),
        "logtime: false should drop the timestamp: {listening}"
    );

    // User/password authorization is required; a wrong password fails.
    let (info, reply) = connect_reply(
        port,
        r#"{"verbose":false,"pedantic":false,"user":"derek","pass":"wrong"}"#,
    )
    .await;
    assert_eq!(info["auth_required"], true, "{info}");
    assert_eq!(info["max_payload"], 65536, "{info}");
    assert!(reply.contains("Authorization Violation"), "{reply}");
    let (_, reply) = connect_reply(port, r#"{"verbose":false,"pedantic":false}"#).await;
    assert!(reply.contains("Authorization Violation"), "{reply}");
}

/// Go writes a float64 that holds a whole number without a fraction: nats-server's /varz has
/// `"auth_timeout": 1` for the sample's `timeout: 1` (and `0.5` for a fraction). Tools that
/// compare JSON types (Python's `json` reads `1.0` as a float, `1` as an int) see a difference.
#[tokio::test]
async fn classic_sample_varz_auth_timeout_is_written_as_go_writes_it() {
    let dir = TempDir::new("sample-varz-text");
    let (_p, _port, http) = start_sample(&dir).await;
    let (code, body) = http_get(loopback(http), "/varz").await.unwrap();
    assert_eq!(code, 200);
    let line = body
        .lines()
        .find(|l| l.contains("\"auth_timeout\""))
        .unwrap_or_else(|| panic!("no auth_timeout in /varz: {body}"));
    assert_eq!(
        line.trim(),
        "\"auth_timeout\": 1,",
        "nats-server 2.15.1 writes `\"auth_timeout\": 1,` here"
    );
}

/// The sample's password is a bcrypt hash (`mkpasswd -p T0pS3cr3t`); nats-server checks the
/// client's plain password against it, so `derek` / `T0pS3cr3t` connects.
#[tokio::test]
async fn classic_sample_config_bcrypt_password_authenticates() {
    let dir = TempDir::new("sample-bcrypt");
    let (_p, port, _http) = start_sample(&dir).await;
    let (_, reply) = connect_reply(
        port,
        r#"{"verbose":false,"pedantic":false,"user":"derek","pass":"T0pS3cr3t"}"#,
    )
    .await;
    assert_eq!(
        reply, "PONG\\r\\n\n",
        "derek/T0pS3cr3t must match the sample's bcrypt hash"
    );
}

// ---------------------------------------------------------------------------------------------
// Precedence: flags > NATS_* environment > config file > defaults.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn flag_beats_environment_beats_config_file() {
    let dir = TempDir::new("precedence");
    let file = dir.write(
        "nats.conf",
        "host: 127.0.0.1\nport: -1\nmax_payload: 1000\n",
    );
    let env = [("NATS_MAX_PAYLOAD", "2000")];
    // Flags win even when -c comes last.
    let mut all = Proc::spawn(
        &["-max_payload", "3000", "-http", "off", "-c", s(&file)],
        &env,
    );
    let mut env_only = Proc::spawn(&["-http", "off", "-c", s(&file)], &env);
    let mut file_only = Proc::spawn(&["-http", "off", "-c", s(&file)], &[]);
    for (p, want) in [
        (&mut all, 3000),
        (&mut env_only, 2000),
        (&mut file_only, 1000),
    ] {
        let port = listen_port(p).await;
        p.wait_for_line("Server is ready").await;
        let (_raw, info) = Raw::connect_info(loopback(port)).await;
        assert_eq!(info["max_payload"], want, "{:?}: {info}", p.child.id());
    }
}
