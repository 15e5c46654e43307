//! Route TLS (`cluster.tls`): mutual verification against the CA, nodes with the wrong CA or
//! without TLS kept out, and a TLS route with the reference nats-server (configured through a
//! config file, the only way nats-server takes cluster TLS).

use nats_mini::tls::TlsSettings;
use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::cluster::{self, next_payload, until_routed};
use nats_mini_e2e::pki::{Pki, pki};
use nats_mini_e2e::process::{Proc, TempDir, free_port, loopback, nats_server_bin, s};
use nats_mini_e2e::{eventually, nats_connect, nats_sync, start};
use std::time::Duration;

fn tls_node(pki: &Pki, cert: &str, key: &str, cluster_port: u16, seeds: &[u16]) -> Options {
    let mut o = cluster::node_opts("tls", cluster_port, seeds);
    let mut t = TlsSettings::new(pki.path(cert), pki.path(key));
    t.ca_file = Some(pki.path("ca.pem"));
    o.cluster_tls = Some(t);
    o
}

async fn routes_stay_empty(server: &Server) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        server.route_peers().is_empty(),
        "{:?}",
        server.route_peers()
    );
}

#[tokio::test]
async fn tls_routes_mesh_and_keep_out_strangers() {
    let pki = pki("routes");
    let (pa, pb) = (free_port(), free_port());
    let a = start(ServerBuilder::options(tls_node(
        &pki,
        "server.pem",
        "server-key.pem",
        pa,
        &[pb],
    )))
    .await;
    let b = start(ServerBuilder::options(tls_node(
        &pki,
        "server.pem",
        "server-key.pem",
        pb,
        &[pa],
    )))
    .await;
    eventually(Duration::from_secs(10), "a TLS route", || {
        a.route_peers().len() == 1 && b.route_peers().len() == 1
    })
    .await;
    let ca = nats_connect(&a).await;
    let cb = nats_connect(&b).await;
    let mut sub = cb.subscribe("secure").await.unwrap();
    nats_sync(&cb).await;
    until_routed(&ca, &mut sub, "secure").await;
    ca.publish("secure", "over-tls".into()).await.unwrap();
    ca.flush().await.unwrap();
    assert_eq!(next_payload(&mut sub).await, "over-tls");

    // A node whose certificate another CA signed (it trusts ours, we do not trust it).
    let mut stranger = tls_node(&pki, "bad.pem", "bad-key.pem", free_port(), &[pa]);
    stranger.cluster_name = Some("tls".into());
    let stranger = start(ServerBuilder::options(stranger)).await;
    // A node without route TLS.
    let plain = start(ServerBuilder::options(cluster::node_opts(
        "tls",
        free_port(),
        &[pa],
    )))
    .await;
    routes_stay_empty(&stranger).await;
    routes_stay_empty(&plain).await;
    assert_eq!(a.route_peers(), vec![b.server_id().to_string()]);
    for s in [a, b, stranger, plain] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn tls_route_with_nats_server() {
    let pki = pki("mixed-routes");
    let (n_client, n_cluster, a_cluster) = (free_port(), free_port(), free_port());
    let dir = TempDir::new("cluster-tls");
    let conf = dir.write(
        "n.conf",
        &format!(
            r#"
listen: 127.0.0.1:{n_client}
cluster {{
  name: tls
  listen: 127.0.0.1:{n_cluster}
  tls {{
    cert_file: "{cert}"
    key_file: "{key}"
    ca_file: "{ca}"
    timeout: 2
  }}
}}
"#,
            cert = s(&pki.path("server.pem")),
            key = s(&pki.path("server-key.pem")),
            ca = s(&pki.path("ca.pem")),
        ),
    );
    let mut reference = Proc::spawn_program(&nats_server_bin(), &["-c", s(&conf)], &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(loopback(n_cluster))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            reference.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // nats-mini dials nats-server over TLS (verifying "127.0.0.1" against the certificate).
    let a = start(ServerBuilder::options(tls_node(
        &pki,
        "server.pem",
        "server-key.pem",
        a_cluster,
        &[n_cluster],
    )))
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.route_peers().len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no TLS route with nats-server; its log:\n{}",
            reference.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cn = async_nats::connect(format!("nats://127.0.0.1:{n_client}"))
        .await
        .unwrap();
    let ca = nats_connect(&a).await;
    let mut on_a = ca.subscribe("tls.mixed").await.unwrap();
    nats_sync(&ca).await;
    until_routed(&cn, &mut on_a, "tls.mixed").await;
    let mut on_n = cn.subscribe("tls.back").await.unwrap();
    nats_sync(&cn).await;
    until_routed(&ca, &mut on_n, "tls.back").await;
    a.shutdown().await;
    reference.signal("TERM");
    reference.wait_exit().await;
}
