//! Busy polling (`busy_poll`) with a real `async-nats` client: request/reply traffic makes the
//! server spin windows (visible in `/metrics`), every reply still arrives, `busy_poll: 0` never
//! spins, and a reload switches it.

use futures::StreamExt;
use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::process::http_get;
use nats_mini_e2e::{T, nats_connect, start, within};
use std::time::Duration;

fn server_with(busy_poll: Duration) -> ServerBuilder {
    ServerBuilder::options(Options {
        http: Some(("127.0.0.1".into(), 0)),
        busy_poll,
        ..Options::ephemeral()
    })
}

/// `nats_mini_busy_poll_windows_total` and `nats_mini_busy_poll_seconds_total` from `/metrics`.
async fn busy_poll_metrics(server: &Server) -> (u64, f64) {
    let (status, body) = http_get(server.monitor_addr().unwrap(), "/metrics")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
    };
    (
        value("nats_mini_busy_poll_windows_total") as u64,
        value("nats_mini_busy_poll_seconds_total"),
    )
}

/// `n` sequential requests to an echo responder; every reply must come back intact.
async fn request_reply(server: &Server, n: usize) {
    let service = nats_connect(server).await;
    let mut requests = service.subscribe("svc.echo").await.unwrap();
    service.flush().await.unwrap();
    let responder = tokio::spawn({
        let service = service.clone();
        async move {
            while let Some(req) = requests.next().await {
                let reply = req.reply.expect("request without a reply subject");
                service.publish(reply, req.payload).await.unwrap();
            }
        }
    });
    let client = nats_connect(server).await;
    for i in 0..n {
        let resp = within(
            T,
            "a reply",
            client.request("svc.echo", i.to_string().into()),
        )
        .await
        .expect("request failed");
        assert_eq!(resp.payload, i.to_string().as_bytes());
    }
    responder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_spins_windows_and_metrics_count_them() {
    let server = start(server_with(Duration::from_micros(200))).await;
    request_reply(&server, 300).await;
    // Windows are counted when they end (at most a window after the last request).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (windows, seconds) = busy_poll_metrics(&server).await;
    assert!(windows > 0, "no busy-poll window after 300 requests");
    assert!(
        seconds >= windows as f64 * 200e-6 * 0.99,
        "{windows} windows of at least 200µs lasted {seconds}s in all"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_turns_it_off_and_a_reload_turns_it_on() {
    let server = start(server_with(Duration::ZERO)).await;
    request_reply(&server, 200).await;
    assert_eq!(busy_poll_metrics(&server).await, (0, 0.0));

    let mut opts = (*server.options()).clone();
    opts.busy_poll = Duration::from_micros(200);
    server.reload(opts).unwrap();
    request_reply(&server, 200).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (windows, _) = busy_poll_metrics(&server).await;
    assert!(windows > 0, "still off after the reload");
    server.shutdown().await;
}
