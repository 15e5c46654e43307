//! Slow consumers: a subscriber that stops reading is cut off (silently, no `-ERR`) while a
//! healthy subscriber on the same subject receives every message and the publisher keeps going
//! (after the bounded fast-producer stall on the way).
//!
//! The slow subscriber is a raw socket with a small receive buffer that subscribes and then
//! never reads. The healthy one is a real async-nats client. The publisher is paced by the
//! healthy subscriber (it stays at most a small window ahead of it), so the healthy client can
//! never be a slow consumer itself: what is measured is that the stuck one does not hold
//! anybody back.

use bytes::Bytes;
use futures::StreamExt;
use nats_mini::{Server, ServerBuilder};
use nats_mini_e2e::{Raw, T, contains, nats_connect, nats_sync, show, start, within};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

const SUBJECT: &str = "firehose";
const MSG_SIZE: usize = 16 * 1024;

/// A raw subscriber on `SUBJECT` whose socket has a small receive buffer. It reads INFO and
/// the PONG that confirms its subscription, and nothing afterwards.
async fn stuck_subscriber(server: &Server) -> Raw {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = within(T, "TCP connect", socket.connect(server.client_addr()))
        .await
        .unwrap();
    let mut raw = Raw {
        stream,
        buf: Vec::new(),
        closed: false,
    };
    raw.read_info().await;
    raw.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {SUBJECT} 1\r\nPING\r\n"
    ))
    .await;
    raw.expect(b"PONG\r\n").await;
    raw
}

/// The `i`-th message: its number, then filler (no `-` or `E`, so `-ERR` can only come from the
/// server's own protocol).
fn payload(i: u64) -> Bytes {
    let mut p = format!("{i:>12}|").into_bytes();
    p.resize(MSG_SIZE, b'x');
    Bytes::from(p)
}

struct Outcome {
    publish_time: Duration,
    /// The healthy subscriber's and the publisher's clients, still connected.
    _clients: (async_nats::Client, async_nats::Client),
}

/// Publishes `total_bytes` in `MSG_SIZE` messages, paced by the healthy subscriber, and checks
/// the healthy one got every message in order.
async fn run(server: &Server, total_bytes: usize, window: u64) -> Outcome {
    let n = (total_bytes / MSG_SIZE) as u64;
    let healthy = nats_connect(server).await;
    let mut sub = healthy.subscribe(SUBJECT).await.unwrap();
    nats_sync(&healthy).await;

    let (progress_tx, mut progress) = tokio::sync::watch::channel(0u64);
    let receiver = tokio::spawn(async move {
        for i in 0..n {
            let m = within(
                Duration::from_secs(20),
                "a message on the healthy client",
                sub.next(),
            )
            .await
            .expect("the healthy subscription ended");
            assert_eq!(m.payload.len(), MSG_SIZE);
            assert_eq!(
                m.payload,
                payload(i),
                "healthy client: message {i} wrong or lost"
            );
            let _ = progress_tx.send(i + 1);
        }
        sub
    });

    let publisher = nats_connect(server).await;
    let started = Instant::now();
    for i in 0..n {
        if i >= window {
            within(
                Duration::from_secs(20),
                "the healthy subscriber to catch up",
                progress.wait_for(|&got| got + window > i),
            )
            .await
            .expect("healthy receiver stopped");
        }
        publisher.publish(SUBJECT, payload(i)).await.unwrap();
    }
    within(T, "publisher flush", publisher.flush())
        .await
        .unwrap();
    let mut sub = within(Duration::from_secs(30), "the healthy receiver", receiver)
        .await
        .unwrap();
    let publish_time = started.elapsed();

    // The healthy client is still connected and gets nothing extra.
    nats_sync(&healthy).await;
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
        panic!(
            "extra message on the healthy client: {} bytes",
            m.payload.len()
        );
    }
    Outcome {
        publish_time,
        _clients: (healthy, publisher),
    }
}

