//! Raw-protocol tests: exact server bytes for every error path, and whether the server closes
//! the connection (EOF or reset within a timeout) or keeps it open (PING still answered).
//!
//! Expected bytes follow nats-server 2.15.1 (shared/reference/nats-server-behaviour.md §1, the
//! error catalogue §1.5 and the appendix transcripts).

use nats_mini::{Options, Server, ServerBuilder};
use nats_mini_e2e::{QUIET, Raw, T, count, eventually, raw_connected, show, start, start_default};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Quiet CONNECT: no +OK, no pedantic checks.
const CN: &str = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
/// Quiet CONNECT with headers.
const CH: &str = "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n";
/// `CONNECT {}`: verbose, pedantic and echo.
const CVP: &str = "CONNECT {}\r\n";

const UPO: &[u8] = b"-ERR 'Unknown Protocol Operation'\r\n";
const AUTHV: &[u8] = b"-ERR 'Authorization Violation'\r\n";

/// Connects, reads INFO, sends `input`, and returns every byte the server sends until it closes
/// the connection. Panics if the connection is still open after `T`.
async fn until_closed(addr: SocketAddr, input: impl AsRef<[u8]>) -> Vec<u8> {
    let (mut raw, _) = Raw::connect_info(addr).await;
    // The server may close (and reset) before it has read everything; a failed write is fine.
    let _ = raw.try_send(input).await;
    raw.expect_closed(T).await
}

/// Connects, reads INFO, sends `input` followed by `PING`, and returns what the server sent
/// before the `PONG` (the connection is then known to be open and in sync).
async fn until_pong(raw: &mut Raw, input: impl AsRef<[u8]>) -> Vec<u8> {
    let mut bytes = input.as_ref().to_vec();
    bytes.extend_from_slice(b"PING\r\n");
    raw.send(bytes).await;
    let mut got = raw.read_until(b"PONG\r\n", T).await;
    got.truncate(got.len() - b"PONG\r\n".len());
    got
}

fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(show(got), show(want), "{what}");
}

async fn token_server() -> Server {
    start(Server::builder().auth_token("s3cr3t")).await
}

// ---------------------------------------------------------------------------------------------
// INFO and CONNECT
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn info_is_first_and_framed_with_defaults() {
    let server = start_default().await;
    let mut raw = Raw::connect(server.client_addr()).await;
    let line = raw.read_line(T).await;
    assert!(
        line.ends_with(b"} \r\n"),
        "INFO must end with `}} \\r\\n`: {}",
        show(&line)
    );
    let info = nats_mini_e2e::parse_info_line(&line);
    assert_eq!(info["proto"], 1, "{info}");
    assert_eq!(info["headers"], true, "{info}");
    assert_eq!(info["max_payload"], 2_097_152, "{info}");
    assert_eq!(info["port"], server.client_addr().port(), "{info}");
    assert_eq!(info["host"], "127.0.0.1", "{info}");
    assert_eq!(info["client_ip"], "127.0.0.1", "{info}");
    assert!(
        info["client_id"].as_u64().is_some_and(|id| id > 0),
        "{info}"
    );
    assert!(info["version"].is_string(), "{info}");
    let id = info["server_id"].as_str().unwrap();
    assert_eq!(id.len(), 56, "{info}");
    assert!(id.starts_with('N'), "{info}");
    assert_eq!(info["server_name"], id, "server_name defaults to server_id");
    // Without auth the key is omitted, as nats-server does.
    assert!(info.get("auth_required").is_none(), "{info}");
    assert!(info.get("tls_required").is_none(), "{info}");
    assert!(info.get("connect_info").is_none(), "{info}");
    // INFO is all the server says until the client speaks.
    raw.expect_silence(QUIET).await;
    raw.expect_pong().await;
}

#[tokio::test]
async fn info_announces_auth_and_configured_max_payload() {
    let server = start(Server::builder().auth_token("s3cr3t").max_payload(1024)).await;
    let (_raw, info) = Raw::connect_info(server.client_addr()).await;
    assert_eq!(info["auth_required"], true, "{info}");
    assert_eq!(info["max_payload"], 1024, "{info}");
}

