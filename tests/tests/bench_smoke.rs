//! `nats-mini bench` against an embedded server: every scenario with tiny counts, through the
//! bench module's library API, checking that the counts add up (nothing dropped at these
//! rates, queue delivery exactly once, every request answered, every connection counted).

use nats_mini::bench::{self, Config, Report, Scenario, ServerUrl};
use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::{eventually, start, within};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn config(server: &Server, scenario: Scenario) -> Config {
    let mut c = Config::new(scenario);
    c.servers = vec![ServerUrl::parse(&server.client_url()).unwrap()];
    c.progress = false;
    c.wait = Duration::from_secs(2);
    c
}

async fn run(c: &Config) -> Report {
    let r = within(LONG, c.scenario.name(), bench::run(c))
        .await
        .unwrap_or_else(|e| panic!("{} failed: {e}", c.scenario.name()));
    eprintln!("{}", bench::report::render(&r));
    r
}

fn assert_clean(r: &Report) {
    assert!(r.notes.is_empty(), "{}: notes {:?}", r.name, r.notes);
    assert_eq!(r.dropped, 0, "{}: dropped", r.name);
    assert_eq!(r.received, r.expected, "{}: received", r.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_counts_every_message_the_server_acknowledged() {
    let server = start(Server::builder()).await;
    let mut c = config(&server, Scenario::Pub);
    c.msgs = 5_000;
    c.pubs = 2;
    c.size = 16;
    // The embedded server lives in this process: its syscalls are ours (counted with perf,
    // which scripts/test-deps.sh installs).
    c.server_pid = Some(std::process::id());
    let r = run(&c).await;
    let io = r
        .server_io
        .unwrap_or_else(|| panic!("server syscalls not counted: {:?}", r.notes));
    assert!(
        io.reads > 0 && io.read_payload_bytes == 5_000 * 16,
        "{io:?}"
    );
    assert!(
        r.metrics
            .iter()
            .any(|m| m.name == "server payload B/read" && m.value > 0.0)
    );
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(r.sent, 5_000);
    let g = r.pub_group.as_ref().unwrap();
    assert_eq!((g.clients, g.msgs, g.bytes), (2, 5_000, 80_000));
    assert!(g.msgs_per_s > 0.0 && g.spread.is_some());
    assert_eq!(r.metrics[0].name, "msgs/s");
    assert_eq!(server.stats().in_msgs, 5_000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_and_fanout_deliver_every_message_to_every_subscriber() {
    let server = start(Server::builder()).await;
    let mut c = config(&server, Scenario::PubSub);
    c.msgs = 4_000;
    c.pubs = 2;
    c.subs = 2;
    c.size = 32;
    let r = run(&c).await;
    assert_clean(&r);
    assert_eq!((r.sent, r.expected), (4_000, 8_000));
    let sub = r.sub_group.as_ref().unwrap();
    assert_eq!((sub.clients, sub.msgs, sub.bytes), (2, 8_000, 8_000 * 32));
    let lat = r.latency.expect("32-byte payloads carry timestamps");
    assert_eq!(lat.count, 8_000);
    assert!(lat.p50_us <= lat.p99_us && lat.p99_us <= lat.max_us);

    let mut f = config(&server, Scenario::Fanout);
    f.msgs = 2_000;
    f.subs = 4;
    let r = run(&f).await;
    assert_clean(&r);
    assert_eq!((r.sent, r.received), (2_000, 8_000));
    // Tiny payloads: no room for a timestamp, no latency, still counted.
    let mut tiny = config(&server, Scenario::PubSub);
    tiny.msgs = 1_000;
    tiny.size = 0;
    let r = run(&tiny).await;
    assert_clean(&r);
    assert!(r.latency.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_run_publishes_on_one_node_and_subscribes_on_another() {
    use nats_mini_e2e::cluster::node_opts;
    use nats_mini_e2e::process::free_port;
    let (pa, pb) = (free_port(), free_port());
    let a = start(ServerBuilder::options(node_opts("bench", pa, &[pb]))).await;
    let b = start(ServerBuilder::options(node_opts("bench", pb, &[pa]))).await;
    eventually(Duration::from_secs(10), "the route", || {
        a.route_peers().len() == 1 && b.route_peers().len() == 1
    })
    .await;
    let mut c = config(&a, Scenario::PubSub);
    c.servers.push(ServerUrl::parse(&b.client_url()).unwrap());
    c.msgs = 5_000;
    c.size = 32;
    let r = run(&c).await;
    assert_clean(&r);
    assert_eq!((r.sent, r.received), (5_000, 5_000));
    // Every message crossed the route: in on A from the client, in on B from the route.
    assert_eq!(a.stats().in_msgs, 5_000);
    assert_eq!(b.stats().in_msgs, 5_000);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_run_verifies_the_server_and_counts_every_message() {
    use nats_mini::tls::TlsSettings;
    let pki = nats_mini_e2e::pki::pki("bench");
    let mut o = Options::ephemeral();
    let mut t = TlsSettings::new(pki.path("server.pem"), pki.path("server-key.pem"));
    t.verify = true;
    t.ca_file = Some(pki.path("ca.pem"));
    o.tls = Some(t);
    let server = start(ServerBuilder::options(o)).await;
    let port = server.client_addr().port();
    let mut c = Config::new(Scenario::PubSub);
    c.servers = vec![ServerUrl::parse(&format!("tls://localhost:{port}")).unwrap()];
    c.tls_ca = Some(pki.path("ca.pem"));
    c.tls_cert = Some(pki.path("client.pem"));
    c.tls_key = Some(pki.path("client-key.pem"));
    c.progress = false;
    c.msgs = 3_000;
    c.size = 64;
    let r = run(&c).await;
    assert_clean(&r);
    assert_eq!((r.sent, r.received), (3_000, 3_000));
    // Without the client certificate the server refuses the handshake: the run fails.
    c.tls_cert = None;
    c.tls_key = None;
    assert!(within(LONG, "a refused run", bench::run(&c)).await.is_err());
    // Plain nats:// to a TLS server says what is missing.
    c.servers = vec![ServerUrl::parse(&server.client_url()).unwrap()];
    let e = within(LONG, "a plain run", bench::run(&c))
        .await
        .unwrap_err();
    assert!(e.contains("requires TLS"), "{e}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delivers_exactly_once_across_the_group() {
    let server = start(Server::builder()).await;
    let mut c = config(&server, Scenario::Queue);
    c.msgs = 9_000;
    c.pubs = 2;
    c.subs = 3;
    c.size = 16;
    let r = run(&c).await;
    assert_clean(&r);
    assert_eq!((r.sent, r.expected, r.received), (9_000, 9_000, 9_000));
    assert_eq!((r.duplicates, r.missing), (0, 0));
    let members: Vec<u64> = r
        .clients
        .iter()
        .filter(|c| c.role == "sub")
        .map(|c| c.msgs)
        .collect();
    assert_eq!(members.len(), 3);
    assert_eq!(members.iter().sum::<u64>(), 9_000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_mode_counts_what_was_sent() {
    let server = start(Server::builder()).await;
    let mut c = config(&server, Scenario::PubSub);
    c.duration = Some(Duration::from_millis(200));
    c.subs = 2;
    c.size = 16;
    let r = run(&c).await;
    assert_clean(&r);
    assert!(r.sent > 0);
    assert_eq!(r.expected, r.sent * 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_counts_what_another_publisher_sends() {
    let server = start(Server::builder()).await;
    let mut s = config(&server, Scenario::Sub);
    s.msgs = 3_000;
    s.subs = 2;
    s.subject = "bench.split".into();
    let sub = tokio::spawn(async move { bench::run(&s).await });
    eventually(Duration::from_secs(10), "the subscribers are in", || {
        server.num_subscriptions() == 2
    })
    .await;
    let mut p = config(&server, Scenario::Pub);
    p.msgs = 3_000;
    p.subject = "bench.split".into();
    let pr = run(&p).await;
    assert_eq!(pr.sent, 3_000);
    let r = within(LONG, "sub", sub).await.unwrap().unwrap();
    eprintln!("{}", bench::report::render(&r));
    assert_clean(&r);
    assert_eq!((r.expected, r.received), (6_000, 6_000));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqrep_answers_every_request_sequentially_and_in_flight() {
    let server = start(Server::builder()).await;
    let mut c = config(&server, Scenario::ReqRep);
    c.msgs = 300;
    let r = run(&c).await;
    assert_clean(&r);
    assert_eq!(r.sent, 300);
    let l = r.latency.unwrap();
    assert_eq!(l.count, 300);
    assert!(l.p50_us > 0.0 && l.p50_us <= l.p99_us);
    let names: Vec<&str> = r.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["p50 µs", "p99 µs", "req/s"]);

    let mut n = config(&server, Scenario::ReqRep);
    n.msgs = 2_000;
    n.pubs = 2;
    n.subs = 3;
    n.inflight = 16;
    let r = run(&n).await;
    assert_clean(&r);
    assert_eq!(r.received, 2_000);
    let replies: u64 = r
        .clients
        .iter()
        .filter(|c| c.role == "rep")
        .map(|c| c.msgs)
        .sum();
    assert_eq!(replies, 2_000, "each request answered by one responder");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conns_reports_memory_per_connection_from_varz() {
    let mut opts = Options::ephemeral();
    opts.http = Some(("127.0.0.1".into(), 0));
    let server = start(ServerBuilder::options(opts)).await;
    let mut c = config(&server, Scenario::Conns);
    c.conns = 60;
    c.sources = 3;
    c.monitor = server.monitor_url();
    let r = run(&c).await;
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    let cs = r.conns.unwrap();
    assert_eq!(cs.conns, 60);
    assert_eq!(cs.server_connections, 60);
    assert!(cs.rss_after > 0);
    assert_eq!(r.metrics[0].name, "RSS B/conn");
    assert!(r.label.starts_with("nats-mini"), "{}", r.label);
    // The connections came from several loopback source addresses.
    eventually(
        Duration::from_secs(10),
        "the idle connections close",
        || server.num_connections() == 0,
    )
    .await;
    let connz = bench::client::http_get_json(
        &server.monitor_url().unwrap(),
        "/connz?state=closed&limit=1000",
    )
    .await
    .unwrap();
    let mut ips: Vec<String> = connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ip"].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);

    let mut no_monitor = config(&server, Scenario::Conns);
    no_monitor.conns = 1;
    let e = bench::run(&no_monitor).await.unwrap_err();
    assert!(e.contains("--monitor"), "{e}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_round_trip_through_json_and_compare() {
    let server = start(Server::builder()).await;
    let mut lines = String::new();
    for label in [
        "nats-mini",
        "other",
        "nats-mini",
        "other",
        "nats-mini",
        "other",
    ] {
        let mut c = config(&server, Scenario::PubSub);
        c.msgs = 500;
        c.label = Some(label.into());
        c.name = Some("pubsub 128B".into());
        let r = run(&c).await;
        lines.push_str(&serde_json::to_string(&r).unwrap());
        lines.push('\n');
    }
    let reports: Vec<Report> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cmp = bench::report::compare(&reports, "nats-mini");
    assert_eq!(cmp.labels, ["nats-mini", "other"]);
    let row = &cmp.rows[0];
    assert_eq!(
        (row.case.as_str(), row.metric.as_str()),
        ("pubsub 128B", "msgs/s")
    );
    assert_eq!(row.medians["nats-mini"].1, 3);
    assert!(row.ratios["other"] > 0.0);
    let svg = bench::svg::chart(&cmp, "smoke").unwrap();
    assert!(svg.contains("vs other"));
    server.shutdown().await;
}

/// scripts/bench-compare end to end, CI-sized: the three servers (ours, pip's nats-server and
/// Debian's, installed by scripts/test-deps.sh) plus one given with `--also` (another nats-mini
/// build, as when a change is measured against the baseline) started and timed, two cases run
/// against each, and the comparison written.
#[test]
fn bench_compare_script_times_every_server_and_compares_them() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("bench-compare-smoke-{}", std::process::id()));
    let status = std::process::Command::new("bash")
        .arg(repo.join("scripts/bench-compare"))
        .args([
            "--quick",
            "--rounds",
            "1",
            "--cases",
            "pub 16B|reqrep sequential",
        ])
        .arg("--mini")
        .arg(nats_mini_e2e::process::binary())
        .arg("--also")
        .arg(format!(
            "nats-mini again={}",
            nats_mini_e2e::process::binary().display()
        ))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run scripts/bench-compare");
    assert!(
        status.success(),
        "bench-compare failed: see {}",
        out.display()
    );
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let reports: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let labels: Vec<&str> = reports
        .iter()
        .filter(|r| r["name"] == "start to ready")
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 4, "{labels:?}");
    assert_eq!(labels[0], "nats-mini");
    assert!(labels[1].starts_with("nats-server 2."), "{labels:?}");
    assert!(labels[2].ends_with("(Debian)"), "{labels:?}");
    assert_eq!(labels[3], "nats-mini again");
    for r in reports.iter().filter(|r| r["name"] == "start to ready") {
        let ms = r["metrics"][0]["value"].as_f64().unwrap();
        assert!(ms > 0.0 && ms < 10_000.0, "{r}");
    }
    for case in ["pub 16B", "reqrep sequential"] {
        let n = reports.iter().filter(|r| r["name"] == case).count();
        assert_eq!(n, 4, "{case}: one report per server");
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| start to ready |"), "{table}");
    assert!(table.contains("nats-mini / nats-mini again"), "{table}");
    assert!(table.contains("| reqrep sequential | p50"), "{table}");
    assert!(
        std::fs::read_to_string(out.join("chart.svg"))
            .unwrap()
            .contains("<svg")
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// A malformed `--also` is refused before anything is installed or started.
#[test]
fn bench_compare_refuses_also_without_a_label() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("bash")
        .arg(repo.join("scripts/bench-compare"))
        .args(["--also", "/usr/bin/true"])
        .output()
        .expect("run scripts/bench-compare");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--also wants LABEL=PATH"), "{err}");
}