/// Reads what the stuck subscriber has buffered until the server's close, and checks the server
/// never sent `-ERR` (slow consumers are cut off silently).
async fn assert_closed_silently(mut raw: Raw) {
    let mut got = std::mem::take(&mut raw.buf);
    let mut chunk = vec![0u8; 256 * 1024];
    let read_all = async {
        loop {
            match raw.stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(k) => got.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    };
    within(
        Duration::from_secs(10),
        "the slow consumer's connection to close",
        read_all,
    )
    .await;
    assert!(
        !contains(&got, b"-ERR"),
        "a slow consumer must be closed without -ERR; got {} bytes, containing:\n{}",
        got.len(),
        show(&got[got.len().saturating_sub(300)..])
    );
    assert!(
        got.starts_with(b"MSG firehose 1 16384\r\n") || got.is_empty(),
        "unexpected start of the stream: {}",
        show(&got[..got.len().min(100)])
    );
}

#[tokio::test]
async fn slow_consumer_over_max_pending_is_cut_off_and_others_are_unaffected() {
    let write_deadline = Duration::from_millis(500);
    let server = start(
        Server::builder()
            .write_deadline(write_deadline)
            .max_pending(1024 * 1024)
            .max_payload(64 * 1024),
    )
    .await;
    let stuck = stuck_subscriber(&server).await;
    assert_eq!(server.num_connections(), 1);

    // 16 MiB: far more than max_pending plus what the kernel buffers can hold.
    let out = run(&server, 16 * 1024 * 1024, 16).await;
    assert!(
        out.publish_time < write_deadline * 4 + Duration::from_secs(5),
        "publishing took {:?}",
        out.publish_time
    );
    assert!(
        server.stats().slow_consumers >= 1,
        "no slow consumer counted: {:?}",
        server.stats()
    );
    // On its way from 3/4 of max_pending to the limit, the stuck one raised its stall gate and
    // the publisher waited for it (briefly, bounded) before going on: the fast-producer stall.
    assert!(
        server.stats().stalls >= 1,
        "the publisher never stalled: {:?}",
        server.stats()
    );
    assert_closed_silently(stuck).await;
    // Only the two async-nats clients are left: the stuck one was unregistered.
    nats_mini_e2e::eventually(T, "the slow consumer is gone", || {
        server.num_connections() == 2
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn slow_consumer_over_write_deadline_is_cut_off_and_others_are_unaffected() {
    // Default max_pending (128 MiB) is more than the whole run: only the write deadline can
    // catch the stuck subscriber.
    let write_deadline = Duration::from_millis(500);
    let server = start(Server::builder().write_deadline(write_deadline)).await;
    let stuck = stuck_subscriber(&server).await;

    let started = Instant::now();
    let out = run(&server, 64 * 1024 * 1024, 16).await;
    assert!(
        out.publish_time < write_deadline * 4 + Duration::from_secs(5),
        "publishing took {:?}",
        out.publish_time
    );
    // Cut off within about the write deadline once its socket is full (generous bound).
    nats_mini_e2e::eventually(
        write_deadline * 2 + Duration::from_secs(2),
        "the slow consumer is counted",
        || server.stats().slow_consumers >= 1,
    )
    .await;
    let detected_after = started.elapsed();
    assert_closed_silently(stuck).await;
    nats_mini_e2e::eventually(T, "the slow consumer is gone", || {
        server.num_connections() == 2
    })
    .await;
    eprintln!(
        "write-deadline run: published 64 MiB in {:?}, slow consumer counted after {detected_after:?}",
        out.publish_time
    );
    server.shutdown().await;
}

#[tokio::test]
async fn healthy_fast_subscribers_are_not_slow_consumers() {
    // Control: with the same tight limits and nobody stuck, nobody is cut off.
    let server = start(ServerBuilder::options(nats_mini::Options {
        write_deadline: Duration::from_millis(500),
        max_pending: 1024 * 1024,
        max_payload: 64 * 1024,
        ..nats_mini::Options::ephemeral()
    }))
    .await;
    run(&server, 8 * 1024 * 1024, 16).await;
    assert_eq!(server.stats().slow_consumers, 0, "{:?}", server.stats());
    server.shutdown().await;
}