#[tokio::test]
async fn each_connection_gets_its_own_client_id() {
    let server = start_default().await;
    let (_a, ia) = Raw::connect_info(server.client_addr()).await;
    let (_b, ib) = Raw::connect_info(server.client_addr()).await;
    assert_ne!(ia["client_id"], ib["client_id"]);
    assert_eq!(ia["server_id"], ib["server_id"]);
}

#[tokio::test]
async fn connect_empty_object_means_verbose_pedantic_echo() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    // verbose: +OK for CONNECT, SUB, PUB; echo: own message delivered; pedantic: see below.
    let got = until_pong(&mut raw, format!("{CVP}SUB foo 1\r\nPUB foo 2\r\nhi\r\n")).await;
    assert_bytes(
        &got,
        b"+OK\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n",
        "CONNECT {}",
    );
    let got = until_pong(&mut raw, "PUB foo.* 0\r\n\r\n").await;
    assert_bytes(
        &got,
        b"-ERR 'Invalid Publish Subject'\r\n+OK\r\n",
        "pedantic is on",
    );
}

#[tokio::test]
async fn verbose_ok_placement() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    let got = until_pong(
        &mut raw,
        "CONNECT {\"verbose\":true,\"pedantic\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\n",
    )
    .await;
    assert_bytes(
        &got,
        b"+OK\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n+OK\r\n",
        "one +OK per CONNECT/SUB/PUB/UNSUB, none for PING",
    );
}

#[tokio::test]
async fn async_info_follows_the_first_pong_for_protocol_1_only() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n")
        .await;
    raw.expect(b"PONG\r\n").await;
    let info = raw.read_info().await;
    assert_eq!(info["connect_info"], true, "{info}");
    assert_eq!(info["remote_account"], "$G", "{info}");
    assert_eq!(info["proto"], 1, "{info}");
    // Only after the first PING.
    raw.expect_pong().await;
    raw.expect_silence(QUIET).await;

    let (mut raw0, _) = Raw::connect_info(server.client_addr()).await;
    raw0.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":0}\r\nPING\r\n")
        .await;
    raw0.expect(b"PONG\r\n").await;
    raw0.expect_pong().await;
    raw0.expect_silence(QUIET).await;
}

#[tokio::test]
async fn ping_before_connect_is_answered_without_auth() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.expect_pong().await;
    // Before CONNECT the defaults apply (verbose + pedantic).
    let got = until_pong(&mut raw, "PUB foo 2\r\nhi\r\nPUB foo.* 0\r\n\r\n").await;
    assert_bytes(
        &got,
        b"+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n",
        "PUB before CONNECT",
    );
}

// ---------------------------------------------------------------------------------------------
// Parser errors: -ERR 'Unknown Protocol Operation' + close
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_op_errs_and_closes() {
    let server = start_default().await;
    let addr = server.client_addr();
    assert_bytes(
        &until_closed(addr, format!("{CVP}FOO\r\n")).await,
        &[b"+OK\r\n".as_slice(), UPO].concat(),
        "CONNECT {} then FOO",
    );
    for (name, input) in [
        ("FOO", "FOO\r\n"),
        ("MSG from a client", "MSG foo 1 2\r\nhi\r\n"),
        ("whitespace before an op", " PING\r\n"),
        ("empty line", "\r\n"),
        ("PUB without a space", "PUB\r\n"),
        ("UNSUB without a space", "UNSUB\r\n"),
        ("SUBX", "SUBX foo 1\r\n"),
    ] {
        assert_bytes(&until_closed(addr, format!("{CN}{input}")).await, UPO, name);
    }
}

