//! Integration tests with the real `async-nats` client against an embedded nats-mini.
//!
//! Every await that depends on the server runs under a timeout, so a broken server fails the
//! test instead of hanging it.

use async_nats::{ConnectErrorKind, ConnectOptions, HeaderMap, RequestErrorKind};
use bytes::Bytes;
use futures::StreamExt;
use nats_mini::Server;
use nats_mini_e2e::{
    QUIET, T, eventually, nats_connect, nats_connect_with, nats_sync, nats_sync_no_echo, start,
    start_default, within,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The next message on `sub`, or a panic after `T`.
async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    within(T, "a message", sub.next())
        .await
        .expect("subscription ended unexpectedly")
}

/// Asserts no message arrives on `sub` for a short while.
async fn assert_no_message(sub: &mut async_nats::Subscriber) {
    if let Ok(Some(m)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!(
            "unexpected message on {}: {:?}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        );
    }
}

/// A round trip through the server (see [`nats_sync`]).
async fn sync(c: &async_nats::Client) {
    nats_sync(c).await;
}

fn token_server() -> nats_mini::ServerBuilder {
    Server::builder().auth_token("s3cr3t")
}

/// `async_nats::connect` with default options sends `"name":null` (and `jwt`, `nkey`, `sig`,
/// `user`, `pass`, `auth_token` as null) in CONNECT; nats-server treats null as absent.
#[tokio::test]
async fn connect_with_default_options() {
    let server = start_default().await;
    let client = within(
        T,
        "connect with default options",
        async_nats::connect(server.client_url()),
    )
    .await
    .expect("async_nats::connect with default options must succeed");
    let mut sub = client.subscribe("plain").await.unwrap();
    sync(&client).await;
    client.publish("plain", "x".into()).await.unwrap();
    assert_eq!(&next(&mut sub).await.payload[..], b"x");
    server.shutdown().await;
}

#[tokio::test]
async fn pub_sub_round_trip() {
    let server = start_default().await;
    let client = nats_connect(&server).await;
    let mut sub = client.subscribe("greet.joe").await.unwrap();
    sync(&client).await;
    client
        .publish("greet.joe", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.joe");
    assert_eq!(&m.payload[..], b"hello");
    assert!(m.reply.is_none());

    // An empty payload and a binary payload survive unchanged.
    client.publish("greet.joe", Bytes::new()).await.unwrap();
    let bin: Vec<u8> = (0..=255u8).chain(*b"\r\n\r\n").collect();
    client
        .publish("greet.joe", Bytes::from(bin.clone()))
        .await
        .unwrap();
    assert!(next(&mut sub).await.payload.is_empty());
    assert_eq!(&next(&mut sub).await.payload[..], &bin[..]);
    server.shutdown().await;
}

#[tokio::test]
async fn subscriber_on_another_connection_gets_messages() {
    let server = start_default().await;
    let subscriber = nats_connect(&server).await;
    let publisher = nats_connect(&server).await;
    let mut sub = subscriber.subscribe("orders").await.unwrap();
    sync(&subscriber).await;
    for i in 0..100 {
        publisher
            .publish("orders", format!("order-{i}").into())
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for i in 0..100 {
        let m = next(&mut sub).await;
        assert_eq!(m.payload, format!("order-{i}").as_bytes(), "order kept");
    }
    assert_no_message(&mut sub).await;
    server.shutdown().await;
}

#[tokio::test]
async fn wildcards_star_and_gt() {
    let server = start_default().await;
    let client = nats_connect(&server).await;
    let mut star = client.subscribe("foo.*").await.unwrap();
    let mut gt = client.subscribe("foo.>").await.unwrap();
    let mut mid = client.subscribe("a.*.c").await.unwrap();
    let mut all = client.subscribe(">").await.unwrap();
    sync(&client).await;

    for s in [
        "foo",
        "foo.bar",
        "foo.bar.baz",
        "a.b.c",
        "a.b.d",
        "a.c",
        "foo.end",
    ] {
        client.publish(s, s.into()).await.unwrap();
    }
    sync(&client).await;

    async fn collect(sub: &mut async_nats::Subscriber, until: &str) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let m = next(sub).await;
            let s = m.subject.to_string();
            if s.starts_with("_INBOX.") {
                continue; // the `>` subscription also sees the helpers' sync round trips
            }
            assert_eq!(m.payload, m.subject.as_bytes());
            got.push(s.clone());
            if s == until {
                return got;
            }
        }
    }
    assert_eq!(collect(&mut star, "foo.end").await, ["foo.bar", "foo.end"]);
    // `foo.>` matches one or more further tokens, never `foo` itself.
    assert_eq!(
        collect(&mut gt, "foo.end").await,
        ["foo.bar", "foo.bar.baz", "foo.end"]
    );
    assert_eq!(collect(&mut mid, "a.b.c").await, ["a.b.c"]);
    assert_eq!(
        collect(&mut all, "foo.end").await,
        [
            "foo",
            "foo.bar",
            "foo.bar.baz",
            "a.b.c",
            "a.b.d",
            "a.c",
            "foo.end"
        ]
    );
    assert_no_message(&mut star).await;
    assert_no_message(&mut gt).await;
    assert_no_message(&mut mid).await;
    server.shutdown().await;
}

#[tokio::test]
async fn queue_group_delivers_each_message_to_exactly_one_member() {
    const N: u32 = 10_000;
    let server = start_default().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u32)>();
    let mut members = Vec::new();
    for m in 0..3 {
        let c = nats_connect(&server).await;
        let mut sub = c.queue_subscribe("jobs", "workers".into()).await.unwrap();
        sync(&c).await;
        let tx = tx.clone();
        members.push(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let n: u32 = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
                if tx.send((m, n)).is_err() {
                    break;
                }
            }
            drop(c);
        }));
    }
    drop(tx);
    let plain_client = nats_connect(&server).await;
    let mut plain = plain_client.subscribe("jobs").await.unwrap();
    sync(&plain_client).await;

    let publisher = nats_connect(&server).await;
    for i in 0..N {
        publisher
            .publish("jobs", i.to_string().into())
            .await
            .unwrap();
    }
    sync(&publisher).await;

    // The plain subscriber gets every message, in publish order.
    for i in 0..N {
        let m = within(T, "plain subscriber message", plain.next())
            .await
            .unwrap();
        assert_eq!(m.payload, i.to_string().as_bytes());
    }

    // The group gets every message exactly once.
    let mut seen = HashSet::new();
    let mut per_member = [0u32; 3];
    for _ in 0..N {
        let (m, n) = within(Duration::from_secs(10), "queue member message", rx.recv())
            .await
            .expect("queue members stopped early");
        assert!(seen.insert(n), "message {n} delivered twice to the group");
        per_member[m] += 1;
    }
    assert_eq!(seen.len(), N as usize);
    assert_eq!(per_member.iter().sum::<u32>(), N);
    // No extra deliveries after the 10k.
    assert!(
        tokio::time::timeout(QUIET, rx.recv()).await.is_err(),
        "a queue member got more than the 10k messages"
    );
    // Random member choice spreads the load (expected ~3333 each).
    for (m, n) in per_member.iter().enumerate() {
        assert!(*n > 1_000, "member {m} got only {n} of {N}: {per_member:?}");
    }
    for t in members {
        t.abort();
    }
    server.shutdown().await;
}

