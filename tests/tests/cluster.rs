//! Clustering on loopback: embedded nats-mini nodes meshed over routes, driven by real
//! `async-nats` clients. Cross-node pub/sub, wildcards, headers, request/reply and
//! no-responders, queue groups exactly once cluster-wide, discovery through one seed, seeds
//! naming the node itself, and refused peers (wrong credentials, another cluster's name).
//! Process-level cases (kill -9 and restart, the mixed cluster with nats-server) are in
//! `cluster_processes.rs`.

use async_nats::{Client, HeaderMap};
use futures::StreamExt;
use nats_mini::{Options, Server};
use nats_mini_e2e::cluster::{self, next_payload};
use nats_mini_e2e::process::free_port;
use nats_mini_e2e::{T, eventually, nats_connect, nats_sync, start, within};
use std::collections::HashMap;
use std::time::Duration;

fn node_opts(cluster_port: u16, seeds: &[u16]) -> Options {
    cluster::node_opts("e2e", cluster_port, seeds)
}

async fn node(cluster_port: u16, seeds: &[u16]) -> Server {
    start(nats_mini::ServerBuilder::options(node_opts(
        cluster_port,
        seeds,
    )))
    .await
}

/// `n` nodes, each given every node's route URL as seeds (itself included, as a StatefulSet
/// pod's config does), and waits for the full mesh.
async fn mesh(n: usize) -> Vec<Server> {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for p in &ports {
        nodes.push(node(*p, &ports).await);
    }
    wait_mesh(&nodes).await;
    nodes
}

async fn wait_mesh(nodes: &[Server]) {
    let want = nodes.len() - 1;
    eventually(Duration::from_secs(10), "a full mesh", || {
        nodes.iter().all(|s| s.route_peers().len() == want)
    })
    .await;
    // Every node's peers are exactly the others.
    for (i, s) in nodes.iter().enumerate() {
        let mut others: Vec<String> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| o.server_id().to_string())
            .collect();
        others.sort();
        assert_eq!(s.route_peers(), others, "node {i}'s routes");
    }
}

/// Waits until `server`'s index holds `n` entries (local plus peers' interest), i.e. the
/// interest a test just created has propagated.
async fn wait_subs(server: &Server, n: usize) {
    eventually(
        Duration::from_secs(5),
        &format!("{n} subscriptions"),
        || server.num_subscriptions() == n,
    )
    .await;
}

async fn shutdown_all(nodes: Vec<Server>) {
    for s in nodes {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn three_nodes_route_messages_wildcards_and_headers() {
    let nodes = mesh(3).await;
    let a = nats_connect(&nodes[0]).await;
    let c = nats_connect(&nodes[2]).await;
    let mut exact = c.subscribe("orders.new").await.unwrap();
    let mut star = c.subscribe("orders.*").await.unwrap();
    let mut tail = c.subscribe("orders.>").await.unwrap();
    nats_sync(&c).await;
    for s in &nodes {
        // 3 on C, their 3 remote entries on each other node (plus the sync inbox, gone).
        wait_subs(s, 3).await;
    }
    a.publish("orders.new", "first".into()).await.unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("X-Trace", "abc");
    a.publish_with_headers("orders.new", headers, "second".into())
        .await
        .unwrap();
    a.publish("orders.eu.big", "deep".into()).await.unwrap();
    a.flush().await.unwrap();
    assert_eq!(next_payload(&mut exact).await, "first");
    let m = within(T, "the header message", exact.next()).await.unwrap();
    assert_eq!(m.payload.as_ref(), b"second");
    assert_eq!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("X-Trace"))
            .map(|v| v.as_str()),
        Some("abc")
    );
    assert_eq!(next_payload(&mut star).await, "first");
    assert_eq!(next_payload(&mut star).await, "second");
    // `orders.*` does not match the deep subject; `orders.>` gets all three, each once.
    assert_eq!(next_payload(&mut tail).await, "first");
    assert_eq!(next_payload(&mut tail).await, "second");
    assert_eq!(next_payload(&mut tail).await, "deep");
    nats_sync(&c).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (name, sub) in [
        ("exact", &mut exact),
        ("star", &mut star),
        ("tail", &mut tail),
    ] {
        let extra = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
        assert!(extra.is_err(), "{name} got a duplicate: {extra:?}");
    }
    // Unsubscribing withdraws the interest everywhere.
    exact.unsubscribe().await.unwrap();
    star.unsubscribe().await.unwrap();
    tail.unsubscribe().await.unwrap();
    nats_sync(&c).await;
    for s in &nodes {
        wait_subs(s, 0).await;
    }
    shutdown_all(nodes).await;
}

