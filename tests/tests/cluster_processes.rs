//! Clustering with real processes: a mixed cluster of nats-mini nodes and the reference
//! nats-server (the current release from `scripts/test-deps.sh`), and a nats-mini node killed
//! with SIGKILL and restarted, whose routes and interest come back by themselves.

use async_nats::{Client, HeaderMap};
use futures::StreamExt;
use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::cluster::{self, next_payload, request_until_answered, route, until_routed};
use nats_mini_e2e::process::{Proc, free_port, http_json, loopback, nats_server_bin};
use nats_mini_e2e::{T, eventually, nats_connect, nats_sync, start, within};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn node_opts(cluster_port: u16, seeds: &[u16]) -> Options {
    cluster::node_opts("mixed", cluster_port, seeds)
}

async fn client_at(port: u16) -> Client {
    within(
        T,
        "connecting",
        async_nats::connect(format!("nats://127.0.0.1:{port}")),
    )
    .await
    .expect("connect")
}

/// Waits until something accepts TCP connections on `port`.
async fn wait_listening(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(loopback(port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} is not listening on {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Debian's nats-server package (2.9.x: an older, pre-pooling release), installed by
/// `scripts/test-deps.sh`.
fn debian_nats_server() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/nats-server");
    assert!(
        p.exists(),
        "Debian's nats-server not found at {}: run scripts/test-deps.sh",
        p.display()
    );
    p
}

/// A reference server, clustered: client, route and monitoring ports on loopback.
fn spawn_nats_server(
    program: &Path,
    client: u16,
    cluster: u16,
    monitor: u16,
    seeds: &[u16],
) -> Proc {
    let mut args = vec![
        "-a".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        client.to_string(),
        "-m".into(),
        monitor.to_string(),
        "-cluster".into(),
        format!("nats://127.0.0.1:{cluster}"),
        "--cluster_name".into(),
        "mixed".into(),
    ];
    if !seeds.is_empty() {
        args.push("-routes".into());
        args.push(
            seeds
                .iter()
                .map(|p| route(*p))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn_program(program, &args, &[])
}

/// The server ids of nats-server's routes, from its `/routez`.
async fn reference_route_ids(monitor: u16) -> HashSet<String> {
    let routez = http_json(loopback(monitor), "/routez").await;
    routez["routes"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["remote_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn mixed_cluster_with_current_nats_server() {
    mixed_cluster(&nats_server_bin()).await;
}

#[tokio::test]
async fn mixed_cluster_with_debian_nats_server() {
    mixed_cluster(&debian_nats_server()).await;
}

/// Two nats-mini nodes and one `program` (a nats-server) route messages, wildcards, headers,
/// request/reply and queue groups both ways, and discover each other through gossip.
async fn mixed_cluster(program: &Path) {
    let (n_client, n_cluster, n_monitor) = (free_port(), free_port(), free_port());
    let (a_cluster, b_cluster) = (free_port(), free_port());
    let mut reference = spawn_nats_server(program, n_client, n_cluster, n_monitor, &[]);
    wait_listening(n_cluster, "nats-server's route port").await;
    wait_listening(n_monitor, "nats-server's monitoring port").await;
    // A knows nats-server; B knows only A: B must learn about nats-server through gossip, and
    // nats-server about B.
    let a = start(ServerBuilder::options(node_opts(a_cluster, &[n_cluster]))).await;
    let b = start(ServerBuilder::options(node_opts(b_cluster, &[a_cluster]))).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ids = reference_route_ids(n_monitor).await;
        let meshed = a.route_peers().len() == 2
            && b.route_peers().len() == 2
            && ids.contains(a.server_id())
            && ids.contains(b.server_id());
        if meshed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no full mesh: a={:?} b={:?} nats-server={ids:?}\nnats-server log:\n{}",
            a.route_peers(),
            b.route_peers(),
            reference.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let ca = nats_connect(&a).await;
    let cb = nats_connect(&b).await;
    let cn = client_at(n_client).await;

    // nats-mini → nats-server, with a wildcard and headers.
    let mut on_n = cn.subscribe("mix.>").await.unwrap();
    nats_sync(&cn).await;
    until_routed(&ca, &mut on_n, "mix.probe").await;
    let mut h = HeaderMap::new();
    h.insert("X-From", "a");
    ca.publish_with_headers("mix.hdr", h, "with-headers".into())
        .await
        .unwrap();
    ca.flush().await.unwrap();
    let m = within(T, "header message", on_n.next()).await.unwrap();
    assert_eq!(m.payload.as_ref(), b"with-headers");
    assert_eq!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("X-From"))
            .map(|v| v.as_str()),
        Some("a")
    );
    // nats-server → nats-mini (B, reached only through gossip).
    let mut on_b = cb.subscribe("back.*").await.unwrap();
    nats_sync(&cb).await;
    until_routed(&cn, &mut on_b, "back.probe").await;
    cn.publish("back.one", "from-reference".into())
        .await
        .unwrap();
    cn.flush().await.unwrap();
    assert_eq!(next_payload(&mut on_b).await, "from-reference");

    // Request/reply both ways.
    cluster::serve(&cn, "svc.ref", "ref-reply").await;
    assert_eq!(request_until_answered(&ca, "svc.ref").await, "ref-reply");
    cluster::serve(&cb, "svc.mini", "mini-reply").await;
    assert_eq!(request_until_answered(&cn, "svc.mini").await, "mini-reply");

    // A queue group with one member on each server: published on each server in turn, every
    // message is delivered exactly once, and every member gets a share.
    let members = [&ca, &cb, &cn];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (k, c) in members.iter().enumerate() {
        let mut s = c.queue_subscribe("jobs", "q".into()).await.unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(m) = s.next().await {
                let _ = tx.send((k, String::from_utf8(m.payload.to_vec()).unwrap()));
            }
        });
        nats_sync(c).await;
    }
    drop(tx);
    // Let every server learn the others' members (weights) before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    const N: usize = 3000;
    for i in 0..N {
        let c = members[i % 3];
        c.publish("jobs", i.to_string().into()).await.unwrap();
    }
    for c in members {
        c.flush().await.unwrap();
    }
    let mut seen = HashSet::new();
    let mut per = [0usize; 3];
    while seen.len() < N {
        let (k, p) = within(Duration::from_secs(15), "queue deliveries", rx.recv())
            .await
            .expect("members ended");
        assert!(seen.insert(p.clone()), "{p} delivered twice");
        per[k] += 1;
    }
    let extra = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(extra.is_err(), "a message was delivered twice: {extra:?}");
    for (k, n) in per.iter().enumerate() {
        assert!(*n > N / 6, "member {k} got only {n} of {N}: {per:?}");
    }

    a.shutdown().await;
    b.shutdown().await;
    reference.signal("TERM");
    reference.wait_exit().await;
}

/// A nats-mini process as a cluster node.
fn spawn_node(client: u16, cluster: u16, seeds: &[u16]) -> Proc {
    let routes = seeds
        .iter()
        .map(|p| route(*p))
        .collect::<Vec<_>>()
        .join(",");
    Proc::spawn(
        &[
            "-a",
            "127.0.0.1",
            "-p",
            &client.to_string(),
            "-http",
            "off",
            "-cluster",
            &format!("127.0.0.1:{cluster}"),
            "--cluster_name",
            "mixed",
            "-routes",
            &routes,
        ],
        &[],
    )
}

async fn wait_routed_to(server: &Server, peers: usize) {
    eventually(Duration::from_secs(15), &format!("{peers} routes"), || {
        server.route_peers().len() == peers
    })
    .await;
}

#[tokio::test]
async fn a_killed_node_rejoins_and_interest_is_propagated_again() {
    let (x_client, x_cluster, a_cluster) = (free_port(), free_port(), free_port());
    let a = start(ServerBuilder::options(node_opts(a_cluster, &[x_cluster]))).await;
    let mut x = spawn_node(x_client, x_cluster, &[a_cluster, x_cluster]);
    x.wait_for_line("Server is ready").await;
    wait_routed_to(&a, 1).await;

    // A subscriber on A (it stays) and one on X (its client reconnects to X after the
    // restart and resubscribes).
    let ca = nats_connect(&a).await;
    let mut on_a = ca.subscribe("from.x").await.unwrap();
    nats_sync(&ca).await;
    // Pinned to X: without this the client would fail over to A, which X's INFO advertises.
    let cx = within(
        T,
        "connecting to X",
        async_nats::ConnectOptions::new()
            .ignore_discovered_servers()
            .connect(format!("nats://127.0.0.1:{x_client}")),
    )
    .await
    .unwrap();
    let mut on_x = cx.subscribe("from.a").await.unwrap();
    nats_sync(&cx).await;
    until_routed(&ca, &mut on_x, "from.a").await;
    until_routed(&cx, &mut on_a, "from.x").await;

    // SIGKILL: no goodbye on the route; A notices the closed socket and drops X's interest.
    x.child.kill().unwrap();
    let _ = x.child.wait();
    wait_routed_to(&a, 0).await;
    eventually(Duration::from_secs(5), "X's interest removed on A", || {
        a.num_subscriptions() == 1
    })
    .await;

    // Restart on the same ports: X dials A (and A keeps redialing X), the route comes back,
    // A's interest is sent to X in bulk, and X's client resubscribes by itself.
    let mut x = spawn_node(x_client, x_cluster, &[a_cluster, x_cluster]);
    x.wait_for_line("Server is ready").await;
    wait_routed_to(&a, 1).await;
    until_routed(&cx, &mut on_a, "from.x").await;
    until_routed(&ca, &mut on_x, "from.a").await;
    cx.publish("from.x", "after-restart".into()).await.unwrap();
    cx.flush().await.unwrap();
    assert_eq!(next_payload(&mut on_a).await, "after-restart");
    a.shutdown().await;
    x.signal("TERM");
    x.wait_exit().await;
}