#[tokio::test]
async fn bad_payload_terminator_errs_and_closes() {
    let server = start_default().await;
    let addr = server.client_addr();
    for (name, input) in [
        ("junk after the payload", "SUB foo 1\r\nPUB foo 2\r\nhiXX"),
        (
            "payload longer than its size",
            "SUB foo 1\r\nPUB foo 1\r\nhi\r\n",
        ),
        ("CR without LF", "SUB foo 1\r\nPUB foo 2\r\nhi\rX\n"),
    ] {
        assert_bytes(&until_closed(addr, format!("{CN}{input}")).await, UPO, name);
    }
    // The bad terminator may also arrive in a later read than the payload.
    let (mut raw, _) = Raw::connect_info(addr).await;
    raw.send(format!("{CN}PUB foo 2\r\nhi")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    raw.send("!!").await;
    assert_bytes(&raw.expect_closed(T).await, UPO, "split bad terminator");
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn max_payload_violation_errs_and_closes() {
    let server = start(Server::builder().max_payload(1024)).await;
    let addr = server.client_addr();
    const MPV: &[u8] = b"-ERR 'Maximum Payload Violation'\r\n";
    // The size is checked on the control line, before any payload arrives.
    assert_bytes(
        &until_closed(addr, format!("{CN}PUB foo 2000\r\n")).await,
        MPV,
        "PUB line of 2000",
    );
    // With the payload sent along (the server may reset instead of reading it all).
    let mut input = format!("{CN}PUB foo 2000\r\n").into_bytes();
    input.extend(std::iter::repeat_n(b'x', 2000));
    input.extend_from_slice(b"\r\n");
    assert_bytes(&until_closed(addr, input).await, MPV, "PUB of 2000 bytes");
    // HPUB: the total size counts.
    assert_bytes(
        &until_closed(addr, format!("{CH}HPUB foo 12 1025\r\n")).await,
        MPV,
        "HPUB total 1025",
    );
    // Exactly max_payload is fine.
    let (mut raw, _) = Raw::connect_info(addr).await;
    let payload = "a".repeat(1024);
    let got = until_pong(
        &mut raw,
        format!("{CN}SUB foo 1\r\nPUB foo 1024\r\n{payload}\r\n"),
    )
    .await;
    assert_bytes(
        &got,
        format!("MSG foo 1 1024\r\n{payload}\r\n").as_bytes(),
        "PUB of exactly max_payload",
    );
}

#[tokio::test]
async fn max_control_line_exceeded_errs_and_closes() {
    let server = start_default().await;
    let addr = server.client_addr();
    const MCL: &[u8] = b"-ERR 'maximum control line exceeded'\r\n";
    let long = "a".repeat(5000);
    assert_bytes(
        &until_closed(addr, format!("{CN}SUB {long} 1\r\n")).await,
        MCL,
        "complete SUB line of 5000 bytes",
    );
    // A partial line longer than the limit is cut off without waiting for a newline.
    assert_bytes(
        &until_closed(addr, format!("{CN}SUB {long}")).await,
        MCL,
        "partial line of 5000 bytes",
    );
    // The partial line may also grow over several writes.
    let (mut raw, _) = Raw::connect_info(addr).await;
    raw.send(CN).await;
    raw.send(format!("PUB {}", "b".repeat(3000))).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = raw.try_send("c".repeat(3000)).await;
    assert_bytes(
        &raw.expect_closed(T).await,
        MCL,
        "partial line over two writes",
    );
}

#[tokio::test]
async fn max_control_line_applies_to_the_argument_part() {
    let server = start_default().await;
    let addr = server.client_addr();
    // "SUB " + 4094-byte subject + " 1": the argument part is exactly 4096 bytes — accepted.
    let (mut raw, _) = Raw::connect_info(addr).await;
    let subject = "s".repeat(4094);
    let got = until_pong(&mut raw, format!("{CN}SUB {subject} 1\r\n")).await;
    assert_bytes(&got, b"", "argument of exactly 4096 bytes");
    // One byte more: over the limit.
    let subject = "s".repeat(4095);
    assert_bytes(
        &until_closed(addr, format!("{CN}SUB {subject} 1\r\n")).await,
        b"-ERR 'maximum control line exceeded'\r\n",
        "argument of 4097 bytes",
    );
}

#[tokio::test]
async fn max_connections_exceeded_gets_info_then_err_and_close() {
    let server = start(Server::builder().max_conns(1)).await;
    let addr = server.client_addr();
    let mut first = raw_connected(addr, "{\"verbose\":false}").await;

    let (mut second, info) = Raw::connect_info(addr).await;
    assert_eq!(info["proto"], 1, "INFO comes first: {info}");
    assert_bytes(
        &second.expect_closed(T).await,
        b"-ERR 'maximum connections exceeded'\r\n",
        "second connection",
    );
    // The first is unaffected.
    first.expect_pong().await;
    // Once it leaves, a new connection is accepted.
    drop(first);
    eventually(T, "the first connection is gone", || {
        server.num_connections() == 0
    })
    .await;
    let mut third = raw_connected(addr, "{\"verbose\":false}").await;
    third.expect_pong().await;
}

#[tokio::test]
async fn max_conns_1_accepts_a_client_right_after_start() {
    // Server::start returns once the server is ready: a client connecting at once must not be
    // refused because the startup self-check connection still counts against max_conns.
    let server = start(Server::builder().max_conns(1)).await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.send("CONNECT {\"verbose\":false}\r\nPING\r\n").await;
    let got = raw.read_for(Duration::from_millis(500)).await;
    assert_bytes(&got, b"PONG\r\n", "first client right after start");
    assert!(!raw.closed, "the first client was disconnected");
}

// ---------------------------------------------------------------------------------------------
// CONNECT errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_client_protocol_errs_and_closes() {
    let server = start_default().await;
    for proto in ["2", "-1", "99"] {
        assert_bytes(
            &until_closed(
                server.client_addr(),
                format!("CONNECT {{\"verbose\":false,\"protocol\":{proto}}}\r\n"),
            )
            .await,
            b"-ERR 'invalid client protocol'\r\n",
            &format!("protocol {proto}"),
        );
    }
}

#[tokio::test]
async fn no_responders_requires_headers() {
    let server = start_default().await;
    assert_bytes(
        &until_closed(
            server.client_addr(),
            "CONNECT {\"verbose\":false,\"no_responders\":true}\r\n",
        )
        .await,
        b"-ERR 'no responders requires headers support'\r\n",
        "no_responders without headers",
    );
}

#[tokio::test]
async fn no_responders_status_message_exact_bytes() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    let got = until_pong(
        &mut raw,
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n\
         SUB _INBOX.x 1\r\nPUB svc _INBOX.x 0\r\n\r\n",
    )
    .await;
    assert_bytes(
        &got,
        b"HMSG _INBOX.x 1 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\n",
        "503 no-responders status",
    );
}

