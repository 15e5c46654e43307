//! Helpers for cluster tests: route URLs, clustered node options on loopback, and waiting for
//! a message to cross the cluster.

use async_nats::Client;
use futures::StreamExt;
use nats_mini::Options;
use std::time::Duration;

/// Route URL of a loopback cluster port.
pub fn route(port: u16) -> String {
    format!("nats-route://127.0.0.1:{port}")
}

/// Options for a nats-mini node on loopback in cluster `name`: route listener on
/// `cluster_port`, the given seeds.
pub fn node_opts(name: &str, cluster_port: u16, seeds: &[u16]) -> Options {
    let mut o = Options::ephemeral();
    o.cluster = Some(("127.0.0.1".into(), cluster_port));
    o.routes = seeds.iter().map(|p| route(*p)).collect();
    o.cluster_name = Some(name.into());
    o
}

/// The next message's payload as text (panics after [`crate::T`]).
pub async fn next_payload(sub: &mut async_nats::Subscriber) -> String {
    let m = crate::within(crate::T, "a message", sub.next())
        .await
        .expect("subscription ended");
    String::from_utf8(m.payload.to_vec()).expect("UTF-8 payload")
}

/// Answers every request on `subject` with `answer`, from `client`, in the background.
pub async fn serve(client: &Client, subject: &str, answer: &'static str) {
    let mut sub = client.subscribe(subject.to_string()).await.unwrap();
    let c = client.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                c.publish(reply, answer.into()).await.unwrap();
            }
        }
    });
    crate::nats_sync(client).await;
}

/// Sends requests on `subject` until one is answered (the responder's interest crosses the
/// cluster asynchronously) and returns the answer; panics after 10 s.
pub async fn request_until_answered(client: &Client, subject: &str) -> String {
    for _ in 0..50 {
        let req = client.request(subject.to_string(), "q".into());
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(1), req).await {
            return String::from_utf8(r.payload.to_vec()).expect("UTF-8 payload");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no answer on {subject}");
}

/// Publishes `subject` from `from` until `sub` gets it (interest crosses routes
/// asynchronously; the first copies may go nowhere), then drains the extra copies.
pub async fn until_routed(from: &Client, sub: &mut async_nats::Subscriber, subject: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        from.publish(subject.to_string(), "probe".into())
            .await
            .unwrap();
        from.flush().await.unwrap();
        if tokio::time::timeout(Duration::from_millis(100), sub.next())
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{subject} never crossed the cluster"
        );
    }
    while tokio::time::timeout(Duration::from_millis(200), sub.next())
        .await
        .is_ok()
    {}
}