#[tokio::test]
async fn request_reply() {
    let server = start_default().await;
    let service = nats_connect(&server).await;
    let mut requests = service.subscribe("svc.echo").await.unwrap();
    sync(&service).await;
    let responder = tokio::spawn({
        let service = service.clone();
        async move {
            while let Some(req) = requests.next().await {
                let reply = req.reply.expect("request without a reply subject");
                let mut body = b"echo: ".to_vec();
                body.extend_from_slice(&req.payload);
                service.publish(reply, body.into()).await.unwrap();
            }
        }
    });

    let client = nats_connect(&server).await;
    for i in 0..50 {
        let resp = within(
            T,
            "a reply",
            client.request("svc.echo", format!("ping {i}").into()),
        )
        .await
        .expect("request failed");
        assert_eq!(resp.payload, format!("echo: ping {i}").as_bytes());
    }
    responder.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn headers_round_trip() {
    let server = start_default().await;
    let client = nats_connect(&server).await;
    let mut sub = client.subscribe("hdr").await.unwrap();
    sync(&client).await;

    let mut headers = HeaderMap::new();
    headers.insert("X-Id", "42");
    headers.append("X-Multi", "one");
    headers.append("X-Multi", "two");
    headers.insert("Content-Type", "text/plain; charset=utf-8");
    client
        .publish_with_headers("hdr", headers, "body".into())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(&m.payload[..], b"body");
    let h = m.headers.expect("headers lost");
    assert_eq!(h.get("X-Id").map(|v| v.as_str()), Some("42"));
    let multi: Vec<&str> = h.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["one", "two"]);
    assert_eq!(
        h.get("Content-Type").map(|v| v.as_str()),
        Some("text/plain; charset=utf-8")
    );
    assert!(m.status.is_none(), "unexpected status {:?}", m.status);

    // Headers with an empty payload.
    let mut headers = HeaderMap::new();
    headers.insert("Only", "headers");
    client
        .publish_with_headers("hdr", headers, Bytes::new())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert!(m.payload.is_empty());
    assert_eq!(
        m.headers.unwrap().get("Only").map(|v| v.as_str()),
        Some("headers")
    );

    // A request with headers reaches a responder with the headers intact.
    let mut reqs = client.subscribe("hdr.svc").await.unwrap();
    sync(&client).await;
    let responder = tokio::spawn({
        let client = client.clone();
        async move {
            let req = reqs.next().await.unwrap();
            let v = req
                .headers
                .unwrap()
                .get("Trace")
                .unwrap()
                .as_str()
                .to_owned();
            let mut h = HeaderMap::new();
            h.insert("Trace-Back", v.as_str());
            client
                .publish_with_headers(req.reply.unwrap(), h, "ok".into())
                .await
                .unwrap();
        }
    });
    let mut h = HeaderMap::new();
    h.insert("Trace", "abc-123");
    let resp = within(
        T,
        "reply with headers",
        client.request_with_headers("hdr.svc", h, "q".into()),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.headers.unwrap().get("Trace-Back").map(|v| v.as_str()),
        Some("abc-123")
    );
    responder.await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn request_without_responders_fails_fast_with_no_responders() {
    let server = start_default().await;
    let client = nats_connect_with(
        &server,
        ConnectOptions::new().request_timeout(Some(Duration::from_secs(10))),
    )
    .await;
    let started = Instant::now();
    let err = within(
        T,
        "the no-responders error",
        client.request("nobody.home", "?".into()),
    )
    .await
    .expect_err("a request nobody serves must fail");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
    // The 503 comes from the server at once, not from the 10 s request timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no-responders took {:?}",
        started.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_after_delivers_exactly_n() {
    let server = start_default().await;
    let client = nats_connect(&server).await;
    let publisher = nats_connect(&server).await;
    let base = server.num_subscriptions();
    let mut sub = client.subscribe("limited").await.unwrap();
    sub.unsubscribe_after(5).await.unwrap();
    sync(&client).await;
    assert_eq!(server.num_subscriptions(), base + 1);

    for i in 0..20 {
        publisher
            .publish("limited", i.to_string().into())
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for i in 0..5 {
        assert_eq!(next(&mut sub).await.payload, i.to_string().as_bytes());
    }
    // Then the stream ends (or at least stays silent): never a sixth message.
    if let Ok(Some(m)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("sixth message delivered: {:?}", m.payload);
    }
    // The server dropped the subscription after the 5th delivery.
    eventually(T, "the subscription is removed", || {
        server.num_subscriptions() == base
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn no_echo_skips_own_messages_only() {
    let server = start_default().await;
    let quiet = nats_connect_with(&server, ConnectOptions::new().no_echo()).await;
    let other = nats_connect(&server).await;
    let mut sub = quiet.subscribe("chat").await.unwrap();
    let mut other_sub = other.subscribe("chat").await.unwrap();
    nats_sync_no_echo(&quiet).await;
    sync(&other).await;

    quiet.publish("chat", "from-quiet".into()).await.unwrap();
    nats_sync_no_echo(&quiet).await;
    other.publish("chat", "from-other".into()).await.unwrap();
    sync(&other).await;

    assert_eq!(&next(&mut sub).await.payload[..], b"from-other");
    assert_no_message(&mut sub).await;
    // Others still get the no-echo client's messages.
    assert_eq!(&next(&mut other_sub).await.payload[..], b"from-quiet");
    assert_eq!(&next(&mut other_sub).await.payload[..], b"from-other");

    // With echo on (the default) a client gets its own messages.
    other.publish("chat", "self".into()).await.unwrap();
    assert_eq!(&next(&mut other_sub).await.payload[..], b"self");
    server.shutdown().await;
}

#[tokio::test]
async fn token_auth_succeeds_with_the_right_token() {
    let server = start(token_server()).await;
    let client = nats_connect_with(&server, ConnectOptions::with_token("s3cr3t".into())).await;
    let mut sub = client.subscribe("secure").await.unwrap();
    sync(&client).await;
    client.publish("secure", "in".into()).await.unwrap();
    assert_eq!(&next(&mut sub).await.payload[..], b"in");
    server.shutdown().await;
}

async fn expect_connect_refused(server: &Server, opts: ConnectOptions) {
    let err = within(T, "connect to fail", opts.connect(server.client_url()))
        .await
        .expect_err("connect must fail");
    assert!(
        matches!(
            err.kind(),
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication
        ),
        "unexpected connect error kind {:?}: {err}",
        err.kind()
    );
}

#[tokio::test]
async fn token_auth_fails_with_a_wrong_or_missing_token() {
    let server = start(token_server()).await;
    expect_connect_refused(&server, ConnectOptions::with_token("wrong".into())).await;
    expect_connect_refused(&server, ConnectOptions::new()).await;
    expect_connect_refused(
        &server,
        ConnectOptions::with_user_and_password("joe".into(), "wrong".into()),
    )
    .await;
    // The server closed every refused connection.
    eventually(T, "refused connections are closed", || {
        server.num_connections() == 0
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn password_equal_to_the_token_is_accepted() {
    let server = start(token_server()).await;
    let client = nats_connect_with(
        &server,
        ConnectOptions::with_user_and_password("anyone".into(), "s3cr3t".into()),
    )
    .await;
    let mut sub = client.subscribe("secure").await.unwrap();
    sync(&client).await;
    client.publish("secure", "by-pass".into()).await.unwrap();
    assert_eq!(&next(&mut sub).await.payload[..], b"by-pass");
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_publishers_and_subscribers() {
    const PUBS: u32 = 4;
    const PER_PUB: u32 = 2_500;
    const TOTAL: usize = (PUBS * PER_PUB) as usize;
    let server = start_default().await;

    let mut receivers = Vec::new();
    for _ in 0..2 {
        let c = nats_connect(&server).await;
        let mut sub = c.subscribe("load.>").await.unwrap();
        sync(&c).await;
        receivers.push(tokio::spawn(async move {
            let mut next_seq = vec![0u32; PUBS as usize];
            let mut got = 0usize;
            while got < TOTAL {
                let m = within(Duration::from_secs(20), "load message", sub.next())
                    .await
                    .expect("subscription ended");
                let text = std::str::from_utf8(&m.payload).unwrap();
                let (p, n) = text.split_once(':').unwrap();
                let (p, n): (usize, u32) = (p.parse().unwrap(), n.parse().unwrap());
                assert_eq!(m.subject.as_str(), format!("load.{p}"));
                // Messages of one publisher arrive in order, none lost or duplicated.
                assert_eq!(n, next_seq[p], "publisher {p}: out of order or lost");
                next_seq[p] += 1;
                got += 1;
            }
            drop(c);
            got
        }));
    }

    let mut publishers = Vec::new();
    for p in 0..PUBS {
        let c = nats_connect(&server).await;
        publishers.push(tokio::spawn(async move {
            let subject = format!("load.{p}");
            for n in 0..PER_PUB {
                c.publish(subject.clone(), format!("{p}:{n}").into())
                    .await
                    .unwrap();
            }
            within(T, "publisher flush", c.flush()).await.unwrap();
        }));
    }
    for p in publishers {
        within(Duration::from_secs(30), "publisher", p)
            .await
            .unwrap();
    }
    for r in receivers {
        let got = within(Duration::from_secs(30), "receiver", r)
            .await
            .unwrap();
        assert_eq!(got, TOTAL);
    }
    let stats = server.stats();
    assert!(stats.in_msgs >= TOTAL as u64, "{stats:?}");
    assert!(stats.out_msgs >= 2 * TOTAL as u64, "{stats:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn flush_writes_everything_before_returning() {
    let server = start_default().await;
    let subscriber = nats_connect(&server).await;
    let mut sub = subscriber.subscribe("flushed").await.unwrap();
    sync(&subscriber).await;

    // After `flush` every publish has left the client: even if the client goes away right
    // after, the server processes and delivers all of them.
    let publisher = nats_connect(&server).await;
    let before = server.stats().in_msgs;
    for i in 0..1_000 {
        publisher
            .publish("flushed", i.to_string().into())
            .await
            .unwrap();
    }
    within(T, "flush", publisher.flush())
        .await
        .expect("flush failed");
    drop(publisher);
    for i in 0..1_000 {
        assert_eq!(next(&mut sub).await.payload, i.to_string().as_bytes());
    }
    assert!(server.stats().in_msgs >= before + 1_000);

    // Subscribe + flush: the SUB is on the wire, and the server registers it.
    let base = server.num_subscriptions();
    let _second = subscriber.subscribe("flushed.2").await.unwrap();
    within(T, "flush", subscriber.flush())
        .await
        .expect("flush failed");
    eventually(T, "the subscription is registered", || {
        server.num_subscriptions() == base + 1
    })
    .await;

    // Unsubscribe + flush removes it on the server.
    sub.unsubscribe().await.unwrap();
    within(T, "flush", subscriber.flush())
        .await
        .expect("flush failed");
    eventually(T, "the subscription is removed", || {
        server.num_subscriptions() == base
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn server_shutdown_closes_clients() {
    let server = start_default().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = nats_connect_with(
        &server,
        ConnectOptions::new()
            .max_reconnects(1)
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(e.to_string());
                }
            }),
    )
    .await;
    sync(&client).await;
    assert_eq!(server.num_connections(), 1);
    within(T, "shutdown", server.shutdown()).await;
    // The client notices the close (events before it, such as "connected", are skipped).
    within(T, "a disconnect event", async {
        while let Some(ev) = rx.recv().await {
            if ev.contains("disconnected") {
                return;
            }
        }
        panic!("event stream ended without a disconnect");
    })
    .await;
}
