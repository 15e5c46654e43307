//! Clustering across real network namespaces: three "hosts" on a bridge, each running the
//! nats-mini binary with a seed list naming all three by hostname (resolved through
//! `/etc/netns/HOST/hosts`, as pods resolve StatefulSet DNS names). One host is partitioned
//! (its link goes down): the other two keep serving each other; after the link comes back the
//! mesh and the interest re-form by themselves and messages flow again.
//!
//! Needs root (network namespaces); CI runs as root. Without root the test fails loudly
//! rather than skipping.

use async_nats::Client;
use nats_mini_e2e::cluster::{next_payload, until_routed};
use nats_mini_e2e::netns::Bridge;
use nats_mini_e2e::process::{Proc, binary, http_json};
use nats_mini_e2e::{T, nats_sync, within};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const HOSTS: usize = 3;

fn hostname(i: usize) -> String {
    format!("nats-{i}")
}

/// The bridge with the three hosts, each resolving every host's name.
fn network() -> Bridge {
    let mut net = Bridge::create("nc");
    let hosts: String = (0..HOSTS)
        .map(|i| format!("{} {}\n", net.addr(i), hostname(i)))
        .collect();
    for i in 0..HOSTS {
        net.add_host(i, &format!("127.0.0.1 localhost\n{hosts}"));
    }
    net
}

/// Runs nats-mini in host `i`'s namespace with every host's route URL (by name) as seeds, and
/// short keepalives so a partition is noticed within seconds.
fn spawn_host(net: &Bridge, i: usize) -> Proc {
    let routes: Vec<String> = (0..HOSTS)
        .map(|j| format!("nats-route://{}:6222", hostname(j)))
        .collect();
    let routes = routes.join(",");
    let ns = net.ns(i);
    let bin = binary().to_str().unwrap().to_string();
    let args = [
        "netns",
        "exec",
        &ns,
        &bin,
        "-a",
        "0.0.0.0",
        "-p",
        "4222",
        "-http",
        "0.0.0.0:8222",
        "-cluster",
        "0.0.0.0:6222",
        "--cluster_name",
        "netns",
        "-n",
        &hostname(i),
        "-routes",
        &routes,
        "--ping_interval",
        "1s",
        "--ping_max",
        "2",
        "--write_deadline",
        "1s",
    ];
    Proc::spawn_program(std::path::Path::new("/usr/sbin/ip"), &args, &[])
}

/// The server names host `i` has routes to, from its `/routez`.
async fn routed_names(net: &Bridge, i: usize) -> Vec<String> {
    let addr = SocketAddr::new(IpAddr::V4(net.addr(i)), 8222);
    let routez = http_json(addr, "/routez").await;
    let mut names: Vec<String> = routez["routes"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["remote_name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn wait_routes(net: &Bridge, i: usize, want: &[usize], within_: Duration, procs: &[Proc]) {
    let want: Vec<String> = want.iter().map(|j| hostname(*j)).collect();
    let deadline = tokio::time::Instant::now() + within_;
    loop {
        let got = routed_names(net, i).await;
        if got == want {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let logs: Vec<String> = procs.iter().map(|p| p.stderr_text()).collect();
            panic!(
                "host {i} routes {got:?}, want {want:?} within {within_:?}; logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn client(net: &Bridge, i: usize) -> Client {
    within(
        T,
        "connecting",
        async_nats::ConnectOptions::new()
            .ignore_discovered_servers()
            .connect(format!("nats://{}:4222", net.addr(i))),
    )
    .await
    .expect("connect")
}

#[tokio::test]
async fn partitioned_host_rejoins_after_the_link_heals() {
    let net = network();
    let mut procs: Vec<Proc> = (0..HOSTS).map(|i| spawn_host(&net, i)).collect();
    for p in &mut procs {
        p.wait_for_line("Server is ready").await;
    }
    // Every node resolved the others' names and dropped its own seed: a full mesh.
    for i in 0..HOSTS {
        let others: Vec<usize> = (0..HOSTS).filter(|j| *j != i).collect();
        wait_routes(&net, i, &others, Duration::from_secs(15), &procs).await;
    }
    let c0 = client(&net, 0).await;
    let c1 = client(&net, 1).await;
    let c2 = client(&net, 2).await;
    let mut on2 = c2.subscribe("net.to2").await.unwrap();
    nats_sync(&c2).await;
    until_routed(&c0, &mut on2, "net.to2").await;

    // Partition host 2. Hosts 0 and 1 notice (keepalive) and keep serving each other.
    net.link(2, false);
    wait_routes(&net, 0, &[1], Duration::from_secs(15), &procs).await;
    wait_routes(&net, 1, &[0], Duration::from_secs(15), &procs).await;
    let mut on1 = c1.subscribe("net.to1").await.unwrap();
    nats_sync(&c1).await;
    until_routed(&c0, &mut on1, "net.to1").await;
    c0.publish("net.to1", "during-partition".into())
        .await
        .unwrap();
    c0.flush().await.unwrap();
    assert_eq!(next_payload(&mut on1).await, "during-partition");

    // Heal: the mesh re-forms and host 2's interest is known again, within seconds.
    net.link(2, true);
    for i in 0..HOSTS {
        let others: Vec<usize> = (0..HOSTS).filter(|j| *j != i).collect();
        wait_routes(&net, i, &others, Duration::from_secs(20), &procs).await;
    }
    until_routed(&c0, &mut on2, "net.to2").await;
    c1.publish("net.to2", "after-heal".into()).await.unwrap();
    c1.flush().await.unwrap();
    assert_eq!(next_payload(&mut on2).await, "after-heal");
    for p in &procs {
        p.signal("TERM");
    }
    for p in &mut procs {
        p.wait_exit().await;
    }
}