#[tokio::test]
async fn account_fields_are_an_authorization_violation() {
    let server = start_default().await;
    for json in ["{\"account\":\"A\"}", "{\"new_account\":true}"] {
        assert_bytes(
            &until_closed(server.client_addr(), format!("CONNECT {json}\r\n")).await,
            AUTHV,
            json,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Errors that keep the connection open
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_subject_errs_and_stays_open() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    let got = until_pong(&mut raw, "CONNECT {\"verbose\":true}\r\nSUB foo..bar 1\r\n").await;
    assert_bytes(
        &got,
        b"+OK\r\n-ERR 'Invalid Subject'\r\n",
        "SUB foo..bar (no +OK for the failed SUB)",
    );
    // Other invalid forms; the connection stays usable throughout.
    let got = until_pong(
        &mut raw,
        "SUB foo. 2\r\nSUB .foo 3\r\nSUB foo.>.bar 4\r\nSUB foo 5\r\nPUB foo 1\r\nx\r\n",
    )
    .await;
    assert_bytes(
        &got,
        b"-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\n\
          +OK\r\n+OK\r\nMSG foo 5 1\r\nx\r\n",
        "more invalid subjects, then a valid SUB",
    );
    raw.expect_pong().await;
    assert!(!raw.closed);
}

#[tokio::test]
async fn pedantic_publish_to_wildcard_errs_but_is_delivered() {
    let server = start_default().await;
    let addr = server.client_addr();
    let mut sub = raw_connected(addr, "{\"verbose\":false,\"pedantic\":false}").await;
    let got = until_pong(&mut sub, "SUB foo.* 1\r\nSUB foo.bar 2\r\n").await;
    assert!(got.is_empty(), "{}", show(&got));

    let (mut publ, _) = Raw::connect_info(addr).await;
    let got = until_pong(
        &mut publ,
        "CONNECT {\"pedantic\":true}\r\nPUB foo.* 2\r\nok\r\n",
    )
    .await;
    assert_bytes(
        &got,
        b"+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n",
        "pedantic PUB to foo.*",
    );
    publ.expect_pong().await;
    // Routed anyway, to subscriptions whose pattern matches the literal `foo.*` only.
    sub.expect(b"MSG foo.* 1 2\r\nok\r\n").await;
    sub.expect_pong().await;
}

#[tokio::test]
async fn unsub_max_delivers_exactly_n() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    let got = until_pong(
        &mut raw,
        format!(
            "{CN}SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n"
        ),
    )
    .await;
    assert_bytes(
        &got,
        b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n",
        "UNSUB 1 2 then three PUBs",
    );
    assert_eq!(server.num_subscriptions(), 0);
}

// ---------------------------------------------------------------------------------------------
// Silent closes: no -ERR at all
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_ops_close_silently() {
    let server = start_default().await;
    let addr = server.client_addr();
    for (name, input) in [
        ("PUB with one arg", "PUB foo\r\n"),
        ("PUB with a non-numeric size", "PUB foo bar\r\n"),
        ("PUB with four args", "PUB a b c 1\r\n"),
        ("PUB with a negative size", "PUB foo -1\r\n"),
        ("PUB with a space and no args", "PUB \r\n"),
        ("SUB with one arg", "SUB foo\r\n"),
        ("SUB with four args", "SUB a b c d\r\n"),
        ("UNSUB with a space and no args", "UNSUB \r\n"),
        ("UNSUB with three args", "UNSUB 1 2 3\r\n"),
        ("HPUB with too few args", "HPUB foo 12\r\n"),
        ("HPUB with hdr > total", "HPUB foo 14 12\r\n"),
        ("a client -ERR", "-ERR 'x'\r\n"),
    ] {
        assert_bytes(&until_closed(addr, format!("{CH}{input}")).await, b"", name);
    }
}

#[tokio::test]
async fn hpub_without_headers_closes_silently() {
    let server = start_default().await;
    let addr = server.client_addr();
    assert_bytes(
        &until_closed(
            addr,
            format!("{CVP}HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
        )
        .await,
        b"+OK\r\n",
        "CONNECT {} then HPUB",
    );
    assert_bytes(
        &until_closed(
            addr,
            format!("{CN}HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
        )
        .await,
        b"",
        "quiet CONNECT then HPUB",
    );
    assert_bytes(
        &until_closed(addr, "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n").await,
        b"",
        "HPUB before CONNECT",
    );
}

#[tokio::test]
async fn bad_connect_json_closes_silently() {
    let server = start_default().await;
    let addr = server.client_addr();
    for input in [
        "CONNECT {bad json}\r\n",
        "CONNECT \r\n",
        "CONNECT [1,2]\r\n",
        "CONNECT {\"verbose\":\"yes\"}\r\n",
    ] {
        assert_bytes(&until_closed(addr, input).await, b"", input);
    }
}

#[tokio::test]
async fn connect_null_fields_are_absent_fields() {
    // Go's JSON decoding leaves a field unchanged on `null`; clients send nulls for unset
    // options (async-nats: "name":null, "jwt":null, "user":null, ...).
    let server = start_default().await;
    let mut broken = Vec::new();
    for field in [
        "verbose",
        "pedantic",
        "echo",
        "headers",
        "no_responders",
        "protocol",
        "tls_required",
        "name",
        "lang",
        "version",
        "user",
        "pass",
        "auth_token",
        "jwt",
        "nkey",
        "sig",
    ] {
        let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
        raw.send(format!("CONNECT {{\"{field}\":null}}\r\nPING\r\n"))
            .await;
        // Defaults apply: verbose, so +OK then PONG.
        let got = raw.read_for(Duration::from_millis(300)).await;
        if got != b"+OK\r\nPONG\r\n" {
            broken.push(format!(
                "{field}: {} (closed: {})",
                show(&got).trim(),
                raw.closed
            ));
        }
    }
    // The CONNECT async-nats 0.51 sends without a configured name.
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.send(
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"jwt\":null,\"nkey\":null,\"sig\":null,\
         \"name\":null,\"echo\":true,\"lang\":\"rust\",\"version\":\"0.51.0\",\"protocol\":1,\
         \"tls_required\":false,\"user\":null,\"pass\":null,\"auth_token\":null,\
         \"headers\":true,\"no_responders\":true}\r\nPING\r\n",
    )
    .await;
    let got = raw.read_for(Duration::from_millis(300)).await;
    if !got.starts_with(b"PONG\r\nINFO ") {
        broken.push(format!(
            "async-nats CONNECT: {} (closed: {})",
            show(&got).trim(),
            raw.closed
        ));
    }
    assert!(
        broken.is_empty(),
        "CONNECT with a null field must behave as if the field were absent:\n{}",
        broken.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_or_missing_token_is_an_authorization_violation() {
    let server = token_server().await;
    let addr = server.client_addr();
    for json in [
        "{\"verbose\":true,\"auth_token\":\"nope\"}",
        "{\"verbose\":true}",
        "{\"verbose\":true,\"user\":\"u\",\"pass\":\"nope\"}",
        "{\"verbose\":true,\"auth_token\":\"\"}",
    ] {
        assert_bytes(
            &until_closed(addr, format!("CONNECT {json}\r\n")).await,
            AUTHV,
            json,
        );
    }
}

#[tokio::test]
async fn ops_before_connect_with_auth_are_an_authorization_violation() {
    let server = token_server().await;
    let addr = server.client_addr();
    for input in ["PUB foo 1\r\nx\r\n", "PING\r\n", "SUB foo 1\r\n"] {
        assert_bytes(&until_closed(addr, input).await, AUTHV, input);
    }
}

#[tokio::test]
async fn right_token_or_token_as_password_is_accepted() {
    let server = token_server().await;
    let addr = server.client_addr();
    for json in [
        "{\"verbose\":true,\"auth_token\":\"s3cr3t\"}",
        "{\"verbose\":true,\"user\":\"anyone\",\"pass\":\"s3cr3t\"}",
        "{\"verbose\":true,\"pass\":\"s3cr3t\"}",
    ] {
        let (mut raw, _) = Raw::connect_info(addr).await;
        let got = until_pong(
            &mut raw,
            format!("CONNECT {json}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\n"),
        )
        .await;
        assert_bytes(&got, b"+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\nx\r\n", json);
    }
}

#[tokio::test]
async fn no_connect_within_auth_timeout() {
    let opts = Options {
        auth_token: Some("s3cr3t".into()),
        auth_timeout: Duration::from_millis(500),
        ..Options::ephemeral()
    };
    let server = start(ServerBuilder::options(opts)).await;
    let started = Instant::now();
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    let got = raw.expect_closed(Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert_bytes(&got, b"-ERR 'Authentication Timeout'\r\n", "auth timeout");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2500),
        "closed after {took:?}, auth_timeout is 500ms"
    );

    // A client that authenticates in time is not affected.
    let mut ok = raw_connected(
        server.client_addr(),
        "{\"verbose\":false,\"auth_token\":\"s3cr3t\"}",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    ok.expect_pong().await;
}

#[tokio::test]
async fn no_auth_timeout_without_auth() {
    let opts = Options {
        auth_timeout: Duration::from_millis(300),
        ..Options::ephemeral()
    };
    let server = start(ServerBuilder::options(opts)).await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.expect_silence(Duration::from_millis(700)).await;
    raw.expect_pong().await;
}

// ---------------------------------------------------------------------------------------------
// Keepalive
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stale_connection_is_closed_after_ping_max_unanswered_pings() {
    let server = start(
        Server::builder()
            .ping_interval(Duration::from_millis(200))
            .ping_max(2),
    )
    .await;
    let started = Instant::now();
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.send(CN).await;
    let got = raw.expect_closed(Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert_bytes(
        &got,
        b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n",
        "unanswered PINGs",
    );
    assert!(took < Duration::from_secs(2), "stale close took {took:?}");
}

#[tokio::test]
async fn answered_pings_keep_the_connection_open() {
    let server = start(
        Server::builder()
            .ping_interval(Duration::from_millis(200))
            .ping_max(2),
    )
    .await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.send(CN).await;
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut pings = 0;
    while Instant::now() < deadline {
        let got = raw.read_for(Duration::from_millis(100)).await;
        assert!(
            !raw.closed,
            "closed although PINGs were answered: {}",
            show(&got)
        );
        assert!(!nats_mini_e2e::contains(&got, b"-ERR"), "{}", show(&got));
        let n = count(&got, b"PING\r\n");
        pings += n;
        for _ in 0..n {
            raw.send("PONG\r\n").await;
        }
    }
    assert!(pings >= 3, "expected several server PINGs, got {pings}");
    raw.expect_pong_ignoring_pings().await;
}

// ---------------------------------------------------------------------------------------------
// Framing: a byte at a time equals all at once
// ---------------------------------------------------------------------------------------------

const HDR: &str = "NATS/1.0\r\nAb: cd\r\n\r\n"; // 20 bytes

fn session() -> String {
    format!(
        "{CH}SUB foo 1\r\nSUB bar q 2\r\nPUB foo rep 5\r\nhello\r\nHPUB bar 20 22\r\n{HDR}hi\r\n\
         UNSUB 1\r\nPUB foo 1\r\nx\r\nPUB bar 0\r\n\r\nPING\r\n"
    )
}

fn session_out() -> String {
    format!(
        "MSG foo 1 rep 5\r\nhello\r\nHMSG bar 2 20 22\r\n{HDR}hi\r\nMSG bar 2 0\r\n\r\nPONG\r\n"
    )
}

#[tokio::test]
async fn byte_at_a_time_equals_all_at_once() {
    let server = start_default().await;
    let addr = server.client_addr();

    let (mut whole, _) = Raw::connect_info(addr).await;
    whole.send(session()).await;
    let at_once = whole.read_until(b"PONG\r\n", T).await;
    assert_bytes(&at_once, session_out().as_bytes(), "all at once");

    // The first session's queue subscription would share group `q` with the second's.
    drop(whole);
    eventually(T, "the first session is gone", || {
        server.num_subscriptions() == 0
    })
    .await;
    let (mut bytewise, _) = Raw::connect_info(addr).await;
    for (i, b) in session().bytes().enumerate() {
        bytewise.send([b]).await;
        tokio::io::AsyncWriteExt::flush(&mut bytewise.stream)
            .await
            .unwrap();
        // Pause now and then so the server really sees separate reads.
        if i % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let split = bytewise.read_until(b"PONG\r\n", T).await;
    assert_bytes(&split, &at_once, "one byte per write");
    bytewise.expect_silence(QUIET).await;
}

#[tokio::test]
async fn large_payload_split_across_many_writes() {
    let server = start_default().await;
    let (mut raw, _) = Raw::connect_info(server.client_addr()).await;
    raw.send(format!("{CN}SUB big 1\r\n")).await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut msg = b"PUB big 300000\r\n".to_vec();
    msg.extend_from_slice(&payload);
    msg.extend_from_slice(b"\r\nPING\r\n");
    for chunk in msg.chunks(4096) {
        raw.send(chunk).await;
    }
    let got = raw.read_until(b"\r\nPONG\r\n", T).await;
    let mut want = b"MSG big 1 300000\r\n".to_vec();
    want.extend_from_slice(&payload);
    want.extend_from_slice(b"\r\nPONG\r\n");
    assert!(
        got == want,
        "large split payload corrupted ({} bytes)",
        got.len()
    );
}