#[tokio::test]
async fn queue_group_delivers_exactly_once_across_three_nodes() {
    let nodes = mesh(3).await;
    let clients: Vec<Client> = {
        let mut v = Vec::new();
        for s in &nodes {
            v.push(nats_connect(s).await);
        }
        v
    };
    // Members: 1 on node 0, 2 on node 1, 1 on node 2 (4 in all).
    let placement = [0usize, 1, 1, 2];
    let mut subs = Vec::new();
    for &n in &placement {
        subs.push(
            clients[n]
                .queue_subscribe("work", "workers".into())
                .await
                .unwrap(),
        );
    }
    for c in &clients {
        nats_sync(c).await;
    }
    // Each node: its own members plus one entry per peer that has members.
    for (i, s) in nodes.iter().enumerate() {
        let local = placement.iter().filter(|&&n| n == i).count();
        wait_subs(s, local + 2).await;
    }
    const N: usize = 10_000;
    let publisher = &clients[0];
    for i in 0..N {
        publisher
            .publish("work", i.to_string().into())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (k, mut sub) in subs.into_iter().enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let _ = tx.send((k, String::from_utf8(m.payload.to_vec()).unwrap()));
            }
        });
    }
    drop(tx);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut per_member = [0usize; 4];
    while seen.len() < N {
        let (k, payload) = within(Duration::from_secs(20), "queue deliveries", rx.recv())
            .await
            .expect("members ended");
        per_member[k] += 1;
        *seen.entry(payload).or_default() += 1;
    }
    // Nothing more arrives: each message went to exactly one member.
    let extra = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(extra.is_err(), "a message was delivered twice: {extra:?}");
    assert!(seen.values().all(|&n| n == 1));
    // Picks are uniform over the 4 members cluster-wide (no local preference): every member
    // gets a fair share (expected 2500 each; the bound is many standard deviations wide).
    for (k, n) in per_member.iter().enumerate() {
        assert!(
            (1_800..=3_200).contains(n),
            "member {k} got {n} of {N}: {per_member:?}"
        );
    }
    shutdown_all(nodes).await;
}

#[tokio::test]
async fn request_reply_and_no_responders_across_nodes() {
    let nodes = mesh(3).await;
    let requester = nats_connect(&nodes[0]).await;
    let responder = nats_connect(&nodes[2]).await;
    // Nobody anywhere: the requester gets no-responders at once.
    let err = within(
        T,
        "no responders",
        requester.request("svc.echo", "x".into()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::client::RequestErrorKind::NoResponders,
        "{err:?}"
    );
    let mut service = responder.subscribe("svc.*").await.unwrap();
    let r2 = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = service.next().await {
            if let Some(reply) = m.reply {
                let mut body = b"echo:".to_vec();
                body.extend_from_slice(&m.payload);
                r2.publish(reply, body.into()).await.unwrap();
            }
        }
    });
    nats_sync(&responder).await;
    // The requester's reply-inbox subscription plus the responder's remote interest.
    wait_subs(&nodes[0], 2).await;
    // The only responder is remote: the request crosses two routes (there and back).
    for i in 0..20 {
        let resp = within(
            T,
            "a reply",
            requester.request("svc.echo", format!("{i}").into()),
        )
        .await
        .expect("request failed");
        assert_eq!(resp.payload.as_ref(), format!("echo:{i}").as_bytes());
    }
    shutdown_all(nodes).await;
}

#[tokio::test]
async fn a_node_that_knows_one_seed_joins_the_whole_mesh() {
    let mut nodes = mesh(3).await;
    // The newcomer names only node 0; gossip from node 0 brings nodes 1 and 2 to it.
    let seed = nodes[0].cluster_addr().unwrap().port();
    let newcomer = node(free_port(), &[seed]).await;
    nodes.push(newcomer);
    wait_mesh(&nodes).await;
    // And messages flow between the newcomer and a node it never had configured.
    let far = nats_connect(&nodes[2]).await;
    let near = nats_connect(&nodes[3]).await;
    let mut sub = far.subscribe("joined").await.unwrap();
    nats_sync(&far).await;
    wait_subs(&nodes[3], 1).await;
    near.publish("joined", "hello".into()).await.unwrap();
    assert_eq!(next_payload(&mut sub).await, "hello");
    // Clients learn every member's client URL (connect_urls) for failover.
    let info = near.server_info();
    assert!(
        info.connect_urls.len() >= 4,
        "connect_urls should list the 4 members: {:?}",
        info.connect_urls
    );
    shutdown_all(nodes).await;
}

#[tokio::test]
async fn seeds_naming_the_node_itself_are_dropped_quietly() {
    let port = free_port();
    let lone = node(port, &[port, port]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(lone.route_peers().is_empty());
    // Still a working server.
    let c = nats_connect(&lone).await;
    nats_sync(&c).await;
    lone.shutdown().await;
}

#[tokio::test]
async fn peers_with_wrong_credentials_or_cluster_name_are_refused() {
    let guarded_port = free_port();
    let mut guarded = node_opts(guarded_port, &[]);
    guarded.cluster_user = Some("ruser".into());
    guarded.cluster_pass = Some("rpass".into());
    let guarded = start(nats_mini::ServerBuilder::options(guarded)).await;

    // Wrong password in the seed URL.
    let mut bad = node_opts(free_port(), &[]);
    bad.routes = vec![format!("nats-route://ruser:wrong@127.0.0.1:{guarded_port}")];
    let bad = start(nats_mini::ServerBuilder::options(bad)).await;
    // Another cluster's name.
    let mut other = node_opts(free_port(), &[]);
    other.routes = vec![format!("nats-route://ruser:rpass@127.0.0.1:{guarded_port}")];
    other.cluster_name = Some("elsewhere".into());
    let other = start(nats_mini::ServerBuilder::options(other)).await;
    // And the right credentials.
    let mut good = node_opts(free_port(), &[]);
    good.routes = vec![format!("nats-route://ruser:rpass@127.0.0.1:{guarded_port}")];
    let good = start(nats_mini::ServerBuilder::options(good)).await;

    eventually(Duration::from_secs(5), "the good peer's route", || {
        good.route_peers() == vec![guarded.server_id().to_string()]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        bad.route_peers().is_empty(),
        "bad credentials were accepted"
    );
    assert!(
        other.route_peers().is_empty(),
        "a foreign cluster was accepted"
    );
    assert_eq!(
        guarded.route_peers(),
        vec![good.server_id().to_string()],
        "only the good peer is routed"
    );
    shutdown_all(vec![guarded, bad, other, good]).await;
}

#[tokio::test]
async fn monitoring_shows_routes_cluster_and_per_route_metrics() {
    use nats_mini_e2e::process::{http_get, http_json};
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for p in &ports {
        let mut o = node_opts(*p, &ports);
        o.http = Some(("127.0.0.1".into(), 0));
        o.http_explicit = true;
        nodes.push(start(nats_mini::ServerBuilder::options(o)).await);
    }
    wait_mesh(&nodes).await;
    let c1 = nats_connect(&nodes[1]).await;
    let _sub = c1.subscribe("watched.>").await.unwrap();
    nats_sync(&c1).await;
    wait_subs(&nodes[0], 1).await;
    let c0 = nats_connect(&nodes[0]).await;
    for _ in 0..5 {
        c0.publish("watched.x", "12345".into()).await.unwrap();
    }
    nats_sync(&c0).await;
    let mon = nodes[0].monitor_addr().unwrap();
    let deadline = tokio::time::Instant::now() + T;
    let routez = loop {
        let r = http_json(mon, "/routez?subs=1").await;
        if r["routes"][0]["out_msgs"].as_u64() == Some(5) {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "routez: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(routez["num_routes"], 1);
    let r = &routez["routes"][0];
    assert_eq!(r["remote_id"], nodes[1].server_id());
    assert_eq!(r["out_bytes"], 25);
    assert_eq!(r["subscriptions"], 1);
    assert_eq!(r["subscriptions_list"], serde_json::json!(["watched.>"]));
    assert!(r["rid"].as_u64().unwrap() > 0);
    let varz = http_json(mon, "/varz").await;
    assert_eq!(varz["routes"], 1);
    assert_eq!(varz["cluster"]["name"], "e2e");
    assert_eq!(varz["cluster"]["cluster_port"], ports[0]);
    assert_eq!(varz["cluster"]["urls"].as_array().unwrap().len(), 2);
    let (status, metrics) = http_get(mon, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("nats_mini_routes 1"), "{metrics}");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("nats_mini_route_out_msgs{"))
        .unwrap_or_else(|| panic!("no per-route metric in:\n{metrics}"));
    assert!(
        line.contains(nodes[1].server_id()) && line.ends_with(" 5"),
        "{line}"
    );
    shutdown_all(nodes).await;
}

#[tokio::test]
async fn a_reload_that_adds_a_seed_dials_it() {
    let (pa, pb) = (free_port(), free_port());
    let a = node(pa, &[]).await;
    let b = node(pb, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.route_peers().is_empty());
    a.reload(node_opts(pa, &[pb]))
        .expect("reload with a new seed");
    eventually(Duration::from_secs(5), "the route to the new seed", || {
        a.route_peers() == vec![b.server_id().to_string()]
    })
    .await;
    shutdown_all(vec![a, b]).await;
}

#[tokio::test]
async fn lame_duck_points_clients_at_the_other_members_and_peers_forget_its_urls() {
    use nats_mini_e2e::Raw;
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for p in &ports {
        let mut o = node_opts(*p, &ports);
        o.lame_duck_duration = Duration::from_secs(2);
        o.lame_duck_grace_period = Duration::from_secs(1);
        nodes.push(start(nats_mini::ServerBuilder::options(o)).await);
    }
    wait_mesh(&nodes).await;
    let b_url = format!("127.0.0.1:{}", nodes[1].client_addr().port());
    let a_url = format!("127.0.0.1:{}", nodes[0].client_addr().port());
    let hello = r#"{"verbose":false,"protocol":1}"#;
    let mut on_a = nats_mini_e2e::raw_connected(nodes[0].client_addr(), hello).await;
    let mut on_b = nats_mini_e2e::raw_connected(nodes[1].client_addr(), hello).await;
    // Both members' URLs are advertised while both are up.
    let (_, info) = Raw::connect_info(nodes[1].client_addr()).await;
    let urls: Vec<String> = serde_json::from_value(info["connect_urls"].clone()).unwrap();
    assert!(urls.contains(&a_url) && urls.contains(&b_url), "{urls:?}");

    let a = nodes.remove(0);
    let drain = tokio::spawn(async move { a.lame_duck().await });
    // A's client: ldm, and only B to go to.
    let info = next_info(&mut on_a, |i| i["ldm"] == true).await;
    assert_eq!(info["connect_urls"], serde_json::json!([b_url]));
    // B's client: an async INFO without A's URL.
    next_info(&mut on_b, |i| {
        !i["connect_urls"]
            .as_array()
            .is_some_and(|u| u.iter().any(|x| x == a_url.as_str()))
    })
    .await;
    within(Duration::from_secs(10), "the drain", drain)
        .await
        .unwrap();
    shutdown_all(nodes).await;
}

/// Reads lines until an INFO whose JSON satisfies `want` (panics after [`T`] per line).
async fn next_info(
    raw: &mut nats_mini_e2e::Raw,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    loop {
        let line = raw.read_line(T).await;
        if line.starts_with(b"INFO ") {
            let info = nats_mini_e2e::parse_info_line(&line);
            if want(&info) {
                return info;
            }
        }
    }
}

#[tokio::test]
async fn routes_stay_single_and_stable_and_no_advertise_hides_members() {
    use nats_mini_e2e::Raw;
    // Three nodes that all dial each other at once: each pair ends with one route, which then
    // stays (no reconnect churn: the route ids do not change).
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for p in &ports {
        let mut o = node_opts(*p, &ports);
        o.no_advertise = true;
        o.http = Some(("127.0.0.1".into(), 0));
        o.http_explicit = true;
        nodes.push(start(nats_mini::ServerBuilder::options(o)).await);
    }
    wait_mesh(&nodes).await;
    let rids = |s: &Server| {
        let mon = s.monitor_addr().unwrap();
        async move {
            let r = nats_mini_e2e::process::http_json(mon, "/routez").await;
            assert_eq!(r["num_routes"], 2, "{r}");
            let mut ids: Vec<u64> = r["routes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["rid"].as_u64().unwrap())
                .collect();
            ids.sort();
            ids
        }
    };
    let before = [
        rids(&nodes[0]).await,
        rids(&nodes[1]).await,
        rids(&nodes[2]).await,
    ];
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = [
        rids(&nodes[0]).await,
        rids(&nodes[1]).await,
        rids(&nodes[2]).await,
    ];
    assert_eq!(before, after, "routes were replaced");
    // no_advertise: clients are not told about the other members.
    let (_, info) = Raw::connect_info(nodes[0].client_addr()).await;
    assert!(info.get("connect_urls").is_none(), "{info}");
    shutdown_all(nodes).await;
}

#[tokio::test]
async fn the_route_port_refuses_clients_and_drops_half_done_or_ignored_routes() {
    use nats_mini_e2e::Raw;
    let port = free_port();
    let n = node(port, &[]).await;
    let addr = nats_mini_e2e::process::loopback(port);
    // A NATS client on the route port: nats-server's error, then closed.
    let (mut client, info) = Raw::connect_info(addr).await;
    assert_eq!(info["cluster"], "e2e", "a route INFO: {info}");
    client
        .send("CONNECT {\"lang\":\"rust\",\"verbose\":false,\"cluster\":\"e2e\"}\r\n")
        .await;
    let got = client.expect_closed(T).await;
    assert_eq!(
        nats_mini_e2e::show(&got),
        nats_mini_e2e::show(b"-ERR 'attempted to connect to route port'\r\n")
    );
    // Anything but CONNECT first: an authorization violation, as nats-server answers.
    let (mut early, _) = Raw::connect_info(addr).await;
    early.send("PING\r\n").await;
    let got = early.expect_closed(T).await;
    assert!(
        nats_mini_e2e::contains(&got, b"-ERR 'Authorization Violation'"),
        "{}",
        nats_mini_e2e::show(&got)
    );
    // A dedicated per-account route (2.10+ pinned $SYS) is ignored, and like a silent
    // connection it is closed once the handshake time is up, never registered.
    let (mut pinned, _) = Raw::connect_info(addr).await;
    pinned
        .send(
            "CONNECT {\"cluster\":\"e2e\",\"name\":\"NPEER\",\"headers\":true}\r\n\
             INFO {\"server_id\":\"NPEER\",\"server_name\":\"peer\",\"cluster\":\"e2e\",\
             \"route_account\":\"$SYS\",\"port\":1}\r\nRS+ $G secret.>\r\n",
        )
        .await;
    let (mut silent, _) = Raw::connect_info(addr).await;
    pinned.expect_closed(Duration::from_secs(10)).await;
    silent.expect_closed(Duration::from_secs(10)).await;
    assert!(n.route_peers().is_empty());
    assert_eq!(
        n.num_subscriptions(),
        0,
        "interest from an ignored connection"
    );
    n.shutdown().await;
}
